/// How a run reaches the network.
public enum NetworkMode: String, Codable, Sendable, CaseIterable {
    /// An empty network namespace: loopback only, nothing leaves.
    case none
    /// The host's network; unsafe, warned about and recorded.
    case host
    /// An empty network namespace whose only way out is Warden's egress door: every connection a
    /// Cedar decision (`--policy`), names resolved by Warden.
    case proxy
}

/// What Warden does when a tripwire fires.
public enum TamperAction: String, Codable, Sendable, CaseIterable {
    case record
    case stop
}

/// What the agent may read of the host's filesystem.
public enum ReadView: String, Codable, Sendable, CaseIterable {
    /// The system directories a program needs, the workspace and `--read` paths; secrets hidden.
    case minimal
    /// The whole host filesystem, read-only (the old default); an explicit, recorded downgrade.
    case host
}

/// The unprivileged host identity the agent runs as (`--user UID[:GID]`).
public struct AgentIdentity: Sendable, Equatable, Codable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32

    /// Warden's own agent identities, one per live run (uid = gid): above every range Debian, useradd
    /// and systemd allocate from (system and normal users, DynamicUser, nspawn's container ranges), so
    /// they own nothing on the host, and each run's per-user kernel limits (inotify instances, user
    /// namespaces, pending signals) are its own.
    public static let perRunRange: ClosedRange<UInt32> = 2_000_000_000...2_000_065_535
    /// The first of them (what `--explain` shows before a run has one).
    public static let `default` = AgentIdentity(uid: perRunRange.lowerBound, gid: perRunRange.lowerBound)

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }

    /// Parses `UID[:GID]` (GID defaults to UID); root is refused (that is `--allow-degraded root`).
    public init(parsing text: String, field: String) throws {
        let parts = text.trimmingSpaces().split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let uid = UInt32(parts[0]),
            let gid = parts.count == 2 ? UInt32(parts[1]) : uid, uid < UInt32.max, gid < UInt32.max
        else {
            throw WardenError.invalidInput(
                "\(field): '\(text)' is not UID[:GID]; give numbers, e.g. 1000:1000, or auto for a uid of the run's own"
            )
        }
        guard uid != 0, gid != 0 else {
            throw WardenError.invalidInput(
                "\(field): the agent cannot be root (uid or gid 0); pass --allow-degraded root to run it as host root")
        }
        self.init(uid: uid, gid: gid)
    }

    public var description: String { "\(uid):\(gid)" }
}

/// Who the agent runs as: a host identity of its own for each run (the default), or one the operator
/// names (`--user UID[:GID]`), which every run given it shares, with its per-user kernel limits.
public enum AgentUser: Sendable, Equatable, CustomStringConvertible {
    case perRun
    case fixed(AgentIdentity)

    /// Parses `auto` or `UID[:GID]`.
    public init(parsing text: String, field: String) throws {
        if text.trimmingSpaces().lowercased() == "auto" {
            self = .perRun
        } else {
            self = .fixed(try AgentIdentity(parsing: text, field: field))
        }
    }

    public var description: String {
        switch self {
        case .perRun: "auto"
        case .fixed(let identity): identity.description
        }
    }
}

/// A confinement layer, as named by `--allow-degraded` and in `warden inspect`.
public enum Layer: String, Codable, Sendable, CaseIterable {
    case cgroup
    case limits
    case bubblewrap
    /// The agent is an unprivileged host identity (`--allow-degraded root` runs it as host root).
    case identity
    /// The minimal read view (`--view host` restores the whole host, read-only).
    case view
    case seccomp
    case landlock
    /// The egress door (`--network proxy`): the mediator listening inside the run's network namespace.
    case egress
    /// The tools door (`[mcp.servers]`): the MCP gateway and each server's own sandbox.
    case tools
    /// The model door (`[models]`): an OpenAI-/Anthropic-compatible endpoint on the sandbox's loopback.
    case model

    /// The layers an operator may explicitly run without. The cgroup is the off-switch and bubblewrap
    /// provides the namespaces that hide it; without either there is nothing left to degrade to.
    public static let degradable: [Layer] = [.limits, .identity, .seccomp, .landlock]

    /// The name `--allow-degraded` takes for a layer: `root` for running without the agent identity.
    public var degradedName: String { self == .identity ? "root" : rawValue }

    /// Parses a layer name given to `--allow-degraded`.
    public init(degradable text: String, field: String) throws {
        let lowered = text.lowercased()
        guard let layer = lowered == "root" ? .identity : Layer(rawValue: lowered) else {
            throw WardenError.invalidInput(
                "\(field): unknown layer '\(text)'; layers that may be degraded: \(Layer.degradable.map(\.degradedName).joined(separator: ", "))"
            )
        }
        guard Layer.degradable.contains(layer) else {
            throw WardenError.invalidInput(
                "\(field): the \(layer.rawValue) layer cannot be degraded: it is what makes the off-switch work"
            )
        }
        self = layer
    }
}

/// Everything that configures one run, after the profile and the flags are merged.
public struct RunProfile: Sendable, Equatable {
    public var name: String?
    public var workspace: String?
    public var network: NetworkMode = .none
    /// `pids.max`; nil means the kernel's limit.
    public var pidsMax: Int? = 4096
    public var memoryMax: ByteSize = .unlimited
    /// CPUs the run may use (0.5 is half of one CPU); nil means no limit.
    public var cpuMax: Double?
    /// Paths kept read-only even inside the workspace; relative paths are relative to the workspace.
    public var protect: [String] = []
    /// Paths replaced by an empty directory (or an empty file) inside the sandbox.
    public var hide: [String] = []
    /// Files watched from outside; relative paths are relative to the workspace.
    public var tripwires: [String] = []
    public var onTamper: TamperAction = .record
    public var grace: Duration = .seconds(5)
    public var lease: Duration?
    public var allowDegraded: Set<Layer> = []
    /// Extra environment variable names passed through to the agent, beyond the fixed allowlist.
    public var passEnvironment: [String] = []
    /// The command, when the profile names one and the command line does not.
    public var command: [String] = []
    /// Where the run's events are recorded.
    public var auditStore: AuditStoreLocation = .stateDirectory
    /// The host identity the agent runs as.
    public var user: AgentUser = .perRun
    /// Paths added read-only to the view (`--read`).
    public var read: [String] = []
    public var view: ReadView = .minimal
    /// Most bytes of a detached run's output kept in the state directory (the latest ones).
    public var outputMax: ByteSize = ByteSize(bytes: 16 << 20)
    /// The egress door's policies, pins and budgets (used with `network = "proxy"`).
    public var egress = EgressSettings()
    /// The tools door's MCP servers (`[mcp.servers.NAME]`), by name.
    public var toolServers: [ToolServerSettings] = []
    /// The model door's upstreams (`[models.NAME]`), budgets and records.
    public var models = ModelDoorSettings()

    public init() {}

    /// Overlays `overrides`: scalars set there win; lists are combined, so a flag can only add protection.
    public func merged(with overrides: RunProfileOverrides) -> RunProfile {
        var result = self
        if let value = overrides.name { result.name = value }
        if let value = overrides.workspace { result.workspace = value }
        if let value = overrides.network { result.network = value }
        if let value = overrides.pidsMax { result.pidsMax = value.count }
        if let value = overrides.memoryMax { result.memoryMax = value }
        if let value = overrides.cpuMax { result.cpuMax = value }
        if let value = overrides.onTamper { result.onTamper = value }
        if let value = overrides.grace { result.grace = value }
        if let value = overrides.lease { result.lease = value }
        if let value = overrides.command, !value.isEmpty { result.command = value }
        if let value = overrides.auditStore { result.auditStore = value }
        if let value = overrides.user { result.user = value }
        if let value = overrides.view { result.view = value }
        if let value = overrides.outputMax { result.outputMax = value }
        result.egress.policies = Self.union(result.egress.policies, overrides.policies)
        if let value = overrides.entities { result.egress.entities = value }
        result.egress.resolve.merge(overrides.resolve) { $1 }
        for (name, server) in overrides.toolServers.sorted(by: { $0.key < $1.key }) {
            result.toolServers.removeAll { $0.name == name }
            result.toolServers.append(server)
        }
        if let value = overrides.egressBytesMax { result.egress.egressBytesMax = value.bytes }
        if let value = overrides.connectionBytesMax { result.egress.connectionBytesMax = value.bytes }
        if let value = overrides.connectionsMax { result.egress.connectionsMax = value }
        if let value = overrides.onBudget {
            result.egress.onBudget = value
            result.models.onBudget = value
        }
        for (name, upstream) in overrides.models.sorted(by: { $0.key < $1.key }) {
            result.models.upstreams.removeAll { $0.name == name }
            result.models.upstreams.append(upstream)
        }
        if let value = overrides.modelTokensMax { result.models.tokensMax = value }
        if let value = overrides.modelRequestsMax { result.models.requestsMax = value }
        if let value = overrides.logBodies { result.models.logBodies = value }
        if let value = overrides.modelClassify { result.models.classify = value }
        if let value = overrides.onMediatorLoss { result.egress.onMediatorLoss = value }
        if let value = overrides.approvalTimeout { result.egress.approvalTimeout = value }
        if let value = overrides.decisionRecords { result.egress.decisionRecords = value }
        result.read = Self.union(result.read, overrides.read)
        result.protect = Self.union(result.protect, overrides.protect)
        result.hide = Self.union(result.hide, overrides.hide)
        result.tripwires = Self.union(result.tripwires, overrides.tripwires)
        result.passEnvironment = Self.union(result.passEnvironment, overrides.passEnvironment)
        result.allowDegraded.formUnion(overrides.allowDegraded)
        return result
    }

    private static func union(_ a: [String], _ b: [String]) -> [String] {
        var seen = Set(a)
        return a + b.filter { seen.insert($0).inserted }
    }
}

/// A `pids.max` setting: a number of processes, or `max` for the kernel's own limit.
public enum ProcessLimit: Equatable, Sendable {
    case unlimited
    case limit(Int)

    /// The number, or nil when unlimited.
    public var count: Int? {
        if case .limit(let n) = self { return n }
        return nil
    }
}

/// A partial profile: what one source (a TOML file, the command line) sets.
public struct RunProfileOverrides: Sendable, Equatable {
    public var name: String?
    public var workspace: String?
    public var network: NetworkMode?
    public var pidsMax: ProcessLimit?
    public var memoryMax: ByteSize?
    public var cpuMax: Double?
    public var protect: [String] = []
    public var hide: [String] = []
    public var tripwires: [String] = []
    public var onTamper: TamperAction?
    public var grace: Duration?
    public var lease: Duration?
    public var allowDegraded: Set<Layer> = []
    public var passEnvironment: [String] = []
    public var command: [String]?
    public var auditStore: AuditStoreLocation?
    public var user: AgentUser?
    public var read: [String] = []
    public var view: ReadView?
    public var outputMax: ByteSize?
    /// Cedar policy files (absolute paths); lists combine.
    public var policies: [String] = []
    public var entities: String?
    public var resolve: [String: String] = [:]
    public var egressBytesMax: ByteSize?
    public var connectionBytesMax: ByteSize?
    public var connectionsMax: Int?
    public var onBudget: BudgetAction?
    public var onMediatorLoss: MediatorLossAction?
    public var approvalTimeout: Duration?
    public var decisionRecords: DecisionRecords?
    /// `[mcp.servers.NAME]`: the tools door's servers, by name.
    public var toolServers: [String: ToolServerSettings] = [:]
    /// `[models.NAME]`: the model door's upstreams, by name.
    public var models: [String: ModelUpstreamSettings] = [:]
    public var modelTokensMax: Int64?
    public var modelRequestsMax: Int64?
    public var logBodies: Bool?
    public var modelClassify: Bool?

    public init() {}

    /// Only tool servers (what an `--mcp` file may hold).
    public init(toolServers: [String: ToolServerSettings]) { self.toolServers = toolServers }
}

extension RunProfileOverrides {
    /// Parses a `pids.max` value: a number of processes, or `max`.
    public static func parsePidsMax(_ text: String, field: String) throws -> ProcessLimit {
        let trimmed = text.trimmingSpaces()
        if trimmed == "max" { return .unlimited }
        guard let value = Int(trimmed), value >= 1, value <= 4_194_304 else {
            throw WardenError.invalidInput(
                "\(field): '\(text)' is not a process count; give a number from 1 to 4194304, or max")
        }
        return .limit(value)
    }

    /// Validates a CPU fraction (number of CPUs).
    public static func parseCPU(_ text: String, field: String) throws -> Double {
        guard let value = Double(text.trimmingSpaces()), value.isFinite, value >= 0.01, value <= 4096 else {
            throw WardenError.invalidInput(
                "\(field): '\(text)' is not a CPU fraction; give the number of CPUs the run may use, e.g. 0.5 or 2"
            )
        }
        return value
    }
}
