import Foundation
import GRDB
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// A small SQLite database of the state directory shared by processes (the approvals, the tool pins):
/// WAL, `synchronous = FULL`, mode 0600, writers taking turns on the write lock. Public for the other
/// state files of the same kind (the API's tokens).
public struct StateDatabase: Sendable {
    let queue: DatabaseQueue
    let path: String
    /// Names the database in errors ("approvals", "mcp pins").
    let label: String

    /// Opens (creating, with its directory) the database and its schema.
    /// - Throws: ``WardenError`` naming the file and the fix.
    public init(path: String, label: String, schema: String) throws {
        self.path = path
        self.label = label
        var configuration = Configuration()
        // Writers from several processes (terminals, doors) take turns on SQLite's write lock.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        do {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: schema)
            }
            chmod(path, 0o600)
        } catch {
            throw WardenError(
                code: .systemCall,
                message:
                    "\(label): cannot open \(path) (\(error)); check the state directory's permissions and free space")
        }
    }

    /// A write transaction that holds SQLite's write lock from its start (BEGIN IMMEDIATE): what it
    /// reads cannot change before it commits.
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            var result: T?
            try queue.inTransaction(.immediate) { db in
                result = try body(db)
                return .commit
            }
            guard let result else {
                throw WardenError(code: .systemCall, message: "\(label): the write was rolled back")
            }
            return result
        } catch let error as WardenError {
            throw error
        } catch {
            throw WardenError(code: .systemCall, message: "\(label): \(path): \(error)")
        }
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T { try queue.read(body) }
}
