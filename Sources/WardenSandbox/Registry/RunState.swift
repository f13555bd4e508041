/// Where a run is in its life; ``RunLedger`` performs every transition.
///
/// ```
/// starting ──▶ running ──▶ stopping ──▶ stopped
///    │            │            ▲
///    │            └──▶ exited  │ (a stop may begin while the run starts)
///    ├─────────────────────────┘
///    └──▶ failed ◀── stopping (a start that failed while a stop began)
/// ```
/// `exited`: the agent ended by itself (or with its supervisor); `stopped`: the stop protocol emptied
/// the run's cgroup; `failed`: Warden refused to start it. The three are final.
public enum RunState: String, Codable, Sendable, CaseIterable {
    case starting, running, stopping, stopped, exited, failed

    /// Whether the run can still have processes.
    public var isActive: Bool { self == .starting || self == .running || self == .stopping }

    /// Whether the run's record is finished.
    public var isFinal: Bool { !isActive }

    /// The states this one may move to.
    public var successors: Set<RunState> {
        switch self {
        case .starting: [.running, .stopping, .failed]
        case .running: [.stopping, .exited]
        case .stopping: [.stopped, .failed]
        case .stopped, .exited, .failed: []
        }
    }

    public func canMove(to next: RunState) -> Bool { successors.contains(next) }
}
