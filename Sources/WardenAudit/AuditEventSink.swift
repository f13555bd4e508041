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

    public init(stateDirectory: String, run: RunID) {
        self.stateDirectory = stateDirectory
        self.run = run
    }

    /// One open store and key per state directory per process.
    private static let opened = Mutex<[String: (SQLiteAuditStore, CheckpointSigner)]>([:])

    static func open(_ stateDirectory: String) throws(AuditError) -> (SQLiteAuditStore, CheckpointSigner) {
        if let existing = opened.withLock({ $0[stateDirectory] }) { return existing }
        let signer = try CheckpointSigner.loadOrCreate(directory: stateDirectory + "/audit")
        let store = try SQLiteAuditStore(path: stateDirectory + "/audit/audit.sqlite")
        return opened.withLock { map in
            if let raced = map[stateDirectory] { return raced }
            map[stateDirectory] = (store, signer)
            return (store, signer)
        }
    }

    public func record(_ event: RunEvent) throws {
        try record(contentsOf: [event])
    }

    public func record(contentsOf events: [RunEvent]) throws {
        guard !events.isEmpty else { return }
        do {
            let (store, signer) = try Self.open(stateDirectory)
            // A run's last event is signed at once, so the head anchor covers every finished run.
            let ends = events.contains { $0.kind == .exited || $0.kind == .stopped }
            let policy = ends ? CheckpointPolicy(everyEvents: 1, everySeconds: 0) : CheckpointPolicy()
            let result = try store.appendNow(events.map(Self.draft), signer: signer, policy: policy)
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
            let (store, _) = try Self.open(stateDirectory)
            return try store.eventsNow(run: run.rawValue).compactMap { Self.runEvent($0.event) }
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

extension AuditError {
    var asError: any Error { wardenError }
}
