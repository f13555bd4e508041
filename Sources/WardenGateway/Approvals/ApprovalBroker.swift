import Crypto
import Foundation
import GRDB
import WardenCore

/// A request a door holds for a person's decision (an `ask`), and what became of it.
public struct Approval: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable, CaseIterable {
        /// Waiting for a person; nothing was forwarded.
        case pending
        /// Approved: the door may forward the request it holds, once.
        case approved
        case denied
        /// Nobody decided before the expiry: a denial.
        case expired
        /// The approval was used for the request it was bound to; it cannot be used again.
        case used
    }

    /// Which door holds the request.
    public enum Door: String, Sendable, Codable, CaseIterable {
        case egress, tools, model
    }

    public var id: String
    public var run: RunID
    public var door: Door
    /// One line for a person: "connect pypi.org:443", "call files.delete {path: …}".
    public var summary: String
    /// The exact request, as canonical JSON; the approval is bound to its SHA-256.
    public var request: String
    public var digest: String
    /// Why it was held: the reasons of the policies that said `ask`.
    public var reasons: [String]
    public var createdAtNanoseconds: Int64
    public var expiresAtNanoseconds: Int64
    public var state: State
    /// Who decided: "uid 1000 (alice)".
    public var decidedBy: String?
    public var decidedAtNanoseconds: Int64?
    public var note: String?
    /// Approved with `--remember`: the same request is granted for the rest of the run.
    public var remember: Bool

    enum CodingKeys: String, CodingKey {
        case id, run, door, summary, request, digest, reasons, state, note, remember
        case createdAtNanoseconds = "created_ns"
        case expiresAtNanoseconds = "expires_ns"
        case decidedBy = "decided_by"
        case decidedAtNanoseconds = "decided_ns"
    }
}

/// Who answers a held request, as recorded.
public struct Approver: Sendable, Equatable, CustomStringConvertible {
    public var uid: UInt32
    /// `--as NAME`, or the account name of the uid.
    public var name: String?

    /// How a remote caller was authenticated, when the decision came through `warden serve` (its token's
    /// name and role); recorded instead of the daemon's own uid.
    public var remote: String?

    public init(uid: UInt32, name: String? = nil) {
        self.uid = uid
        self.name = name
    }

    public init(remote: String, uid: UInt32) {
        self.uid = uid
        self.remote = remote
    }

    public var description: String { remote ?? ("uid \(uid)" + (name.map { " (\($0))" } ?? "")) }
}

/// The approvals broker: the one owner of held requests (`<state>/approvals.db`, SQLite in WAL mode,
/// shared by the doors of every run and by `warden approve` from any terminal).
///
/// Its promises, each kept by one SQL statement that checks the state it moves from, so that when
/// several processes answer at once exactly one answer counts:
/// - an approval is bound to the SHA-256 of the canonical request: another request asks again;
/// - it is used once (``use(_:digest:)``); "remember" records a grant for that request in that run;
/// - it expires (silence = deny), and an answer after the expiry or after the run ended is refused
///   with the reason;
/// - the request, the decision (and who made it) and the use are events in the run's log, recorded
///   before the change they describe is committed.
public final class ApprovalBroker: Sendable {
    public let path: String
    private let database: StateDatabase
    private let events: @Sendable (RunID) -> any EventSink
    private let clock: @Sendable () -> Int64

    static let schema = """
        CREATE TABLE IF NOT EXISTS approvals (
            id TEXT PRIMARY KEY, run TEXT NOT NULL, door TEXT NOT NULL, summary TEXT NOT NULL,
            request TEXT NOT NULL, digest TEXT NOT NULL, reasons TEXT NOT NULL,
            created_ns INTEGER NOT NULL, expires_ns INTEGER NOT NULL, state TEXT NOT NULL,
            decided_by TEXT, decided_ns INTEGER, note TEXT, remember INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS approvals_by_run ON approvals(run, created_ns);
        CREATE TABLE IF NOT EXISTS grants (
            run TEXT NOT NULL, digest TEXT NOT NULL, approval TEXT NOT NULL, created_ns INTEGER NOT NULL,
            PRIMARY KEY (run, digest));
        """

    /// Opens (creating if needed) the broker's database.
    ///
    /// - Parameters:
    ///   - events: the event sink of a run (the run's audit store).
    ///   - clock: nanoseconds since the epoch (tests move time).
    public init(
        path: String, events: @escaping @Sendable (RunID) -> any EventSink,
        clock: @escaping @Sendable () -> Int64 = { RunEvent.now() }
    ) throws {
        self.path = path
        self.events = events
        self.clock = clock
        database = try StateDatabase(path: path, label: "approvals", schema: Self.schema)
    }

    /// The SHA-256 (hex) of a canonical request.
    public static func digest(of canonicalRequest: String) -> String {
        SHA256.hash(data: Data(canonicalRequest.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: - The door's side

    /// What a door learns when it asks.
    public enum Hold: Sendable, Equatable {
        /// A remembered grant covers this exact request in this run: forward it (recorded as a use).
        case granted(approvalID: String)
        /// Held for a person; wait with ``wait(for:pollEvery:)``.
        case held(Approval)
    }

    /// Holds `request` for a person, unless a grant of this run covers exactly it.
    public func ask(
        run: RunID, door: Approval.Door, request: JSONValue, summary: String, reasons: [String], timeout: Duration
    ) throws -> Hold {
        let canonical: String
        do {
            canonical = try request.canonicalized(allowingFractions: true)
        } catch {
            throw WardenError.invalidInput("approvals: the request cannot be made canonical: \(error)")
        }
        let digest = Self.digest(of: canonical)
        let now = clock()
        return try write { db in
            if let granted = try String.fetchOne(
                db, sql: "SELECT approval FROM grants WHERE run = ? AND digest = ?", arguments: [run.rawValue, digest])
            {
                try self.record(
                    run, .approvalUsed, subject: granted,
                    ["approval": granted, "digest": digest, "grant": "remembered", "summary": summary])
                return .granted(approvalID: granted)
            }
            let approval = Approval(
                id: Self.newID(), run: run, door: door, summary: summary, request: canonical, digest: digest,
                reasons: reasons, createdAtNanoseconds: now, expiresAtNanoseconds: now + timeout.nanoseconds,
                state: .pending, remember: false)
            try self.record(
                run, .approvalRequested, subject: approval.id,
                [
                    "approval": approval.id, "door": door.rawValue, "summary": summary, "digest": digest,
                    "request": canonical, "reasons": reasons.joined(separator: "\n"),
                    "expires_at_ns": String(approval.expiresAtNanoseconds),
                ])
            try db.execute(
                sql: """
                    INSERT INTO approvals (id, run, door, summary, request, digest, reasons, created_ns, expires_ns, state)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')
                    """,
                arguments: [
                    approval.id, run.rawValue, door.rawValue, summary, canonical, digest,
                    String(decoding: try JSONEncoder().encode(reasons), as: UTF8.self), now,
                    approval.expiresAtNanoseconds,
                ])
            return .held(approval)
        }
    }

    /// A door's whole `ask`: holds the request (or finds a remembered grant), tells `onHeld`, waits for
    /// the answer and uses an approval. Returns nil when the request may go, else why not (`what` names
    /// it in the refusal: "connect pypi.org:443", "the call").
    public func hold(
        run: RunID, door: Approval.Door, request: JSONValue, summary: String, reasons: [String], timeout: Duration,
        what: String, onHeld: (Approval) -> Void = { _ in }
    ) -> String? {
        do {
            switch try ask(run: run, door: door, request: request, summary: summary, reasons: reasons, timeout: timeout)
            {
            case .granted: return nil
            case .held(let approval):
                onHeld(approval)
                let answered = try wait(for: approval.id)
                switch answered.state {
                case .approved:
                    try use(answered.id, digest: answered.digest)
                    return nil
                case .expired: return "nobody approved \(what) within the approval timeout (silence is a denial)"
                default: return "a person denied \(what)" + (answered.decidedBy.map { " (\($0))" } ?? "")
                }
            }
        } catch {
            return "the approval could not be held (\(error)); refused"
        }
    }

    /// Waits until the approval is decided or expires (recording the expiry); returns it then.
    public func wait(for id: String, pollEvery interval: Duration = .milliseconds(50)) throws -> Approval {
        while true {
            let approval = try expireIfDue(id)
            if approval.state != .pending { return approval }
            let remaining = approval.expiresAtNanoseconds - clock()
            let step = min(interval.nanoseconds, max(remaining, 1_000_000))
            usleep(UInt32(clamping: step / 1000))
        }
    }

    /// Uses an approved request, once: `digest` must be the one it was approved for.
    /// - Throws: ``WardenError`` `.conflict` when it is not approved, already used, or for another request.
    public func use(_ id: String, digest: String) throws {
        try write { db in
            let approval = try self.fetch(id, db)
            guard approval.digest == digest else {
                throw WardenError(
                    code: .conflict,
                    message: "approval \(id) was given for another request (digest \(approval.digest.prefix(12))…)")
            }
            guard approval.state == .approved else {
                throw WardenError(
                    code: .conflict,
                    message:
                        "approval \(id) is \(approval.state.rawValue); an approval is used once, and only once approved"
                )
            }
            try self.record(approval.run, .approvalUsed, subject: id, ["approval": id, "digest": digest])
            try db.execute(
                sql: "UPDATE approvals SET state = 'used' WHERE id = ? AND state = 'approved'", arguments: [id])
        }
    }

    // MARK: - The person's side

    /// Approves or denies a pending request; exactly one answer counts.
    ///
    /// - Parameter runIsActive: whether the run still runs (an answer after its end is refused).
    /// - Throws: ``WardenError``: `.notFound` for an unknown id; `.conflict` when it was already decided
    ///   (saying by whom), has expired, or its run has ended.
    @discardableResult
    public func decide(
        _ id: String, approve: Bool, remember: Bool = false, by approver: Approver, note: String? = nil,
        runIsActive: (RunID) -> Bool
    ) throws -> Approval {
        let now = clock()
        let pending = try expireIfDue(id)
        guard pending.state == .pending else { throw Self.alreadyDecided(pending) }
        guard runIsActive(pending.run) else {
            throw WardenError(
                code: .conflict, message: "approval \(id): run \(pending.run) has ended; there is nothing to approve")
        }
        return try write { db in
            // Checked again inside the write lock: another answer may have won since.
            let current = try self.fetch(id, db)
            guard current.state == .pending else { throw Self.alreadyDecided(current) }
            guard now < current.expiresAtNanoseconds else {
                throw WardenError(code: .conflict, message: "approval \(id) expired before the answer; it was denied")
            }
            var details = [
                "approval": id, "decision": approve ? "approved" : "denied", "approver": approver.description,
                "digest": current.digest, "summary": current.summary,
            ]
            if let note { details["note"] = note }
            if approve && remember { details["remember"] = "true" }
            try self.record(current.run, .approvalDecided, actor: .approver, subject: id, details)
            try db.execute(
                sql: """
                    UPDATE approvals SET state = ?, decided_by = ?, decided_ns = ?, note = ?, remember = ?
                    WHERE id = ? AND state = 'pending'
                    """,
                arguments: [
                    approve ? "approved" : "denied", approver.description, now, note, approve && remember, id,
                ])
            if approve && remember {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO grants (run, digest, approval, created_ns) VALUES (?, ?, ?, ?)",
                    arguments: [current.run.rawValue, current.digest, id, now])
            }
            return try self.fetch(id, db)
        }
    }

    /// Held requests, newest first: pending only, or every one.
    public func list(run: RunID? = nil, includeDecided: Bool = false) throws -> [Approval] {
        let now = clock()
        let due = try database.read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM approvals WHERE state = 'pending' AND expires_ns <= ?", arguments: [now])
        }
        for id in due { _ = try expireIfDue(id) }
        return try database.read { db in
            var sql = "SELECT * FROM approvals"
            var conditions: [String] = []
            var arguments: [(any DatabaseValueConvertible)?] = []
            if let run {
                conditions.append("run = ?")
                arguments.append(run.rawValue)
            }
            if !includeDecided { conditions.append("state = 'pending'") }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY created_ns DESC"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map {
                try Self.approval($0)
            }
        }
    }

    /// One approval by id.
    public func approval(_ id: String) throws -> Approval {
        try database.read { db in try self.fetch(id, db) }
    }

    // MARK: - Internals

    private func expireIfDue(_ id: String) throws -> Approval {
        let now = clock()
        let approval = try self.approval(id)
        guard approval.state == .pending, now >= approval.expiresAtNanoseconds else { return approval }
        return try write { db in
            let current = try self.fetch(id, db)
            guard current.state == .pending else { return current }
            try self.record(
                current.run, .approvalExpired, subject: id,
                ["approval": id, "summary": current.summary, "decision": "denied (nobody answered in time)"])
            try db.execute(
                sql: "UPDATE approvals SET state = 'expired' WHERE id = ? AND state = 'pending'", arguments: [id])
            return try self.fetch(id, db)
        }
    }

    /// One write transaction holding the write lock from its start; its event is recorded before the
    /// commit.
    private func write<T>(_ body: (Database) throws -> T) throws -> T { try database.write(body) }

    private func fetch(_ id: String, _ db: Database) throws -> Approval {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM approvals WHERE id = ?", arguments: [id]) else {
            throw WardenError(code: .notFound, message: "no approval '\(id)'; `warden approvals --all` lists them")
        }
        return try Self.approval(row)
    }

    private static func approval(_ row: Row) throws -> Approval {
        guard let run = RunID(row["run"] as String) else {
            throw WardenError(
                code: .systemCall,
                message: "approvals: approval \(row["id"] as String) names no valid run; the store is damaged")
        }
        let reasons = (row["reasons"] as String?).flatMap {
            try? JSONDecoder().decode([String].self, from: Data($0.utf8))
        }
        return Approval(
            id: row["id"], run: run,
            door: Approval.Door(rawValue: row["door"]) ?? .egress, summary: row["summary"], request: row["request"],
            digest: row["digest"], reasons: reasons ?? [], createdAtNanoseconds: row["created_ns"],
            expiresAtNanoseconds: row["expires_ns"], state: Approval.State(rawValue: row["state"]) ?? .denied,
            decidedBy: row["decided_by"], decidedAtNanoseconds: row["decided_ns"], note: row["note"],
            remember: row["remember"])
    }

    private static func alreadyDecided(_ approval: Approval) -> WardenError {
        let how =
            switch approval.state {
            case .expired: "expired unanswered (a denial)"
            case .used: "approved\(approval.decidedBy.map { " by \($0)" } ?? "") and already used"
            default: "already \(approval.state.rawValue)\(approval.decidedBy.map { " by \($0)" } ?? "")"
            }
        return WardenError(code: .conflict, message: "approval \(approval.id) was \(how); only one answer counts")
    }

    private func record(
        _ run: RunID, _ kind: EventKind, actor: EventActor = .gateway, subject: String, _ details: [String: String]
    ) throws {
        try events(run).record(RunEvent(run: run, kind: kind, actor: actor, subject: subject, details: details))
    }

    private static func newID() -> String {
        "ap-" + (0..<5).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
