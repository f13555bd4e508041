/// How a run reaches the network.
public enum NetworkMode: String, Codable, Sendable, CaseIterable {
    /// An empty network namespace: loopback only, nothing leaves.
    case none
    /// The host's network; unsafe, warned about and recorded.
    case host
}

/// What Warden does when a tripwire fires.
public enum TamperAction: String, Codable, Sendable, CaseIterable {
    case record
    case stop
}

/// A confinement layer, as named by `--allow-degraded` and in `warden inspect`.
public enum Layer: String, Codable, Sendable, CaseIterable {
    case cgroup
    case limits
    case bubblewrap
    case seccomp
    case landlock

    /// The layers an operator may explicitly run without. The cgroup is the off-switch and bubblewrap
    /// provides the namespaces that hide it; without either there is nothing left to degrade to.
    public static let degradable: [Layer] = [.limits, .seccomp, .landlock]

    /// Parses a layer name given to `--allow-degraded`.
    public init(degradable text: String, field: String) throws {
        guard let layer = Layer(rawValue: text.lowercased()) else {
            throw WardenError.invalidInput(
                "\(field): unknown layer '\(text)'; layers that may be degraded: \(Layer.degradable.map(\.rawValue).joined(separator: ", "))"
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

    public init() {}
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
