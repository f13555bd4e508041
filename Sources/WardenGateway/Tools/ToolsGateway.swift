import Crypto
import Foundation
import Synchronization
import WardenCore
import WardenGuard
import WardenPolicy

/// The tools door: the one MCP server the agent sees, aggregating the operator's servers.
///
/// Every list, `tools/call`, `resources/read` and `prompts/get` is a Cedar decision recorded before it
/// is acted on: principal `Run::"<id>"`, action `Action::"call"` on `Tool::"<server>.<tool>"` (attributes
/// `server`, `trust`, `name`, `labels`, and the pinned annotations' hints), `Action::"read"` on
/// `Resource::"<server>.<uri>"`, `Action::"get_prompt"` on `Prompt::"<server>.<prompt>"`; context
/// `arguments` (the call's arguments as a Cedar record), `server`, and `session` (the session's counts). A
/// tool is listed only if it is pinned and some call of it could be allowed or asked
/// (``PolicySet/couldAllow(principal:action:resource:entities:)``), so listing and calling agree. A
/// denied call is answered with a tool result whose `isError` names the policy and the reason; an `ask`
/// holds the call for a person, bound to the digest of (server, tool, canonical arguments).
public final class ToolsGateway: @unchecked Sendable {
    // @unchecked: `catalog` and `sessions` are guarded by mutexes; the rest is immutable or thread-safe.
    public let run: RunID
    public let runEntity: Entity
    public let engine: PolicyEngine
    let pins: ToolPins
    let sink: any EventSink
    public let broker: ApprovalBroker?
    let settings: [String: ToolServerSettings]
    let upstreams: [String: MCPUpstream]
    let admitNewTools: Bool
    /// The classifier, loaded when some server has `classify = true`.
    let classifier: InjectionClassifier?
    let approvalTimeout: Duration
    /// Where what the agent is shown and why is written after each list (`warden mcp ls`).
    let catalogPath: String?
    /// Called when a call is held for a person (a foreground run's terminal prompts for it).
    let onHeld: @Sendable (Approval) -> Void

    /// What the agent was last shown: its name for each tool and prompt, each resource's server, what
    /// was held back and why, and the snapshot with their entities.
    struct Catalog {
        var tools: [String: (server: String, tool: ToolDefinition)] = [:]
        var prompts: [String: (server: String, name: String)] = [:]
        var resources: [String: String] = [:]
        /// What is held back and why: tools, prompts (by the agent's names) and resources (by URI).
        var hidden: [String: String] = [:]
        var hiddenPrompts: [String: String] = [:]
        var hiddenResources: [String: String] = [:]
        /// The entities of what was listed, by kind (`Tool`, `Resource`, `Prompt`): each list replaces
        /// its own kind's, and the snapshot holds them all.
        var entities: [String: [Entity]] = [:]
        var snapshot: PolicyEngine.Snapshot?
    }

    private let state = Mutex(Catalog())
    private let sessions = Mutex([Int: ToolsSession]())
    private let nextSession = Atomic<Int>(1)
    /// Progress tokens Warden gave servers → the session and the token its agent gave.
    private let progress = Mutex([String: (session: Int, token: JSONValue)]())
    private let flood = Mutex([String: NotificationBudget]())
    /// Result records are written off the call's path, in order (the decision before it is not).
    private let afterwards = DispatchQueue(label: "warden-tools-records")

    /// Starts each server and speaks MCP's handshake with it; a `url` server is reached only if the
    /// run's egress policies allow its connection (recorded like any egress decision).
    /// - Throws: ``WardenError`` for a server that does not start, is not allowed, or speaks no revision
    ///   Warden does.
    public init(
        run: RunID, runEntity: Entity, engine: PolicyEngine, pins: ToolPins, sink: any EventSink,
        broker: ApprovalBroker?, servers: [ToolServerSettings], roots: [String], admitNewTools: Bool = false,
        approvalTimeout: Duration = .seconds(120), resolve: [String: String] = [:], catalogPath: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        onHeld: @escaping @Sendable (Approval) -> Void = { _ in }
    ) throws {
        self.onHeld = onHeld
        self.run = run
        self.runEntity = runEntity
        self.engine = engine
        self.pins = pins
        self.sink = sink
        self.broker = broker
        self.admitNewTools = admitNewTools
        self.approvalTimeout = approvalTimeout
        self.catalogPath = catalogPath
        var settings: [String: ToolServerSettings] = [:]
        var upstreams: [String: MCPUpstream] = [:]
        do {
            for server in servers {
                guard ToolServerSettings.isValidName(server.name) else {
                    throw WardenError.invalidInput(
                        "mcp.servers.\(server.name): a server name is letters, digits and '-' (it prefixes tool names as NAME__tool)"
                    )
                }
                try server.validate()
                settings[server.name] = server
                let transport: any UpstreamTransport
                if let url = server.url {
                    transport = try Self.httpTransport(
                        server, url: url, run: run, runEntity: runEntity, engine: engine, sink: sink,
                        resolve: resolve, environment: environment)
                } else {
                    transport = try StdioTransport(name: server.name, command: server.command)
                }
                upstreams[server.name] = try MCPUpstream(
                    name: server.name, transport: transport, roots: roots, timeout: server.timeout)
            }
        } catch {
            for upstream in upstreams.values { upstream.close() }
            throw error
        }
        self.settings = settings
        self.upstreams = upstreams
        // The classifier, when a server asks for it: missing weights or BLAS end the start (fail closed).
        if servers.contains(where: \.classify) {
            do {
                classifier = try InjectionClassifier()
            } catch {
                for upstream in upstreams.values { upstream.close() }
                throw WardenError(
                    code: .layerUnavailable,
                    message:
                        "tools: a server has classify = true and the classifier cannot run: \((error as? WardenError)?.message ?? "\(error)")"
                )
            }
        } else {
            classifier = nil
        }
        for (name, upstream) in upstreams {
            upstream.onNotification = { [weak self] method, params in
                self?.relay(method, params, from: name)
            }
            upstream.onRefusedRequest = { [weak self] method in
                guard let self else { return }
                self.recordAfterwards(
                    .warning, subject: "mcp server \(name)",
                    [
                        "door": "tools", "server": name, "refused": method,
                        "warning": "the server asked for \(method); refused (servers get no sampling or elicitation)",
                    ])
            }
        }
    }

    /// The transport to a `url` server, once the run's egress policies allow its connection.
    static func httpTransport(
        _ server: ToolServerSettings, url text: String, run: RunID, runEntity: Entity, engine: PolicyEngine,
        sink: any EventSink, resolve: [String: String], environment: [String: String]
    ) throws -> HTTPTransport {
        guard let url = URL(string: text), let scheme = url.scheme, let host = url.host?.lowercased() else {
            throw WardenError.invalidInput("mcp.servers.\(server.name).url: '\(text)' is not a URL")
        }
        var egress = EgressSettings()
        egress.resolve = resolve
        let door = EgressDoor(
            run: run, runEntity: runEntity, settings: egress, engine: engine, sink: sink, broker: nil,
            onBudgetStop: { _ in })
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        let request = ConnectRequest(
            host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port, scheme: scheme,
            sni: nil, method: "POST", path: url.path.isEmpty ? "/" : url.path, entry: .tools)
        guard case .allow(let address, _)? = door.authorize(request) else {
            throw WardenError(
                code: .conflict,
                message:
                    "mcp.servers.\(server.name): the run's policies do not allow connecting to \(host):\(port) (see the decision in `warden events`); permit Action::\"connect\" on Host::\"\(host)\" to use this server"
            )
        }
        return HTTPTransport(
            name: server.name, url: url, address: EgressDoor.text(address),
            headers: try requestHeaders(server, environment: environment), timeout: server.timeout)
    }

    /// The headers Warden adds to each request to a `url` server: its `headers`, and its bearer token
    /// read from warden's environment.
    /// - Throws: ``WardenError`` when the token's variable is not set.
    static func requestHeaders(_ server: ToolServerSettings, environment: [String: String]) throws -> [(String, String)]
    {
        var headers = server.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let variable = server.bearerTokenEnvironment {
            guard let token = environment[variable], !token.isEmpty else {
                throw WardenError.invalidInput(
                    "mcp.servers.\(server.name).bearer_token_env: \(variable) is not set in warden's environment; export it (it stays outside the sandbox)"
                )
            }
            headers.append(("Authorization", "Bearer " + token))
        }
        return headers
    }

    /// Ends the servers, once the result records still being written are written.
    public func close() {
        afterwards.sync {}
        for upstream in upstreams.values { upstream.close() }
    }

    func recordAfterwards(_ kind: EventKind, subject: String, _ details: [String: String]) {
        let event = RunEvent(run: run, kind: kind, actor: .gateway, subject: subject, details: details)
        let sink = sink
        afterwards.async { try? sink.record(event) }
    }

    /// The agent's name for a server's tool or prompt.
    static func exposedName(server: String, tool: String) -> String { server + "__" + tool }

    // MARK: - Sessions

    /// A new agent session; `write` sends one line to the agent (false once it is gone), `pushes`
    /// says whether the session can take messages Warden starts (notifications).
    public func openSession(pushes: Bool = true, write: @escaping @Sendable (String) -> Bool) -> ToolsSession {
        let id = nextSession.wrappingAdd(1, ordering: .relaxed).oldValue
        let session = ToolsSession(id: id, gateway: self, pushes: pushes, write: write)
        sessions.withLock { $0[id] = session }
        return session
    }

    func closeSession(_ session: ToolsSession) {
        sessions.withLock { $0[session.id] = nil }
        progress.withLock { tokens in tokens = tokens.filter { $0.value.session != session.id } }
    }

    /// A server's notification: list changes are passed to every session that takes them (a changed
    /// tool list is re-listed at once, so a tool that appeared is quarantined and recorded before the
    /// agent looks), progress to the session whose call it is; the rest is not passed on. A server
    /// that floods is cut to a budget, and the dropping is recorded.
    func relay(_ method: String, _ params: JSONValue?, from server: String) {
        let allowed = flood.withLock { budgets -> (pass: Bool, report: Int?) in
            var budget = budgets[server] ?? NotificationBudget()
            defer { budgets[server] = budget }
            return budget.take(now: RunEvent.now())
        }
        if let dropped = allowed.report {
            recordAfterwards(
                .warning, subject: "mcp server \(server)",
                [
                    "door": "tools", "server": server, "dropped_notifications": String(dropped),
                    "warning":
                        "the server sent more than \(NotificationBudget.perSecond) notifications a second; \(dropped) dropped",
                ])
        }
        guard allowed.pass else { return }
        switch method {
        case "notifications/tools/list_changed", "notifications/prompts/list_changed",
            "notifications/resources/list_changed":
            if method == "notifications/tools/list_changed" {
                DispatchQueue.global().async { [self] in _ = try? listTools() }
            }
            let line = RPCMessage.notification(method: method, params: nil).line
            for session in sessions.withLock({ Array($0.values) }) where session.pushes {
                _ = session.write(line)
            }
        case "notifications/progress":
            guard let token = params?["progressToken"]?.stringValue,
                let (id, agentToken) = progress.withLock({ $0[token] }),
                let session = sessions.withLock({ $0[id] }), case .object(let members)? = params
            else { return }
            let forwarded = members.map { $0.key == "progressToken" ? ($0.key, agentToken) : $0 }
            _ = session.write(RPCMessage.notification(method: method, params: .object(forwarded)).line)
        default: return
        }
    }

    /// A progress token for a server in place of the agent's (so two sessions' tokens never meet).
    func progressToken(for agentToken: JSONValue, session: Int) -> String {
        let token = "warden-\(session)-\(UUID().uuidString)"
        progress.withLock { $0[token] = (session, agentToken) }
        return token
    }

    func forgetProgressToken(_ token: String) { progress.withLock { _ = $0.removeValue(forKey: token) } }

    // MARK: - The agent's side

    /// The answer to one request from the agent.
    func answer(_ method: String, _ params: JSONValue?, in session: ToolsSession, call: CallContext) throws
        -> JSONValue
    {
        switch method {
        case "initialize":
            let asked = params?["protocolVersion"]?.stringValue ?? MCPRevision.latestHandshake
            let version = MCPRevision.handshake.contains(asked) ? asked : MCPRevision.latestHandshake
            session.revision = version
            return .object([
                ("protocolVersion", .string(version)), ("capabilities", Self.capabilities),
                ("serverInfo", .object([("name", .string("warden")), ("version", .string("0"))])),
                ("instructions", .string(Self.instructions)),
            ])
        case "server/discover":
            return .object([
                ("supportedVersions", .array(MCPRevision.supported.map(JSONValue.string))),
                ("capabilities", Self.capabilities), ("instructions", .string(Self.instructions)),
                (
                    "_meta",
                    .object([
                        (
                            "io.modelcontextprotocol/serverInfo",
                            .object([("name", .string("warden")), ("version", .string("0"))])
                        )
                    ])
                ),
            ])
        case "ping": return .object([])
        case "tools/list": return try listTools()
        case "tools/call":
            guard let name = params?["name"]?.stringValue else {
                throw RPCFault(RPCMessage.Code.invalidParams, "tools/call needs params.name")
            }
            let arguments = params?["arguments"] ?? .object([])
            guard case .object = arguments else {
                throw RPCFault(RPCMessage.Code.invalidParams, "tools/call: arguments must be an object")
            }
            return try callTool(name, arguments: arguments, params: params, session: session, call: call)
        case "resources/list": return try listResources()
        case "resources/templates/list": return .object([("resourceTemplates", .array([]))])
        case "resources/read":
            guard let uri = params?["uri"]?.stringValue else {
                throw RPCFault(RPCMessage.Code.invalidParams, "resources/read needs params.uri")
            }
            return try readResource(uri, params: params, session: session, call: call)
        case "prompts/list": return try listPrompts()
        case "prompts/get":
            guard let name = params?["name"]?.stringValue else {
                throw RPCFault(RPCMessage.Code.invalidParams, "prompts/get needs params.name")
            }
            let arguments = params?["arguments"] ?? .object([])
            guard case .object = arguments else {
                throw RPCFault(RPCMessage.Code.invalidParams, "prompts/get: arguments must be an object")
            }
            return try getPrompt(name, arguments: arguments, params: params, session: session, call: call)
        case "logging/setLevel", "completion/complete": return .object([])
        default:
            throw RPCFault(RPCMessage.Code.methodNotFound, "\(method) is not offered by Warden's tools door")
        }
    }

    static let capabilities = JSONValue.object([
        ("tools", .object([("listChanged", .bool(true))])),
        ("resources", .object([("listChanged", .bool(true))])),
        ("prompts", .object([("listChanged", .bool(true))])),
    ])
    static let instructions = "Warden's tools door: every call is decided by the run's policies and recorded."

    // MARK: - Listing

    /// Every page of a server's list (`key`: tools, resources, prompts), at most 100 pages.
    static func pages(_ upstream: MCPUpstream, _ method: String, key: String) throws -> [JSONValue] {
        var items: [JSONValue] = []
        var cursor: JSONValue?
        for _ in 0..<100 {
            let page = try upstream.request(method, cursor.map { .object([("cursor", $0)]) })
            if case .array(let more)? = page[key] { items += more }
            cursor = page["nextCursor"]
            if cursor == nil || cursor == .null { break }
        }
        return items
    }

    private func offers(_ upstream: MCPUpstream, _ capability: String) -> Bool {
        upstream.capabilities[capability] != nil
    }

    /// Every pinned tool some call of which the policies could allow or ask, as `server__tool`.
    func listTools() throws -> JSONValue {
        var catalog = Catalog()
        var entities: [Entity] = []
        var listed: [(server: String, tool: ToolDefinition, raw: JSONValue)] = []
        var events: [RunEvent] = []
        for name in upstreams.keys.sorted() {
            guard let upstream = upstreams[name], let server = settings[name] else { continue }
            var definitions: [(ToolDefinition, JSONValue)] = []
            for item in try Self.pages(upstream, "tools/list", key: "tools") {
                guard let definition = try? ToolDefinition(listed: item) else { continue }
                definitions.append((definition, item))
            }
            let verdicts = try pins.check(server: name, tools: definitions.map(\.0), admitNew: admitNewTools)
            for (definition, item) in definitions {
                let verdict = verdicts[definition.name] ?? .added
                guard verdict.admitted else {
                    let reason: String
                    switch verdict {
                    case .changed: reason = "definition changed since it was approved"
                    case .renamed(let from): reason = "the approved definition of '\(from)' under a new name"
                    default: reason = "new to a pinned server"
                    }
                    catalog.hidden[Self.exposedName(server: name, tool: definition.name)] = reason
                    events.append(
                        RunEvent(
                            run: run, kind: .toolQuarantined, actor: .gateway, subject: "\(name).\(definition.name)",
                            details: [
                                "door": "tools", "server": name, "tool": definition.name, "reason": reason,
                                "digest": definition.digest,
                                "approve": "warden mcp approve \(name) \(definition.name)",
                            ]))
                    continue
                }
                let poisoning = Self.poisoning(definition)
                if ToolScan.isPoisoned(poisoning) {
                    let reason = "its definition carries instructions for the model: " + ToolScan.describe(poisoning)
                    let quarantined = server.onPoisoned == .quarantine
                    events.append(
                        RunEvent(
                            run: run, kind: quarantined ? .toolQuarantined : .warning, actor: .gateway,
                            subject: "\(name).\(definition.name)",
                            details: [
                                "door": "tools", "server": name, "tool": definition.name, "reason": reason,
                                "digest": definition.digest, "poisoned": "true",
                                quarantined ? "fix" : "warning":
                                    quarantined
                                    ? "fix the server, or set on_poisoned = \"record\" for it (an explicit downgrade)"
                                    : "a poisoned tool is listed (on_poisoned = \"record\")",
                            ]))
                    if quarantined {
                        catalog.hidden[Self.exposedName(server: name, tool: definition.name)] = reason
                        continue
                    }
                }
                entities.append(Self.entity(server: server, tool: definition))
                listed.append((name, definition, item))
            }
        }
        let snapshot = try snapshot(listing: "Tool", entities)
        catalog.snapshot = snapshot
        var shown: [JSONValue] = []
        for (server, definition, item) in listed {
            let exposed = Self.exposedName(server: server, tool: definition.name)
            let could = snapshot.policies.couldAllow(
                principal: runEntity.uid, action: EntityUID(type: "Action", id: "call"),
                resource: Self.resource(server: server, tool: definition.name), entities: snapshot.entities)
            guard could else {
                catalog.hidden[exposed] = "no policy could allow a call of it"
                continue
            }
            catalog.tools[exposed] = (server, definition)
            guard case .object(let members) = item else { continue }
            shown.append(.object(members.map { $0.key == "name" ? ($0.key, .string(exposed)) : $0 }))
        }
        events.append(
            RunEvent(
                run: run, kind: .decision, actor: .gateway, subject: "tools/list",
                details: [
                    "door": "tools", "action": "list", "listed": catalog.tools.keys.sorted().joined(separator: ","),
                    "hidden": catalog.hidden.keys.sorted().joined(separator: ","),
                    "decision": "allow", "revisions": revisions,
                ]))
        try sink.record(contentsOf: events)
        state.withLock { current in
            current.tools = catalog.tools
            current.hidden = catalog.hidden
            current.entities["Tool"] = entities
            current.snapshot = snapshot
        }
        writeCatalog()
        return .object([("tools", .array(shown))])
    }

    /// Each server's revision, as `name=revision`.
    var revisions: String {
        upstreams.keys.sorted().compactMap { name in upstreams[name].map { "\(name)=\($0.protocolVersion)" } }
            .joined(separator: ",")
    }

    /// Every resource some read of which could be allowed; a URI two servers both list is held back
    /// (neither shadows the other).
    func listResources() throws -> JSONValue {
        let (shown, listed, hidden, entities, snapshot) = try listOffered(
            kind: "Resource", key: "resources", identity: "uri", action: "read", verb: "reading", exposed: { $1 })
        state.withLock { catalog in
            catalog.resources = listed.mapValues(\.server)
            catalog.hiddenResources = hidden
            catalog.entities["Resource"] = entities
            catalog.snapshot = snapshot
        }
        writeCatalog()
        return .object([("resources", .array(shown))])
    }

    /// Every prompt some get of which could be allowed, as `server__prompt`.
    func listPrompts() throws -> JSONValue {
        let (shown, listed, hidden, entities, snapshot) = try listOffered(
            kind: "Prompt", key: "prompts", identity: "name", action: "get_prompt", verb: "getting",
            exposed: Self.exposedName)
        state.withLock { catalog in
            catalog.prompts = listed
            catalog.hiddenPrompts = hidden
            catalog.entities["Prompt"] = entities
            catalog.snapshot = snapshot
        }
        writeCatalog()
        return .object([("prompts", .array(shown))])
    }

    /// A resources or prompts list: each offering server's items (`key`, named by `identity`), shown
    /// under `exposed` names when some `action` on `Kind::"server.name"` could be allowed; a name two
    /// servers both give is held back. The decision is recorded and the snapshot kept.
    private func listOffered(
        kind: String, key: String, identity: String, action: String, verb: String,
        exposed: (_ server: String, _ name: String) -> String
    ) throws -> (
        shown: [JSONValue], listed: [String: (server: String, name: String)], hidden: [String: String],
        entities: [Entity], snapshot: PolicyEngine.Snapshot
    ) {
        var entities: [Entity] = []
        var found: [(server: String, name: String, raw: JSONValue)] = []
        var seen: [String: Int] = [:]
        for name in upstreams.keys.sorted() {
            guard let upstream = upstreams[name], offers(upstream, key), let server = settings[name] else { continue }
            for item in try Self.pages(upstream, "\(key)/list", key: key) {
                guard let id = item[identity]?.stringValue else { continue }
                found.append((name, id, item))
                seen[exposed(name, id), default: 0] += 1
                entities.append(Self.entity(server: server, kind: kind, id: id))
            }
        }
        let snapshot = try snapshot(listing: kind, entities)
        var shown: [JSONValue] = []
        var listed: [String: (server: String, name: String)] = [:]
        var hidden: [String: String] = [:]
        for (server, id, raw) in found {
            let name = exposed(server, id)
            if seen[name, default: 0] > 1 {
                hidden[name] = "listed by more than one server"
                continue
            }
            guard
                snapshot.policies.couldAllow(
                    principal: runEntity.uid, action: EntityUID(type: "Action", id: action),
                    resource: EntityUID(type: kind, id: "\(server).\(id)"), entities: snapshot.entities)
            else {
                hidden[name] = "no policy could allow \(verb) it"
                continue
            }
            listed[name] = (server, id)
            guard case .object(let members) = raw else { continue }
            shown.append(.object(members.map { $0.key == identity ? ($0.key, .string(name)) : $0 }))
        }
        try record(
            .decision, subject: "\(key)/list",
            [
                "door": "tools", "action": "list", "listed": listed.keys.sorted().joined(separator: ","),
                "hidden": hidden.keys.sorted().joined(separator: ","), "decision": "allow",
            ])
        return (shown, listed, hidden, entities, snapshot)
    }

    /// The policies' current snapshot with the run, this list's `entities` of `kind`, and the other
    /// kinds' from their last lists (a tool list does not forget the resources).
    private func snapshot(listing kind: String, _ entities: [Entity]) throws -> PolicyEngine.Snapshot {
        let others = state.withLock { $0.entities.filter { $0.key != kind }.flatMap(\.value) }
        return try engine.snapshot.adding(entities + others + [runEntity])
    }

    /// Writes what the agent is shown and why (for `warden mcp ls RUN`), replacing the last.
    private func writeCatalog() {
        guard let catalogPath else { return }
        let catalog = state.withLock { $0 }
        var entries: [[String: String]] = []
        for (exposed, entry) in catalog.tools {
            entries.append([
                "kind": "tool", "name": exposed, "server": entry.server, "status": "listed",
                "digest": entry.tool.digest,
            ])
        }
        for (exposed, entry) in catalog.prompts {
            entries.append(["kind": "prompt", "name": exposed, "server": entry.server, "status": "listed"])
        }
        for (uri, server) in catalog.resources {
            entries.append(["kind": "resource", "name": uri, "server": server, "status": "listed"])
        }
        for (kind, hidden) in [
            ("tool", catalog.hidden), ("prompt", catalog.hiddenPrompts), ("resource", catalog.hiddenResources),
        ] {
            for (name, reason) in hidden {
                entries.append(["kind": kind, "name": name, "status": "hidden", "reason": reason])
            }
        }
        entries.sort { ($0["name"] ?? "") < ($1["name"] ?? "") }
        let servers = upstreams.keys.sorted().map { name -> [String: String] in
            [
                "name": name, "revision": upstreams[name]?.protocolVersion ?? "",
                "transport": settings[name]?.url == nil ? "stdio" : "http",
                "trust": settings[name]?.trust.rawValue ?? "",
            ]
        }
        let object: [String: Any] = ["run": run.rawValue, "servers": servers, "entries": entries]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        let temporary = catalogPath + ".new"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600])
        else { return }
        _ = rename(temporary, catalogPath)
    }

    static func resource(server: String, tool: String) -> EntityUID {
        EntityUID(type: "Tool", id: "\(server).\(tool)")
    }

    /// `Tool::"server.tool"` with the attributes a policy may read: server, name, trust, labels, and
    /// the pinned annotations' hints.
    static func entity(server: ToolServerSettings, tool: ToolDefinition) -> Entity {
        var entity = entity(server: server, kind: "Tool", id: tool.name)
        let hints = Self.hints(tool)
        entity.attributes["annotations"] = .record(hints.mapValues(CedarValue.bool))
        entity.attributes["labels"] = .set(Set(labels(server: server, tool: tool).map(CedarValue.string)))
        return entity
    }

    /// What the detectors find in a tool's definition (tool poisoning): its description and every
    /// string of its input schema and annotations.
    static func poisoning(_ definition: ToolDefinition) -> [ToolScan.Hit] {
        var fields: [(field: String, text: String)] = []
        if let description = definition.description { fields.append(("description", description)) }
        fields += strings(in: definition.inputSchema).map { ("inputSchema." + $0.path, $0.value) }
        if let annotations = definition.annotations {
            fields += strings(in: annotations).map { ("annotations." + $0.path, $0.value) }
        }
        return ToolScan.scan(fields: fields)
    }

    /// The pinned annotations' boolean hints (`readOnlyHint`, `openWorldHint`, …).
    static func hints(_ tool: ToolDefinition) -> [String: Bool] {
        var hints: [String: Bool] = [:]
        if case .object(let members)? = tool.annotations {
            for (key, value) in members {
                if case .bool(let b) = value { hints[key] = b }
            }
        }
        return hints
    }

    /// A tool's labels: the server's, the tool's own from the profile, and what its pinned annotations
    /// and the server's trust imply (``ToolLabels``).
    static func labels(server: ToolServerSettings, tool: ToolDefinition) -> Set<String> {
        ToolLabels.derive(
            configured: server.labels + (server.toolLabels[tool.name] ?? []), trusted: server.trust == .trusted,
            hints: hints(tool))
    }

    /// A resource's or a prompt's labels: the server's and its trust's (reading is no side effect).
    static func contentLabels(server: ToolServerSettings) -> Set<String> {
        ToolLabels.derive(configured: server.labels, trusted: server.trust == .trusted, hints: ["readOnlyHint": true])
    }

    /// `Kind::"server.id"` with server, name, trust and labels.
    static func entity(server: ToolServerSettings, kind: String, id: String) -> Entity {
        let labels = contentLabels(server: server)
        return Entity(
            uid: EntityUID(type: kind, id: "\(server.name).\(id)"),
            attributes: [
                "server": .string(server.name), "name": .string(id), "trust": .string(server.trust.rawValue),
                "labels": .set(Set(labels.map(CedarValue.string))),
            ])
    }

    // MARK: - Deciding

    /// One request the agent made: its session's id for it, and where Warden's id for the server's
    /// request is kept (so the agent can cancel it).
    final class CallContext: @unchecked Sendable {
        // @unchecked: `upstreamID` is set by the thread making the call and read under `lock`.
        let agentID: JSONValue
        private let lock = NSLock()
        private var sent: (MCPUpstream, Int64)?
        private var cancelled = false

        init(agentID: JSONValue) { self.agentID = agentID }

        func sending(_ upstream: MCPUpstream, _ id: Int64) {
            lock.lock()
            sent = (upstream, id)
            let cancel = cancelled
            lock.unlock()
            if cancel { upstream.cancel(id, reason: "cancelled by the agent") }
        }

        func cancel(reason: String) {
            lock.lock()
            cancelled = true
            let target = sent
            lock.unlock()
            if let (upstream, id) = target { upstream.cancel(id, reason: reason) }
        }

        var isCancelled: Bool {
            lock.lock()
            defer { lock.unlock() }
            return cancelled
        }
    }

    /// What one decided request is: the action, the resource, its record's names, the JSON for its
    /// digest and the person's view, and the context.
    struct Decided {
        var action: String
        var resource: EntityUID
        var subject: String
        var details: [String: String]
        var arguments: JSONValue
        var context: [String: CedarValue]
    }

    /// Decides `request` and, when allowed, records the decision and runs `forward`; a refusal is
    /// recorded and returned as its reason (the caller answers it in its method's form).
    private func decide(
        _ request: inout Decided, server: String, snapshot: PolicyEngine.Snapshot, session: ToolsSession,
        redact: Bool
    ) throws -> String? {
        let canonical = (try? request.arguments.canonicalized(allowingFractions: true)) ?? "{}"
        request.details["arguments_digest"] = ToolDefinition.sha256(canonical)
        request.details[redact ? "arguments_redacted" : "arguments"] =
            redact ? "true" : String(canonical.prefix(4096))
        request.details["server"] = server
        request.details["session"] = String(session.id)
        var context = request.context
        context["server"] = .string(server)
        context["session"] = session.cedarCounters
        // What the validation layer sees in the arguments, and which of them came from untrusted output.
        let leaves = Self.strings(in: request.arguments)
        let findings = Guard.standard.scan(leaves.map(\.value).joined(separator: "\n"))
        context["findings"] = Self.cedar(findings)
        if !findings.isEmpty { request.details["findings"] = Self.summary(findings) }
        let provenance = session.taint.provenance(of: leaves)
        context["provenance"] = .record([
            "tainted": .bool(provenance.tainted),
            "arguments": .set(Set(provenance.arguments.map(CedarValue.string))),
            "sources": .set(Set(provenance.sources.map(CedarValue.string))),
        ])
        if provenance.tainted {
            request.details["provenance"] =
                provenance.arguments.sorted().joined(separator: ",") + " <- "
                + provenance.sources.sorted().joined(separator: ",")
        }
        let labels = session.taint.summary
        if labels.untrusted || labels.sensitive {
            request.details["session_labels"] = [
                labels.untrusted ? "untrusted" : nil, labels.sensitive ? "sensitive" : nil,
            ].compactMap { $0 }.joined(separator: ",")
        }
        let decision = PolicyEngine.decide(
            AuthorizationRequest(
                principal: runEntity.uid, action: EntityUID(type: "Action", id: request.action),
                resource: request.resource, context: context),
            in: snapshot)
        let ids = decision.reasons.map(\.policyID)
        request.details["policies"] = ids.joined(separator: ",")
        if !decision.errors.isEmpty {
            request.details["policy_errors"] = decision.errors.map { "\($0.policyID): \($0.message)" }
                .joined(separator: "; ")
        }
        func refuse(_ reason: String) throws -> String {
            request.details["decision"] = "deny"
            request.details["reason"] = reason
            try record(.decision, subject: request.subject, request.details)
            session.count(denied: true)
            return "Denied by Warden's tools policy" + (ids.isEmpty ? "" : " (\(ids.joined(separator: ", ")))")
                + ": \(reason)"
        }
        if decision.kind == .deny { return try refuse(decision.explanation) }
        if decision.kind == .ask {
            guard let broker else {
                return try refuse("a person must approve this, and no approvals broker is available")
            }
            var fields: [(key: String, value: JSONValue)] = [
                ("door", .string("tools")), ("server", .string(server)), ("action", .string(request.action)),
            ]
            fields.append(("target", .string(request.resource.id)))
            fields.append(("arguments", request.arguments))
            if let refusal = broker.hold(
                run: run, door: .tools, request: .object(fields),
                summary: "\(request.action) \(request.resource.id) \(canonical.prefix(200))",
                reasons: decision.reasons.map { "\($0.policyID): \($0.ask ?? "")" }, timeout: approvalTimeout,
                what: request.action == "call" ? "the call" : "the request", onHeld: onHeld)
            {
                return try refuse(refusal)
            }
        }
        request.details["decision"] = "allow"
        request.details["reason"] = decision.kind == .ask ? "approved by a person" : decision.explanation
        // Recorded before the request goes: not recorded, not done.
        try record(.decision, subject: request.subject, request.details)
        session.count(denied: false)
        return nil
    }

    /// Forwards an allowed request and records what came back (after, off the path).
    private func forward(
        _ method: String, params: JSONValue, to server: String, subject: String, call: CallContext,
        inspect: (JSONValue, inout [String: String]) -> JSONValue = { result, _ in result }
    ) throws -> JSONValue {
        guard let upstream = upstreams[server] else {
            throw RPCFault(RPCMessage.Code.internalError, "no server \(server)")
        }
        let started = RunEvent.now()
        var outcome: [String: String] = [
            "door": "tools", "server": server, "method": method,
            "tool": String(subject.split(separator: " ", maxSplits: 1).last ?? ""),
        ]
        defer {
            outcome["duration_ms"] = String((RunEvent.now() - started) / 1_000_000)
            recordAfterwards(.toolResult, subject: subject, outcome)
        }
        do {
            let result = try upstream.request(method, params, sent: { call.sending(upstream, $0) })
            let text = (try? result.canonicalized(allowingFractions: true)) ?? ""
            outcome["result_digest"] = ToolDefinition.sha256(text)
            outcome["result_bytes"] = String(text.utf8.count)
            outcome["is_error"] = String(result["isError"] == .bool(true))
            if let type = result["resultType"]?.stringValue { outcome["result_type"] = type }
            let shown = inspect(result, &outcome)
            if shown != result {
                outcome["shown_digest"] = ToolDefinition.sha256(
                    (try? shown.canonicalized(allowingFractions: true)) ?? "")
            }
            return shown
        } catch {
            outcome["error"] = (error as? WardenError)?.message ?? "\(error)"
            throw error
        }
    }

    /// The params sent on: the server's own name for the thing, the arguments, the agent's retry
    /// fields of the stateless revision, and a progress token of Warden's in place of the agent's.
    private func upstreamParams(
        _ params: JSONValue?, replacing: [(key: String, value: JSONValue)], session: ToolsSession,
        tokens: inout [String]
    ) -> JSONValue {
        var members = replacing
        for key in ["inputResponses", "requestState"] {
            if let value = params?[key] { members.append((key, value)) }
        }
        if let token = params?["_meta"]?["progressToken"] {
            let mine = progressToken(for: token, session: session.id)
            tokens.append(mine)
            members.append(("_meta", .object([("progressToken", .string(mine))])))
        }
        return .object(members)
    }

    /// An upstream's `input_required` answer (2026-07-28): passed to an agent that speaks that revision
    /// unless it asks for sampling (the agent's model), which is refused; an older agent cannot retry.
    private func inputRequired(_ result: JSONValue, session: ToolsSession, server: String) -> JSONValue? {
        guard result["resultType"]?.stringValue == "input_required" else { return nil }
        var methods: [String] = []
        if case .object(let requests)? = result["inputRequests"] {
            methods = requests.compactMap { $0.value["method"]?.stringValue }
        }
        if methods.contains(where: { $0.hasPrefix("sampling/") }) {
            recordAfterwards(
                .warning, subject: "mcp server \(server)",
                ["door": "tools", "server": server, "refused": "sampling/createMessage", "warning": "sampling refused"])
            return Self.errorResult("mcp server \(server) asked for sampling; Warden's tools door refuses it")
        }
        if !session.isModern {
            return Self.errorResult(
                "mcp server \(server) asked for input (\(methods.joined(separator: ", "))), which the agent's MCP revision cannot answer"
            )
        }
        return result
    }

    /// What the tools door would decide for a call the model proposes (the model door flags it before
    /// the agent makes it): the same Cedar request as ``callTool``, with the taint of the agent's latest
    /// session, evaluated only (not recorded, nothing held). Not one of this door's tools: no decision.
    public func verdict(on call: ProposedCall) -> ToolCallVerdict {
        if state.withLock({ $0.entities["Tool"] == nil }) { _ = try? listTools() }
        let known = state.withLock { $0 }
        guard let (server, tool) = known.tools[call.name], let snapshot = known.snapshot else {
            return ToolCallVerdict(
                tool: call.name, decision: known.hidden[call.name] == nil ? nil : "deny", policies: [])
        }
        let arguments = (try? JSONValue.parse(call.arguments.isEmpty ? "{}" : call.arguments)) ?? .object([])
        guard let converted = try? Self.cedar(arguments, depth: 0, budget: 10_000).value else {
            return ToolCallVerdict(tool: call.name, decision: "deny", policies: [])
        }
        let latest = sessions.withLock { $0.max { $0.key < $1.key }?.value }
        let findings = Guard.standard.scan(Self.strings(in: arguments).map(\.value).joined(separator: "\n"))
        let provenance = latest?.taint.provenance(of: Self.strings(in: arguments))
        let context: [String: CedarValue] = [
            "arguments": converted, "server": .string(server),
            "session": latest?.cedarCounters
                ?? .record([
                    "calls": .long(0), "denied": .long(0), "id": .long(0), "untrusted": .bool(false),
                    "sensitive": .bool(false), "sources": .set([]), "findings": .set([]),
                ]),
            "findings": Self.cedar(findings),
            "provenance": .record([
                "tainted": .bool(provenance?.tainted ?? false),
                "arguments": .set(Set((provenance?.arguments ?? []).map(CedarValue.string))),
                "sources": .set(Set((provenance?.sources ?? []).map(CedarValue.string))),
            ]),
        ]
        let decision = PolicyEngine.decide(
            AuthorizationRequest(
                principal: runEntity.uid, action: EntityUID(type: "Action", id: "call"),
                resource: Self.resource(server: server, tool: tool.name), context: context),
            in: snapshot)
        let kind: String
        switch decision.kind {
        case .allow: kind = "allow"
        case .deny: kind = "deny"
        case .ask: kind = "ask"
        }
        return ToolCallVerdict(tool: call.name, decision: kind, policies: decision.reasons.map(\.policyID))
    }

    // MARK: - Calling, reading, getting

    func callTool(
        _ exposed: String, arguments: JSONValue, params: JSONValue?, session: ToolsSession, call: CallContext
    ) throws -> JSONValue {
        // Listed once (even to nothing): a call does not re-list the servers; a list change does.
        if state.withLock({ $0.entities["Tool"] == nil }) { _ = try listTools() }
        let known = state.withLock { $0 }
        var request = Decided(
            action: "call", resource: EntityUID(type: "Tool", id: exposed), subject: "call \(exposed)",
            details: ["door": "tools", "action": "call", "tool": exposed], arguments: arguments, context: [:])
        guard let (server, tool) = known.tools[exposed], let snapshot = known.snapshot else {
            let reason = known.hidden[exposed].map { "\(exposed) is held back: \($0)" } ?? "no tool \(exposed)"
            request.details["decision"] = "deny"
            request.details["reason"] = reason
            try record(.decision, subject: request.subject, request.details)
            return Self.errorResult("Denied by Warden's tools policy: \(reason)")
        }
        request.resource = Self.resource(server: server, tool: tool.name)
        do {
            request.context["arguments"] = try Self.cedar(arguments, depth: 0, budget: 10_000).value
        } catch {
            request.details["decision"] = "deny"
            request.details["reason"] = "the arguments cannot be decided on: \(error.message)"
            request.details["server"] = server
            try record(.decision, subject: request.subject, request.details)
            return Self.errorResult(
                "Denied by Warden's tools policy: the arguments cannot be decided on: \(error.message)")
        }
        if let refusal = try decide(
            &request, server: server, snapshot: snapshot, session: session, redact: settings[server]?.redact ?? false)
        {
            return Self.errorResult(refusal)
        }
        var tokens: [String] = []
        defer { tokens.forEach(forgetProgressToken) }
        let forwarded = upstreamParams(
            params, replacing: [("name", .string(tool.name)), ("arguments", arguments)], session: session,
            tokens: &tokens)
        do {
            let labels = settings[server].map { Self.labels(server: $0, tool: tool) } ?? []
            let result = try forward(
                "tools/call", params: forwarded, to: server, subject: request.subject, call: call
            ) { result, outcome in
                absorb(
                    result, server: server, name: tool.name, labels: labels, session: session,
                    spotlight: settings[server]?.spotlight ?? false, outcome: &outcome)
            }
            return inputRequired(result, session: session, server: server) ?? result
        } catch {
            // A tool result the agent can read and adapt to, not a protocol error.
            return Self.errorResult((error as? WardenError)?.message ?? "\(error)")
        }
    }

    func readResource(_ uri: String, params: JSONValue?, session: ToolsSession, call: CallContext) throws
        -> JSONValue
    {
        if state.withLock({ $0.resources[uri] == nil }) { _ = try listResources() }
        let known = state.withLock { $0 }
        var request = Decided(
            action: "read", resource: EntityUID(type: "Resource", id: uri), subject: "read \(uri)",
            details: ["door": "tools", "action": "read", "uri": uri], arguments: .object([("uri", .string(uri))]),
            context: ["uri": .string(uri)])
        guard let server = known.resources[uri], let snapshot = known.snapshot else {
            let reason = known.hiddenResources[uri].map { "\(uri) is held back: \($0)" } ?? "no resource \(uri)"
            request.details["decision"] = "deny"
            request.details["reason"] = reason
            try record(.decision, subject: request.subject, request.details)
            throw RPCFault(RPCMessage.Code.invalidParams, "Denied by Warden's tools policy: \(reason)")
        }
        request.resource = EntityUID(type: "Resource", id: "\(server).\(uri)")
        if let refusal = try decide(
            &request, server: server, snapshot: snapshot, session: session, redact: settings[server]?.redact ?? false)
        {
            throw RPCFault(RPCMessage.Code.invalidParams, refusal)
        }
        var tokens: [String] = []
        defer { tokens.forEach(forgetProgressToken) }
        let forwarded = upstreamParams(params, replacing: [("uri", .string(uri))], session: session, tokens: &tokens)
        do {
            let labels = settings[server].map(Self.contentLabels) ?? []
            let result = try forward(
                "resources/read", params: forwarded, to: server, subject: request.subject, call: call
            ) { result, outcome in
                absorb(
                    result, server: server, name: uri, labels: labels, session: session,
                    spotlight: settings[server]?.spotlight ?? false, outcome: &outcome)
            }
            if let replaced = inputRequired(result, session: session, server: server) {
                throw RPCFault(RPCMessage.Code.internalError, Self.text(of: replaced))
            }
            return result
        } catch let error as WardenError {
            throw RPCFault(RPCMessage.Code.internalError, error.message)
        }
    }

    func getPrompt(
        _ exposed: String, arguments: JSONValue, params: JSONValue?, session: ToolsSession, call: CallContext
    ) throws -> JSONValue {
        if state.withLock({ $0.prompts[exposed] == nil }) { _ = try listPrompts() }
        let known = state.withLock { $0 }
        var request = Decided(
            action: "get_prompt", resource: EntityUID(type: "Prompt", id: exposed), subject: "get_prompt \(exposed)",
            details: ["door": "tools", "action": "get_prompt", "prompt": exposed], arguments: arguments, context: [:])
        guard let (server, name) = known.prompts[exposed], let snapshot = known.snapshot else {
            let reason = known.hiddenPrompts[exposed].map { "\(exposed) is held back: \($0)" } ?? "no prompt \(exposed)"
            request.details["decision"] = "deny"
            request.details["reason"] = reason
            try record(.decision, subject: request.subject, request.details)
            throw RPCFault(RPCMessage.Code.invalidParams, "Denied by Warden's tools policy: \(reason)")
        }
        request.resource = EntityUID(type: "Prompt", id: "\(server).\(name)")
        do {
            request.context["arguments"] = try Self.cedar(arguments, depth: 0, budget: 10_000).value
        } catch {
            throw RPCFault(RPCMessage.Code.invalidParams, "the arguments cannot be decided on: \(error.message)")
        }
        if let refusal = try decide(
            &request, server: server, snapshot: snapshot, session: session, redact: settings[server]?.redact ?? false)
        {
            throw RPCFault(RPCMessage.Code.invalidParams, refusal)
        }
        var tokens: [String] = []
        defer { tokens.forEach(forgetProgressToken) }
        let forwarded = upstreamParams(
            params, replacing: [("name", .string(name)), ("arguments", arguments)], session: session, tokens: &tokens)
        do {
            let labels = settings[server].map(Self.contentLabels) ?? []
            let result = try forward("prompts/get", params: forwarded, to: server, subject: request.subject, call: call)
            {
                result, outcome in
                absorb(
                    result, server: server, name: name, labels: labels, session: session, spotlight: false,
                    outcome: &outcome)
            }
            if let replaced = inputRequired(result, session: session, server: server) {
                throw RPCFault(RPCMessage.Code.internalError, Self.text(of: replaced))
            }
            return result
        } catch let error as WardenError {
            throw RPCFault(RPCMessage.Code.internalError, error.message)
        }
    }

    // MARK: - Taint and validation

    /// What a result brings into the session: its text through the detectors (findings recorded with
    /// the result), its labels into the session's taint, and — for an untrusted source with
    /// `spotlight = true` — the datamarked form the agent is shown instead.
    private func absorb(
        _ result: JSONValue, server: String, name: String, labels: Set<String>, session: ToolsSession,
        spotlight: Bool, outcome: inout [String: String]
    ) -> JSONValue {
        let source = "\(server).\(name)"
        // The text a model reads: every string but the protocol's own fields (a content item's `type`, …).
        let text = Self.strings(in: result).filter { leaf in
            !["type", "mimeType", "uri", "resultType"].contains(leaf.path.split(separator: ".").last.map(String.init))
        }.map(\.value).joined(separator: "\n")
        var findings = Guard.standard.scan(text)
        if let classifier, settings[server]?.classify == true {
            let score = classifier.score(text)
            outcome["classifier_score"] = String(format: "%.3f", score.score)
            findings += classifier.findings(score, bytes: text.utf8.count)
        }
        if !findings.isEmpty { outcome["findings"] = Self.summary(findings) }
        outcome["labels"] = labels.sorted().joined(separator: ",")
        session.taint.absorb(text: text, source: source, labels: labels, findings: findings)
        guard spotlight, labels.contains(ToolLabels.untrustedOutput) else { return result }
        outcome["spotlight"] = "datamark"
        return Self.datamark(result, with: session.spotlight, source: source)
    }

    /// The result with every `text` datamarked and the note first (a tool result's content, or a
    /// resource's first text).
    static func datamark(_ result: JSONValue, with spotlight: Spotlight, source: String) -> JSONValue {
        func mark(_ value: JSONValue) -> JSONValue {
            switch value {
            case .object(let members):
                return .object(
                    members.map { key, member in
                        if key == "text", case .string(let text) = member {
                            return (key, .string(spotlight.mark(text)))
                        }
                        return (key, mark(member))
                    })
            case .array(let items): return .array(items.map(mark))
            default: return value
            }
        }
        guard case .object(var members) = mark(result) else { return result }
        let note = JSONValue.object([("type", .string("text")), ("text", .string(spotlight.note(source: source)))])
        if let i = members.firstIndex(where: { $0.key == "content" }), case .array(let items) = members[i].value {
            members[i].value = .array([note] + items)
        } else if let i = members.firstIndex(where: { $0.key == "contents" }),
            case .array(var items) = members[i].value,
            let first = items.first, case .object(var fields) = first,
            let t = fields.firstIndex(where: { $0.key == "text" }), case .string(let text) = fields[t].value
        {
            fields[t].value = .string(spotlight.note(source: source) + "\n" + text)
            items[0] = .object(fields)
            members[i].value = .array(items)
        }
        return .object(members)
    }

    /// Every string in a JSON value with its key path (`to`, `recipients`, `content.text`; array
    /// positions left out).
    static func strings(in value: JSONValue, path: String = "") -> [(path: String, value: String)] {
        switch value {
        case .string(let text): return [(path, text)]
        case .object(let members):
            return members.flatMap { key, member in strings(in: member, path: path.isEmpty ? key : path + "." + key) }
        case .array(let items): return items.flatMap { strings(in: $0, path: path) }
        default: return []
        }
    }

    /// `context.findings`: how many, which detectors, and each detector's highest confidence in
    /// percent (0 when it found nothing), so a policy can say `context.findings.secrets >= 80`.
    static func cedar(_ findings: [Finding]) -> CedarValue {
        var fields: [String: CedarValue] = [
            "count": .long(Int64(findings.count)),
            "detectors": .set(Set(findings.map { CedarValue.string($0.detector) })),
        ]
        for (name, _) in Guard.standard.inventory {
            let best = findings.filter { $0.detector == name }.map(\.confidence).max() ?? 0
            fields[name] = .long(Int64((best * 100).rounded()))
        }
        return .record(fields)
    }

    /// Findings for a record: `detector:confidence detail`, one per finding (at most 20).
    static func summary(_ findings: [Finding]) -> String {
        findings.prefix(20).map { "\($0.detector):\(String(format: "%.2f", $0.confidence)) \($0.detail)" }
            .joined(separator: "; ")
    }

    /// A tool result carrying `text` with `isError`: what the agent reads for a refusal or a failure.
    static func errorResult(_ text: String) -> JSONValue {
        .object([
            ("content", .array([.object([("type", .string("text")), ("text", .string(text))])])),
            ("isError", .bool(true)),
        ])
    }

    /// The first text of a tool result.
    static func text(of result: JSONValue) -> String {
        guard case .array(let content)? = result["content"], let first = content.first else { return "" }
        return first["text"]?.stringValue ?? ""
    }

    public func record(_ kind: EventKind, subject: String, _ details: [String: String]) throws {
        try sink.record(RunEvent(run: run, kind: kind, actor: .gateway, subject: subject, details: details))
    }

    /// `-12.5` as Cedar's decimal (the value times 10^4), or nil: plain notation, 1–4 places, in range.
    static func decimal(_ text: String) -> Int64? {
        let negative = text.hasPrefix("-")
        let body = negative ? text.dropFirst() : Substring(text)
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, (1...4).contains(parts[1].count),
            parts[0].allSatisfy(\.isASCII), parts[0].allSatisfy(\.isNumber), parts[1].allSatisfy(\.isASCII),
            parts[1].allSatisfy(\.isNumber), let whole = Int64(parts[0]),
            let fraction = Int64(parts[1] + String(repeating: "0", count: 4 - parts[1].count))
        else { return nil }
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: 10_000)
        guard !overflow, scaled <= Int64.max - fraction else { return nil }
        return negative ? -(scaled + fraction) : scaled + fraction
    }

    /// Arguments as Cedar: objects → records, arrays → sets, integers → long, fractions of up to four
    /// places → decimal, strings, booleans.
    /// What has no Cedar form (null, a fraction, too deep, too big) is an error naming where it is.
    static func cedar(_ value: JSONValue, depth: Int, budget: Int, path: String = "arguments") throws(RPCFault) -> (
        value: CedarValue, left: Int
    ) {
        guard depth <= 32 else { throw RPCFault(RPCMessage.Code.invalidParams, "\(path): nested deeper than 32") }
        guard budget > 0 else { throw RPCFault(RPCMessage.Code.invalidParams, "more than 10,000 values") }
        switch value {
        case .null: throw RPCFault(RPCMessage.Code.invalidParams, "\(path): null has no Cedar value")
        case .bool(let b): return (.bool(b), budget - 1)
        case .string(let s): return (.string(s), budget - 1)
        case .number(let text):
            if let n = Int64(text) { return (.long(n), budget - 1) }
            // A fraction with at most four decimal places is a Cedar decimal (98.7 → decimal("98.7")).
            if let d = Self.decimal(text) { return (.decimal(d), budget - 1) }
            throw RPCFault(
                RPCMessage.Code.invalidParams,
                "\(path): \(text) is neither a 64-bit integer nor a decimal with at most four places (Cedar's decimal)")
        case .array(let items):
            var left = budget - 1
            var set = Set<CedarValue>()
            for (i, item) in items.enumerated() {
                let converted = try cedar(item, depth: depth + 1, budget: left, path: "\(path)[\(i)]")
                set.insert(converted.value)
                left = converted.left
            }
            return (.set(set), left)
        case .object(let members):
            var left = budget - 1
            var record: [String: CedarValue] = [:]
            for (key, item) in members {
                guard record[key] == nil else {
                    throw RPCFault(RPCMessage.Code.invalidParams, "\(path).\(key): given twice")
                }
                let converted = try cedar(item, depth: depth + 1, budget: left, path: "\(path).\(key)")
                record[key] = converted.value
                left = converted.left
            }
            return (.record(record), left)
        }
    }
}

/// How many notifications a server may send a second before the rest are dropped (and the dropping
/// recorded, once a second).
struct NotificationBudget {
    static let perSecond = 100
    var second: Int64 = 0
    var used = 0
    var dropped = 0

    /// Whether one more passes, and a count of dropped ones to record: the first drop of a second at
    /// once, and the second's whole count when the next second begins.
    mutating func take(now: Int64) -> (pass: Bool, report: Int?) {
        let current = now / 1_000_000_000
        var report: Int?
        if current != second {
            if dropped > 1 { report = dropped }
            second = current
            used = 0
            dropped = 0
        }
        used += 1
        if used > Self.perSecond {
            dropped += 1
            return (false, report ?? (dropped == 1 ? 1 : nil))
        }
        return (true, report)
    }
}
