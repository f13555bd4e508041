import WardenCore

/// What the registry knows about one run; `warden inspect` prints it. Only ``RunLedger`` writes it.
public struct RunRecord: Codable, Sendable {
    public typealias State = RunState

    public struct LayerStatus: Codable, Sendable, Equatable {
        public enum Status: String, Codable, Sendable { case applied, degraded }
        public var layer: Layer
        public var status: Status
        public var detail: String
    }

    public struct Lease: Codable, Sendable {
        public var durationNanoseconds: Int64
        public var expiresAtNanoseconds: Int64
    }

    public struct StopResult: Codable, Sendable {
        public var reason: String
        public var actor: EventActor
        public var latencyMilliseconds: Double
        public var killedProcesses: Int
        public var remainingProcesses: Int
        public var compliedWithNotice: Bool
    }

    public var id: RunID
    public var name: String
    public var state: State
    public var command: [String]
    public var workspace: String
    public var network: NetworkMode
    /// The host identity the agent runs as; nil: host root (`--allow-degraded root`).
    public var identity: AgentIdentity?
    /// The workspace's owner on the host, whom the agent's files belong to.
    public var workspaceOwner: AgentIdentity
    public var view: ReadView
    /// What the agent can read besides the workspace (host directories; `/` with `--view host`).
    public var readView: [String]
    /// Paths hidden inside the view (Warden's state, `--hide`, secrets under /etc).
    public var hidden: [String]
    /// What the run left in its workspace that the host might execute (``WorkspaceReview``).
    public var review: [String]?
    public var createdAtNanoseconds: Int64
    public var endedAtNanoseconds: Int64?
    public var supervisorPID: Int32?
    /// The supervisor's start time (clock ticks since boot), so a recycled pid is not mistaken for it.
    public var supervisorStartTime: UInt64?
    /// The outer bubblewrap process (the supervisor's child).
    public var bubblewrapPID: Int32?
    /// The sandbox's PID-namespace init, as the host sees it.
    public var initPID: Int32?
    /// The agent's top process, as the host sees it.
    public var agentPID: Int32?
    public var cgroup: RunCgroup?
    public var layers: [LayerStatus]
    public var lease: Lease?
    public var graceNanoseconds: Int64
    public var onTamper: TamperAction
    /// Where this run's events are recorded; every process that records for the run uses it.
    public var auditStore: AuditStoreLocation
    public var tripwires: [TripwireBaseline]
    public var noticeFile: String
    public var stop: StopResult?
    public var exitCode: Int32?
    public var warnings: [String]

    public init(id: RunID, plan: RunPlan) {
        self.id = id
        self.name = plan.name
        self.state = .starting
        self.command = plan.command
        self.workspace = plan.workspace
        self.network = plan.network
        self.identity = plan.identity
        self.workspaceOwner = plan.workspaceOwner
        self.view = plan.view
        self.readView = plan.view == .host ? ["/"] : plan.viewLayout.entries.map(\.description) + plan.read
        self.hidden = plan.hiddenPaths()
        self.createdAtNanoseconds = RunEvent.now()
        self.layers = []
        self.graceNanoseconds = plan.grace.nanoseconds
        self.onTamper = plan.onTamper
        self.tripwires = []
        self.noticeFile = plan.workspace + "/" + StopProtocol.noticeFileName
        self.auditStore = plan.auditStore
        self.warnings = []
        if let lease = plan.lease {
            self.lease = Lease(
                durationNanoseconds: lease.nanoseconds, expiresAtNanoseconds: createdAtNanoseconds + lease.nanoseconds)
        }
    }
}
