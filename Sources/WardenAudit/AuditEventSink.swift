import Foundation
import Synchronization
import WardenCore

/// The run event sink of the off-switch, backed by the audit log: the supervisor, `warden stop` and
/// the registry record run events here, durably and hash-chained, from any number of processes.
///
/// Synchronous, because the supervisor is: each `record` is one `BEGIN IMMEDIATE` SQLite transaction
/// with `synchronous = FULL`, done before the action it describes.
public struct AuditEventSink: EventSink {
    public let stateDirectory: String
    public let run: RunID
    /// `postgres://…` or `sqlite:PATH`; nil for the state directory's SQLite file.
    public let location: String?

    public init(stateDirectory: String, run: RunID, location: String? = nil) {
        self.stateDirectory = stateDirectory
        self.run = run
        self.location = location
    }

    /// One open store and key per state directory and location per process.
    private static let opened = Mutex<[String: (any AuditStore, CheckpointSigner)]>([:])

    static func open(_ stateDirectory: String, location: String?) throws(AuditError) -> (
        any AuditStore, CheckpointSigner
    ) {
        let key = stateDirectory + "\u{0}" + (location ?? "")
        if let existing = opened.withLock({ $0[key] }) { return existing }
        let signer = try CheckpointSigner.loadOrCreate(directory: stateDirectory + "/audit")
        let store: any AuditStore
        if let location, location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
            store = try waitFor { () async throws(AuditError) -> any AuditStore in
                try await PostgresAuditStore.connect(url: location)
            }
        } else {
            let path =
                location.map { $0.hasPrefix("sqlite:") ? String($0.dropFirst(7)) : $0 } ?? stateDirectory
                + "/audit/audit.sqlite"
            store = try SQLiteAuditStore(path: path)
        }
        return opened.withLock { map in
            if let raced = map[key] { return raced }
            map[key] = (store, signer)
            return (store, signer)
        }
    }

    /// Runs async store code from the supervisor's threads (never from a Swift concurrency thread).
    static func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws(AuditError) -> T) throws(AuditError)
        -> T
    {
        let box = Mutex<Result<T, AuditError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let result: Result<T, AuditError>
            do throws(AuditError) {
                result = .success(try await body())
            } catch {
                result = .failure(error)
            }
            box.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        guard let result = box.withLock({ $0 }) else {
            throw AuditError(code: .systemCall, message: "internal error: the audit task ended without a result")
        }
        return try result.get()
    }

    public func record(_ event: RunEvent) throws {
        try record(contentsOf: [event])
    }

    public func record(contentsOf events: [RunEvent]) throws {
        guard !events.isEmpty else { return }
        do {
            let (store, signer) = try Self.open(stateDirectory, location: location)
            // A run's last event is signed at once, so the head anchor covers every finished run.
            let ends = events.contains { $0.kind == .exited || $0.kind == .stopped }
            // Mid-run events rely on the count rule only: signing (and writing the head anchor) at a
            // run's first event would add to every run's start-up.
            let policy =
                ends ? CheckpointPolicy(everyEvents: 1, everySeconds: 0) : CheckpointPolicy(everySeconds: 86_400 * 365)
            let drafts = events.map(Self.draft)
            let result: (events: [AuditEvent], checkpoint: AuditCheckpoint?)
            if let sqlite = store as? SQLiteAuditStore {
                result = try sqlite.appendNow(drafts, signer: signer, policy: policy)
            } else {
                result = try Self.waitFor { () async throws(AuditError) in
                    try await store.append(drafts, signer: signer, policy: policy)
                }
            }
            if let c = result.checkpoint {
                AuditStores.writeHead(
                    c, location: store.location, path: AuditStores.headPath(for: store, stateDirectory: stateDirectory))
            }
        } catch {
            throw error.wardenError
        }
    }

    /// This run's events, in order.
    public func events() throws -> [RunEvent] {
        do {
            let (store, _) = try Self.open(stateDirectory, location: location)
            let runID = run.rawValue
            let stored: [StoredEvent]
            if let sqlite = store as? SQLiteAuditStore {
                stored = try sqlite.eventsNow(run: runID)
            } else {
                stored = try Self.waitFor { () async throws(AuditError) in try await store.events(run: runID) }
            }
            return stored.compactMap { Self.runEvent($0.event) }
        } catch {
            throw error.wardenError
        }
    }

    static func draft(_ event: RunEvent) -> AuditDraft {
        let details = JSONValue.object(event.details.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
        let subject = event.details["path"] ?? event.details["layer"] ?? event.details["limit"] ?? ""
        return AuditDraft(
            kind: event.kind.rawValue, actor: event.actor, subject: subject, run: event.run.rawValue, details: details,
            timeNanoseconds: event.timeNanoseconds)
    }

    static func runEvent(_ event: AuditEvent) -> RunEvent? {
        guard let runText = event.draft.run, let run = RunID(runText), let kind = EventKind(rawValue: event.draft.kind)
        else {
            return nil
        }
        var details: [String: String] = [:]
        if case .object(let members) = event.draft.details {
            for m in members { details[m.key] = m.value.stringValue ?? m.value.serialized }
        }
        return RunEvent(
            run: run, kind: kind, actor: event.draft.actor, details: details,
            timeNanoseconds: event.draft.timeNanoseconds)
    }
}
