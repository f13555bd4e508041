import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The run registry: one directory per run under `<state>/runs/`, readable only by the operator and
/// hidden from every sandbox. This type only reads; ``RunLedger`` is the one writer.
///
/// Each run directory holds `run.json` (the ``RunRecord``, replaced atomically under an exclusive
/// `flock` on `lock`) and `output.log` for detached runs. Events live in the audit log.
public struct RunRegistry: Sendable {
    public let stateDirectory: String
    /// Opens the event sink of a run's audit store (chosen by the command line, the composition root).
    public let events: any EventSinkProvider

    public init(stateDirectory: String, events: any EventSinkProvider) {
        self.stateDirectory = stateDirectory
        self.events = events
    }

    public var runsDirectory: String { stateDirectory + "/runs" }

    public func directory(for id: RunID) -> String { runsDirectory + "/" + id.rawValue }

    /// Creates the state and runs directories (mode 0700) if needed.
    public func prepare() throws {
        do {
            try FileManager.default.createDirectory(
                atPath: runsDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            chmod(stateDirectory, 0o700)
        } catch {
            throw WardenError(
                code: .systemCall,
                message: "state directory \(stateDirectory) cannot be created (\(error.localizedDescription)); "
                    + "set WARDEN_STATE_DIR or --state-dir to a writable directory")
        }
        guard access(runsDirectory, W_OK) == 0 else {
            throw WardenError(
                code: .systemCall,
                message:
                    "state directory \(stateDirectory) is not writable; set WARDEN_STATE_DIR or --state-dir to a writable directory"
            )
        }
    }

    public func load(_ id: RunID) throws -> RunRecord {
        let path = directory(for: id) + "/run.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WardenError(
                code: .notFound, message: "no run \(id) in \(runsDirectory); `warden ps --all` lists runs")
        }
        do {
            return try JSONDecoder().decode(RunRecord.self, from: data)
        } catch {
            throw WardenError(code: .systemCall, message: "\(path) is unreadable (\(error)); the record is damaged")
        }
    }

    /// Every registered run, newest first, as recorded (nothing is written: see ``RunLedger/reconcile()``
    /// for a run whose supervisor died). ``RunRecord/isOrphaned`` tells which records are out of date.
    public func list() -> [RunRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDirectory)) ?? []
        return names.compactMap { RunID($0) }.compactMap { try? load($0) }
            .sorted { $0.createdAtNanoseconds > $1.createdAtNanoseconds }
    }

    /// Finds a run by id, unique id prefix, or name (the newest run of that name).
    public func resolve(_ text: String) throws -> RunID {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let id = RunID(text), FileIO.exists(directory(for: id)) { return id }
        let runs = list()
        let byPrefix = runs.filter { $0.id.rawValue.hasPrefix(text) }
        if !text.isEmpty, byPrefix.count == 1 { return byPrefix[0].id }
        if byPrefix.count > 1 {
            throw WardenError.invalidInput("'\(text)' matches \(byPrefix.count) runs; give more of the id")
        }
        if let named = runs.first(where: { $0.name == text }) { return named.id }
        throw WardenError(code: .notFound, message: "no run '\(text)'; `warden ps --all` lists run ids and names")
    }

    /// The ledger of an existing run: the only way to change its record.
    public func ledger(for id: RunID) throws -> RunLedger {
        RunLedger(registry: self, id: id, location: try load(id).auditStore)
    }

    /// A run's events, in order, from the store it records into.
    public func events(of id: RunID) throws -> [RunEvent] {
        try events.sink(at: try load(id).auditStore).events(of: id)
    }
}

extension RunRecord {
    /// Whether the record says the run is active while its supervisor is dead and its cgroup empty:
    /// the run ended with its supervisor and nobody has recorded that yet.
    public var isOrphaned: Bool {
        guard state.isActive, let pid = supervisorPID else { return false }
        return !ProcessIdentity.isAlive(pid: pid, startTime: supervisorStartTime) && cgroup?.isPopulated() != true
    }
}
