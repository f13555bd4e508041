import Foundation
import WardenAudit
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The run registry: one directory per run under `<state>/runs/`, readable only by the operator and
/// hidden from every sandbox.
///
/// Each run directory holds `run.json` (the ``RunRecord``, replaced atomically under an exclusive
/// `flock` on `lock`), `events.jsonl` (the event log) and `output.log` for detached runs.
public struct RunRegistry: Sendable {
    public let stateDirectory: String

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
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

    /// Registers a new run; fails if the id exists.
    public func create(_ record: RunRecord) throws {
        try prepare()
        let path = directory(for: record.id)
        guard mkdir(path, 0o700) == 0 else { throw FileIO.systemError("create \(path)") }
        try write(record)
    }

    private func write(_ record: RunRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // The event log is the durable record; run.json is the registry's current view of it.
        try FileIO.writeAtomically(
            try encoder.encode(record), to: directory(for: record.id) + "/run.json", durable: false)
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

    /// Read-modify-write of a record under the run's lock, so the supervisor and `warden stop` in
    /// another terminal never lose each other's changes.
    @discardableResult
    public func update(_ id: RunID, _ body: (inout RunRecord) throws -> Void) throws -> RunRecord {
        let lockPath = directory(for: id) + "/lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileIO.systemError("open \(lockPath)") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileIO.systemError("lock \(lockPath)") }
        }
        var record = try load(id)
        try body(&record)
        try write(record)
        return record
    }

    /// Every registered run, newest first, reconciled with what is alive.
    public func list() -> [RunRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDirectory)) ?? []
        return names.compactMap { RunID($0) }.compactMap { try? load($0) }.map(reconcile)
            .sorted { $0.createdAtNanoseconds > $1.createdAtNanoseconds }
    }

    /// Loads a run and reconciles it (see ``reconcile(_:)``).
    public func current(_ id: RunID) throws -> RunRecord { reconcile(try load(id)) }

    /// A record that says "running" while its supervisor is dead and its cgroup empty describes a run
    /// that ended with its supervisor (the kernel killed the sandbox). Record that, once, and tidy up.
    public func reconcile(_ record: RunRecord) -> RunRecord {
        guard record.state.isActive, let pid = record.supervisorPID,
            !ProcessIdentity.isAlive(pid: pid, startTime: record.supervisorStartTime),
            record.cgroup?.isPopulated() != true
        else { return record }
        let note = "the supervisor (pid \(pid)) died; the sandbox ended with it"
        let updated = try? update(record.id) { current in
            guard current.state.isActive else { return }
            current.state = current.state == .stopping ? .stopped : .exited
            current.endedAtNanoseconds = current.endedAtNanoseconds ?? RunEvent.now()
            current.warnings.append(note)
        }
        try? eventSink(for: record.id).record(
            RunEvent(
                run: record.id, kind: .exited, actor: "warden", details: ["supervisor_died": "true", "note": note]))
        record.cgroup?.remove()
        return updated ?? record
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

    public func eventSink(for id: RunID) -> AuditEventSink {
        // Every process that records for this run (supervisor, `warden stop`, `warden renew`) uses the
        // store the run was started with.
        AuditEventSink(stateDirectory: stateDirectory, run: id, location: (try? load(id))?.auditStore)
    }
}
