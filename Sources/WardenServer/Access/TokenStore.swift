import Crypto
import Foundation
import GRDB
import Synchronization
import WardenAudit
import WardenCore
import WardenGateway

#if canImport(Glibc)
    import Glibc
#endif

/// An API token as listed: never its secret, which is shown once at creation and stored only hashed.
public struct APIToken: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var role: Role
    public var createdAtNanoseconds: Int64
    public var revokedAtNanoseconds: Int64?
    public var createdBy: String

    public var isRevoked: Bool { revokedAtNanoseconds != nil }

    enum CodingKeys: String, CodingKey {
        case id, name, role
        case createdAtNanoseconds = "created_ns"
        case revokedAtNanoseconds = "revoked_ns"
        case createdBy = "created_by"
        case isRevoked = "revoked"
    }

    public init(
        id: String, name: String, role: Role, createdAtNanoseconds: Int64, revokedAtNanoseconds: Int64?,
        createdBy: String
    ) {
        self.id = id
        self.name = name
        self.role = role
        self.createdAtNanoseconds = createdAtNanoseconds
        self.revokedAtNanoseconds = revokedAtNanoseconds
        self.createdBy = createdBy
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id), name: try c.decode(String.self, forKey: .name),
            role: try c.decode(Role.self, forKey: .role),
            createdAtNanoseconds: try c.decode(Int64.self, forKey: .createdAtNanoseconds),
            revokedAtNanoseconds: try c.decodeIfPresent(Int64.self, forKey: .revokedAtNanoseconds),
            createdBy: try c.decode(String.self, forKey: .createdBy))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(role, forKey: .role)
        try c.encode(createdAtNanoseconds, forKey: .createdAtNanoseconds)
        try c.encodeIfPresent(revokedAtNanoseconds, forKey: .revokedAtNanoseconds)
        try c.encode(createdBy, forKey: .createdBy)
        try c.encode(isRevoked, forKey: .isRevoked)
    }
}

/// The one owner of the API's bearer tokens (`<state>/serve/tokens.db`, SQLite, mode 0600): the CLI
/// creates and revokes them, the daemon checks them.
///
/// A token is `wdn_<id>_<secret>`; only SHA-256 of the secret is stored, and a presented secret's digest
/// is compared in constant time. The daemon keeps the table in memory and reloads it whenever the
/// database files change (a `stat` per request), so a revocation by the CLI applies to the next request.
public final class TokenStore: Sendable {
    public let path: String
    private let database: StateDatabase
    private let cache = Mutex<Cache>(Cache())

    private struct Cache {
        var stamp: [Int64] = []
        var tokens: [String: (token: APIToken, digest: [UInt8])] = [:]
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS tokens (
            id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, digest TEXT NOT NULL,
            created_ns INTEGER NOT NULL, revoked_ns INTEGER, created_by TEXT NOT NULL);
        """

    /// Opens (creating) the store under the state directory.
    public init(stateDirectory: String) throws {
        path = stateDirectory + "/serve/tokens.db"
        database = try StateDatabase(path: path, label: "tokens", schema: Self.schema)
    }

    /// A new token: its record and the secret form, shown once.
    public func create(name: String, role: Role, by creator: String, record: (APIToken) throws -> Void) throws -> (
        APIToken, String
    ) {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 64,
            trimmed.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) })
        else {
            throw WardenError.invalidInput(
                "--name: '\(name)' is not a token name; use 1-64 letters, digits, '-', '_', '.' or '@'")
        }
        let id = Self.randomHex(4)
        let secret = Self.randomHex(24)
        let token = APIToken(
            id: id, name: trimmed, role: role, createdAtNanoseconds: RunEvent.now(), revokedAtNanoseconds: nil,
            createdBy: creator)
        try write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM tokens WHERE name = ?", arguments: [trimmed]) == true {
                throw WardenError(
                    code: .conflict,
                    message: "a token named '\(trimmed)' exists; revoke it first or choose another --name")
            }
            // Recorded before the token exists: a token nobody recorded cannot be used.
            try record(token)
            try db.execute(
                sql:
                    "INSERT INTO tokens (id, name, role, digest, created_ns, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    id, trimmed, role.rawValue, AuditHex.encode(Self.digest(secret)), token.createdAtNanoseconds,
                    creator,
                ]
            )
        }
        return (token, "wdn_\(id)_\(secret)")
    }

    /// Revokes a token by id or name; requests with it fail from then on.
    public func revoke(_ idOrName: String, record: (APIToken) throws -> Void) throws -> APIToken {
        try write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM tokens WHERE id = ? OR name = ?", arguments: [idOrName, idOrName])
            else {
                throw WardenError(
                    code: .notFound, message: "no token '\(idOrName)'; `warden serve token list` shows them")
            }
            var token = Self.token(row)
            guard !token.isRevoked else {
                throw WardenError(code: .conflict, message: "token '\(token.name)' is already revoked")
            }
            token.revokedAtNanoseconds = RunEvent.now()
            try record(token)
            try db.execute(
                sql: "UPDATE tokens SET revoked_ns = ? WHERE id = ?", arguments: [token.revokedAtNanoseconds, token.id])
            return token
        }
    }

    public func list() throws -> [APIToken] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM tokens ORDER BY created_ns").map(Self.token)
        }
    }

    /// Why a presented token is refused.
    public enum Refusal: String, Error, Sendable {
        case malformed = "a malformed token"
        case unknown = "an unknown token"
        case revoked = "a revoked token"
    }

    /// Checks a presented token: its record when the secret matches and it is not revoked.
    public func authenticate(_ presented: String) -> Result<APIToken, Refusal> {
        let parts = presented.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "wdn", parts[1].count == 8, parts[2].count == 48 else {
            return .failure(.malformed)
        }
        let id = String(parts[1])
        guard let entry = current()[id] else {
            // Hash anyway, so a wrong id costs what a wrong secret costs.
            _ = Self.digest(String(parts[2]))
            return .failure(.unknown)
        }
        guard Self.constantTimeEqual(Self.digest(String(parts[2])), entry.digest) else { return .failure(.unknown) }
        return entry.token.isRevoked ? .failure(.revoked) : .success(entry.token)
    }

    /// The token's record now (a session checks that its token was not revoked since).
    public func token(id: String) -> APIToken? { current()[id]?.token }

    // MARK: - Internals

    private func current() -> [String: (token: APIToken, digest: [UInt8])] {
        let stamp = Self.stamp(path)
        if let hit = cache.withLock({ $0.stamp == stamp ? $0.tokens : nil }) { return hit }
        let rows =
            (try? read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM tokens").map { row in
                    (Self.token(row), AuditHex.decode(row["digest"] as String) ?? [])
                }
            }) ?? []
        let tokens = Dictionary(rows.map { ($0.0.id, (token: $0.0, digest: $0.1)) }, uniquingKeysWith: { a, _ in a })
        cache.withLock { $0 = Cache(stamp: stamp, tokens: tokens) }
        return tokens
    }

    /// Size and modification time of the database and its WAL: any commit changes one of them.
    private static func stamp(_ path: String) -> [Int64] {
        var result: [Int64] = []
        for file in [path, path + "-wal"] {
            var st = stat()
            if stat(file, &st) == 0 {
                result += [Int64(st.st_size), Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec), Int64(st.st_ino)]
            } else {
                result += [-1]
            }
        }
        return result
    }

    private func write<T>(_ body: (Database) throws -> T) throws -> T { try database.write(body) }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try database.read(body)
        } catch {
            throw WardenError(code: .systemCall, message: "tokens: \(path): \(error)")
        }
    }

    private static func token(_ row: Row) -> APIToken {
        APIToken(
            id: row["id"], name: row["name"], role: Role(rawValue: row["role"]) ?? .viewer,
            createdAtNanoseconds: row["created_ns"], revokedAtNanoseconds: row["revoked_ns"],
            createdBy: row["created_by"])
    }

    static func digest(_ secret: String) -> [UInt8] { Array(SHA256.hash(data: Data(secret.utf8))) }

    static func randomHex(_ count: Int) -> String {
        AuditHex.encode((0..<count).map { _ in UInt8.random(in: 0...255) })
    }

    /// Compares two digests without an early exit, so the time says nothing of where they differ.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
