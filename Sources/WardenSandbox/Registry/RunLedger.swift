import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The one owner of a run's record: every change to `run.json` is a transition made here, and every
/// transition records its event durably *before* the state changes (write-ahead).
///
/// Supervisor, stop protocol, lease and reconciliation all go through a ledger; readers (`warden ps`,
/// `inspect`) use ``RunRegistry``. Transitions run under an exclusive `flock` on the run's `lock`
/// file, so the supervisor and a `warden stop` in another terminal never lose each other's changes;
/// an illegal transition (see ``RunState/successors``) throws instead of overwriting. Removing the
/// run's cgroup belongs here too: it happens once, on the transition that ends the run.
public struct RunLedger: Sendable {
    public let registry: RunRegistry
    public let id: RunID
    /// The run's event sink (its audit store).
    public let sink: any EventSink

    init(registry: RunRegistry, id: RunID, location: AuditStoreLocation) {
        self.registry = registry
        self.id = id
        self.sink = registry.events.sink(at: location)
    }

    /// Registers a new run in `starting`; fails if the id exists.
    ///
    /// - Parameter claimingIdentity: the run gets a host identity of its own (``IdentityClaims``),
    ///   written into `record` (and its file) in the same critical section.
    public static func create(
        _ record: inout RunRecord, in registry: RunRegistry, claimingIdentity: Bool = false
    ) throws -> RunLedger {
        try registry.prepare()
        func write(_ record: RunRecord) throws -> RunLedger {
            let path = registry.directory(for: record.id)
            guard mkdir(path, 0o700) == 0 else { throw FileIO.systemError("create \(path)") }
            let ledger = RunLedger(registry: registry, id: record.id, location: record.auditStore)
            try ledger.write(record)
            return ledger
        }
        guard claimingIdentity else { return try write(record) }
        var claimed = record
        let ledger = try IdentityClaims(registry: registry).claim(for: record.id) { identity in
            claimed.identity = identity
            return try write(claimed)
        }
        record = claimed
        return ledger
    }

    /// The record as it is now.
    public func current() throws -> RunRecord { try registry.load(id) }

    // MARK: - Events that change no state

    /// Records events that change nothing in the record (notices, tripwires, denials, warnings).
    public func record(_ events: [RunEvent]) throws {
        try sink.record(contentsOf: events)
    }

    /// Records one event.
    public func record(
        _ kind: EventKind, actor: EventActor, subject: String = "", details: [String: String] = [:]
    ) throws {
        try sink.record(RunEvent(run: id, kind: kind, actor: actor, subject: subject, details: details))
    }

    /// This run's events, in order.
    public func events() throws -> [RunEvent] { try sink.events(of: id) }

    // MARK: - Transitions

    /// Notes the run's cgroup as soon as it exists, so a stop or a failed start can find it.
    public func attach(cgroup: RunCgroup) throws {
        try update { record in
            try Self.require(record, in: [.starting], to: "attach a cgroup")
            record.cgroup = cgroup
        }
    }

    /// What the supervisor learned while starting the run.
    public struct Started: Sendable {
        public var bubblewrapPID: Int32
        public var initPID: Int32
        public var agentPID: Int32
        public var layers: [RunRecord.LayerStatus]
        public var tripwires: [TripwireBaseline]
        public var warnings: [String]

        public init(
            bubblewrapPID: Int32, initPID: Int32, agentPID: Int32, layers: [RunRecord.LayerStatus],
            tripwires: [TripwireBaseline], warnings: [String]
        ) {
            self.bubblewrapPID = bubblewrapPID
            self.initPID = initPID
            self.agentPID = agentPID
            self.layers = layers
            self.tripwires = tripwires
            self.warnings = warnings
        }
    }

    /// starting → running. `events` (the layers and `started`) are one durable commit, made before the
    /// state changes and before the caller lets the agent run its first instruction.
    ///
    /// - Returns: false when a stop began while the run was starting (the state stays `stopping`; the
    ///   events are recorded all the same, and the agent is released into a stop already under way).
    @discardableResult
    public func markRunning(_ started: Started, events: [RunEvent]) throws -> Bool {
        var isRunning = false
        try update { record in
            try Self.require(record, in: [.starting, .stopping], to: "mark it running")
            try sink.record(contentsOf: events)
            if record.state == .starting {
                record.state = .running
                isRunning = true
            }
            record.bubblewrapPID = started.bubblewrapPID
            record.initPID = started.initPID
            record.agentPID = started.agentPID
            record.layers = started.layers
            record.tripwires = started.tripwires
            record.warnings = started.warnings
        }
        return isRunning
    }

    /// starting → failed: Warden refused to start the run. Records `exited` with the reason.
    public func markFailed(_ error: any Error) throws {
        try update { record in
            try Self.require(record, in: [.starting, .stopping], to: "mark it failed")
            try sink.record(
                RunEvent(
                    run: id, kind: .exited, actor: .supervisor, details: ["error": "\(error)", "started": "false"]))
            // A stop that began during the start is ended by the failure: nothing was released.
            record.state = .failed
            record.endedAtNanoseconds = RunEvent.now()
            record.warnings.append("refused to start: \(error)")
        }
        settleIfEnded()
    }

    /// running (or starting) → stopping. Records `stop.requested` first.
    ///
    /// - Returns: the record as the stop found it; a stop of a run already stopping (a second
    ///   `warden stop`) records its request and changes nothing.
    @discardableResult
    public func beginStop(actor: EventActor, reason: String, grace: Duration, requestedBy: String? = nil) throws
        -> RunRecord
    {
        try update { record in
            var details = ["reason": reason, "grace_ms": String(grace.nanoseconds / 1_000_000)]
            if let requestedBy { details["requested_by"] = requestedBy }
            try sink.record(RunEvent(run: id, kind: .stopRequested, actor: actor, details: details))
            if record.state.canMove(to: .stopping) { record.state = .stopping }
        }
    }

    /// stopping → stopped, once no process remains. Records `event` (`stopped`, with the latency)
    /// first; removes the cgroup.
    public func finishStop(_ result: RunRecord.StopResult, event: RunEvent) throws {
        try update { record in
            try sink.record(event)
            record.stop = result
            if result.remainingProcesses == 0 {
                if record.state.canMove(to: .stopped) { record.state = .stopped }
                record.endedAtNanoseconds = record.endedAtNanoseconds ?? RunEvent.now()
            }
        }
        if result.remainingProcesses == 0 { settleIfEnded() }
    }

    /// running → exited: the agent's sandbox ended. Records `exited` with the exit code first.
    ///
    /// A run being stopped stays `stopping`: the stop protocol (maybe in another process) still reads
    /// the cgroup's counters, and its ``finishStop(_:event:)`` ends the run and removes the cgroup.
    public func recordExit(code: Int32, details: [String: String]) throws {
        let record = try update { record in
            var details = details
            details["exit_code"] = String(code)
            try sink.record(RunEvent(run: id, kind: .exited, actor: .supervisor, details: details))
            record.exitCode = code
            if record.state == .starting || record.state == .running {
                record.state = .exited
                record.endedAtNanoseconds = record.endedAtNanoseconds ?? RunEvent.now()
            }
        }
        if record.state.isFinal { settleIfEnded() }
    }

    /// Records the workspace review at the run's end (`workspace.review` first, then the record).
    public func recordReview(_ review: WorkspaceReview, actor: EventActor = .supervisor) throws {
        try update { record in
            try sink.record(
                RunEvent(
                    run: id, kind: .workspaceReview, actor: actor, subject: "workspace",
                    details: [
                        "findings": review.findings.joined(separator: "\n"), "count": String(review.findings.count),
                        "entries": String(review.entries),
                    ]))
            record.review = review.findings
        }
    }

    /// Extends an active run's lease by `length` from now (its own length if nil). Records
    /// `lease.renewed` first.
    ///
    /// - Returns: the new expiry, nanoseconds since the epoch.
    public func renewLease(by length: Duration?, actor: EventActor = .operator) throws -> Int64 {
        var expires: Int64 = 0
        try update { record in
            guard record.state.isActive else {
                throw WardenError(
                    code: .conflict,
                    message: "run \(id) is \(record.state.rawValue); only an active run's lease can be renewed")
            }
            guard var lease = record.lease else {
                throw WardenError(
                    code: .conflict, message: "run \(id) has no lease; start runs with --lease to use renew")
            }
            expires = RunEvent.now() + (length?.nanoseconds ?? lease.durationNanoseconds)
            try sink.record(
                RunEvent(run: id, kind: .leaseRenewed, actor: actor, details: ["expires_at_ns": String(expires)]))
            lease.expiresAtNanoseconds = expires
            record.lease = lease
        }
        return expires
    }

    /// The run was found active while its supervisor is dead and its cgroup empty (the kernel ended
    /// the sandbox with the supervisor): records `exited` with `supervisor_died`, once, and ends the
    /// record (`stopped` if a stop was under way, `failed` if it never started, else `exited`).
    ///
    /// - Returns: the record, reconciled or as it was.
    @discardableResult
    public func reconcile() -> RunRecord? {
        guard let before = try? current() else { return nil }
        guard before.isOrphaned else { return before }
        let note = "the supervisor (pid \(before.supervisorPID ?? 0)) died; the sandbox ended with it"
        let after = try? update { record in
            guard record.isOrphaned else { return }
            try sink.record(
                RunEvent(
                    run: id, kind: .exited, actor: .warden, details: ["supervisor_died": "true", "note": note]))
            record.state =
                switch record.state {
                case .stopping: .stopped
                case .starting: .failed
                default: .exited
                }
            record.endedAtNanoseconds = record.endedAtNanoseconds ?? RunEvent.now()
            record.warnings.append(note)
        }
        settleIfEnded()
        return after ?? before
    }

    // MARK: - Storage

    private static func require(_ record: RunRecord, in states: Set<RunState>, to action: String) throws {
        guard states.contains(record.state) else {
            throw WardenError(
                code: .conflict, message: "run \(record.id) is \(record.state.rawValue); cannot \(action)")
        }
    }

    /// Once the run has ended and nothing is left in its cgroup: removes the cgroup (the kernel refuses
    /// to remove a populated one), gives back its per-run identity, and — when its supervisor is gone,
    /// so will not — reviews the workspace for what the host might execute.
    private func settleIfEnded() {
        guard let record = try? current(), record.state.isFinal, record.cgroup?.isPopulated() != true else { return }
        record.cgroup?.remove()
        if let identity = record.identity { IdentityClaims(registry: registry).release(identity, of: id) }
        let supervised = record.supervisorPID.map {
            $0 == getpid() || ProcessIdentity.isAlive(pid: $0, startTime: record.supervisorStartTime)
        }
        if record.review == nil, record.agentPID != nil, supervised == false {
            try? recordReview(WorkspaceReview.review(record.workspace), actor: .warden)
        }
    }

    /// Read-modify-write under the run's lock; `body` records its event before changing the record.
    @discardableResult
    private func update(_ body: (inout RunRecord) throws -> Void) throws -> RunRecord {
        try FileIO.withExclusiveLock(registry.directory(for: id) + "/lock") {
            var record = try registry.load(id)
            let before = record.state
            try body(&record)
            guard before == record.state || before.canMove(to: record.state) else {
                throw WardenError(
                    code: .conflict,
                    message:
                        "run \(id): illegal transition \(before.rawValue) → \(record.state.rawValue); the record is unchanged"
                )
            }
            try write(record)
            return record
        }
    }

    private func write(_ record: RunRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // The audit log is the durable record; run.json is the registry's current view of it.
        try FileIO.writeAtomically(
            try encoder.encode(record), to: registry.directory(for: id) + "/run.json", durable: false)
    }
}
