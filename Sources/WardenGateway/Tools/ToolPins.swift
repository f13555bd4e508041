import Crypto
import Foundation
import GRDB
import WardenCore

/// One tool as a server describes it (`tools/list`): what the pin covers.
public struct ToolDefinition: Sendable, Equatable {
    public var name: String
    public var description: String?
    public var inputSchema: JSONValue
    public var annotations: JSONValue?

    public init(name: String, description: String?, inputSchema: JSONValue, annotations: JSONValue?) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.annotations = annotations
    }

    /// Reads one entry of a `tools/list` result.
    /// - Throws: ``WardenError`` `.invalidInput` when it has no name or no object input schema.
    public init(listed value: JSONValue) throws {
        guard let name = value["name"]?.stringValue, !name.isEmpty else {
            throw WardenError.invalidInput("a listed tool has no name")
        }
        guard case .object = value["inputSchema"] ?? .null else {
            throw WardenError.invalidInput("tool '\(name)' has no inputSchema object")
        }
        self.init(
            name: name, description: value["description"]?.stringValue, inputSchema: value["inputSchema"] ?? .null,
            annotations: value["annotations"])
    }

    /// The canonical JSON of everything the pin covers.
    func canonical(includingName: Bool) throws -> String {
        var members: [(key: String, value: JSONValue)] = [
            ("description", description.map(JSONValue.string) ?? .null), ("inputSchema", inputSchema),
            ("annotations", annotations ?? .null),
        ]
        if includingName { members.append(("name", .string(name))) }
        return try JSONValue.object(members).canonicalized(allowingFractions: true)
    }

    /// SHA-256 of the definition (name, description, input schema, annotations).
    public var digest: String { Self.sha256((try? canonical(includingName: true)) ?? name) }
    /// SHA-256 of the definition without its name: the same body under a new name is a rename.
    public var bodyDigest: String { Self.sha256((try? canonical(includingName: false)) ?? "") }

    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// What the gateway may do with a listed tool.
public enum PinVerdict: Sendable, Equatable {
    /// Seen for the first time on a server seen for the first time: pinned (trust on first use).
    case pinned
    /// Exactly the approved definition.
    case known
    /// The definition differs from the approved one: quarantined (hidden, calls denied) until approved.
    case changed(approved: String)
    /// An approved definition under another name: quarantined and reported as a rename.
    case renamed(from: String)
    /// A tool new to a server already pinned (appeared later, or mid-session): quarantined unless the
    /// profile lets new tools in.
    case added

    /// Whether the agent may see and call it.
    public var admitted: Bool {
        switch self {
        case .pinned, .known: true
        case .changed, .renamed, .added: false
        }
    }
}

/// One pin as `warden mcp pins` shows it.
public struct ToolPin: Sendable, Equatable, Codable {
    public var server: String
    public var tool: String
    /// The approved definition's digest (nil for a tool never approved).
    public var digest: String?
    /// A definition waiting for approval (changed, renamed or added), and why.
    public var pendingDigest: String?
    public var pendingReason: String?
    public var firstSeenNanoseconds: Int64

    enum CodingKeys: String, CodingKey {
        case server, tool, digest
        case pendingDigest = "pending_digest"
        case pendingReason = "pending_reason"
        case firstSeenNanoseconds = "first_seen_ns"
    }
}

/// The tools door's pins: each server's tool definitions as approved, per state directory
/// (`<state>/mcp-pins.db`, SQLite), so a definition changed after approval ("rug pull") is caught
/// across sessions and restarts, and a known definition under a new name is a rename, not a new tool.
public final class ToolPins: Sendable {
    let database: StateDatabase

    static let schema = """
        CREATE TABLE IF NOT EXISTS pins (
            server TEXT NOT NULL, tool TEXT NOT NULL,
            digest TEXT, body_digest TEXT, definition TEXT,
            pending_digest TEXT, pending_body TEXT, pending_definition TEXT, pending_reason TEXT,
            first_seen_ns INTEGER NOT NULL,
            PRIMARY KEY (server, tool)
        );
        """

    /// Opens (creating) the pins database.
    /// - Throws: ``WardenError`` naming the file and the fix.
    public init(path: String) throws {
        database = try StateDatabase(path: path, label: "mcp pins", schema: Self.schema)
    }

    /// Checks a server's listed tools against its pins, in one transaction: a server seen for the first
    /// time is pinned as it is; afterwards a change, a rename or a new tool is kept pending approval.
    /// - Parameter admitNew: let tools new to a pinned server in (pinned at once) instead of quarantining.
    public func check(server: String, tools: [ToolDefinition], admitNew: Bool = false, now: Int64 = RunEvent.now())
        throws -> [String: PinVerdict]
    {
        try write { db in
            let known = try Row.fetchAll(db, sql: "SELECT * FROM pins WHERE server = ?", arguments: [server])
            let firstSight = known.isEmpty
            var approvedByName: [String: String] = [:]
            var approvedByBody: [String: String] = [:]
            for row in known {
                let tool: String = row["tool"]
                if let digest: String = row["digest"] { approvedByName[tool] = digest }
                if let body: String = row["body_digest"] { approvedByBody[body] = tool }
            }
            var verdicts: [String: PinVerdict] = [:]
            for tool in tools {
                let digest = tool.digest
                let body = tool.bodyDigest
                let definition = try tool.canonical(includingName: true)
                let verdict: PinVerdict
                if let approved = approvedByName[tool.name] {
                    verdict = approved == digest ? .known : .changed(approved: approved)
                } else if let other = approvedByBody[body], other != tool.name {
                    verdict = .renamed(from: other)
                } else {
                    verdict = firstSight || admitNew ? .pinned : .added
                }
                verdicts[tool.name] = verdict
                switch verdict {
                case .known: break
                case .pinned:
                    try db.execute(
                        sql: """
                            INSERT INTO pins (server, tool, digest, body_digest, definition, first_seen_ns)
                            VALUES (?, ?, ?, ?, ?, ?)
                            ON CONFLICT (server, tool) DO UPDATE SET digest = excluded.digest,
                                body_digest = excluded.body_digest, definition = excluded.definition,
                                pending_digest = NULL, pending_body = NULL, pending_definition = NULL, pending_reason = NULL
                            """, arguments: [server, tool.name, digest, body, definition, now])
                case .changed, .renamed, .added:
                    let reason: String
                    switch verdict {
                    case .changed: reason = "definition changed since it was approved"
                    case .renamed(let from): reason = "the approved definition of '\(from)' under a new name"
                    default: reason = "a tool new to a pinned server"
                    }
                    try db.execute(
                        sql: """
                            INSERT INTO pins (server, tool, pending_digest, pending_body, pending_definition, pending_reason, first_seen_ns)
                            VALUES (?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT (server, tool) DO UPDATE SET pending_digest = excluded.pending_digest,
                                pending_body = excluded.pending_body, pending_definition = excluded.pending_definition,
                                pending_reason = excluded.pending_reason
                            """, arguments: [server, tool.name, digest, body, definition, reason, now])
                }
            }
            return verdicts
        }
    }

    /// Approves what is pending for `server` (one tool, or all): the pending definition becomes the pin.
    /// - Returns: the tools approved.
    /// - Throws: ``WardenError`` `.notFound` when nothing is pending there.
    @discardableResult
    public func approve(server: String, tool: String? = nil) throws -> [String] {
        try write { db in
            var sql = "SELECT tool FROM pins WHERE server = ? AND pending_digest IS NOT NULL"
            var arguments: [any DatabaseValueConvertible] = [server]
            if let tool {
                sql += " AND tool = ?"
                arguments.append(tool)
            }
            let tools = try String.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
            guard !tools.isEmpty else {
                throw WardenError(
                    code: .notFound,
                    message:
                        "mcp pins: nothing pending for \(server)\(tool.map { "." + $0 } ?? ""); see warden mcp pins")
            }
            for name in tools {
                try db.execute(
                    sql: """
                        UPDATE pins SET digest = pending_digest, body_digest = pending_body,
                            definition = pending_definition, pending_digest = NULL, pending_body = NULL,
                            pending_definition = NULL, pending_reason = NULL
                        WHERE server = ? AND tool = ?
                        """, arguments: [server, name])
            }
            return tools
        }
    }

    /// Every pin, by server and tool.
    public func list(server: String? = nil) throws -> [ToolPin] {
        try database.read { db in
            let rows =
                try server.map {
                    try Row.fetchAll(db, sql: "SELECT * FROM pins WHERE server = ? ORDER BY tool", arguments: [$0])
                } ?? Row.fetchAll(db, sql: "SELECT * FROM pins ORDER BY server, tool")
            return rows.map { row in
                ToolPin(
                    server: row["server"], tool: row["tool"], digest: row["digest"],
                    pendingDigest: row["pending_digest"],
                    pendingReason: row["pending_reason"], firstSeenNanoseconds: row["first_seen_ns"])
            }
        }
    }

    private func write<T>(_ body: (Database) throws -> T) throws -> T { try database.write(body) }
}
