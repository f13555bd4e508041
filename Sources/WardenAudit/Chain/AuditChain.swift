import WardenCore

/// When to sign a checkpoint: after this many events, or when this much time has passed since the last
/// one (checked at each append).
public struct CheckpointPolicy: Sendable {
    public var everyEvents: Int64
    public var everyNanoseconds: Int64

    public init(everyEvents: Int64 = 1000, everySeconds: Double = 10) {
        self.everyEvents = max(1, everyEvents)
        self.everyNanoseconds = Int64(everySeconds * 1e9)
    }
}

/// An event as stored: its fields, the canonical details text, and the hashes.
public struct StoredEvent: Sendable, Equatable {
    public var event: AuditEvent
    public var canonicalDetails: String
}

/// What verification needs of one event: its number, its hashes, and the exact bytes that were hashed.
public struct VerificationRow: Sendable {
    public var sequence: Int64
    public var previousHash: String
    public var hash: String
    public var canonical: [UInt8]

    public init(sequence: Int64, previousHash: String, hash: String, canonical: [UInt8]) {
        self.sequence = sequence
        self.previousHash = previousHash
        self.hash = hash
        self.canonical = canonical
    }

    public init(_ stored: StoredEvent) {
        let e = stored.event
        let text = AuditEvent.canonical(sequence: e.sequence, draft: e.draft, canonicalDetails: stored.canonicalDetails)
        self.init(sequence: e.sequence, previousHash: e.previousHash, hash: e.hash, canonical: Array(text.utf8))
    }
}

/// The end of the chain as a store sees it inside its write transaction.
struct ChainTip: Sendable {
    var sequence: Int64
    var hash: String
    var lastCheckpoint: AuditCheckpoint?
}

enum AuditChain {
    /// Extends the chain by `drafts`, and signs a checkpoint when the policy says so. Pure: the store
    /// writes the result in the same transaction that read `tip`, so no two writers can fork the chain.
    static func extend(
        _ tip: ChainTip, with drafts: [AuditDraft], signer: CheckpointSigner?, policy: CheckpointPolicy,
        now: Int64 = RunEvent.now()
    ) throws(AuditError) -> (events: [StoredEvent], checkpoint: AuditCheckpoint?) {
        var events: [StoredEvent] = []
        events.reserveCapacity(drafts.count)
        var sequence = tip.sequence
        var hash = tip.hash
        for draft in drafts {
            sequence += 1
            let details = try AuditEvent.canonicalDetails(draft.details)
            let canonical = AuditEvent.canonical(sequence: sequence, draft: draft, canonicalDetails: details)
            let next = AuditEvent.chainHash(previous: hash, canonical: canonical)
            events.append(
                StoredEvent(
                    event: AuditEvent(sequence: sequence, draft: draft, previousHash: hash, hash: next),
                    canonicalDetails: details))
            hash = next
        }
        let last = tip.lastCheckpoint
        // Nothing new since the last checkpoint (or nothing at all): nothing to sign.
        guard let signer, sequence > (last?.sequence ?? 0) else { return (events, nil) }
        // The time rule runs from the previous checkpoint; before the first one only the count applies
        // (and `AuditLog.close` signs whatever is left).
        let due =
            sequence - (last?.sequence ?? 0) >= policy.everyEvents
            || (last.map { now - $0.timeNanoseconds >= policy.everyNanoseconds } ?? (policy.everyNanoseconds <= 0))
        guard due else { return (events, nil) }
        let checkpoint = try signer.checkpoint(
            sequence: sequence, hash: hash, previousSignature: last?.signature ?? "", time: now)
        return (events, checkpoint)
    }
}

/// Where events are kept. Implementations serialise appends across processes (a write lock held from
/// reading the chain's tip until commit) and return only once the events are durable.
public protocol AuditStore: Sendable {
    /// Appends in one durable transaction; on error nothing was appended.
    func append(_ drafts: [AuditDraft], signer: CheckpointSigner?, policy: CheckpointPolicy) async throws(AuditError)
        -> (events: [AuditEvent], checkpoint: AuditCheckpoint?)
    /// Events with `from <= seq <= through`, in order, at most `limit`.
    func events(from: Int64, through: Int64?, limit: Int?) async throws(AuditError) -> [StoredEvent]
    /// Like `events(from:through:limit:)` but without decoding `details` (left `.null`; the canonical
    /// text is in `canonicalDetails`): what verification needs, and faster.
    func rawEvents(from: Int64, through: Int64?, limit: Int?) async throws(AuditError) -> [StoredEvent]
    /// Events in order as verification needs them.
    func verificationRows(from: Int64, through: Int64?, limit: Int) async throws(AuditError) -> [VerificationRow]
    /// Reads up to `limit` rows of the benchmark's plain table from `from` on, decoding them like
    /// events; returns how many it read.
    func plainRows(from: Int64, limit: Int) async throws(AuditError) -> Int
    /// Events of one run, in order.
    func events(run: String) async throws(AuditError) -> [StoredEvent]
    func checkpoints() async throws(AuditError) -> [AuditCheckpoint]
    /// The highest sequence number (0 when empty).
    func lastSequence() async throws(AuditError) -> Int64
    /// Writes events and checkpoints exactly as given (for import into an empty store).
    func importRecords(_ events: [StoredEvent], checkpoints: [AuditCheckpoint]) async throws(AuditError)
    /// A plain insert of the same rows without hashing or signing, for the benchmark's baseline.
    func appendPlain(_ drafts: [AuditDraft]) async throws(AuditError)
    func close() async
    /// `sqlite:/path` or `postgres://host/db` (without a password), for messages.
    var location: String { get }
}

extension AuditStore {
    /// The portable path: decode events, then rebuild their canonical text.
    public func verificationRows(from: Int64, through: Int64?, limit: Int) async throws(AuditError) -> [VerificationRow]
    {
        try await rawEvents(from: from, through: through, limit: limit).map(VerificationRow.init)
    }
}

/// Builds canonical event bytes directly from column bytes (the SQLite fast path for verification);
/// the output is byte-for-byte `AuditEvent.canonical`.
enum CanonicalBytes {
    static func appendString(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, 110])
            case 0x0D: out.append(contentsOf: [92, 114])
            case 0x09: out.append(contentsOf: [92, 116])
            case 0x08: out.append(contentsOf: [92, 98])
            case 0x0C: out.append(contentsOf: [92, 102])
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [92, 117, 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A JSON string, or `null` when there is none (a NULL column).
    static func appendStringOrNull(_ bytes: UnsafeBufferPointer<UInt8>?, to out: inout [UInt8]) {
        if let bytes { appendString(bytes, to: &out) } else { appendLiteral("null", to: &out) }
    }

    static func appendLiteral(_ s: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
}
