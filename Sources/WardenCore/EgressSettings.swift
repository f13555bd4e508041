import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the egress door does when a run reaches one of its byte or connection budgets.
public enum BudgetAction: String, Codable, Sendable, CaseIterable {
    /// Cut the connection at the budget and record it; the run goes on.
    case record
    /// Cut it, record it, and stop the run.
    case stop
}

/// What happens to a run whose mediator (the process behind its doors) dies.
public enum MediatorLossAction: String, Codable, Sendable, CaseIterable {
    /// The doors are closed (the sandbox has only loopback); record it and stop the run.
    case stop
    /// The doors are closed; record it and let the agent go on, confined.
    case record
}

/// When a door's decision record is durable, relative to the action it records.
public enum DecisionRecords: String, Codable, Sendable, CaseIterable {
    /// Committed to the audit log (fsync) before the connection is made: survives a host crash.
    case commit
    /// Appended to the run's journal before the connection is made and committed within about a
    /// millisecond, in batches: survives the mediator's death, not a host crash in that moment.
    case journal
}

/// The egress door's configuration (`--network proxy`): the Cedar policies that decide every
/// connection, the names Warden resolves itself, and the budgets.
public struct EgressSettings: Sendable, Equatable, Codable {
    /// `.cedar` files, absolute paths.
    public var policies: [String] = []
    /// Cedar entity JSON, absolute path.
    public var entities: String?
    /// `NAME=ADDRESS` pins, as curl's `--resolve` (lower-case names).
    public var resolve: [String: String] = [:]
    /// Bytes the run may send out in all (upload), over every connection.
    public var egressBytesMax: UInt64?
    /// Bytes one connection may carry, either way.
    public var connectionBytesMax: UInt64?
    /// Connections the run may hold open at once (the door refuses more).
    public var connectionsMax: Int = 256
    public var onBudget: BudgetAction = .record
    public var onMediatorLoss: MediatorLossAction = .stop
    public var decisionRecords: DecisionRecords = .commit
    /// How long an `ask` waits for a person; silence is a denial.
    public var approvalTimeout: Duration = .seconds(120)

    public init() {}

    enum CodingKeys: String, CodingKey {
        case policies, entities, resolve
        case egressBytesMax = "egress_bytes_max"
        case connectionBytesMax = "connection_bytes_max"
        case connectionsMax = "connections_max"
        case onBudget = "on_budget"
        case onMediatorLoss = "on_mediator_loss"
        case decisionRecords = "decision_records"
        case approvalTimeoutMilliseconds = "approval_timeout_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        policies = try c.decode([String].self, forKey: .policies)
        entities = try c.decodeIfPresent(String.self, forKey: .entities)
        resolve = try c.decode([String: String].self, forKey: .resolve)
        egressBytesMax = try c.decodeIfPresent(UInt64.self, forKey: .egressBytesMax)
        connectionBytesMax = try c.decodeIfPresent(UInt64.self, forKey: .connectionBytesMax)
        connectionsMax = try c.decode(Int.self, forKey: .connectionsMax)
        onBudget = try c.decode(BudgetAction.self, forKey: .onBudget)
        onMediatorLoss = try c.decode(MediatorLossAction.self, forKey: .onMediatorLoss)
        decisionRecords = try c.decodeIfPresent(DecisionRecords.self, forKey: .decisionRecords) ?? .commit
        approvalTimeout = .milliseconds(try c.decode(Int64.self, forKey: .approvalTimeoutMilliseconds))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(policies, forKey: .policies)
        try c.encodeIfPresent(entities, forKey: .entities)
        try c.encode(resolve, forKey: .resolve)
        try c.encodeIfPresent(egressBytesMax, forKey: .egressBytesMax)
        try c.encodeIfPresent(connectionBytesMax, forKey: .connectionBytesMax)
        try c.encode(connectionsMax, forKey: .connectionsMax)
        try c.encode(onBudget, forKey: .onBudget)
        try c.encode(onMediatorLoss, forKey: .onMediatorLoss)
        try c.encode(decisionRecords, forKey: .decisionRecords)
        try c.encode(approvalTimeout.nanoseconds / 1_000_000, forKey: .approvalTimeoutMilliseconds)
    }

    /// Parses one `--resolve NAME=ADDRESS`: a host name and an IPv4 or IPv6 literal.
    public static func parseResolve(_ text: String, field: String) throws -> (name: String, address: String) {
        let parts = text.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces() }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, IPLiteral.isValid(parts[1]) else {
            throw WardenError.invalidInput(
                "\(field): '\(text)' is not NAME=ADDRESS; give a host name and an IP address, e.g. pypi.internal=10.0.0.5"
            )
        }
        guard HostName.isValid(parts[0]) else {
            throw WardenError.invalidInput("\(field): '\(parts[0])' is not a host name")
        }
        return (parts[0].lowercased(), parts[1])
    }
}

/// Host-name syntax (RFC 1123 labels), shared by the door and the flags that name hosts.
public enum HostName {
    public static func isValid(_ name: String) -> Bool {
        var text = Substring(name)
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { c in
                    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
                        || c == 0x5F
                }
        }
    }
}

/// IP literal syntax, through the C library's own parser.
public enum IPLiteral {
    public static func isValid(_ text: String) -> Bool { bytes(text) != nil }

    /// The address's bytes (4 or 16), or nil when `text` is not an IPv4 or IPv6 literal.
    public static func bytes(_ text: String) -> [UInt8]? {
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
        return nil
    }
}

/// What the supervisor tells a run's mediator (`warden __mediator`), as JSON in the run's directory.
public struct MediatorConfiguration: Sendable, Codable, Equatable {
    public var run: RunID
    /// The principal's attributes: the run's name, its profile file (or ""), its command.
    public var name: String
    public var profile: String
    public var command: [String]
    public var stateDirectory: String
    public var auditStore: AuditStoreLocation
    public var egress: EgressSettings

    public init(
        run: RunID, name: String, profile: String, command: [String], stateDirectory: String,
        auditStore: AuditStoreLocation, egress: EgressSettings
    ) {
        self.run = run
        self.name = name
        self.profile = profile
        self.command = command
        self.stateDirectory = stateDirectory
        self.auditStore = auditStore
        self.egress = egress
    }

    /// Where a run's configuration lives: `mediator.json` in its directory (written by the supervisor and
    /// by `warden policy reload`, read by the mediator at start and on SIGHUP).
    public static func path(runDirectory: String) -> String { runDirectory + "/mediator.json" }

    /// The door's decision journal under `decision_records = "journal"` (``EventJournal``): written by
    /// the mediator, read back by the supervisor once the mediator is gone.
    public static func journalPath(runDirectory: String) -> String { runDirectory + "/egress.journal" }

    /// The file's bytes.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(self)
    }

    /// Reads the file at `path`.
    public static func load(_ path: String) throws -> MediatorConfiguration {
        try JSONDecoder().decode(MediatorConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The ports inside the sandbox: the HTTP proxy, SOCKS5 and DNS on 127.0.0.1.
    public static let httpProxyPort = 3128
    public static let socksPort = 1080
    public static let dnsPort = 53
    /// Ports the transparent listeners always take (besides those the policies name).
    public static let transparentPorts = [80, 443]
}
