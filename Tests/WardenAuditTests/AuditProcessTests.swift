import Foundation
import Testing
import WardenCore
import WardenTesting

@testable import WardenAudit

/// The log under real processes: writers killed mid-burst, several processes appending at once, and
/// the `warden audit` commands.
struct AuditProcessTests {
    /// Starts `warden audit record` bursts; returns the process and a reader of the sequence numbers it
    /// has acknowledged (each printed only after its commit returned).
    static func startWriter(_ harness: WardenHarness, store: String, count: Int, writers: Int, tag: String) throws -> (
        Process, Pipe
    ) {
        let process = harness.process(
            WardenHarness.binary,
            arguments: [
                "audit", "record", "--store", store, "--kind", "crash.test", "--subject", tag, "--details",
                #"{"payload": "\#(String(repeating: "x", count: 200))"}"#, "--repeat", String(count), "--writers",
                String(writers),
            ])
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        return (process, out)
    }

    /// Runs blocking work (pipe reads, process waits) on its own thread: blocking Swift's cooperative
    /// pool for seconds would starve every other test in the process, including their timeouts.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    /// Reads the acknowledged sequence numbers until the writer's output ends, then waits for it.
    static func finish(_ process: Process, _ pipe: Pipe) async -> [Int64] {
        nonisolated(unsafe) let process = process
        nonisolated(unsafe) let pipe = pipe
        return await offPool {
            let seen = acknowledged(pipe)
            process.waitUntilExit()
            return seen
        }
    }

    static func acknowledged(_ pipe: Pipe) -> [Int64] {
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // Only whole lines: a number cut by the kill was never acknowledged.
        let complete = text.hasSuffix("\n") ? text : String(text[..<(text.lastIndex(of: "\n") ?? text.startIndex)])
        return complete.split(separator: "\n").compactMap { Int64($0) }
    }

    @Test(arguments: StoreKind.allCases)
    func killingWritersMidBurstLosesNothingAcknowledged(kind: StoreKind) async throws {
        let fixture = try AuditFixture(kind)
        let harness = try WardenHarness()
        var acknowledged: [Int64] = []
        for round in 0..<8 {
            let (process, pipe) = try Self.startWriter(
                harness, store: fixture.locationText, count: 1_000_000, writers: 8, tag: "r\(round)")
            try await Task.sleep(nanoseconds: UInt64.random(in: 150_000_000...400_000_000))
            kill(process.processIdentifier, SIGKILL)
            let seen = await Self.finish(process, pipe)
            #expect(process.terminationReason == .uncaughtSignal)
            acknowledged += seen
        }
        #expect(acknowledged.count > 100, "the writers must have committed something before being killed")
        let store = try await AuditStores.open(location: fixture.location, stateDirectory: fixture.stateDirectory)
        let stored = Set(try await store.events(from: 1, through: nil, limit: nil).map(\.event.sequence))
        await store.close()
        let missing = acknowledged.filter { !stored.contains($0) }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.prefix(10))")
        #expect(Set(acknowledged).count == acknowledged.count, "a sequence number was handed out twice")
        // The harness's processes use its own state directory (and key): verify against that key.
        let key = try String(contentsOfFile: harness.stateDirectory + "/audit/signing.pub", encoding: .utf8)
        let report = try await fixture.verify(publicKey: key)
        #expect(report.ok, "\(report.problem ?? "")")
    }

    @Test(arguments: StoreKind.allCases)
    func severalProcessesAppendingAtOnceNeverForkTheChain(kind: StoreKind) async throws {
        let fixture = try AuditFixture(kind)
        let harness = try WardenHarness()
        let writers = try (0..<4).map { i in
            try Self.startWriter(harness, store: fixture.locationText, count: 300, writers: 4, tag: "p\(i)")
        }
        var all: [Int64] = []
        for (process, pipe) in writers {
            all += await Self.finish(process, pipe)
            #expect(process.terminationStatus == 0)
        }
        #expect(all.count == 1200)
        #expect(Set(all) == Set(1...1200))
        let key = try String(contentsOfFile: harness.stateDirectory + "/audit/signing.pub", encoding: .utf8)
        let report = try await fixture.verify(publicKey: key)
        #expect(report.ok, "\(report.problem ?? "")")
        #expect(report.eventsChecked == 1200)
    }

    @Test func verifyCommandNamesTheFirstBadEventAndExitsNonZero() throws {
        let harness = try WardenHarness()
        // Three processes: checkpoints at 10, 20 and 30 (each process signs its tail on close).
        for _ in 0..<3 {
            #expect(try harness.run(["audit", "record", "--kind", "note", "--repeat", "10"]).status == 0)
        }
        let ok = try harness.run(["audit", "verify"])
        #expect(ok.status == 0)
        #expect(ok.standardOutput.hasPrefix("OK: 30 events"))
        let fixtureLike = harness.stateDirectory + "/audit/audit.sqlite"
        let queue = try GRDBTamper(path: fixtureLike)
        try queue.execute("UPDATE audit_events SET actor = 'someone else' WHERE seq = 17")
        let bad = try harness.run(["audit", "verify", "--json"])
        #expect(bad.status == 1)
        #expect(bad.json["firstBadSequence"] as? Int == 17)
        let text = try harness.run(["audit", "verify"])
        #expect(text.standardOutput.hasPrefix("FAILED at event 17: event 17 was modified"))
        // Another machine's key does not verify these checkpoints.
        let other = try harness.run(["audit", "verify", "--key", String(repeating: "ab", count: 32), "--to", "16"])
        #expect(other.status == 1)
        #expect(other.standardOutput.contains("signed by another key"))
    }

    /// `warden run --audit-store` (or `audit_store` in a profile) sends the run's events to that store,
    /// and `warden events` / `warden stop` from another process follow the run there.
    @Test(arguments: StoreKind.allCases)
    func aRunRecordsIntoTheStoreItWasStartedWith(kind: StoreKind) async throws {
        if let reason = HostCapabilities.sandboxMissing { try Test.cancel("cannot sandbox on this machine: \(reason)") }
        let fixture = try AuditFixture(kind)
        let harness = try WardenHarness()
        let profile = harness.root + "/profile.toml"
        try harness.write("audit_store = \"\(fixture.locationText)\"\n", to: profile)
        let (id, stop, events) = try await Self.offPool {
            Result { () throws -> (String, CommandResult, CommandResult) in
                let id = try harness.start(["--profile", profile], command: ["/bin/sleep", "60"])
                return (id, try harness.run(["stop", id, "--grace", "1s"]), try harness.run(["events", id]))
            }
        }.get()
        #expect(stop.status == 0, "\(stop.standardError)")
        #expect(events.standardOutput.contains("started"))
        #expect(events.standardOutput.contains("stopped"))
        let store = try await AuditStores.open(location: fixture.location, stateDirectory: fixture.stateDirectory)
        let recorded = try await store.events(run: id).map(\.event.draft.kind)
        await store.close()
        #expect(
            recorded.contains("started") && recorded.contains("stop.requested") && recorded.contains("stopped"),
            "\(recorded)")
        let verify = try harness.run(["audit", "verify", "--store", fixture.locationText])
        #expect(verify.status == 0, "\(verify.standardOutput)")
        // Nothing of this run went to the default store.
        let local = try harness.run(["audit", "tail", "-n", "100"])
        #expect(!local.standardOutput.contains(id))
    }

    @Test func theSigningKeyIsPrivateAndInvisibleInsideTheSandbox() throws {
        let harness = try WardenHarness()
        let key = try harness.run(["audit", "key"])
        #expect(key.status == 0)
        #expect(key.standardOutput.count == 65)
        var info = stat()
        #expect(stat(harness.stateDirectory + "/audit/signing.key", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        if let reason = HostCapabilities.sandboxMissing { try Test.cancel("cannot sandbox on this machine: \(reason)") }
        let path = harness.stateDirectory + "/audit/signing.key"
        let run = try harness.run([
            "run", "--workspace", harness.workspace, "--", "/bin/sh", "-c",
            "cat \(path) || ls -la \(harness.stateDirectory)/audit",
        ])
        let secret = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!run.standardOutput.contains(secret))
        #expect(!run.standardError.contains(secret))
        #expect(run.status != 0)
    }
}

/// Writes to a SQLite store behind Warden's back (Python's sqlite3), as an attacker with file access would.
struct GRDBTamper {
    let path: String
    init(path: String) throws { self.path = path }
    func execute(_ sql: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()",
            path, sql,
        ]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WardenError(code: .systemCall, message: "sqlite3 tamper failed")
        }
    }
}
