import ArgumentParser
import Foundation
import WardenAudit
import WardenCore
import WardenSandbox

/// Runs audit-store code, turning the store's errors into the CLI's one-line form.
func auditCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as AuditError {
        throw error.wardenError
    }
}

struct AuditOptions: ParsableArguments {
    @OptionGroup var state: StateOptions
    @Option(
        help:
            "The audit store: sqlite:PATH, a file path, or postgres://USER@HOST:PORT/DB (default: the state directory's SQLite file, or $WARDEN_AUDIT_STORE)."
    )
    var store: String?

    /// `--store`, else `$WARDEN_AUDIT_STORE`, else the state directory's SQLite file.
    func location() throws -> AuditStoreLocation {
        let cwd = FileManager.default.currentDirectoryPath
        if let store { return try AuditStoreLocation(parsing: store, field: "--store", workingDirectory: cwd) }
        if let text = ProcessInfo.processInfo.environment["WARDEN_AUDIT_STORE"], !text.isEmpty {
            return try AuditStoreLocation(parsing: text, field: "WARDEN_AUDIT_STORE", workingDirectory: cwd)
        }
        return .stateDirectory
    }

    var stateDirectory: String { state.host.stateDirectory }

    /// Opens the store, runs `body`, and closes the store whatever happens (a PostgreSQL connection
    /// must be closed before it is released).
    func withStore<T: Sendable>(_ body: (any AuditStore) async throws -> T) async throws -> T {
        let location = try location()
        let store = try await auditCall {
            try await AuditStores.open(location: location, stateDirectory: stateDirectory)
        }
        do {
            let result = try await auditCall { try await body(store) }
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}

extension Warden {
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The tamper-evident record: verify, read, export and import the hash-chained audit log.",
            discussion: """
                Every event is hash-chained (hash_n = SHA-256(hash_n-1 ‖ RFC 8785 canonical event)) and \
                Ed25519-signed checkpoints cover the chain every 1,000 events or 10 seconds. The signing \
                key lives in the state directory (mode 0600), hidden from every sandbox.

                Examples:
                  warden audit verify                      # the whole log, against this machine's key
                  warden audit verify --store postgres://warden@db:5432/warden --key ops.pub
                  warden audit tail --follow
                  warden audit export --format jsonl > audit.jsonl && warden audit import audit.jsonl --store copy.sqlite
                """,
            subcommands: [Verify.self, Tail.self, Show.self, Record.self, Export.self, Import.self, Key.self])
    }
}

extension Warden.Audit {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the chain, every checkpoint signature and the signed head; name the first bad event.",
            discussion:
                "Exit status 0 when the log verifies, 1 when it does not (the first bad sequence number is printed).")
        @OptionGroup var options: AuditOptions
        @Option(help: "First sequence number to check.")
        var from: Int64 = 1
        @Option(help: "Last sequence number to check.")
        var to: Int64?
        @Option(help: "The public key checkpoints must carry (64 hex digits, or a file); default: this machine's.")
        var key: String?
        @Flag(help: "Print the result as JSON.")
        var json = false

        func validate() throws {
            if from < 1 { throw ValidationError("--from must be at least 1") }
            if let to, to < from { throw ValidationError("--to must not be below --from") }
        }

        func run() async throws {
            try await options.withStore { store in try await verify(store) }
        }

        func verify(_ store: any AuditStore) async throws {
            let publicKey = try await auditCall { [key, options] in
                try AuditOperations.trustedKey(key, stateDirectory: options.stateDirectory)
            }
            let head = AuditStores.readHead(
                path: AuditStores.headPath(for: store, stateDirectory: options.stateDirectory))
            let interactive = isatty(2) == 1 && !json
            let (from, to) = (from, to)
            let report = try await auditCall {
                let result = try await AuditOperations.verify(
                    store: store, publicKey: publicKey, from: from, through: to, head: head,
                    progress: interactive
                        ? { n in FileHandle.standardError.write(Data("\r\u{1B}[Kverified through \(n)".utf8)) } : nil)
                return result
            }
            if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            if json {
                print(try Output.json(report))
            } else if report.ok {
                print(
                    "OK: \(report.eventsChecked) events, \(report.checkpointsChecked) signed checkpoints verified in \(store.location)"
                        + (report.unsignedTail > 0
                            ? "; the last \(report.unsignedTail) events are not yet under a checkpoint" : ""))
            } else {
                print("FAILED at event \(report.firstBadSequence ?? 0): \(report.problem ?? "")")
            }
            if !report.ok { throw ExitCode(1) }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the latest events; --follow keeps printing new ones.")
        @OptionGroup var options: AuditOptions
        @Option(name: [.customShort("n"), .long], help: "How many of the latest events.")
        var count = 20
        @Flag(help: "Keep printing events as they are recorded (Ctrl-C ends).")
        var follow = false
        @Flag(help: "One JSON object per line.")
        var json = false

        func run() async throws {
            try await options.withStore { store in try await tail(store) }
        }

        func tail(_ store: any AuditStore) async throws {
            let last = try await auditCall { try await store.lastSequence() }
            var next = max(1, last - Int64(max(0, count)) + 1)
            while true {
                let start = next
                let page = try await auditCall { try await store.events(from: start, through: nil, limit: 1000) }
                // Unbuffered, so `--follow` into a pipe shows each event as it is recorded.
                let text = page.map { AuditFormatting.line($0.event, json: json) + "\n" }.joined()
                FileHandle.standardOutput.write(Data(text.utf8))
                if let last = page.last?.event.sequence { next = last + 1 }
                if !follow { return }
                if page.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one event in full, with its hashes.")
        @OptionGroup var options: AuditOptions
        @Argument(help: "The sequence number.")
        var sequence: Int64
        @Flag(help: "Print it as JSON.")
        var json = false

        func run() async throws {
            try await options.withStore { store in try await show(store) }
        }

        func show(_ store: any AuditStore) async throws {
            let sequence = sequence
            guard
                let stored = try await auditCall({ try await store.events(from: sequence, through: sequence, limit: 1) }
                ).first
            else {
                throw WardenError(code: .notFound, message: "no event \(sequence) in \(store.location)")
            }
            if json { return print(stored.event.json.serialized) }
            let e = stored.event
            print("seq       \(e.sequence)")
            print("time      \(AuditFormatting.time(e.draft.timeNanoseconds))")
            print("run       \(e.draft.run ?? "-")")
            print("kind      \(e.draft.kind)")
            print("actor     \(e.draft.actor)")
            print("subject   \(e.draft.subject)")
            print("decision  \(e.draft.decision ?? "-")")
            print("details   \(stored.canonicalDetails)")
            print("prev_hash \(e.previousHash)")
            print("hash      \(e.hash)")
        }
    }

    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record an event by hand (an operator's note, an external action) and print its sequence number.",
            discussion: """
                The event is durable when the sequence number is printed. --repeat records that many copies, \
                from --writers concurrent tasks, printing each number as its commit returns.

                Example: warden audit record --kind note --actor alice --subject run/9a43 --details '{"why": "manual stop"}'
                """)
        @OptionGroup var options: AuditOptions
        @Option(help: "What happened (e.g. note, approval.granted).")
        var kind: String
        @Option(help: "Who did it.")
        var actor: String = NSUserName()
        @Option(help: "What it was done to.")
        var subject: String = ""
        @Option(name: .customLong("run"), help: "The run it concerns.")
        var runID: String?
        @Option(help: "A decision (allow, deny, ask).")
        var decision: String?
        @Option(help: "Details as a JSON object (integers within ±2^53, or strings).")
        var details: String = "{}"
        @Option(name: .customLong("repeat"), help: "Record this many events.")
        var repetitions = 1
        @Option(help: "Concurrent writers for --repeat (group commit).")
        var writers = 1

        func validate() throws {
            if kind.isEmpty { throw ValidationError("--kind must not be empty") }
            if repetitions < 1 || writers < 1 { throw ValidationError("--repeat and --writers must be at least 1") }
        }

        func run() async throws {
            let parsed: JSONValue
            do {
                parsed = try JSONValue.parse(details)
            } catch {
                throw WardenError.invalidInput("--details: invalid JSON at \(error)")
            }
            let draft = AuditDraft(
                kind: kind, actor: actor, subject: subject, run: runID, decision: decision, details: parsed)
            do {
                _ = try AuditEvent.canonicalDetails(parsed)
            } catch {
                throw WardenError.invalidInput("--details: \(error.message)")
            }
            let (location, stateDirectory, repetitions, writers) = (
                try options.location(), options.stateDirectory, repetitions, writers
            )
            try await auditCall {
                let log = try await AuditLog.open(location: location, stateDirectory: stateDirectory)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for w in 0..<writers {
                        group.addTask {
                            var i = w
                            while i < repetitions {
                                let event = try await log.record(draft)
                                FileHandle.standardOutput.write(Data("\(event.sequence)\n".utf8))
                                i += writers
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                await log.close()
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the whole log (events and checkpoints) as JSON Lines.",
            discussion:
                "Each line is {\"record\": \"event\", …} or {\"record\": \"checkpoint\", …}; `warden audit import` reads it back."
        )
        @OptionGroup var options: AuditOptions
        @Option(help: "Export format (jsonl).")
        var format = "jsonl"
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.")
        var output: String?

        func validate() throws {
            if format != "jsonl" { throw ValidationError("--format \(format) is not supported; use jsonl") }
        }

        func run() async throws {
            try await options.withStore { store in try await export(store) }
        }

        func export(_ store: any AuditStore) async throws {
            let handle: FileHandle
            if let output {
                guard
                    FileManager.default.createFile(
                        atPath: output, contents: nil, attributes: [.posixPermissions: 0o600]),
                    let h = FileHandle(forWritingAtPath: output)
                else { throw WardenError(code: .systemCall, message: "cannot create \(output)") }
                handle = h
            } else {
                handle = FileHandle.standardOutput
            }
            let count = try await auditCall {
                try await AuditOperations.export(store: store) { line in handle.write(Data((line + "\n").utf8)) }
            }
            if output != nil { FileHandle.standardError.write(Data("exported \(count) events\n".utf8)) }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read an export into an empty store, verifying every event and checkpoint first.",
            discussion: "Nothing is written unless the whole file verifies. Exit status 1 names the first bad event.")
        @OptionGroup var options: AuditOptions
        @Argument(help: "A JSON Lines export.")
        var file: String
        @Option(help: "The public key checkpoints must carry (default: the key each checkpoint names).")
        var key: String?

        func run() async throws {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw WardenError(code: .notFound, message: "\(file): cannot be read")
            }
            try await options.withStore { store in try await importFile(text, into: store) }
        }

        func importFile(_ text: String, into store: any AuditStore) async throws {
            let publicKey = try key.map { [options] k in
                try AuditOperations.trustedKey(k, stateDirectory: options.stateDirectory)
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            let report = try await auditCall {
                try await AuditOperations.importLines(lines, into: store, publicKey: publicKey)
            }
            if report.ok {
                print(
                    "imported \(report.eventsChecked) events and \(report.checkpointsChecked) checkpoints into \(store.location)"
                )
            } else {
                Output.error("not imported: event \(report.firstBadSequence ?? 0): \(report.problem ?? "")")
                throw ExitCode(1)
            }
        }
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public key that signs this machine's checkpoints (creating the key pair if needed).")
        @OptionGroup var state: StateOptions

        func run() async throws {
            let directory = state.host.stateDirectory + "/audit"
            do {
                print(try CheckpointSigner.loadOrCreate(directory: directory).publicKeyHex)
            } catch {
                throw error.wardenError
            }
        }
    }
}

enum AuditFormatting {
    static func time(_ ns: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(ns) / 1e9)
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }

    static func line(_ e: AuditEvent, json: Bool) -> String {
        if json { return e.json.serialized }
        let decision = e.draft.decision.map { " [\($0)]" } ?? ""
        return
            "\(e.sequence)  \(time(e.draft.timeNanoseconds))  \(e.draft.run ?? "-")  \(e.draft.kind)\(decision)  \(e.draft.actor)  \(e.draft.subject)  \(e.draft.details.serialized)"
    }
}
