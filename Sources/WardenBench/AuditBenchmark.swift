import Foundation
import WardenAudit
import WardenCore

/// `warden bench audit`: durable appends (one per commit, and group commit under 16 writers) and
/// verification, each next to the same rows written or read without hashing or signing.
public struct AuditBenchmark: Sendable {
    public struct Row: Sendable, Codable {
        public var store: String
        public var measurement: String
        public var method: String
        public var events: Int
        public var eventsPerSecond: Double
        public var medianMicroseconds: Double?
        public var p99Microseconds: Double?
    }

    public var singleEvents: Int
    public var groupEvents: Int
    public var writers: Int

    public init(singleEvents: Int = 2000, groupEvents: Int = 100_000, writers: Int = 16) {
        self.singleEvents = singleEvents
        self.groupEvents = groupEvents
        self.writers = writers
    }

    static func draft(_ i: Int) -> AuditDraft {
        AuditDraft(
            kind: "tool.call", actor: "gateway", subject: "Tool::\"fs.read\"", run: "9a43bf81369d", decision: "allow",
            details: .object([
                ("path", .string("/workspace/src/file\(i % 100).py")), ("bytes", .number(String(i % 4096))),
            ]))
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    /// Measures one store. `open` returns a fresh, empty store each time it is called.
    public func measure(
        name: String, stateDirectory: String, open: @Sendable () async throws -> any AuditStore,
        progress: @Sendable (String) -> Void
    ) async throws -> [Row] {
        var rows: [Row] = []
        let signer = try CheckpointSigner.loadOrCreate(directory: stateDirectory + "/audit")
        for plain in [false, true] {
            let method = plain ? "plain insert (no hash, no signature)" : "hash chain + checkpoints"
            // One event per durable commit.
            progress("\(name): 1 writer, \(method)")
            let store = try await open()
            let log = AuditLog(
                store: store, signer: signer, headPath: stateDirectory + "/audit/bench-head.json", plain: plain)
            var latencies: [Double] = []
            latencies.reserveCapacity(singleEvents)
            let start = Self.now()
            for i in 0..<singleEvents {
                let t0 = Self.now()
                _ = try await log.record(Self.draft(i))
                latencies.append((Self.now() - t0) * 1e6)
            }
            let elapsed = Self.now() - start
            latencies.sort()
            rows.append(
                Row(
                    store: name, measurement: "durable append, 1 writer, 1 event/commit", method: method,
                    events: singleEvents,
                    eventsPerSecond: Double(singleEvents) / elapsed,
                    medianMicroseconds: Self.percentile(latencies, 0.5),
                    p99Microseconds: Self.percentile(latencies, 0.99)))

            // Group commit under concurrent writers.
            progress("\(name): \(writers) writers, \(method)")
            let perWriter = groupEvents / writers
            let groupStart = Self.now()
            let samples = try await withThrowingTaskGroup(of: [Double].self) { group in
                for w in 0..<writers {
                    group.addTask {
                        var mine: [Double] = []
                        mine.reserveCapacity(perWriter)
                        for i in 0..<perWriter {
                            let t0 = Self.now()
                            _ = try await log.record(Self.draft(w * perWriter + i))
                            mine.append((Self.now() - t0) * 1e6)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: [Double]()) { $0 += $1 }.sorted()
            }
            let groupElapsed = Self.now() - groupStart
            rows.append(
                Row(
                    store: name, measurement: "group commit, \(writers) writers", method: method,
                    events: perWriter * writers,
                    eventsPerSecond: Double(perWriter * writers) / groupElapsed,
                    medianMicroseconds: Self.percentile(samples, 0.5),
                    p99Microseconds: Self.percentile(samples, 0.99)))
            if !plain { try await log.checkpointNow() }

            // Verification of everything written, against reading the same rows.
            let total = try await store.lastSequence()
            progress("\(name): verify \(total) events")
            let verifyStart = Self.now()
            if plain {
                var read = 0
                var next: Int64 = 1
                while true {
                    let page = try await store.plainRows(from: next, limit: 20_000)
                    read += page
                    if page < 20_000 { break }
                    next += Int64(page)
                }
                rows.append(
                    Row(
                        store: name, measurement: "verify (read every row)", method: "read only (no hashing)",
                        events: read,
                        eventsPerSecond: Double(read) / (Self.now() - verifyStart), medianMicroseconds: nil,
                        p99Microseconds: nil))
            } else {
                let report = try await AuditOperations.verify(store: store, publicKey: signer.publicKeyHex, head: nil)
                guard report.ok else {
                    throw AuditError(
                        code: .systemCall, message: "benchmark log does not verify: \(report.problem ?? "")")
                }
                rows.append(
                    Row(
                        store: name, measurement: "verify (read every row)", method: "recompute chain + signatures",
                        events: Int(report.eventsChecked),
                        eventsPerSecond: Double(report.eventsChecked) / (Self.now() - verifyStart),
                        medianMicroseconds: nil, p99Microseconds: nil))
            }
            await store.close()
        }
        return rows
    }
}
