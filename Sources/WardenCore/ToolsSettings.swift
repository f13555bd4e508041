import Foundation

/// How far the operator trusts a tool server's output (the next issue's taint labels start here).
public enum ToolTrust: String, Codable, Sendable, CaseIterable {
    case trusted, untrusted
}

/// What the tools door does with a poisoned tool definition.
public enum PoisonedToolAction: String, Codable, Sendable, CaseIterable {
    case quarantine, record
}

/// One operator's MCP server behind the tools door (profile `[mcp.servers.NAME]`).
public struct ToolServerSettings: Sendable, Equatable, Codable {
    public var name: String
    /// The stdio server's command line (empty for a Streamable HTTP server).
    public var command: [String]
    /// A Streamable HTTP server's endpoint (`https://…/mcp`), reached under the run's egress policies.
    public var url: String?
    /// Headers Warden adds to each request to a `url` server (never shown to the agent).
    public var headers: [String: String] = [:]
    /// The environment variable (of the `warden run`, outside the sandbox) holding a bearer token
    /// Warden sends to a `url` server as `Authorization: Bearer …`.
    public var bearerTokenEnvironment: String?
    /// Record only the digests of this server's call arguments, not the arguments themselves.
    public var redact = false
    /// A stdio server's own sandbox: its network (`none`, the default, or `proxy` under `policies`).
    public var network: NetworkMode = .none
    /// With `network = "proxy"`: the Cedar policies deciding the server's own connections.
    public var policies: [String] = []
    /// Paths its sandbox sees empty (weights, secrets) besides Warden's defaults.
    public var hide: [String] = []
    public var trust: ToolTrust
    /// Labels of all its tools (`untrusted_output`, `sensitive_output`, `external_sink`, or the
    /// operator's own); `tool_labels` adds some per tool.
    public var labels: [String]
    /// Labels per tool (profile `[mcp.servers.NAME.tools.TOOL] labels = [...]`).
    public var toolLabels: [String: [String]] = [:]
    /// Datamark this server's untrusted output before the agent sees it (spotlighting).
    public var spotlight = false
    /// Run the classifier (MiniLM and the injection head) on this server's results too; the gateway
    /// refuses to start when it cannot (fails closed).
    public var classify = false
    /// A tool whose definition carries instructions for the model (tool poisoning): `quarantine`d
    /// (hidden, calls denied; the default) or only `record`ed (an explicit downgrade).
    public var onPoisoned: PoisonedToolAction = .quarantine
    /// How long one request to it may take.
    public var timeout: Duration
    /// Host paths its sandbox may read besides the system directories (its program, its data).
    public var read: [String] = []

    public init(
        name: String, command: [String], trust: ToolTrust = .untrusted, labels: [String] = [],
        timeout: Duration = .seconds(60)
    ) {
        self.name = name
        self.command = command
        self.trust = trust
        self.labels = labels
        self.timeout = timeout
    }

    enum CodingKeys: String, CodingKey {
        case name, command, trust, labels, read, url, headers, redact, network, policies, hide, spotlight
        case toolLabels = "tool_labels"
        case onPoisoned = "on_poisoned"
        case classify
        case timeoutMilliseconds = "timeout_ms"
        case bearerTokenEnvironment = "bearer_token_env"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        command = try c.decode([String].self, forKey: .command)
        trust = try c.decode(ToolTrust.self, forKey: .trust)
        labels = try c.decode([String].self, forKey: .labels)
        timeout = .milliseconds(try c.decode(Int64.self, forKey: .timeoutMilliseconds))
        read = try c.decodeIfPresent([String].self, forKey: .read) ?? []
        url = try c.decodeIfPresent(String.self, forKey: .url)
        headers = try c.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
        bearerTokenEnvironment = try c.decodeIfPresent(String.self, forKey: .bearerTokenEnvironment)
        redact = try c.decodeIfPresent(Bool.self, forKey: .redact) ?? false
        network = try c.decodeIfPresent(NetworkMode.self, forKey: .network) ?? .none
        policies = try c.decodeIfPresent([String].self, forKey: .policies) ?? []
        hide = try c.decodeIfPresent([String].self, forKey: .hide) ?? []
        toolLabels = try c.decodeIfPresent([String: [String]].self, forKey: .toolLabels) ?? [:]
        spotlight = try c.decodeIfPresent(Bool.self, forKey: .spotlight) ?? false
        onPoisoned = try c.decodeIfPresent(PoisonedToolAction.self, forKey: .onPoisoned) ?? .quarantine
        classify = try c.decodeIfPresent(Bool.self, forKey: .classify) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(command, forKey: .command)
        try c.encode(trust, forKey: .trust)
        try c.encode(labels, forKey: .labels)
        try c.encode(read, forKey: .read)
        try c.encode(timeout.nanoseconds / 1_000_000, forKey: .timeoutMilliseconds)
        try c.encodeIfPresent(url, forKey: .url)
        if !headers.isEmpty { try c.encode(headers, forKey: .headers) }
        try c.encodeIfPresent(bearerTokenEnvironment, forKey: .bearerTokenEnvironment)
        if redact { try c.encode(redact, forKey: .redact) }
        if network != .none { try c.encode(network, forKey: .network) }
        if !policies.isEmpty { try c.encode(policies, forKey: .policies) }
        if !hide.isEmpty { try c.encode(hide, forKey: .hide) }
        if !toolLabels.isEmpty { try c.encode(toolLabels, forKey: .toolLabels) }
        if spotlight { try c.encode(spotlight, forKey: .spotlight) }
        if onPoisoned != .quarantine { try c.encode(onPoisoned, forKey: .onPoisoned) }
        if classify { try c.encode(classify, forKey: .classify) }
    }

    /// Checks that the server is one of the two kinds (a command or a URL) and its URL is one Warden
    /// can reach.
    /// - Throws: ``WardenError`` naming the key and the fix.
    public func validate() throws {
        let key = "mcp.servers.\(name)"
        switch (command.isEmpty, url) {
        case (true, nil):
            throw WardenError.invalidInput(
                "\(key): give command = [\"program\", \"arg\"] (a stdio server) or url = \"https://host/mcp\" (Streamable HTTP)"
            )
        case (false, .some):
            throw WardenError.invalidInput("\(key): give command or url, not both")
        case (true, .some(let url)):
            if network != .none || !policies.isEmpty || !hide.isEmpty {
                throw WardenError.invalidInput(
                    "\(key): network, policies and hide shape a stdio server's sandbox; a url server runs nowhere here")
            }
            guard let parts = URLComponents(string: url), let scheme = parts.scheme,
                scheme == "https" || scheme == "http",
                let host = parts.host, !host.isEmpty
            else {
                throw WardenError.invalidInput(
                    "\(key).url: '\(url)' is not an http(s) URL; e.g. https://tools.example/mcp")
            }
        case (false, nil):
            if network == .host {
                throw WardenError.invalidInput(
                    "\(key).network: a tool server's sandbox is \"none\" (the default) or \"proxy\" (its own policies decide its connections); \"host\" is refused"
                )
            }
            if !policies.isEmpty && network != .proxy {
                throw WardenError.invalidInput("\(key).policies: they decide a proxy network; add network = \"proxy\"")
            }
            if bearerTokenEnvironment != nil || !headers.isEmpty {
                throw WardenError.invalidInput(
                    "\(key): headers and bearer_token_env are for a url server; a stdio server gets its secrets from its own environment"
                )
            }
        }
    }

    /// A server name the agent's tool names can carry (`server__tool`): letters, digits, `-`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && !name.contains("__")
            && name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
            }
    }
}

/// What `warden __tools-gateway` is started with (JSON): the tools door on its own, speaking MCP to
/// the agent on its standard input and output.
public struct ToolsGatewayConfiguration: Sendable, Codable, Equatable {
    public var run: RunID
    public var policies: [String]
    public var entities: String?
    public var servers: [ToolServerSettings]
    /// What `roots/list` answers servers with (the workspace).
    public var roots: [String]
    public var stateDirectory: String
    public var auditStore: AuditStoreLocation
    public var admitNewTools: Bool

    public init(
        run: RunID, policies: [String], entities: String? = nil, servers: [ToolServerSettings], roots: [String],
        stateDirectory: String, auditStore: AuditStoreLocation = .stateDirectory, admitNewTools: Bool = false
    ) {
        self.run = run
        self.policies = policies
        self.entities = entities
        self.servers = servers
        self.roots = roots
        self.stateDirectory = stateDirectory
        self.auditStore = auditStore
        self.admitNewTools = admitNewTools
    }

    /// Where the gateway listens (a Unix socket in the run's directory), when started for a run.
    public var listen: String?
    /// How long an `ask` waits for a person (the run's approval timeout); silence is a denial.
    public var approvalTimeoutMilliseconds: Int64 = 120_000
    /// A loopback address and port for the Streamable HTTP endpoint (`127.0.0.1:PORT`), when the
    /// gateway runs on its own; a run's gateway is told its socket in the sandbox's loopback instead.
    public var httpListen: String?
    /// Whether a run's supervisor will ask for the endpoint in the sandbox's network namespace.
    public var httpInSandbox = false
    /// Names pinned to addresses (the run's `resolve`), for `url` servers.
    public var resolve: [String: String] = [:]
    /// Where the gateway writes what the agent is shown and why (`warden mcp ls RUN`).
    public var catalog: String?
    /// How the door's decisions are made durable: `commit` (before each call) or `journal` (one write
    /// to `journal` before the call, committed just after; what a killed gateway journaled is committed
    /// by the supervisor).
    public var decisionRecords: DecisionRecords = .commit
    public var journal: String?
    /// The tools door's journal in a run's directory.
    public static func journalPath(runDirectory: String) -> String { runDirectory + "/tools.journal" }
    /// The model door's upstreams and budgets (the same process hosts it); nil: no model door.
    public var models: ModelDoorSettings?
    /// A loopback address for the model door when the gateway runs on its own (`127.0.0.1:PORT`).
    public var modelListen: String?
    /// The run's directory (where `warden model cut` leaves its marker).
    public var runDirectory: String?

    /// The socket's directory is bound read-only at /run/warden inside the sandbox.
    public static let directoryInSandbox = "/run/warden"
    public static let socketInSandbox = directoryInSandbox + "/mcp.sock"
    /// The Streamable HTTP endpoint on the sandbox's loopback.
    public static let httpPortInSandbox: UInt16 = 8931
    public static let urlInSandbox = "http://127.0.0.1:\(httpPortInSandbox)/mcp"
    /// What the gateway writes for `warden mcp ls RUN`, in the run's directory.
    public static let catalogFile = "mcp-catalog.json"
    /// The run's directory's `mcp/`, holding the socket.
    public static func socketDirectory(runDirectory: String) -> String { runDirectory + "/mcp" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        run = try c.decode(RunID.self, forKey: .run)
        policies = try c.decode([String].self, forKey: .policies)
        entities = try c.decodeIfPresent(String.self, forKey: .entities)
        servers = try c.decode([ToolServerSettings].self, forKey: .servers)
        roots = try c.decode([String].self, forKey: .roots)
        stateDirectory = try c.decode(String.self, forKey: .stateDirectory)
        auditStore = try c.decodeIfPresent(AuditStoreLocation.self, forKey: .auditStore) ?? .stateDirectory
        admitNewTools = try c.decodeIfPresent(Bool.self, forKey: .admitNewTools) ?? false
        listen = try c.decodeIfPresent(String.self, forKey: .listen)
        approvalTimeoutMilliseconds = try c.decodeIfPresent(Int64.self, forKey: .approvalTimeoutMilliseconds) ?? 120_000
        httpListen = try c.decodeIfPresent(String.self, forKey: .httpListen)
        httpInSandbox = try c.decodeIfPresent(Bool.self, forKey: .httpInSandbox) ?? false
        resolve = try c.decodeIfPresent([String: String].self, forKey: .resolve) ?? [:]
        catalog = try c.decodeIfPresent(String.self, forKey: .catalog)
        decisionRecords = try c.decodeIfPresent(DecisionRecords.self, forKey: .decisionRecords) ?? .commit
        journal = try c.decodeIfPresent(String.self, forKey: .journal)
        models = try c.decodeIfPresent(ModelDoorSettings.self, forKey: .models)
        modelListen = try c.decodeIfPresent(String.self, forKey: .modelListen)
        runDirectory = try c.decodeIfPresent(String.self, forKey: .runDirectory)
    }

    enum CodingKeys: String, CodingKey {
        case run, policies, entities, servers, roots, listen, resolve, catalog, journal, models
        case modelListen = "model_listen"
        case runDirectory = "run_directory"
        case decisionRecords = "decision_records"
        case httpListen = "http_listen"
        case httpInSandbox = "http_in_sandbox"
        case stateDirectory = "state_directory"
        case auditStore = "audit_store"
        case admitNewTools = "admit_new_tools"
        case approvalTimeoutMilliseconds = "approval_timeout_ms"
    }
}
