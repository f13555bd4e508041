import Foundation
import Synchronization
import WardenCore

/// Core's ``EventSink`` backed by the audit log: the supervisor, `warden stop` and the registry record
/// run events here, durably and hash-chained, from any number of processes.
///
/// Synchronous, because the supervisor is: on SQLite each `record` is one `BEGIN IMMEDIATE`
/// transaction with `synchronous = FULL`, done before the action it describes; on PostgreSQL the
/// async store is waited for through ``Blocking/wait(_:)``, the one sync-async bridge.
public struct AuditEventSink: EventSink {
    public let stateDirectory: String
    public let location: AuditStoreLocation

    public init(stateDirectory: String, location: AuditStoreLocation = .stateDirectory) {
        self.stateDirectory = stateDirectory
        self.location = location
    }

    private struct Opened: Sendable {
        var store: any AuditStore
        var signer: CheckpointSigner
    }

    /// One open store and key per state directory and location per process.
    private static let opened = Mutex<[String: Opened]>([:])

    private func open() throws(AuditError) -> Opened {
        let key = stateDirectory + "\u{0}" + location.description
        if let existing = Self.opened.withLock({ $0[key] }) { return existing }
        let signer = try CheckpointSigner.loadOrCreate(directory: stateDirectory + "/audit")
        let store: any AuditStore
        if case .postgres(let url) = location {
            store = try Blocking.wait { () async throws(AuditError) -> any AuditStore in
                try await PostgresAuditStore.connect(url: url)
            }
        } else {
            store = try AuditStores.openSQLite(location: location, stateDirectory: stateDirectory)
        }
        return Self.opened.withLock { map in
            if let raced = map[key] { return raced }
            map[key] = Opened(store: store, signer: signer)
            return Opened(store: store, signer: signer)
        }
    }

    public func record(contentsOf events: [RunEvent]) throws {
        guard !events.isEmpty else { return }
        do {
            let opened = try open()
            let (store, signer) = (opened.store, opened.signer)
            // A run's last event is signed at once, so the head anchor covers every finished run.
            // Mid-run events rely on the count rule only: signing (and writing the head anchor) at a
            // run's first event would add to every run's start-up.
            let policy =
                events.contains { $0.kind.endsRun }
                ? CheckpointPolicy(everyEvents: 1, everySeconds: 0) : CheckpointPolicy(everySeconds: 86_400 * 365)
            let drafts = events.map(AuditDraft.init(event:))
            let result: (events: [AuditEvent], checkpoint: AuditCheckpoint?)
            if let sqlite = store as? SQLiteAuditStore {
                result = try sqlite.appendNow(drafts, signer: signer, policy: policy)
            } else {
                result = try Blocking.wait { () async throws(AuditError) in
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

    public func events(of run: RunID) throws -> [RunEvent] {
        do {
            let store = try open().store
            let runID = run.rawValue
            let stored: [StoredEvent]
            if let sqlite = store as? SQLiteAuditStore {
                stored = try sqlite.eventsNow(run: runID)
            } else {
                stored = try Blocking.wait { () async throws(AuditError) in try await store.events(run: runID) }
            }
            return stored.compactMap { RunEvent(audit: $0.event) }
        } catch {
            throw error.wardenError
        }
    }
}

/// Opens ``AuditEventSink``s for a state directory; the command line hands this to the run registry.
public struct AuditEventSinks: EventSinkProvider {
    public let stateDirectory: String

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    public func sink(at location: AuditStoreLocation) -> any EventSink {
        AuditEventSink(stateDirectory: stateDirectory, location: location)
    }
}

extension AuditDraft {
    /// The audit form of a run event: the same kind, actor, subject and details, field for field.
    public init(event: RunEvent) {
        self.init(
            kind: event.kind.rawValue, actor: event.actor.rawValue, subject: event.subject, run: event.run.rawValue,
            details: .strings(event.details),
            timeNanoseconds: event.timeNanoseconds)
    }
}

extension JSONValue {
    /// String details as the log keeps them: one object, its members sorted by key.
    public static func strings(_ details: [String: String]) -> JSONValue {
        .object(details.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
    }
}

extension RunEvent {
    /// The run event an audit event records, or nil when it is not one (a policy decision, an
    /// approval, an event of a kind or actor this version does not know).
    public init?(audit event: AuditEvent) {
        let draft = event.draft
        guard let runText = draft.run, let run = RunID(runText), let kind = EventKind(rawValue: draft.kind),
            let actor = EventActor(rawValue: draft.actor)
        else { return nil }
        var details: [String: String] = [:]
        if case .object(let members) = draft.details {
            for m in members { details[m.key] = m.value.stringValue ?? m.value.serialized }
        }
        self.init(
            run: run, kind: kind, actor: actor, subject: draft.subject, details: details,
            timeNanoseconds: draft.timeNanoseconds)
    }
}
