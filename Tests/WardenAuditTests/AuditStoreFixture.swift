import Foundation
import GRDB
import Testing
import WardenCore

@testable import WardenAudit

/// The two stores every audit test runs against: SQLite in a scratch directory, and a fresh database on
/// the real PostgreSQL server that scripts/test.sh starts on loopback (`WARDEN_TEST_POSTGRES_URL`).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

final class AuditFixture: @unchecked Sendable {
    // @unchecked: all stored properties are lets set in init.
    let kind: StoreKind
    let stateDirectory: String
    let location: AuditStoreLocation
    /// The location as the command line and profiles spell it.
    var locationText: String { location.description }
    let databaseName: String?

    init(_ kind: StoreKind) throws {
        self.kind = kind
        stateDirectory = "/var/tmp/warden-tests/audit-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        switch kind {
        case .sqlite:
            location = .sqlite(path: "\(stateDirectory)/audit/audit.sqlite")
            databaseName = nil
        case .postgres:
            guard let admin = ProcessInfo.processInfo.environment["WARDEN_TEST_POSTGRES_URL"] else {
                try Test.cancel(
                    "no PostgreSQL test server: run the suite with scripts/test.sh, which starts one on loopback")
            }
            let name = "warden_\(UUID().uuidString.prefix(8).lowercased())"
            try Self.psql(admin, "CREATE DATABASE \(name)")
            databaseName = name
            location = .postgres(url: admin.replacingOccurrences(of: "/postgres", with: "/\(name)"))
        }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: stateDirectory)
        if let databaseName, let admin = ProcessInfo.processInfo.environment["WARDEN_TEST_POSTGRES_URL"] {
            try? Self.psql(admin, "DROP DATABASE IF EXISTS \(databaseName) WITH (FORCE)")
        }
    }

    @discardableResult
    static func psql(_ url: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", "-v", "ON_ERROR_STOP=1", "-qAt", url, "-c", sql]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WardenError(code: .systemCall, message: "psql failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }

    func openLog(policy: CheckpointPolicy = CheckpointPolicy()) async throws -> AuditLog {
        try await AuditLog.open(location: location, stateDirectory: stateDirectory, policy: policy)
    }

    /// Runs SQL directly against the store's database, as an attacker with write access would.
    func tamper(_ sql: String) throws {
        switch kind {
        case .sqlite:
            let queue = try DatabaseQueue(path: location.sqlitePath(stateDirectory: stateDirectory) ?? "")
            try queue.write { db in try db.execute(sql: sql) }
            try queue.close()
        case .postgres:
            try Self.psql(locationText, sql)
        }
    }

    func verify(publicKey: String? = nil) async throws -> AuditVerification {
        let store = try await AuditStores.open(location: location, stateDirectory: stateDirectory)
        let key = try AuditOperations.trustedKey(publicKey, stateDirectory: stateDirectory)
        let head = AuditStores.readHead(path: AuditStores.headPath(for: store, stateDirectory: stateDirectory))
        let report = try await AuditOperations.verify(store: store, publicKey: key, head: head)
        await store.close()
        return report
    }
}
