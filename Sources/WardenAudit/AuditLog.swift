import Foundation
import WardenCore

/// The tamper-evident log every part of Warden records into.
///
/// Write-ahead by construction: `record(_:perform:)` makes the event durable and only then runs the
/// action; if the event cannot be recorded the action does not run and the caller gets the error.
/// Concurrent `record` calls are committed together (group commit): while one transaction is being
/// written, newcomers queue, and the next transaction takes them all.
public final class AuditLog: Sendable {
    public let store: any AuditStore
    public let signer: CheckpointSigner
    public let policy: CheckpointPolicy
    /// Where this machine keeps the last checkpoint it signed (the head anchor).
    public let headPath: String
    private let committer: GroupCommitter

    /// - Parameter plain: write rows without hashing or signing (the benchmark's baseline only).
    public init(
        store: any AuditStore, signer: CheckpointSigner, policy: CheckpointPolicy = CheckpointPolicy(),
        headPath: String,
        plain: Bool = false
    ) {
        self.store = store
        self.signer = signer
        self.policy = policy
        self.headPath = headPath
        self.committer = GroupCommitter(store: store, signer: signer, policy: policy, headPath: headPath, plain: plain)
    }

    /// Opens the log at `location`, with the signing key and head anchor from the state directory.
    public static func open(
        location: AuditStoreLocation, stateDirectory: String, policy: CheckpointPolicy = CheckpointPolicy()
    )
        async throws(AuditError) -> AuditLog
    {
        let directory = stateDirectory + "/audit"
        let signer = try CheckpointSigner.loadOrCreate(directory: directory)
        let store = try await AuditStores.open(location: location, stateDirectory: stateDirectory)
        return AuditLog(
            store: store, signer: signer, policy: policy,
            headPath: AuditStores.headPath(for: store, stateDirectory: stateDirectory))
    }

    /// Records one event durably and returns it with its sequence number and hash.
    @discardableResult
    public func record(_ draft: AuditDraft) async throws(AuditError) -> AuditEvent {
        try await committer.submit(draft)
    }

    /// Records `draft`, then performs the action it describes. The action never runs unrecorded.
    public func record<T: Sendable>(_ draft: AuditDraft, perform action: () async throws -> T) async throws -> T {
        _ = try await record(draft)
        return try await action()
    }

    /// Signs a checkpoint over whatever is not yet covered (call before a clean shutdown).
    public func checkpointNow() async throws(AuditError) {
        let tight = CheckpointPolicy(everyEvents: 1, everySeconds: 0)
        let result = try await store.append([], signer: signer, policy: tight)
        if let c = result.checkpoint { AuditStores.writeHead(c, location: store.location, path: headPath) }
    }

    /// Signs a final checkpoint over the tail, then closes the store.
    public func close() async {
        try? await checkpointNow()
        await store.close()
    }
}

/// Collects concurrent submissions and writes them in as few transactions as possible.
actor GroupCommitter {
    let store: any AuditStore
    let signer: CheckpointSigner
    let policy: CheckpointPolicy
    let headPath: String
    let plain: Bool
    private var pending: [(AuditDraft, CheckedContinuation<AuditEvent, any Error>)] = []
    private var isFlushing = false

    init(store: any AuditStore, signer: CheckpointSigner, policy: CheckpointPolicy, headPath: String, plain: Bool) {
        self.store = store
        self.signer = signer
        self.policy = policy
        self.headPath = headPath
        self.plain = plain
    }

    func submit(_ draft: AuditDraft) async throws(AuditError) -> AuditEvent {
        do {
            return try await withCheckedThrowingContinuation { continuation in
                pending.append((draft, continuation))
                if !isFlushing {
                    isFlushing = true
                    Task { await self.flush() }
                }
            }
        } catch let error as AuditError {
            throw error
        } catch {
            throw AuditError(code: .systemCall, message: "recording failed: \(error)")
        }
    }

    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            do {
                if plain {
                    try await store.appendPlain(batch.map(\.0))
                    for item in batch {
                        item.1.resume(returning: AuditEvent(sequence: 0, draft: item.0, previousHash: "", hash: ""))
                    }
                    continue
                }
                let result = try await store.append(batch.map(\.0), signer: signer, policy: policy)
                if let c = result.checkpoint { AuditStores.writeHead(c, location: store.location, path: headPath) }
                for (event, item) in zip(result.events, batch) { item.1.resume(returning: event) }
            } catch {
                for item in batch { item.1.resume(throwing: error) }
            }
        }
        isFlushing = false
    }
}

/// Opening stores by location, and the head anchor file.
public enum AuditStores {
    public static func open(location: AuditStoreLocation, stateDirectory: String) async throws(AuditError)
        -> any AuditStore
    {
        switch location {
        case .postgres(let url): return try await PostgresAuditStore.connect(url: url)
        case .stateDirectory, .sqlite:
            return try openSQLite(location: location, stateDirectory: stateDirectory)
        }
    }

    /// The SQLite stores open synchronously (the supervisor's path needs no async at all).
    static func openSQLite(location: AuditStoreLocation, stateDirectory: String) throws(AuditError) -> SQLiteAuditStore
    {
        guard let path = location.sqlitePath(stateDirectory: stateDirectory) else {
            throw AuditError(code: .invalidInput, message: "\(location) is not a SQLite store")
        }
        return try SQLiteAuditStore(path: path)
    }

    /// One head file per store location under the state directory.
    public static func headPath(for store: any AuditStore, stateDirectory: String) -> String {
        let digest = AuditEvent.chainHash(previous: "", canonical: store.location).prefix(16)
        return stateDirectory + "/audit/head-\(digest).json"
    }

    static func writeHead(_ checkpoint: AuditCheckpoint, location: String, path: String) {
        // Keep the highest: concurrent writers may finish out of order.
        if let current = readHead(path: path), current.sequence >= checkpoint.sequence { return }
        let json = JSONValue.object([("location", .string(location)), ("checkpoint", checkpoint.json)]).serialized
        let temporary = path + ".\(ProcessInfo.processInfo.processIdentifier).\(UInt64.random(in: 0...UInt64.max)).tmp"
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(json.utf8), attributes: [.posixPermissions: 0o600])
        else { return }
        if rename(temporary, path) != 0 { unlink(temporary) }
    }

    public static func readHead(path: String) -> AuditCheckpoint? {
        guard let data = FileManager.default.contents(atPath: path),
            let json = try? JSONValue.parse(String(decoding: data, as: UTF8.self)), let c = json["checkpoint"]
        else { return nil }
        return try? AuditCheckpoint(json: c)
    }
}
