import Foundation
import WardenCore

/// The result of checking a log: everything that could be checked, and the first place it fails.
public struct AuditVerification: Sendable, Codable {
    public var ok: Bool
    public var eventsChecked: Int64
    public var checkpointsChecked: Int
    /// The first sequence number that cannot be trusted, when the log does not verify.
    public var firstBadSequence: Int64?
    public var problem: String?
    /// Events after the last signed checkpoint: their integrity rests on the hash chain alone.
    public var unsignedTail: Int64
    public var lastSequence: Int64
}

/// Streams events in order and checks the chain, the checkpoints and the signed head.
///
/// Finds modified events (hash does not match contents), deleted ones (a gap, or a link to an earlier
/// event), inserted ones (the next event links past them), reordered ones, checkpoints with bad
/// signatures or that disagree with the chain, and a tail that was truncated or re-chained after the
/// last signed checkpoint (checkpoints beyond the end, or the head anchor no longer matching).
public struct AuditVerifier {
    let publicKeyHex: String?
    var checkpoints: [Int64: AuditCheckpoint] = [:]
    var orderedCheckpoints: [AuditCheckpoint]
    var head: AuditCheckpoint?

    var expected: Int64
    var previousHash: String?
    var previousPreviousHash: String?
    var lastGoodCheckpoint: AuditCheckpoint?
    var checked: Int64 = 0
    var checkpointsChecked = 0
    var lastSequence: Int64 = 0
    var failure: (Int64, String)?
    let through: Int64?

    /// - Parameters:
    ///   - publicKeyHex: the key checkpoints must be signed with; nil checks signatures against the key
    ///     each checkpoint names (weaker: proves only internal consistency).
    ///   - from: first sequence number; when above 1, the chain is anchored at that event's stored hash.
    ///   - head: the last checkpoint this machine signed (the head anchor), if any.
    public init(
        checkpoints: [AuditCheckpoint], publicKeyHex: String?, from: Int64 = 1, through: Int64? = nil,
        head: AuditCheckpoint? = nil
    ) {
        self.publicKeyHex = publicKeyHex
        self.orderedCheckpoints = checkpoints.sorted { $0.sequence < $1.sequence }
        for c in checkpoints { self.checkpoints[c.sequence] = c }
        self.expected = max(1, from)
        self.previousHash = from <= 1 ? AuditEvent.genesisHash : nil
        self.head = head
        self.through = through
    }

    mutating func fail(_ sequence: Int64, _ message: String) {
        if failure == nil { failure = (sequence, message) }
    }

    /// Checks the next events in order; stop feeding once `failed` is true.
    public mutating func consume(_ events: [StoredEvent]) {
        consume(rows: events.map(VerificationRow.init))
    }

    public mutating func consume(rows events: [VerificationRow]) {
        // Each event's own hash depends only on its stored fields and stored previous hash, so those
        // are computed in parallel; the links between events are then checked in order.
        let matches = Self.hashesMatch(events)
        for (index, e) in events.enumerated() where failure == nil {
            if e.sequence > expected {
                fail(
                    expected,
                    "event \(expected)\(e.sequence - 1 > expected ? "…\(e.sequence - 1)" : "") is missing: deleted from the log"
                )
                return
            }
            if e.sequence < expected {
                fail(e.sequence, "event \(e.sequence) appears twice or out of order")
                return
            }
            if let previous = previousHash, e.previousHash != previous {
                if let before = previousPreviousHash, e.previousHash == before {
                    fail(
                        e.sequence - 1,
                        "event \(e.sequence - 1) was inserted: event \(e.sequence) links to the event before it")
                } else {
                    fail(
                        e.sequence,
                        "event \(e.sequence) does not follow event \(e.sequence - 1): the chain is broken (deleted, inserted or reordered events)"
                    )
                }
                return
            }
            // Once an event's stored hash is confirmed, it stands for the computed one.
            let hash = e.hash
            if !matches[index] {
                fail(e.sequence, "event \(e.sequence) was modified: its contents do not match its hash")
                return
            }
            if let c = checkpoints[e.sequence] {
                checkpointsChecked += 1
                if let problem = checkpointProblem(c, chainHash: hash) {
                    fail((lastGoodCheckpoint?.sequence ?? 0) + 1, problem)
                    return
                }
                lastGoodCheckpoint = c
            }
            previousPreviousHash = previousHash
            previousHash = hash
            expected = e.sequence + 1
            lastSequence = e.sequence
            checked += 1
        }
    }

    /// Whether each event's stored hash is `SHA-256(stored previous hash ‖ canonical bytes)`, computed on
    /// every core and compared as bytes (no strings are built).
    static func hashesMatch(_ events: [VerificationRow]) -> [Bool] {
        var out = [Bool](repeating: false, count: events.count)
        let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, events.count / 512))
        out.withUnsafeMutableBufferPointer { buffer in
            // Each chunk writes only its own slice of the buffer.
            nonisolated(unsafe) let target = buffer
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = events.count * chunk / chunks
                let end = events.count * (chunk + 1) / chunks
                for i in start..<end {
                    target[i] = events[i].canonical.withUnsafeBufferPointer {
                        AuditEvent.chainHashMatches(
                            previous: events[i].previousHash, canonicalBytes: $0, expected: events[i].hash)
                    }
                }
            }
        }
        return out
    }

    func checkpointProblem(_ c: AuditCheckpoint, chainHash: String) -> String? {
        if let key = publicKeyHex, c.publicKey != key {
            return "checkpoint \(c.sequence) is signed by another key (\(c.publicKey.prefix(16))…)"
        }
        if !CheckpointSigner.isValid(c, publicKeyHex: publicKeyHex ?? c.publicKey) {
            return "checkpoint \(c.sequence) has a bad signature"
        }
        if c.hash != chainHash {
            return
                "checkpoint \(c.sequence) does not match the chain: events after checkpoint \(lastGoodCheckpoint?.sequence ?? 0) were altered and re-chained"
        }
        if let previous = lastGoodCheckpoint, c.previousSignature != previous.signature {
            return
                "checkpoint \(c.sequence) does not follow checkpoint \(previous.sequence): checkpoints were removed or replaced"
        }
        return nil
    }

    public var failed: Bool { failure != nil }

    /// Final checks (truncation, the head anchor) and the report.
    public mutating func finish() -> AuditVerification {
        if failure == nil {
            let end = lastSequence
            let limit = through ?? Int64.max
            if let beyond = orderedCheckpoints.first(where: { $0.sequence > end && $0.sequence <= limit }) {
                fail(
                    end + 1,
                    "the log ends at event \(end) but checkpoint \(beyond.sequence) covers more: the tail was truncated"
                )
            } else if let head, through == nil {
                if head.sequence > end {
                    fail(
                        end + 1,
                        "the log ends at event \(end) but this machine signed event \(head.sequence): the tail was truncated"
                    )
                } else if let c = checkpoints[head.sequence], c == head {
                    // The head checkpoint is present and was verified in the pass above.
                } else {
                    let good = lastGoodCheckpoint?.sequence ?? 0
                    fail(
                        good + 1,
                        "the signed head (event \(head.sequence)) is not in the log: events after checkpoint \(good) were truncated or re-chained"
                    )
                }
            }
        }
        let tail = lastSequence - (lastGoodCheckpoint?.sequence ?? 0)
        return AuditVerification(
            ok: failure == nil, eventsChecked: checked, checkpointsChecked: checkpointsChecked,
            firstBadSequence: failure?.0, problem: failure?.1, unsignedTail: max(0, tail), lastSequence: lastSequence)
    }
}
