import Foundation
import GRDB
import GRDBSQLite
import WardenCore

/// The embedded store: SQLite in WAL mode with `synchronous = FULL`, so a committed append survives a
/// crash or power loss. Appends run in `BEGIN IMMEDIATE` transactions, which serialise writers across
/// processes sharing the file.
public final class SQLiteAuditStore: AuditStore {
    private let pool: DatabasePool
    public let path: String
    public var location: String { "sqlite:\(path)" }

    static let schema = """
        CREATE TABLE IF NOT EXISTS audit_events (
            seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, run TEXT, kind TEXT NOT NULL, actor TEXT NOT NULL,
            subject TEXT NOT NULL, decision TEXT, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS audit_events_by_run ON audit_events(run, seq);
        CREATE TABLE IF NOT EXISTS audit_checkpoints (
            seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, time_ns INTEGER NOT NULL, prev_signature TEXT NOT NULL,
            signature TEXT NOT NULL, public_key TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS plain_events (
            seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, run TEXT, kind TEXT NOT NULL, actor TEXT NOT NULL,
            subject TEXT NOT NULL, decision TEXT, details TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS plain_events_by_run ON plain_events(run, seq);
        """

    /// Opens (creating if needed) the database at `path`.
    /// - Throws: `AuditError` naming the file and the fix (permissions, a full disk, a corrupted file).
    public init(path: String) throws(AuditError) {
        self.path = path
        var configuration = Configuration()
        // Writers from several processes (the supervisor, `warden stop`) take turns on one write lock.
        // SQLite's own timeout sleeps in growing steps of up to 100 ms, which would land on a stop's
        // latency; retrying every 0.2 ms waits only as long as the other transaction (up to ~30 s).
        configuration.busyMode = .callback { tries in
            usleep(200)
            return tries < 150_000
        }
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw AuditError(
                code: .systemCall,
                message: "cannot create the audit directory \(directory): \(error.localizedDescription)")
        }
        // Two processes creating the database at once can meet SQLITE_BUSY where SQLite does not call the
        // busy handler (switching a new file to WAL); the open is retried then, for up to ~5 s.
        var attempt = 0
        while true {
            do {
                pool = try Self.openPool(path: path, configuration: configuration)
                return
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && attempt < 500 {
                attempt += 1
                usleep(10_000)
            } catch {
                throw Self.describe(error, path: path, action: "open")
            }
        }
    }

    private static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            // Reading the schema first catches a file that is not a database, and spares every process
            // after the first a write transaction (and its sync) just to create what exists.
            let tables = try pool.read { db in
                try Int.fetchOne(
                    db,
                    sql:
                        "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'index') AND name IN ('audit_events', 'audit_checkpoints', 'plain_events', 'audit_events_by_run', 'plain_events_by_run')"
                ) ?? 0
            }
            if tables < 5 {
                try pool.write { db in try db.execute(sql: schema) }
            }
            // GRDB sets `synchronous = NORMAL` on the writer when it enables WAL (after `prepareDatabase`),
            // which syncs only at checkpoints: a commit could be lost on power failure. Every append must
            // be durable before the action it records, so the writer connection goes back to FULL, and
            // that is checked rather than assumed.
            let level = try pool.writeWithoutTransaction { db -> Int in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                return try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? 0
            }
            guard level >= 2 else {
                throw AuditError(
                    code: .systemCall, message: "\(path): SQLite refused synchronous=FULL; events would not be durable")
            }
            return pool
        }
    }

    static func describe(_ error: any Error, path: String, action: String) -> AuditError {
        if let audit = error as? AuditError { return audit }
        if let db = error as? DatabaseError {
            switch db.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return AuditError(
                    code: .invalidInput,
                    message:
                        "the audit database \(path) is corrupted or not a database; move it away and restore it from `warden audit export`, or verify a copy"
                )
            case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN:
                return AuditError(
                    code: .systemCall,
                    message:
                        "cannot \(action) the audit database \(path) for writing (\(db.message ?? "permission denied")); check the state directory's permissions and mount"
                )
            case .SQLITE_FULL:
                return AuditError(
                    code: .systemCall, message: "the disk holding \(path) is full; the event was not recorded")
            case .SQLITE_IOERR:
                return AuditError(
                    code: .systemCall, message: "I/O error on \(path) (\(db.message ?? "")); the event was not recorded"
                )
            default:
                return AuditError(
                    code: .systemCall, message: "audit database \(path): \(db.message ?? "\(db.resultCode)")")
            }
        }
        return AuditError(code: .systemCall, message: "audit database \(path): \(error)")
    }

    static func tip(_ db: Database) throws -> ChainTip {
        let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        let checkpoint = try Row.fetchOne(db, sql: "SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").map(
            checkpoint)
        return ChainTip(
            sequence: last?["seq"] ?? 0, hash: last?["hash"] ?? AuditEvent.genesisHash, lastCheckpoint: checkpoint)
    }

    static func checkpoint(_ row: Row) -> AuditCheckpoint {
        AuditCheckpoint(
            sequence: row["seq"], hash: row["hash"], timeNanoseconds: row["time_ns"],
            previousSignature: row["prev_signature"],
            signature: row["signature"], publicKey: row["public_key"])
    }

    static func insert(_ events: [StoredEvent], checkpoint: AuditCheckpoint?, into db: Database) throws {
        let statement = try db.cachedStatement(
            sql:
                "INSERT INTO audit_events (seq, time_ns, run, kind, actor, subject, decision, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)"
        )
        for stored in events {
            let e = stored.event
            try statement.execute(arguments: [
                e.sequence, e.draft.timeNanoseconds, e.draft.run, e.draft.kind, e.draft.actor, e.draft.subject,
                e.draft.decision, stored.canonicalDetails, e.previousHash, e.hash,
            ])
        }
        if let c = checkpoint { try insert([c], into: db) }
    }

    static func insert(_ checkpoints: [AuditCheckpoint], into db: Database) throws {
        for c in checkpoints {
            try db.execute(
                sql:
                    "INSERT INTO audit_checkpoints (seq, hash, time_ns, prev_signature, signature, public_key) VALUES (?,?,?,?,?,?)",
                arguments: [c.sequence, c.hash, c.timeNanoseconds, c.previousSignature, c.signature, c.publicKey])
        }
    }

    /// One append: read the tip, extend the chain, insert, all under the write lock.
    static func appendTransaction(
        _ db: Database, _ drafts: [AuditDraft], signer: CheckpointSigner?, policy: CheckpointPolicy
    ) throws -> (events: [AuditEvent], checkpoint: AuditCheckpoint?) {
        var result: (events: [AuditEvent], checkpoint: AuditCheckpoint?) = ([], nil)
        try db.inTransaction(.immediate) {
            let extended = try AuditChain.extend(try tip(db), with: drafts, signer: signer, policy: policy)
            try insert(extended.events, checkpoint: extended.checkpoint, into: db)
            result = (extended.events.map(\.event), extended.checkpoint)
            return .commit
        }
        return result
    }

    /// Synchronous append, for callers outside Swift concurrency (the supervisor's event sink).
    public func appendNow(_ drafts: [AuditDraft], signer: CheckpointSigner?, policy: CheckpointPolicy)
        throws(AuditError) -> (events: [AuditEvent], checkpoint: AuditCheckpoint?)
    {
        do {
            return try pool.writeWithoutTransaction { db in
                try Self.appendTransaction(db, drafts, signer: signer, policy: policy)
            }
        } catch let error as AuditError {
            throw error
        } catch {
            throw Self.describe(error, path: path, action: "append to")
        }
    }

    public func append(_ drafts: [AuditDraft], signer: CheckpointSigner?, policy: CheckpointPolicy)
        async throws(AuditError)
        -> (events: [AuditEvent], checkpoint: AuditCheckpoint?)
    {
        do {
            return try await pool.writeWithoutTransaction { db in
                try Self.appendTransaction(db, drafts, signer: signer, policy: policy)
            }
        } catch let error as AuditError {
            throw error
        } catch {
            throw Self.describe(error, path: path, action: "append to")
        }
    }

    /// Columns in the order `stored(_:parse:)` reads them by index (name lookups dominate otherwise).
    static let eventColumns = "seq, time_ns, run, kind, actor, subject, decision, details, prev_hash, hash"

    static func stored(_ row: Row, parse: Bool) -> StoredEvent {
        let details: String = row[7]
        let draft = AuditDraft(
            kind: row[3], actor: row[4], subject: row[5], run: row[2], decision: row[6],
            details: parse ? ((try? JSONValue.parse(details)) ?? .object([])) : .null, timeNanoseconds: row[1])
        return StoredEvent(
            event: AuditEvent(sequence: row[0], draft: draft, previousHash: row[8], hash: row[9]),
            canonicalDetails: details)
    }

    static let rangeCondition = "seq >= ? AND seq <= ? ORDER BY seq LIMIT ?"
    static let runCondition = "run = ? ORDER BY seq"

    /// Events matching `condition`, read with a cursor (straight from the statement; `fetchAll` would
    /// copy every row first). `parse: false` leaves `details` undecoded.
    static func fetchEvents(_ db: Database, _ condition: String, _ arguments: StatementArguments, parse: Bool) throws
        -> [StoredEvent]
    {
        let cursor = try Row.fetchCursor(
            db, sql: "SELECT \(eventColumns) FROM audit_events WHERE \(condition)", arguments: arguments)
        var out: [StoredEvent] = []
        while let row = try cursor.next() { out.append(stored(row, parse: parse)) }
        return out
    }

    public func events(from: Int64, through: Int64?, limit: Int?) async throws(AuditError) -> [StoredEvent] {
        do {
            return try await pool.read { db in
                try Self.fetchEvents(db, Self.rangeCondition, [from, through ?? Int64.max, limit ?? -1], parse: true)
            }
        } catch {
            throw Self.describe(error, path: path, action: "read")
        }
    }

    public func rawEvents(from: Int64, through: Int64?, limit: Int?) async throws(AuditError) -> [StoredEvent] {
        do {
            return try await pool.read { db in
                try Self.fetchEvents(db, Self.rangeCondition, [from, through ?? Int64.max, limit ?? -1], parse: false)
            }
        } catch {
            throw Self.describe(error, path: path, action: "read")
        }
    }

    /// Verification rows straight from SQLite's column buffers: no Swift strings for the fields, the
    /// canonical bytes written as they are read.
    public func verificationRows(from: Int64, through: Int64?, limit: Int) async throws(AuditError) -> [VerificationRow]
    {
        do {
            return try await pool.read { db in
                let statement = try db.makeStatement(
                    sql:
                        "SELECT seq, time_ns, run, kind, actor, subject, decision, details, prev_hash, hash FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?"
                )
                try statement.setArguments([from, through ?? Int64.max, limit])
                let s = statement.sqliteStatement
                var rows: [VerificationRow] = []
                rows.reserveCapacity(limit)
                func text(_ column: Int32) -> UnsafeBufferPointer<UInt8>? {
                    guard sqlite3_column_type(s, column) != SQLITE_NULL, let p = sqlite3_column_text(s, column) else {
                        return nil
                    }
                    return UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, column)))
                }
                let empty = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
                while true {
                    let rc = sqlite3_step(s)
                    if rc == SQLITE_DONE { break }
                    guard rc == SQLITE_ROW else { throw DatabaseError(resultCode: ResultCode(rawValue: rc)) }
                    let seq = sqlite3_column_int64(s, 0)
                    var out: [UInt8] = []
                    out.reserveCapacity(256 + Int(sqlite3_column_bytes(s, 7)))
                    CanonicalBytes.appendLiteral("{\"actor\":", to: &out)
                    CanonicalBytes.appendString(text(4) ?? empty, to: &out)
                    CanonicalBytes.appendLiteral(",\"decision\":", to: &out)
                    CanonicalBytes.appendStringOrNull(text(6), to: &out)
                    CanonicalBytes.appendLiteral(",\"details\":", to: &out)
                    out.append(contentsOf: text(7) ?? empty)
                    CanonicalBytes.appendLiteral(",\"kind\":", to: &out)
                    CanonicalBytes.appendString(text(3) ?? empty, to: &out)
                    CanonicalBytes.appendLiteral(",\"run\":", to: &out)
                    CanonicalBytes.appendStringOrNull(text(2), to: &out)
                    CanonicalBytes.appendLiteral(",\"seq\":", to: &out)
                    out.append(contentsOf: String(seq).utf8)
                    CanonicalBytes.appendLiteral(",\"subject\":", to: &out)
                    CanonicalBytes.appendString(text(5) ?? empty, to: &out)
                    CanonicalBytes.appendLiteral(",\"time\":\"", to: &out)
                    out.append(contentsOf: AuditTime.rfc3339(sqlite3_column_int64(s, 1)).utf8)
                    CanonicalBytes.appendLiteral("\"}", to: &out)
                    rows.append(
                        VerificationRow(
                            sequence: seq, previousHash: String(decoding: text(8) ?? empty, as: UTF8.self),
                            hash: String(decoding: text(9) ?? empty, as: UTF8.self), canonical: out))
                }
                return rows
            }
        } catch {
            throw Self.describe(error, path: path, action: "read")
        }
    }

    public func plainRows(from: Int64, limit: Int) async throws(AuditError) -> Int {
        do {
            return try await pool.read { db in
                let cursor = try Row.fetchCursor(
                    db,
                    sql:
                        "SELECT seq, time_ns, run, kind, actor, subject, decision, details FROM plain_events WHERE seq >= ? ORDER BY seq LIMIT ?",
                    arguments: [from, limit])
                var out: [AuditDraft] = []
                out.reserveCapacity(limit)
                while let row = try cursor.next() {
                    out.append(
                        AuditDraft(
                            kind: row[3], actor: row[4], subject: row[5], run: row[2], decision: row[6],
                            details: .string(row[7]),
                            timeNanoseconds: row[1]))
                }
                return out.count
            }
        } catch {
            throw Self.describe(error, path: path, action: "read")
        }
    }

    public func events(run: String) async throws(AuditError) -> [StoredEvent] {
        do {
            return try await pool.read { db in try Self.fetchEvents(db, Self.runCondition, [run], parse: true) }
        } catch {
            throw Self.describe(error, path: path, action: "read")
        }
    }

    /// Synchronous read of one run's events (for `warden events` and the registry).
    public func eventsNow(run: String) throws(AuditError) -> [StoredEvent] {
        do {
            return try pool.read { db in try Self.fetchEvents(db, Self.runCondition, [run], parse: true) }
        } catch {
            throw Self.describe(error, path: path, action: "read")
        }
    }

    public func checkpoints() async throws(AuditError) -> [AuditCheckpoint] {
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM audit_checkpoints ORDER BY seq").map(Self.checkpoint)
            }
        } catch {
            throw Self.describe(error, path: path, action: "read")
        }
    }

    public func lastSequence() async throws(AuditError) -> Int64 {
        do {
            return try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM audit_events") ?? 0 }
        } catch {
            throw Self.describe(error, path: path, action: "read")
        }
    }

    public func importRecords(_ events: [StoredEvent], checkpoints: [AuditCheckpoint]) async throws(AuditError) {
        do {
            try await pool.write { db in
                try Self.insert(events, checkpoint: nil, into: db)
                try Self.insert(checkpoints, into: db)
            }
        } catch {
            throw Self.describe(error, path: path, action: "import into")
        }
    }

    public func appendPlain(_ drafts: [AuditDraft]) async throws(AuditError) {
        do {
            try await pool.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    var next = (try Int64.fetchOne(db, sql: "SELECT max(seq) FROM plain_events") ?? 0) + 1
                    let statement = try db.cachedStatement(
                        sql:
                            "INSERT INTO plain_events (seq, time_ns, run, kind, actor, subject, decision, details) VALUES (?,?,?,?,?,?,?,?)"
                    )
                    for d in drafts {
                        try statement.execute(arguments: [
                            next, d.timeNanoseconds, d.run, d.kind, d.actor, d.subject, d.decision,
                            d.details.serialized,
                        ])
                        next += 1
                    }
                    return .commit
                }
            }
        } catch {
            throw Self.describe(error, path: path, action: "append to")
        }
    }

    public func close() async {
        try? pool.close()
    }
}
