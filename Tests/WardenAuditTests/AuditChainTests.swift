import Foundation
import Testing
import WardenCore

@testable import WardenAudit

/// The chain and its checks, against both stores.
struct AuditChainTests {
    static func draft(_ i: Int, run: String? = nil) -> AuditDraft {
        AuditDraft(
            kind: "test.event", actor: "writer-\(i % 16)", subject: "item/\(i)", run: run,
            details: .object([("i", .number(String(i))), ("note", .string("ünïcode \"quoted\"\n"))]))
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentAppendsFormOneUnbrokenChain(kind: StoreKind) async throws {
        let fixture = try AuditFixture(kind)
        let log = try await fixture.openLog()
        let events = try await withThrowingTaskGroup(of: [AuditEvent].self) { group in
            for writer in 0..<16 {
                group.addTask {
                    var mine: [AuditEvent] = []
                    for k in 0..<100 { mine.append(try await log.record(Self.draft(writer * 100 + k))) }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        await log.close()
        #expect(events.count == 1600)
        #expect(Set(events.map(\.sequence)) == Set(1...1600))
        let report = try await fixture.verify()
        #expect(report.ok, "\(report.problem ?? "")")
        #expect(report.eventsChecked == 1600)
        #expect(report.checkpointsChecked >= 2)
        #expect(report.unsignedTail == 0)
        // What the writers were told is exactly what is stored.
        let store = try await AuditStores.open(location: fixture.location, stateDirectory: fixture.stateDirectory)
        let stored = try await store.events(from: 1, through: nil, limit: nil)
        await store.close()
        let byHash = Dictionary(uniqueKeysWithValues: stored.map { ($0.event.sequence, $0.event) })
        for e in events { #expect(byHash[e.sequence] == e) }
    }

    enum Tampering: String, CaseIterable, Sendable {
        case modify, delete, insert, reorder, truncateAndRechain, forgeCheckpoint
    }

    static func forged(_ seq: Int64, previous: String) -> (String, String, String) {
        let draft = AuditDraft(
            kind: "test.event", actor: "attacker", subject: "forged", details: .object([]), timeNanoseconds: 1)
        let canonical = AuditEvent.canonical(sequence: seq, draft: draft, canonicalDetails: "{}")
        let hash = AuditEvent.chainHash(previous: previous, canonical: canonical)
        return (
            "(\(seq), 1, NULL, 'test.event', 'attacker', 'forged', NULL, '{}', '\(previous)', '\(hash)')", hash,
            canonical
        )
    }

    @Test(arguments: StoreKind.allCases, Tampering.allCases)
    func tamperingIsFoundAtTheRightPlace(kind: StoreKind, tampering: Tampering) async throws {
        let fixture = try AuditFixture(kind)
        let log = try await fixture.openLog(policy: CheckpointPolicy(everyEvents: 10, everySeconds: 3600))
        for i in 1...100 { try await log.record(Self.draft(i)) }
        await log.close()
        let untouched = try await fixture.verify()
        try #require(untouched.ok, "an untouched log must verify: \(untouched.problem ?? "")")
        #expect(untouched.checkpointsChecked == 10)

        let store = try await AuditStores.open(location: fixture.location, stateDirectory: fixture.stateDirectory)
        let original = try await store.events(from: 1, through: nil, limit: nil).map(\.event)
        await store.close()
        let columns = "seq, time_ns, run, kind, actor, subject, decision, details, prev_hash, hash"
        var expectedFirstBad: Int64
        switch tampering {
        case .modify:
            try fixture.tamper("UPDATE audit_events SET subject = 'nothing to see' WHERE seq = 42")
            expectedFirstBad = 42
        case .delete:
            try fixture.tamper("DELETE FROM audit_events WHERE seq = 42")
            expectedFirstBad = 42
        case .insert:
            // Make room at 42 and insert an event whose own hash is right.
            try fixture.tamper("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 42")
            try fixture.tamper("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1042")
            let (row, _, _) = Self.forged(42, previous: original[40].hash)
            try fixture.tamper("INSERT INTO audit_events (\(columns)) VALUES \(row)")
            expectedFirstBad = 42
        case .reorder:
            // Swap the contents of events 42 and 43, keeping their sequence numbers.
            try fixture.tamper("UPDATE audit_events SET seq = -42 WHERE seq = 42")
            try fixture.tamper("UPDATE audit_events SET seq = 42 WHERE seq = 43")
            try fixture.tamper("UPDATE audit_events SET seq = 43 WHERE seq = -42")
            expectedFirstBad = 42
        case .truncateAndRechain:
            // Cut the tail at 95 (and the checkpoint covering it), then append forged, correctly chained events.
            try fixture.tamper("DELETE FROM audit_events WHERE seq >= 95")
            try fixture.tamper("DELETE FROM audit_checkpoints WHERE seq >= 95")
            var previous = original[93].hash
            for seq in Int64(95)...100 {
                let (row, hash, _) = Self.forged(seq, previous: previous)
                try fixture.tamper("INSERT INTO audit_events (\(columns)) VALUES \(row)")
                previous = hash
            }
            // Without the key nothing after the last valid checkpoint (90) can be trusted.
            expectedFirstBad = 91
        case .forgeCheckpoint:
            try fixture.tamper(
                "UPDATE audit_checkpoints SET signature = '\(String(repeating: "ab", count: 64))' WHERE seq = 50")
            expectedFirstBad = 41
        }
        let report = try await fixture.verify()
        #expect(!report.ok)
        #expect(report.firstBadSequence == expectedFirstBad, "\(report.problem ?? "")")
        #expect(report.problem?.isEmpty == false)
    }

    @Test(arguments: StoreKind.allCases)
    func exportImportRoundTripsAndRefusesATamperedExport(kind: StoreKind) async throws {
        let fixture = try AuditFixture(kind)
        let log = try await fixture.openLog(policy: CheckpointPolicy(everyEvents: 7, everySeconds: 3600))
        for i in 1...50 { try await log.record(Self.draft(i, run: "r\(i % 3)")) }
        await log.close()
        let store = try await AuditStores.open(location: fixture.location, stateDirectory: fixture.stateDirectory)
        var lines: [String] = []
        let count = try await AuditOperations.export(store: store) { lines.append($0) }
        await store.close()
        #expect(count == 50)

        let copy = try AuditFixture(.sqlite)
        let target = try await AuditStores.open(location: copy.location, stateDirectory: copy.stateDirectory)
        let key = try AuditOperations.trustedKey(nil, stateDirectory: fixture.stateDirectory)
        let imported = try await AuditOperations.importLines(lines.map { Substring($0) }, into: target, publicKey: key)
        #expect(imported.ok)
        #expect(try await target.lastSequence() == 50)
        #expect(try await target.events(run: "r1").count == 17)
        await target.close()

        // One changed character in one event: nothing is imported, and the place is named.
        let other = try AuditFixture(.sqlite)
        let empty = try await AuditStores.open(location: other.location, stateDirectory: other.stateDirectory)
        var tampered = lines
        let index = try #require(tampered.firstIndex { $0.contains("\"seq\":23,") })
        tampered[index] = tampered[index].replacingOccurrences(of: "item/23", with: "item/24")
        let refused = try await AuditOperations.importLines(tampered.map { Substring($0) }, into: empty, publicKey: key)
        #expect(!refused.ok)
        #expect(refused.firstBadSequence == 23)
        #expect(try await empty.lastSequence() == 0)
        await empty.close()
    }

    @Test func canonicalEncodingMatchesAnIndependentImplementation() throws {
        // Python's json module with sorted keys and no whitespace is RFC 8785 for these values
        // (strings, integers, BMP keys); the hash of the chain is then recomputed independently.
        let draft = AuditDraft(
            kind: "policy.decision", actor: "gateway", subject: "Tool::\"fs.write\"", run: "9a43bf81369d",
            decision: "ask",
            details: .object([
                ("zeta", .number("-9007199254740991")),
                ("alpha", .array([.bool(true), .null, .string("\u{1}\u{7f}\t€")])),
                ("Émile", .object([("b", .number("2")), ("a", .string("x"))])),
            ]), timeNanoseconds: 1_764_374_400_123_456_789)
        let canonical = try AuditEvent.canonical(sequence: 7, draft: draft)
        let hash = AuditEvent.chainHash(previous: AuditEvent.genesisHash, canonical: canonical)
        let script = """
            import hashlib, json
            event = {"actor": "gateway", "decision": "ask", "kind": "policy.decision", "run": "9a43bf81369d", "seq": 7,
                     "subject": 'Tool::"fs.write"', "time": "2025-11-29T00:00:00.123456789Z",
                     "details": {"zeta": -9007199254740991, "alpha": [True, None, "\\u0001\\u007f\\t€"], "Émile": {"b": 2, "a": "x"}}}
            text = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            print(text)
            print(hashlib.sha256(bytes(32) + text.encode()).hexdigest())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = output.split(separator: "\n").map(String.init)
        try #require(lines.count == 2)
        #expect(canonical == lines[0])
        #expect(hash == lines[1])
    }

    @Test func numbersWithoutAnExactCanonicalFormAreRefused() {
        for bad in ["1.5", "9007199254740992", "1e3"] {
            #expect(throws: AuditError.self) {
                _ = try AuditEvent.canonicalDetails(.object([("n", .number(bad))]))
            }
        }
    }
}
