import Foundation

/// What happened, in the vocabulary every sink and reader shares.
public enum EventKind: String, Codable, Sendable, CaseIterable {
    case started
    case layerApplied = "layer.applied"
    case layerDegraded = "layer.degraded"
    case warning
    case stopRequested = "stop.requested"
    case noticeSent = "notice.sent"
    case noticeIgnored = "notice.ignored"
    case killed
    case stopped
    case exited
    case tripwire
    /// The kernel refused the agent an operation (seccomp or Landlock), as its audit log reported.
    case denied
    case limitHit = "limit.hit"
    case leaseRenewed = "lease.renewed"
    case leaseExpired = "lease.expired"
    /// What the run left in its workspace that the host might execute or that raises privilege.
    case workspaceReview = "workspace.review"
    /// A door held a request for a person's decision (an `ask`).
    case approvalRequested = "approval.requested"
    /// A person approved or denied a held request.
    case approvalDecided = "approval.decided"
    /// A held request ran on its approval (once) or on a remembered grant.
    case approvalUsed = "approval.used"
    /// Nobody decided in time: silence is a denial.
    case approvalExpired = "approval.expired"
    /// A door decided a request (allow, deny or ask), recorded before it acts on it.
    case decision
    /// A connection through the egress door ended: bytes each way, duration, who closed it.
    case connectionClosed = "connection.closed"
    /// A budget of the egress door was reached: the connection was cut at it.
    case budgetHit = "budget.hit"
    /// The run's doors opened (the mediator is listening inside the run's network namespace).
    case mediatorStarted = "mediator.started"
    /// The mediator died: every door is closed.
    case mediatorLost = "mediator.lost"
    /// A running run's policies were swapped (`warden policy reload`).
    case policyReloaded = "policy.reloaded"
    /// A tool's definition is held back from the agent until a person approves it (changed since it
    /// was pinned, an approved definition under a new name, or new to a pinned server).
    case toolQuarantined = "tool.quarantined"
    /// A tool call through the tools door ended: the result's digest, size, duration, error.
    case toolResult = "tool.result"
    /// A model request through the model door ended: tokens, latency, findings, how it ended.
    case modelResponse = "model.response"
    /// The run's model was cut (`warden model cut`, `warden stop`): later requests are refused.
    case modelCut = "model.cut"

    /// Whether this event ends a run's record (the audit log signs a checkpoint at once after it).
    public var endsRun: Bool { self == .exited || self == .stopped }
}

/// Who caused an event.
public enum EventActor: String, Codable, Sendable, CaseIterable {
    /// The run's supervisor (layers, start, exit).
    case supervisor
    /// A person at a terminal: `warden stop`, `warden renew`, Ctrl-C.
    case `operator`
    /// The kernel itself: a seccomp or Landlock denial, a cgroup limit.
    case kernel
    /// A watched file changed, or a tamper stop.
    case tripwire
    /// The dead-man switch.
    case lease
    /// Warden noticing something after the fact (a supervisor that died).
    case warden
    /// The red-team harness (its off-switch under Warden is a stop).
    case redteam
    /// One of the mediated doors (egress, tools, model): its decisions and held requests.
    case gateway
    /// A person deciding a held request (`warden approve`, `warden deny`, the inline prompt).
    case approver
}

/// One recorded fact about a run.
///
/// Events are facts Warden observed itself (the kernel, the filesystem, its own actions), never the
/// agent's account of what it did. The audit log stores this form as is: kind, actor and subject are
/// columns, details its JSON object.
public struct RunEvent: Codable, Sendable, Equatable {
    /// Wall-clock time in nanoseconds since the Unix epoch (UTC).
    public var timeNanoseconds: Int64
    public var run: RunID
    public var kind: EventKind
    public var actor: EventActor
    /// What it was done to: the watched path, the layer, the operation denied; empty for the run itself.
    public var subject: String
    /// Kind-specific facts, e.g. `path`, `change`, `latency_ms` (a JSON object of strings).
    public var details: [String: String]

    public init(
        run: RunID, kind: EventKind, actor: EventActor, subject: String = "", details: [String: String] = [:],
        timeNanoseconds: Int64 = RunEvent.now()
    ) {
        self.timeNanoseconds = timeNanoseconds
        self.run = run
        self.kind = kind
        self.actor = actor
        self.subject = subject
        self.details = details
    }

    enum CodingKeys: String, CodingKey {
        case timeNanoseconds = "time_ns"
        case run, kind, actor, subject, details
    }

    /// The current wall-clock time in nanoseconds since the epoch.
    public static func now() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1e9).rounded())
    }

    /// RFC 3339 UTC with milliseconds, for people.
    public var timestamp: String {
        RunEvent.timestamp(timeNanoseconds)
    }

    /// `nanoseconds` since the epoch as RFC 3339 UTC with milliseconds.
    public static func timestamp(_ nanoseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(nanoseconds) / 1e9)
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
        return date.formatted(style)
    }
}

/// Where run events go and where they are read back from.
///
/// `record` returns only once the events are durable; a sink that cannot make them durable throws, and
/// the caller must not carry out the action they describe. The sandbox and the red team know only this
/// protocol; the command line (the composition root) picks the store behind it.
public protocol EventSink: Sendable {
    /// Records several events as one durable write (all or, on error, the caller must assume none).
    func record(contentsOf events: [RunEvent]) throws
    /// Every event recorded for `run`, in order.
    func events(of run: RunID) throws -> [RunEvent]
}

extension EventSink {
    public func record(_ event: RunEvent) throws {
        try record(contentsOf: [event])
    }
}

/// Opens the sink for an audit store location; what the registry is given instead of a store type.
public protocol EventSinkProvider: Sendable {
    /// The sink for `location`. Opening is lazy: an unreachable store fails the first `record`.
    func sink(at location: AuditStoreLocation) -> any EventSink
}
