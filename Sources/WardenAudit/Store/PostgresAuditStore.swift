import Foundation
import Logging
import NIOSSL
import PostgresNIO
import WardenCore

/// The fleet store: PostgreSQL, for several nodes sharing one log. Appends run in a transaction that
/// first takes a transaction-scoped advisory lock, so writers on any number of hosts extend the chain
/// one after another; the primary key on `seq` makes a fork impossible even without the lock.
public final class PostgresAuditStore: AuditStore {
    private let session: Session
    public let location: String

    /// The advisory lock key (`'warden-audit'` as a 64-bit constant).
    static let lockKey: Int64 = 0x5741_5244_454E_4155

    actor Session {
        let connection: PostgresConnection
        let logger: Logger
        init(connection: PostgresConnection, logger: Logger) {
            self.connection = connection
            self.logger = logger
        }

        func run<T: Sendable>(_ body: (PostgresConnection, Logger) async throws -> T) async throws -> T {
            try await body(connection, logger)
        }
    }

    private init(session: Session, location: String) {
        self.session = session
        self.location = location
    }

    /// Connects to `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require]`.
    public static func connect(url: String) async throws(AuditError) -> PostgresAuditStore {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw AuditError(
                code: .invalidInput, message: "\(url) is not a PostgreSQL URL; use postgres://USER@HOST:PORT/DATABASE")
        }
        let user = components.user ?? "postgres"
        let database = components.path.split(separator: "/").first.map(String.init) ?? user
        let port = components.port ?? 5432
        let shown = "postgres://\(user)@\(host):\(port)/\(database)"
        let sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        var tls: PostgresConnection.Configuration.TLS = .disable
        if sslMode == "require" {
            do {
                tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            } catch {
                throw AuditError(code: .invalidInput, message: "\(shown): cannot set up TLS: \(error)")
            }
        } else if sslMode != "disable" {
            throw AuditError(code: .invalidInput, message: "\(shown): sslmode must be disable or require")
        }
        var quiet = Logger(label: "warden.audit.postgres")
        quiet.logLevel = .critical
        let logger = quiet
        let configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: components.password, database: database, tls: tls)
        let connection: PostgresConnection
        do {
            connection = try await withTimeout(seconds: 10, shown) {
                try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            }
        } catch let error as AuditError {
            throw error
        } catch {
            throw AuditError(
                code: .systemCall,
                message:
                    "cannot connect to \(shown): \(Self.reason(error)); check that PostgreSQL is running and accepts this user"
            )
        }
        let store = PostgresAuditStore(session: Session(connection: connection, logger: logger), location: shown)
        try await store.migrate()
        return store
    }

    static func withTimeout<T: Sendable>(
        seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T
    )
        async throws -> T
    {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                throw AuditError(
                    code: .systemCall, message: "cannot connect to \(what): no answer within \(Int(seconds)) s")
            }
            guard let first = try await group.next() else { throw CancellationError() }
            group.cancelAll()
            return first
        }
    }

    static func reason(_ error: any Error) -> String {
        var text = "\(error)"
        if let psql = error as? PSQLError {
            if let message = psql.serverInfo?[.message] { return message }
            text = psql.underlying.map { "\($0)" } ?? "\(psql.code)"
        }
        // NIO's connection errors are long and nested; the cause is what an operator needs.
        for (needle, short) in [
            ("Connection refused", "connection refused"), ("No route to host", "no route to host"),
            ("Network is unreachable", "network unreachable"), ("timed out", "connection timed out"),
            ("Name or service not known", "unknown host"), ("UnknownHost", "unknown host"),
        ] where text.contains(needle) {
            return short
        }
        return text
    }

    func fail(_ error: any Error, _ action: String) -> AuditError {
        if let audit = error as? AuditError { return audit }
        return AuditError(code: .systemCall, message: "\(location): cannot \(action): \(Self.reason(error))")
    }

    func migrate() async throws(AuditError) {
        do {
            try await session.run { c, log in
                try await c.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: log)
                defer { Task { try? await c.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: log) } }
                for statement in [
                    "CREATE TABLE IF NOT EXISTS audit_events (seq BIGINT PRIMARY KEY, time_ns BIGINT NOT NULL, run TEXT, kind TEXT NOT NULL, actor TEXT NOT NULL, subject TEXT NOT NULL, decision TEXT, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
                    "CREATE INDEX IF NOT EXISTS audit_events_by_run ON audit_events(run, seq)",
                    "CREATE TABLE IF NOT EXISTS audit_checkpoints (seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, time_ns BIGINT NOT NULL, prev_signature TEXT NOT NULL, signature TEXT NOT NULL, public_key TEXT NOT NULL)",
                    "CREATE TABLE IF NOT EXISTS plain_events (seq BIGINT PRIMARY KEY, time_ns BIGINT NOT NULL, run TEXT, kind TEXT NOT NULL, actor TEXT NOT NULL, subject TEXT NOT NULL, decision TEXT, details TEXT NOT NULL)",
                    "CREATE INDEX IF NOT EXISTS plain_events_by_run ON plain_events(run, seq)",
                ] {
                    try await c.query(PostgresQuery(unsafeSQL: statement), logger: log)
                }
            }
        } catch {
            throw fail(error, "create the audit tables")
        }
    }

    typealias EventRow = (Int64, Int64, String?, String, String, String, String?, String, String, String)

    static func stored(_ r: EventRow, parse: Bool) -> StoredEvent {
        let draft = AuditDraft(
            kind: r.3, actor: r.4, subject: r.5, run: r.2, decision: r.6,
            details: parse ? ((try? JSONValue.parse(r.7)) ?? .object([])) : .null, timeNanoseconds: r.1)
        return StoredEvent(
            event: AuditEvent(sequence: r.0, draft: draft, previousHash: r.8, hash: r.9), canonicalDetails: r.7)
    }

    static let eventColumns = "seq, time_ns, run, kind, actor, subject, decision, details, prev_hash, hash"

    static func insert(_ events: [StoredEvent], on c: PostgresConnection, logger: Logger) async throws {
        for chunk in stride(from: 0, to: events.count, by: 1000) {
            let slice = events[chunk..<min(events.count, chunk + 1000)]
            var binds = PostgresBindings(capacity: slice.count * 10)
            var rows: [String] = []
            for (i, stored) in slice.enumerated() {
                let e = stored.event
                binds.append(e.sequence)
                binds.append(e.draft.timeNanoseconds)
                binds.append(e.draft.run)
                binds.append(e.draft.kind)
                binds.append(e.draft.actor)
                binds.append(e.draft.subject)
                binds.append(e.draft.decision)
                binds.append(stored.canonicalDetails)
                binds.append(e.previousHash)
                binds.append(e.hash)
                let base = i * 10
                rows.append("(" + (1...10).map { "$\(base + $0)" }.joined(separator: ",") + ")")
            }
            try await c.query(
                PostgresQuery(
                    unsafeSQL: "INSERT INTO audit_events (\(eventColumns)) VALUES " + rows.joined(separator: ","),
                    binds: binds),
                logger: logger)
        }
    }

    static func insert(_ checkpoints: [AuditCheckpoint], on c: PostgresConnection, logger: Logger) async throws {
        for k in checkpoints {
            try await c.query(
                "INSERT INTO audit_checkpoints (seq, hash, time_ns, prev_signature, signature, public_key) VALUES (\(k.sequence), \(k.hash), \(k.timeNanoseconds), \(k.previousSignature), \(k.signature), \(k.publicKey))",
                logger: logger)
        }
    }

    static func lastCheckpoint(on c: PostgresConnection, logger: Logger) async throws -> AuditCheckpoint? {
        let rows = try await c.query(
            "SELECT seq, hash, time_ns, prev_signature, signature, public_key FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            logger: logger)
        for try await r in rows.decode((Int64, String, Int64, String, String, String).self) {
            return AuditCheckpoint(
                sequence: r.0, hash: r.1, timeNanoseconds: r.2, previousSignature: r.3, signature: r.4, publicKey: r.5)
        }
        return nil
    }

    static func inTransaction<T: Sendable>(_ c: PostgresConnection, _ logger: Logger, _ body: () async throws -> T)
        async throws -> T
    {
        try await c.query("BEGIN", logger: logger)
        do {
            let result = try await body()
            try await c.query("COMMIT", logger: logger)
            return result
        } catch {
            _ = try? await c.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    public func append(_ drafts: [AuditDraft], signer: CheckpointSigner?, policy: CheckpointPolicy)
        async throws(AuditError)
        -> (events: [AuditEvent], checkpoint: AuditCheckpoint?)
    {
        do {
            return try await session.run { c, log in
                try await Self.inTransaction(c, log) {
                    try await c.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: log)
                    var tip = ChainTip(sequence: 0, hash: AuditEvent.genesisHash, lastCheckpoint: nil)
                    let last = try await c.query(
                        "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", logger: log)
                    for try await (seq, hash) in last.decode((Int64, String).self) {
                        tip.sequence = seq; tip.hash = hash
                    }
                    tip.lastCheckpoint = try await Self.lastCheckpoint(on: c, logger: log)
                    let extended = try AuditChain.extend(tip, with: drafts, signer: signer, policy: policy)
                    try await Self.insert(extended.events, on: c, logger: log)
                    if let k = extended.checkpoint { try await Self.insert([k], on: c, logger: log) }
                    return (extended.events.map(\.event), extended.checkpoint)
                }
            }
        } catch {
            throw fail(error, "append")
        }
    }

    /// Events matching `condition` (with `$n` placeholders for `binds`); `parse: false` leaves
    /// `details` undecoded.
    func fetchEvents(where condition: String, _ binds: PostgresBindings, parse: Bool) async throws(AuditError)
        -> [StoredEvent]
    {
        do {
            return try await session.run { c, log in
                let rows = try await c.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT \(Self.eventColumns) FROM audit_events WHERE \(condition)", binds: binds),
                    logger: log)
                var out: [StoredEvent] = []
                for try await r in rows.decode(EventRow.self) { out.append(Self.stored(r, parse: parse)) }
                return out
            }
        } catch {
            throw fail(error, "read")
        }
    }

    static func rangeBinds(_ from: Int64, _ through: Int64?, _ limit: Int?) -> PostgresBindings {
        var binds = PostgresBindings(capacity: 3)
        binds.append(from)
        binds.append(through ?? Int64.max)
        binds.append(Int64(limit ?? Int(Int32.max)))
        return binds
    }

    static let rangeCondition = "seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3"

    public func events(from: Int64, through: Int64?, limit: Int?) async throws(AuditError) -> [StoredEvent] {
        try await fetchEvents(where: Self.rangeCondition, Self.rangeBinds(from, through, limit), parse: true)
    }

    public func rawEvents(from: Int64, through: Int64?, limit: Int?) async throws(AuditError) -> [StoredEvent] {
        try await fetchEvents(where: Self.rangeCondition, Self.rangeBinds(from, through, limit), parse: false)
    }

    public func plainRows(from: Int64, limit: Int) async throws(AuditError) -> Int {
        do {
            return try await session.run { c, log in
                let rows = try await c.query(
                    "SELECT seq, time_ns, run, kind, actor, subject, decision, details FROM plain_events WHERE seq >= \(from) ORDER BY seq LIMIT \(Int64(limit))",
                    logger: log)
                var count = 0
                for try await r in rows.decode((Int64, Int64, String?, String, String, String, String?, String).self) {
                    _ = AuditDraft(
                        kind: r.3, actor: r.4, subject: r.5, run: r.2, decision: r.6, details: .string(r.7),
                        timeNanoseconds: r.1)
                    count += 1
                }
                return count
            }
        } catch {
            throw fail(error, "read")
        }
    }

    public func events(run: String) async throws(AuditError) -> [StoredEvent] {
        var binds = PostgresBindings(capacity: 1)
        binds.append(run)
        return try await fetchEvents(where: "run = $1 ORDER BY seq", binds, parse: true)
    }

    public func checkpoints() async throws(AuditError) -> [AuditCheckpoint] {
        do {
            return try await session.run { c, log in
                let rows = try await c.query(
                    "SELECT seq, hash, time_ns, prev_signature, signature, public_key FROM audit_checkpoints ORDER BY seq",
                    logger: log)
                var out: [AuditCheckpoint] = []
                for try await r in rows.decode((Int64, String, Int64, String, String, String).self) {
                    out.append(
                        AuditCheckpoint(
                            sequence: r.0, hash: r.1, timeNanoseconds: r.2, previousSignature: r.3, signature: r.4,
                            publicKey: r.5))
                }
                return out
            }
        } catch {
            throw fail(error, "read")
        }
    }

    public func lastSequence() async throws(AuditError) -> Int64 {
        do {
            return try await session.run { c, log in
                let rows = try await c.query("SELECT coalesce(max(seq), 0)::BIGINT FROM audit_events", logger: log)
                for try await n in rows.decode(Int64.self) { return n }
                return 0
            }
        } catch {
            throw fail(error, "read")
        }
    }

    public func importRecords(_ events: [StoredEvent], checkpoints: [AuditCheckpoint]) async throws(AuditError) {
        do {
            try await session.run { c, log in
                try await Self.inTransaction(c, log) {
                    try await Self.insert(events, on: c, logger: log)
                    try await Self.insert(checkpoints, on: c, logger: log)
                }
            }
        } catch {
            throw fail(error, "import")
        }
    }

    public func appendPlain(_ drafts: [AuditDraft]) async throws(AuditError) {
        do {
            try await session.run { c, log in
                try await Self.inTransaction(c, log) {
                    try await c.query("SELECT pg_advisory_xact_lock(\(Self.lockKey + 1))", logger: log)
                    var next: Int64 = 1
                    let rows = try await c.query("SELECT coalesce(max(seq), 0)::BIGINT FROM plain_events", logger: log)
                    for try await n in rows.decode(Int64.self) { next = n + 1 }
                    var binds = PostgresBindings(capacity: drafts.count * 8)
                    var values: [String] = []
                    for (i, d) in drafts.enumerated() {
                        binds.append(next + Int64(i))
                        binds.append(d.timeNanoseconds)
                        binds.append(d.run)
                        binds.append(d.kind)
                        binds.append(d.actor)
                        binds.append(d.subject)
                        binds.append(d.decision)
                        binds.append(d.details.serialized)
                        values.append("(" + (1...8).map { "$\(i * 8 + $0)" }.joined(separator: ",") + ")")
                    }
                    if !drafts.isEmpty {
                        try await c.query(
                            PostgresQuery(
                                unsafeSQL:
                                    "INSERT INTO plain_events (seq, time_ns, run, kind, actor, subject, decision, details) VALUES "
                                    + values.joined(separator: ","), binds: binds), logger: log)
                    }
                }
            }
        } catch {
            throw fail(error, "append")
        }
    }

    /// Drops Warden's tables and recreates them empty. Only for a scratch database (the benchmark).
    public func resetForBenchmark() async throws(AuditError) {
        do {
            try await session.run { c, log in
                try await c.query("DROP TABLE IF EXISTS audit_events, audit_checkpoints, plain_events", logger: log)
            }
        } catch {
            throw fail(error, "reset the benchmark tables")
        }
        try await migrate()
    }

    public func close() async {
        try? await session.run { c, _ in try await c.close() }
    }
}
