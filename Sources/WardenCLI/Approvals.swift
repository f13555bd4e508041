import ArgumentParser
import Foundation
import WardenCore
import WardenGateway
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

extension StateOptions {
    /// The approvals broker of this state directory; each run's events go to its own audit store.
    func approvals() throws -> ApprovalBroker {
        let registry = self.registry
        return try ApprovalBroker(path: host.stateDirectory + "/approvals.db") { run in
            let location = (try? registry.load(run).auditStore) ?? .stateDirectory
            return registry.events.sink(at: location)
        }
    }

    /// Whether a run is still active (an answer after its end is refused).
    func runIsActive(_ run: RunID) -> Bool {
        guard let ledger = try? registry.ledger(for: run) else { return false }
        return ledger.reconcile()?.state.isActive == true
    }
}

/// Who is answering: the real uid, and `--as NAME` or the uid's account name.
func currentApprover(as name: String?) -> Approver {
    let uid = getuid()
    let account = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
    return Approver(uid: uid, name: name ?? account)
}

extension Warden {
    struct Approvals: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List requests a run's doors hold for a person's decision (pending unless --all).",
            discussion: """
                A door that a policy answers with `ask` holds the request (a connection, a tool call, a \
                model request) and records it; nothing is forwarded until someone runs `warden approve ID` \
                or `warden deny ID`, from any terminal. An approval is bound to the exact request (its \
                SHA-256), used once, and expires (silence is a denial).

                Examples:
                  warden approvals
                  warden approvals --run coder --all --json
                  warden approvals --watch
                """)
        @Option(name: .customLong("run"), help: "Only this run (id, id prefix or name).")
        var runName: String?
        @Flag(help: "Include decided, expired and used requests.")
        var all = false
        @Flag(help: "Keep listing: print each new pending request as it arrives (Ctrl-C ends).")
        var watch = false
        @Flag(help: "Print JSON (one object per line with --watch).")
        var json = false
        @OptionGroup var state: StateOptions

        func run() throws {
            let broker = try state.approvals()
            let runID = try runName.map { try state.registry.resolve($0) }
            if watch {
                var seen = Set<String>()
                while true {
                    for approval in try broker.list(run: runID).reversed() where seen.insert(approval.id).inserted {
                        let line = (json ? try Output.line(approval) : Self.describe(approval)) + "\n"
                        FileHandle.standardOutput.write(Data(line.utf8))
                    }
                    usleep(200_000)
                }
            }
            let approvals = try broker.list(run: runID, includeDecided: all)
            if json { return print(try Output.json(approvals)) }
            if approvals.isEmpty {
                return print(all ? "no approvals" : "no pending approvals (warden approvals --all shows decided ones)")
            }
            let now = RunEvent.now()
            print(
                Table(
                    header: ["ID", "RUN", "DOOR", "STATE", "EXPIRES", "REQUEST", "WHY"],
                    rows: approvals.map { approval in
                        [
                            approval.id, approval.run.rawValue, approval.door.rawValue, approval.state.rawValue,
                            approval.state == .pending
                                ? "in \(max(0, (approval.expiresAtNanoseconds - now) / 1_000_000_000))s" : "-",
                            approval.summary, approval.reasons.joined(separator: "; "),
                        ]
                    }
                ).rendered)
        }

        static func describe(_ approval: Approval) -> String {
            "\(approval.id)  run \(approval.run)  \(approval.door.rawValue): \(approval.summary)"
                + (approval.reasons.isEmpty ? "" : "  (\(approval.reasons.joined(separator: "; ")))")
                + "  — warden approve \(approval.id) | warden deny \(approval.id)"
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve one held request: the door forwards exactly that request, once.",
            discussion: """
                Only one answer counts: if someone else answered first, or the request expired, or its run \
                ended, this is refused with the reason. --remember also grants the same request (same \
                digest) for the rest of that run. Who approved (your uid, and --as) is recorded.

                Examples:
                  warden approve ap-1a2b3c4d5e
                  warden approve ap-1a2b3c4d5e --remember --note "mirror is ours" --as alice
                """)
        @OptionGroup var answer: AnswerOptions
        @Flag(help: "Grant the same request again for the rest of the run, without asking.")
        var remember = false

        func run() throws { try answer.decide(approve: true, remember: remember) }
    }

    struct Deny: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deny one held request: the door refuses it.",
            discussion: "Example: warden deny ap-1a2b3c4d5e --note \"not on the allowlist\"")
        @OptionGroup var answer: AnswerOptions

        func run() throws { try answer.decide(approve: false) }
    }
}

/// What `warden approve` and `warden deny` share: which request, the note, who answers, the output.
struct AnswerOptions: ParsableArguments {
    @Argument(help: "The approval's id (from `warden approvals`).")
    var id: String
    @Option(help: "A note recorded with the decision.")
    var note: String?
    @Option(name: .customLong("as"), help: "Your name, recorded with your uid.")
    var name: String?
    @Flag(help: "Print the decided approval as JSON.")
    var json = false
    @OptionGroup var state: StateOptions

    func decide(approve: Bool, remember: Bool = false) throws {
        let approval = try state.approvals().decide(
            id, approve: approve, remember: remember, by: currentApprover(as: name), note: note,
            runIsActive: state.runIsActive)
        print(
            json ? try Output.json(approval) : "\(approve ? "approved" : "denied") \(approval.id): \(approval.summary)")
    }
}
