import Foundation
import Synchronization
import Testing
import WardenAudit
import WardenCore
import WardenGateway
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The approvals broker on its real store (SQLite in WAL) with the real audit log: bound to the exact
/// request, used once, expiring, one answer only; and through the real CLI, several people answering at
/// once and an answer after the run ended.
struct ApprovalBrokerTests {
    /// A clock the test moves.
    final class Clock: Sendable {
        let now = Atomic<Int64>(1_800_000_000_000_000_000)
        func advance(_ duration: Duration) { now.add(duration.nanoseconds, ordering: .relaxed) }
    }

    let harness: WardenHarness
    let clock = Clock()
    let broker: ApprovalBroker
    let run = RunID.random()
    let alice = Approver(uid: 1000, name: "alice")

    init() throws {
        harness = try WardenHarness()
        let sinks = AuditEventSinks(stateDirectory: harness.stateDirectory)
        let clock = self.clock
        broker = try ApprovalBroker(
            path: harness.stateDirectory + "/approvals.db", events: { _ in sinks.sink(at: .stateDirectory) },
            clock: { clock.now.load(ordering: .relaxed) })
    }

    func connect(_ host: String, _ port: Int) -> JSONValue {
        .object([("action", .string("connect")), ("host", .string(host)), ("port", .number(String(port)))])
    }

    func held(_ hold: ApprovalBroker.Hold) throws -> Approval {
        guard case .held(let approval) = hold else {
            Issue.record("expected a held request, got \(hold)")
            throw WardenError(code: .conflict, message: "not held")
        }
        return approval
    }

    func events(_ kind: EventKind) throws -> [RunEvent] {
        try AuditEventSinks(stateDirectory: harness.stateDirectory).sink(at: .stateDirectory).events(of: run)
            .filter { $0.kind == kind }
    }

    @Test func anApprovalIsBoundToItsRequestAndUsedOnce() throws {
        let approval = try held(
            broker.ask(
                run: run, door: .egress, request: connect("pypi.org", 443), summary: "connect pypi.org:443",
                reasons: ["not on the allowlist"], timeout: .seconds(120)))
        #expect(approval.state == .pending && approval.digest.count == 64)
        try broker.decide(approval.id, approve: true, by: alice, note: "ours", runIsActive: { _ in true })
        // Another request cannot ride on it.
        let other = ApprovalBroker.digest(of: try connect("evil.example", 443).canonicalized())
        #expect(throws: WardenError.self) { try broker.use(approval.id, digest: other) }
        try broker.use(approval.id, digest: approval.digest)
        #expect(throws: WardenError.self, "used twice") { try broker.use(approval.id, digest: approval.digest) }
        #expect(try broker.approval(approval.id).state == .used)
        // The same request again asks again: the approval was for one use.
        let again = try held(
            broker.ask(
                run: run, door: .egress, request: connect("pypi.org", 443), summary: "connect pypi.org:443",
                reasons: [], timeout: .seconds(120)))
        #expect(again.id != approval.id)
        // Recorded: the request (with the canonical request and its digest), who decided, the use.
        let requested = try events(.approvalRequested)
        #expect(requested.count == 2 && requested[0].details["digest"] == approval.digest)
        #expect(requested[0].details["request"] == #"{"action":"connect","host":"pypi.org","port":443}"#)
        let decided = try #require(try events(.approvalDecided).first)
        #expect(decided.actor == .approver && decided.details["approver"] == "uid 1000 (alice)")
        #expect(decided.details["note"] == "ours")
        #expect(try events(.approvalUsed).count == 1)
    }

    @Test func rememberGrantsTheSameRequestOnlyAndOnlyInThatRun() throws {
        let first = try held(
            broker.ask(
                run: run, door: .tools, request: connect("pypi.org", 443), summary: "s", reasons: [],
                timeout: .seconds(60)))
        try broker.decide(first.id, approve: true, remember: true, by: alice, runIsActive: { _ in true })
        #expect(
            try broker.ask(
                run: run, door: .tools, request: connect("pypi.org", 443), summary: "s", reasons: [],
                timeout: .seconds(60)) == .granted(approvalID: first.id))
        _ = try held(
            broker.ask(
                run: run, door: .tools, request: connect("pypi.org", 80), summary: "other arguments", reasons: [],
                timeout: .seconds(60)))
        _ = try held(
            broker.ask(
                run: RunID.random(), door: .tools, request: connect("pypi.org", 443), summary: "another run",
                reasons: [], timeout: .seconds(60)))
    }

    @Test func silenceIsADenialAndALateAnswerIsRefused() throws {
        let approval = try held(
            broker.ask(
                run: run, door: .model, request: connect("m", 1), summary: "complete", reasons: [],
                timeout: .seconds(2)))
        clock.advance(.seconds(3))
        #expect(try broker.wait(for: approval.id).state == .expired)
        #expect(throws: WardenError.self) {
            try broker.decide(approval.id, approve: true, by: alice, runIsActive: { _ in true })
        }
        #expect(try events(.approvalExpired).count == 1)
        #expect(try broker.list().isEmpty, "nothing pending")
        #expect(try broker.list(includeDecided: true).map(\.state) == [.expired])
    }

    @Test func oneAnswerCountsAndTheSecondSaysWhoWon() throws {
        let approval = try held(
            broker.ask(
                run: run, door: .egress, request: connect("a", 1), summary: "s", reasons: [], timeout: .seconds(60)))
        try broker.decide(approval.id, approve: false, by: alice, runIsActive: { _ in true })
        do {
            try broker.decide(approval.id, approve: true, by: Approver(uid: 0), runIsActive: { _ in true })
            Issue.record("a second answer counted")
        } catch let error as WardenError {
            #expect(error.code == .conflict && error.message.contains("already denied by uid 1000 (alice)"))
        }
        #expect(throws: WardenError.self) { try broker.use(approval.id, digest: approval.digest) }
    }
}

/// Through the real binary, with a real run: people answering at once from several terminals, and an
/// answer after the run ended.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct ApprovalCommandTests {
    func broker(_ harness: WardenHarness) throws -> ApprovalBroker {
        let sinks = AuditEventSinks(stateDirectory: harness.stateDirectory)
        return try ApprovalBroker(path: harness.stateDirectory + "/approvals.db") { _ in
            sinks.sink(at: .stateDirectory)
        }
    }

    func hold(_ broker: ApprovalBroker, run: String) throws -> Approval {
        let request = JSONValue.object([("host", .string("pypi.org")), ("port", .number("443"))])
        guard
            case .held(let approval) = try broker.ask(
                run: try #require(RunID(run)), door: .egress, request: request, summary: "connect pypi.org:443",
                reasons: ["ask: unknown host"], timeout: .seconds(120))
        else { throw WardenError(code: .conflict, message: "not held") }
        return approval
    }

    @Test func eightPeopleAnsweringAtOnceMakeExactlyOneDecision() throws {
        let harness = try WardenHarness()
        let run = try harness.start([], command: ["/bin/sleep", "60"])
        let broker = try broker(harness)
        let approval = try hold(broker, run: run)
        let listed = try harness.run(["approvals", "--json"])
        #expect(listed.standardOutput.contains(approval.id), "\(listed.standardOutput)")
        let processes = (0..<8).map { index in
            let process = harness.process(
                WardenHarness.binary,
                arguments: [index % 2 == 0 ? "approve" : "deny", approval.id, "--as", "person-\(index)"])
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        for process in processes { try process.run() }
        for process in processes { process.waitUntilExit() }
        let winners = processes.filter { $0.terminationStatus == 0 }
        #expect(winners.count == 1, "\(processes.map(\.terminationStatus))")
        let decided = try harness.events(run, kind: "approval.decided")
        #expect(decided.count == 1, "\(decided)")
        let final = try broker.approval(approval.id)
        #expect(final.state == .approved || final.state == .denied)
        #expect(final.decidedBy == decided.first?["approver"])
        _ = try harness.run(["kill", run])
    }

    @Test func anAnswerAfterTheRunEndedIsRefused() throws {
        let harness = try WardenHarness()
        let run = try harness.start([], command: ["/bin/sleep", "60"])
        let approval = try hold(try broker(harness), run: run)
        _ = try harness.run(["kill", run])
        let late = try harness.run(["approve", approval.id])
        #expect(late.status != 0)
        #expect(late.standardError.contains("has ended"), "\(late.standardError)")
        let unknown = try harness.run(["deny", "ap-0000000000"])
        #expect(unknown.status != 0 && unknown.standardError.contains("no approval 'ap-0000000000'"))
    }
}
