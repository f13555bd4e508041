import Foundation
import Testing
import WardenCore
import WardenTesting

@testable import WardenAudit

/// When the log cannot record, the caller learns it and the action does not happen.
struct AuditBadInputTests {
    /// A small tmpfs for a state directory we can fill or make read-only (root only).
    final class ScratchMount {
        let path: String
        init(sizeKiB: Int) throws {
            path = "/var/tmp/warden-tests/mnt-\(UUID().uuidString.prefix(8).lowercased())"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            guard getuid() == 0 else { try Test.cancel("mounting a tmpfs needs root") }
            try Self.sh("mount -t tmpfs -o size=\(sizeKiB)k warden-test \(path)")
        }
        deinit {
            _ = try? Self.sh("umount -l \(path)")
            try? FileManager.default.removeItem(atPath: path)
        }
        @discardableResult
        static func sh(_ command: String) throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw WardenError(code: .systemCall, message: "failed: \(command)") }
            return p.terminationStatus
        }
    }

    actor Flag {
        var ran = false
        var count = 0
        func set() {
            ran = true
            count += 1
        }
    }

    @Test func anUnreachableServerIsAClearErrorAndNothingRuns() async throws {
        let error = await #expect(throws: AuditError.self) {
            _ = try await AuditStores.open(
                location: .postgres(url: "postgres://warden@127.0.0.1:1/warden"),
                stateDirectory: "/var/tmp/warden-tests")
        }
        #expect(
            error?.message.hasPrefix("cannot connect to postgres://warden@127.0.0.1:1/warden") == true,
            "\(error?.message ?? "")")
        // The CLI says the same in one line, names the cause, and gives up rather than retrying.
        let harness = try WardenHarness()
        let cli = try harness.run(["audit", "verify", "--store", "postgres://warden@127.0.0.1:1/warden"])
        #expect(cli.status != 0)
        #expect(cli.standardError.hasPrefix("warden: cannot connect to postgres://warden@127.0.0.1:1/warden"))
        #expect(cli.standardError.contains("connection refused"), "\(cli.standardError)")
        #expect(cli.standardError.split(separator: "\n").count == 1, "\(cli.standardError)")
        // Malformed locations are refused by the one parser every flag, key and variable uses…
        for bad in ["postgres://", "mysql://x/y", "", "sqlite:"] {
            #expect(throws: WardenError.self) {
                _ = try AuditStoreLocation(parsing: bad, field: "--store", workingDirectory: "/")
            }
            let refused = try harness.run(["audit", "verify", "--store", bad])
            #expect(refused.status == 2, "\(bad): \(refused.standardError)")
            #expect(refused.standardError.contains("--store"), "\(bad): \(refused.standardError)")
        }
        // … and a well-formed one with a bad option by the store.
        await #expect(throws: AuditError.self) {
            _ = try await AuditStores.open(
                location: .postgres(url: "postgres://h/db?sslmode=sometimes"), stateDirectory: "/var/tmp/warden-tests")
        }
    }

    @Test func aReadOnlyStateDirectoryRefusesAndTheActionDoesNotRun() async throws {
        let mount = try ScratchMount(sizeKiB: 8192)
        let log = try await AuditLog.open(location: .stateDirectory, stateDirectory: mount.path)
        try await log.record(AuditDraft(kind: "before", actor: "test"))
        await log.close()
        try ScratchMount.sh("mount -o remount,ro \(mount.path)")
        let flag = Flag()
        do {
            let again = try await AuditLog.open(location: .stateDirectory, stateDirectory: mount.path)
            _ = try await again.record(AuditDraft(kind: "after", actor: "test")) { await flag.set() }
            Issue.record("recording on a read-only file system succeeded")
        } catch let error as AuditError {
            #expect(error.message.contains("audit"), "\(error.message)")
        }
        #expect(await flag.ran == false)
        try ScratchMount.sh("mount -o remount,rw \(mount.path)")
        let store = try SQLiteAuditStore(path: mount.path + "/audit/audit.sqlite")
        #expect(try await store.lastSequence() == 1)
        await store.close()
    }

    @Test func aFullDiskRefusesAndNothingAlreadyRecordedIsLost() async throws {
        let mount = try ScratchMount(sizeKiB: 1024)
        let log = try await AuditLog.open(
            location: .stateDirectory, stateDirectory: mount.path, policy: CheckpointPolicy(everyEvents: 5))
        for i in 0..<20 { try await log.record(AuditDraft(kind: "before", actor: "test", subject: "\(i)")) }
        // Fill the file system to the last block.
        _ = try? ScratchMount.sh("dd if=/dev/zero of=\(mount.path)/filler bs=4k 2>/dev/null")
        let flag = Flag()
        let big = JSONValue.object([("blob", .string(String(repeating: "z", count: 256 * 1024)))])
        var failures = 0
        var successes = 0
        for _ in 0..<8 {
            do {
                _ = try await log.record(AuditDraft(kind: "after", actor: "test", details: big)) { await flag.set() }
                successes += 1
            } catch let error as AuditError {
                failures += 1
                #expect(error.message.contains("full") || error.message.contains("I/O"), "\(error.message)")
            }
        }
        #expect(failures > 0, "the disk never filled")
        // Exactly the recorded actions ran; none whose event failed.
        #expect(await flag.count == successes)
        await log.close()
        try FileManager.default.removeItem(atPath: mount.path + "/filler")
        let store = try SQLiteAuditStore(path: mount.path + "/audit/audit.sqlite")
        let kinds = try await store.events(from: 1, through: nil, limit: nil).map(\.event.draft.kind)
        #expect(kinds.filter { $0 == "before" }.count == 20)
        let key = try AuditOperations.trustedKey(nil, stateDirectory: mount.path)
        let report = try await AuditOperations.verify(store: store, publicKey: key, head: nil)
        #expect(report.ok, "\(report.problem ?? "")")
        await store.close()
    }

    @Test func aCorruptedDatabaseIsNamedWithTheFix() throws {
        let harness = try WardenHarness()
        try FileManager.default.createDirectory(
            atPath: harness.stateDirectory + "/audit", withIntermediateDirectories: true)
        try harness.write(
            String(repeating: "not a database ", count: 400), to: harness.stateDirectory + "/audit/audit.sqlite")
        let result = try harness.run(["audit", "verify"])
        #expect(result.status == 2)
        #expect(result.standardError.contains("is corrupted or not a database"), "\(result.standardError)")
        #expect(result.standardError.split(separator: "\n").count == 1)
        // The run's events cannot be recorded either, so the run does not start.
        let run = try harness.run(["run", "--workspace", harness.workspace, "--", "/bin/true"])
        #expect(run.status != 0)
    }
}
