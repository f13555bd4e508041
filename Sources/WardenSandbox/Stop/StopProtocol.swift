import CWardenLinux
import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The stop protocol: record the request → notice (SIGTERM to the agent's top process and a notice
/// file) → grace period → `cgroup.kill` → wait for `populated 0` → record the result.
///
/// It needs only the registry and the kernel, so `warden stop` in another terminal can run it while
/// the supervisor is hung or dead. Running it twice, or concurrently, is harmless.
public struct StopProtocol: Sendable {
    /// The notice file written into the workspace root when a stop begins.
    public static let noticeFileName = "WARDEN_STOP_NOTICE"

    public let ledger: RunLedger
    public var id: RunID { ledger.id }
    /// Who asked: the operator, the supervisor, the lease, a tripwire, the red-team harness.
    public let actor: EventActor

    /// A descriptor that, when readable, cuts the grace period short (-1: none).
    public let interruptFD: Int32

    public init(ledger: RunLedger, actor: EventActor, interruptFD: Int32 = -1) {
        self.ledger = ledger
        self.actor = actor
        self.interruptFD = interruptFD
    }

    /// A person's stop, from whichever front end (`warden stop`, `warden serve`): the run's model door is
    /// cut first (best effort: a run without one has nothing to cut), then the protocol runs.
    public func runCuttingModel(grace: Duration, reason: String, requestedBy: String? = nil) throws -> Outcome {
        if ledger.reconcile()?.state.isActive == true {
            _ = ToolsGatewayProcess.requestModelCut(
                runDirectory: ledger.registry.directory(for: id), reason: "the run is stopping: \(reason)")
        }
        return try run(grace: grace, reason: reason, requestedBy: requestedBy)
    }

    /// What the caller keeps observing while the stop waits (the supervisor reads tripwires and kernel
    /// denials during the grace period): descriptors to poll, and what to do when one is readable.
    public struct Observer {
        public var fileDescriptors: [Int32]
        public var onReadable: () -> Void

        public init(fileDescriptors: [Int32], onReadable: @escaping () -> Void) {
            self.fileDescriptors = fileDescriptors
            self.onReadable = onReadable
        }
    }

    /// What a stop achieved; `warden stop --json` prints it.
    public struct Outcome: Codable, Sendable {
        public var id: RunID
        public var stopped: Bool
        public var latencyMilliseconds: Double
        /// From the `cgroup.kill` write to an empty cgroup (zero when the agent exited on notice).
        public var killMilliseconds: Double
        public var remainingProcesses: Int
        public var killedProcesses: Int
        public var compliedWithNotice: Bool
        public var alreadyEnded: Bool
        public var warnings: [String]

        enum CodingKeys: String, CodingKey {
            case id, stopped
            case latencyMilliseconds = "latency_ms"
            case killMilliseconds = "kill_ms"
            case remainingProcesses = "remaining_processes"
            case killedProcesses = "killed_processes"
            case compliedWithNotice = "complied_with_notice"
            case alreadyEnded = "already_ended"
            case warnings
        }
    }

    /// Runs the protocol.
    ///
    /// - Parameters:
    ///   - grace: how long the agent has to exit after the notice; zero kills at once.
    ///   - reason: recorded with the request and in the notice file.
    /// - Returns: the outcome; `stopped` is true only when no process of the run remains.
    ///   - requestedBy: who asked, when more is known than the actor (the API's caller); recorded.
    public func run(grace: Duration, reason: String, requestedBy: String? = nil, observer: Observer? = nil) throws
        -> Outcome
    {
        guard let record = ledger.reconcile() else { throw WardenError(code: .notFound, message: "no run \(id)") }
        var warnings: [String] = []
        func log(_ kind: EventKind, subject: String = "", _ details: [String: String]) {
            do {
                try ledger.record(kind, actor: actor, subject: subject, details: details)
            } catch {
                // Stopping is the safe direction: a full disk must not keep an agent alive. Say so loudly.
                warnings.append("could not record \(kind.rawValue): \(error)")
            }
        }
        // A run that never got a cgroup, or has ended and left nothing, is already stopped.
        guard let cgroup = record.cgroup, record.state.isActive || cgroup.isPopulated() else {
            return Outcome(
                id: id, stopped: true, latencyMilliseconds: 0, killMilliseconds: 0, remainingProcesses: 0,
                killedProcesses: 0, compliedWithNotice: false, alreadyEnded: true, warnings: [])
        }
        let start = monotonicNanoseconds()
        do {
            try ledger.beginStop(actor: actor, reason: reason, grace: grace, requestedBy: requestedBy)
        } catch {
            // Stopping is the safe direction: a full disk must not keep an agent alive. Say so loudly.
            warnings.append("could not record stop.requested: \(error)")
        }

        var complied = false
        if grace > .zero {
            writeNotice(record: record, reason: reason, grace: grace, warnings: &warnings)
            let signalled = signalAgent(record: record, cgroup: cgroup, signal: SIGTERM)
            log(
                .noticeSent,
                ["signal": "SIGTERM", "pid": signalled.map(String.init) ?? "none", "file": record.noticeFile])
            complied = cgroup.waitUntilEmpty(timeout: grace, interruptFD: interruptFD, observer: observer)
            if !complied {
                log(.noticeIgnored, ["remaining_processes": String(cgroup.processIDs().count)])
            }
        }
        var killed = 0
        var killNanoseconds: Int64 = 0
        if !complied {
            let killStart = monotonicNanoseconds()
            defer { killNanoseconds = monotonicNanoseconds() - killStart }
            killed = cgroup.processIDs().count
            do {
                try cgroup.kill()
            } catch  where !cgroup.isPopulated() {
                // Emptied between the check and the write.
            }
            _ = cgroup.waitUntilEmpty(timeout: .seconds(10))
        }
        let latency = Double(monotonicNanoseconds() - start) / 1e6
        // Read the counters before anyone (the supervisor, seeing bubblewrap exit) removes the cgroup.
        let limits = cgroup.limitEvents()
        let remaining = cgroup.isPopulated() ? max(1, cgroup.processIDs().count) : 0
        if !complied {
            log(
                .killed,
                [
                    "processes": String(killed), "remaining_processes": String(remaining),
                    "kill_ms": String(format: "%.3f", Double(killNanoseconds) / 1e6),
                ])
        }

        recordTripwires(record: record) { kind, subject, details in log(kind, subject: subject, details) }
        if !limits.isEmpty { log(.limitHit, subject: "cgroup", limits) }
        let latencyText = String(format: "%.3f", latency)
        let stopped = RunEvent(
            run: id, kind: .stopped, actor: actor,
            details: [
                "reason": reason, "latency_ms": latencyText, "killed_processes": String(killed),
                "remaining_processes": String(remaining), "complied": String(complied),
            ])
        let result = RunRecord.StopResult(
            reason: reason, actor: actor, latencyMilliseconds: latency, killedProcesses: killed,
            remainingProcesses: remaining, compliedWithNotice: complied)
        do {
            try ledger.finishStop(result, event: stopped)
        } catch {
            warnings.append("could not record stopped: \(error)")
        }
        return Outcome(
            id: id, stopped: remaining == 0, latencyMilliseconds: latency,
            killMilliseconds: Double(killNanoseconds) / 1e6, remainingProcesses: remaining,
            killedProcesses: killed, compliedWithNotice: complied, alreadyEnded: false, warnings: warnings)
    }

    /// Records tripwire changes that the supervisor has not recorded already (it may be hung or dead).
    private func recordTripwires(
        record: RunRecord, log: (EventKind, String, [String: String]) -> Void
    ) {
        guard !record.tripwires.isEmpty else { return }
        let seen = Set(
            ((try? ledger.events()) ?? []).filter { $0.kind == .tripwire }.map {
                ($0.details["path"] ?? "") + "\u{0}" + ($0.details["change"] ?? "")
            })
        for incident in TripwireWatcher.compare(baselines: record.tripwires)
        where !seen.contains(incident.path + "\u{0}" + incident.change) {
            log(
                .tripwire, incident.path, ["path": incident.path, "change": incident.change, "detail": incident.detail])
        }
    }

    /// Writes the notice file into the workspace without following anything the agent put there.
    private func writeNotice(record: RunRecord, reason: String, grace: Duration, warnings: inout [String]) {
        let directory = open(record.workspace, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else {
            warnings.append("notice file: cannot open workspace \(record.workspace)")
            return
        }
        defer { close(directory) }
        unlinkat(directory, Self.noticeFileName, 0)
        let fd = openat(directory, Self.noticeFileName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            warnings.append("notice file: \(String(cString: strerror(errno)))")
            return
        }
        defer { close(fd) }
        let text = "warden: this run is being stopped (\(reason)); exit within \(DurationSpec.format(grace)).\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }

    /// Signals the agent's top process, but only if that pid still belongs to the run's cgroup (a pidfd
    /// pins the process, so a recycled pid cannot be hit).
    private func signalAgent(record: RunRecord, cgroup: RunCgroup, signal: Int32) -> Int32? {
        for pid in [record.agentPID, record.initPID].compactMap({ $0 }) {
            let pidfd = warden_pidfd_open(pid)
            guard pidfd >= 0 else { continue }
            defer { close(pidfd) }
            guard let membership = try? FileIO.readString("/proc/\(pid)/cgroup"),
                membership.split(separator: "\n").contains(where: {
                    $0.hasPrefix("0::") && $0.hasSuffix("/warden/" + id.rawValue)
                })
            else { continue }
            if warden_pidfd_send_signal(pidfd, signal) == 0 { return pid }
        }
        return nil
    }
}
