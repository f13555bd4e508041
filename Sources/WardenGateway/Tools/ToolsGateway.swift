import Crypto
import Foundation
import Synchronization
import WardenCore
import WardenPolicy

/// The tools door: the one MCP server the agent sees, aggregating the operator's servers.
///
/// Every `tools/list` and `tools/call` is a Cedar decision recorded before it is acted on: principal
/// `Run::"<id>"`, action `Action::"call"`, resource `Tool::"<server>.<tool>"` (attributes `server`,
/// `trust`, `name`, and the pinned annotations' hints), context `arguments` (the call's arguments as a
/// Cedar record). A tool is listed only if it is pinned and some call of it could be allowed or asked
/// (``PolicySet/couldAllow(principal:action:resource:entities:)``), so listing and calling agree. A
/// denied call is answered with a tool result whose `isError` names the policy and the reason; an
/// `ask` holds the call for a person, bound to the digest of (server, tool, canonical arguments).
public final class ToolsGateway: @unchecked Sendable {
    // @unchecked: `catalog` is guarded by `state`; the rest is immutable or thread-safe.
    public let run: RunID
    let runEntity: Entity
    let engine: PolicyEngine
    let pins: ToolPins
    let sink: any EventSink
    let broker: ApprovalBroker?
    let settings: [String: ToolServerSettings]
    let upstreams: [String: StdioUpstream]
    let admitNewTools: Bool
    let approvalTimeout: Duration
    /// Called when a call is held for a person (a foreground run's terminal prompts for it).
    let onHeld: @Sendable (Approval) -> Void

    /// What the agent was last shown: its name for each tool, and the snapshot with the tool entities.
    struct Catalog {
        var tools: [String: (server: String, tool: ToolDefinition)] = [:]
        var hidden: [String: String] = [:]
        var snapshot: PolicyEngine.Snapshot?
    }

    private let state = Mutex(Catalog())
    /// Result records are written off the call's path, in order (the decision before it is not).
    private let afterwards = DispatchQueue(label: "warden-tools-records")

    /// Starts each server and speaks MCP's handshake with it.
    /// - Throws: ``WardenError`` for a server that does not start or speaks no revision Warden does.
    public init(
        run: RunID, runEntity: Entity, engine: PolicyEngine, pins: ToolPins, sink: any EventSink,
        broker: ApprovalBroker?, servers: [ToolServerSettings], roots: [String], admitNewTools: Bool = false,
        approvalTimeout: Duration = .seconds(120), onHeld: @escaping @Sendable (Approval) -> Void = { _ in }
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
        var settings: [String: ToolServerSettings] = [:]
        var upstreams: [String: StdioUpstream] = [:]
        for server in servers {
            guard ToolServerSettings.isValidName(server.name) else {
                throw WardenError.invalidInput(
                    "mcp.servers.\(server.name): a server name is letters, digits and '-' (it prefixes tool names as NAME__tool)"
                )
            }
            settings[server.name] = server
            upstreams[server.name] = try StdioUpstream(
                name: server.name, command: server.command, roots: roots, timeout: server.timeout)
        }
        self.settings = settings
        self.upstreams = upstreams
    }

    /// Ends the servers, once the result records still being written are written.
    public func close() {
        afterwards.sync {}
        for upstream in upstreams.values { upstream.close() }
    }

    private func recordAfterwards(_ kind: EventKind, subject: String, _ details: [String: String]) {
        let event = RunEvent(run: run, kind: kind, actor: .gateway, subject: subject, details: details)
        let sink = sink
        afterwards.async { try? sink.record(event) }
    }

    /// The agent's name for a server's tool.
    static func exposedName(server: String, tool: String) -> String { server + "__" + tool }

    // MARK: - The agent's side

    /// Answers one message from the agent (a line of JSON); nil for a notification.
    public func handle(line: [UInt8]) -> String? {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes: line)
        } catch {
            return RPCMessage.error(id: .null, code: RPCMessage.Code.parseError, message: "not JSON: \(error)").line
        }
        let message: RPCMessage
        do {
            message = try RPCMessage.parse(value)
        } catch {
            return RPCMessage.error(id: error.id ?? .null, code: error.code, message: error.message).line
        }
        guard case .request(let id, let method, let params) = message else { return nil }
        do {
            return RPCMessage.result(id: id, result: try answer(method, params)).line
        } catch let fault as RPCFault {
            return RPCMessage.error(id: id, code: fault.code, message: fault.message).line
        } catch {
            return RPCMessage.error(id: id, code: RPCMessage.Code.internalError, message: "\(error)").line
        }
    }

    func answer(_ method: String, _ params: JSONValue?) throws -> JSONValue {
        switch method {
        case "initialize":
            let asked = params?["protocolVersion"]?.stringValue ?? MCPRevision.latest
            let version = MCPRevision.supported.contains(asked) ? asked : MCPRevision.latest
            return .object([
                ("protocolVersion", .string(version)),
                ("capabilities", .object([("tools", .object([("listChanged", .bool(true))]))])),
                ("serverInfo", .object([("name", .string("warden")), ("version", .string("0"))])),
                (
                    "instructions",
                    .string("Warden's tools door: every call is decided by the run's policies and recorded.")
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
            return try callTool(name, arguments: arguments)
        default:
            throw RPCFault(RPCMessage.Code.methodNotFound, "\(method) is not offered by Warden's tools door yet")
        }
    }

    // MARK: - Listing

    /// Every pinned tool some call of which the policies could allow or ask, as `server__tool`.
    func listTools() throws -> JSONValue {
        var catalog = Catalog()
        var entities: [Entity] = []
        var listed: [(server: String, tool: ToolDefinition, raw: JSONValue)] = []
        var events: [RunEvent] = []
        for name in upstreams.keys.sorted() {
            guard let upstream = upstreams[name], let server = settings[name] else { continue }
            var raw: [JSONValue] = []
            var cursor: JSONValue?
            for _ in 0..<100 {
                let page = try upstream.request(
                    "tools/list", cursor.map { .object([("cursor", $0)]) })
                if case .array(let items)? = page["tools"] { raw += items }
                cursor = page["nextCursor"]
                if cursor == nil || cursor == .null { break }
            }
            var definitions: [(ToolDefinition, JSONValue)] = []
            for item in raw {
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
                entities.append(Self.entity(server: server, tool: definition))
                listed.append((name, definition, item))
            }
        }
        let snapshot = try engine.snapshot.adding(entities + [runEntity])
        catalog.snapshot = snapshot
        var shown: [JSONValue] = []
        var denied: [String] = []
        for (server, definition, item) in listed {
            let exposed = Self.exposedName(server: server, tool: definition.name)
            let could = snapshot.policies.couldAllow(
                principal: runEntity.uid, action: EntityUID(type: "Action", id: "call"),
                resource: Self.resource(server: server, tool: definition.name), entities: snapshot.entities)
            guard could else {
                denied.append(exposed)
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
                    "hidden": catalog.hidden.keys.sorted().joined(separator: ","), "decision": "allow",
                    "revisions": upstreams.keys.sorted().compactMap { name in
                        upstreams[name].map { "\(name)=\($0.protocolVersion)" }
                    }.joined(separator: ","),
                ]))
        try sink.record(contentsOf: events)
        state.withLock { $0 = catalog }
        return .object([("tools", .array(shown))])
    }

    static func resource(server: String, tool: String) -> EntityUID {
        EntityUID(type: "Tool", id: "\(server).\(tool)")
    }

    /// `Tool::"server.tool"` with the attributes a policy may read: server, name, trust, labels, and
    /// the pinned annotations' hints.
    static func entity(server: ToolServerSettings, tool: ToolDefinition) -> Entity {
        var attributes: [String: CedarValue] = [
            "server": .string(server.name), "name": .string(tool.name), "trust": .string(server.trust.rawValue),
            "labels": .set(Set(server.labels.map(CedarValue.string))),
        ]
        var hints: [String: CedarValue] = [:]
        if case .object(let members)? = tool.annotations {
            for (key, value) in members {
                if case .bool(let b) = value { hints[key] = .bool(b) }
            }
        }
        attributes["annotations"] = .record(hints)
        return Entity(uid: resource(server: server.name, tool: tool.name), attributes: attributes)
    }

    // MARK: - Calling

    func callTool(_ exposed: String, arguments: JSONValue) throws -> JSONValue {
        var known = state.withLock { $0 }
        if known.snapshot == nil {
            _ = try listTools()
            known = state.withLock { $0 }
        }
        let subject = "call \(exposed)"
        var details: [String: String] = ["door": "tools", "action": "call", "tool": exposed]
        func refuse(_ reason: String, policies: [String] = []) throws -> JSONValue {
            details["decision"] = "deny"
            details["reason"] = reason
            if !policies.isEmpty { details["policies"] = policies.joined(separator: ",") }
            try record(.decision, subject: subject, details)
            return Self.errorResult(
                "Denied by Warden's tools policy"
                    + (policies.isEmpty ? "" : " (\(policies.joined(separator: ", ")))") + ": \(reason)")
        }
        let canonical = (try? arguments.canonicalized()) ?? "{}"
        details["arguments_digest"] = ToolDefinition.sha256(canonical)
        details["arguments"] = String(canonical.prefix(4096))
        guard let (server, tool) = known.tools[exposed], let snapshot = known.snapshot,
            let upstream = upstreams[server]
        else {
            return try refuse(known.hidden[exposed].map { "\(exposed) is held back: \($0)" } ?? "no tool \(exposed)")
        }
        details["server"] = server
        let cedarArguments: CedarValue
        do {
            cedarArguments = try Self.cedar(arguments, depth: 0, budget: 10_000).value
        } catch {
            return try refuse("the arguments cannot be decided on: \(error.message)")
        }
        let decision = PolicyEngine.decide(
            AuthorizationRequest(
                principal: runEntity.uid, action: EntityUID(type: "Action", id: "call"),
                resource: Self.resource(server: server, tool: tool.name),
                context: ["arguments": cedarArguments, "server": .string(server)]),
            in: snapshot)
        let ids = decision.reasons.map(\.policyID)
        details["policies"] = ids.joined(separator: ",")
        if !decision.errors.isEmpty {
            details["policy_errors"] = decision.errors.map { "\($0.policyID): \($0.message)" }.joined(separator: "; ")
        }
        if decision.kind == .deny { return try refuse(decision.explanation, policies: ids) }
        if decision.kind == .ask {
            if let refusal = askPerson(
                server: server, tool: tool.name, arguments: arguments, canonical: canonical, decision: decision)
            {
                return try refuse(refusal, policies: ids)
            }
        }
        details["decision"] = "allow"
        details["reason"] = decision.kind == .ask ? "approved by a person" : decision.explanation
        // Recorded before the call goes: not recorded, not done.
        try record(.decision, subject: subject, details)
        let started = RunEvent.now()
        var outcome: [String: String] = ["door": "tools", "tool": exposed, "server": server]
        do {
            let result = try upstream.request(
                "tools/call", .object([("name", .string(tool.name)), ("arguments", arguments)]))
            let text = (try? result.canonicalized()) ?? ""
            outcome["result_digest"] = ToolDefinition.sha256(text)
            outcome["result_bytes"] = String(text.utf8.count)
            outcome["is_error"] = String(result["isError"] == .bool(true))
            outcome["duration_ms"] = String((RunEvent.now() - started) / 1_000_000)
            recordAfterwards(.toolResult, subject: subject, outcome)
            return result
        } catch {
            outcome["error"] = "\(error)"
            outcome["duration_ms"] = String((RunEvent.now() - started) / 1_000_000)
            recordAfterwards(.toolResult, subject: subject, outcome)
            // A tool result the agent can read and adapt to, not a protocol error.
            return Self.errorResult((error as? WardenError)?.message ?? "\(error)")
        }
    }

    /// A tool result carrying `text` with `isError`: what the agent reads for a refusal or a failure.
    static func errorResult(_ text: String) -> JSONValue {
        .object([
            ("content", .array([.object([("type", .string("text")), ("text", .string(text))])])),
            ("isError", .bool(true)),
        ])
    }

    private func record(_ kind: EventKind, subject: String, _ details: [String: String]) throws {
        try sink.record(RunEvent(run: run, kind: kind, actor: .gateway, subject: subject, details: details))
    }

    /// Holds an `ask` for a person; nil when approved (and used), else why not.
    private func askPerson(
        server: String, tool: String, arguments: JSONValue, canonical: String, decision: PolicyDecision
    ) -> String? {
        guard let broker else { return "a person must approve this, and no approvals broker is available" }
        let request = JSONValue.object([
            ("door", .string("tools")), ("server", .string(server)), ("tool", .string(tool)),
            ("arguments", arguments),
        ])
        return broker.hold(
            run: run, door: .tools, request: request, summary: "call \(server).\(tool) \(canonical.prefix(200))",
            reasons: decision.reasons.map { "\($0.policyID): \($0.ask ?? "")" }, timeout: approvalTimeout,
            what: "the call", onHeld: onHeld)
    }

    /// Arguments as Cedar: objects → records, arrays → sets, integers → long, strings, booleans.
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
            guard let n = Int64(text) else {
                throw RPCFault(
                    RPCMessage.Code.invalidParams, "\(path): \(text) is not a 64-bit integer (Cedar has no fractions)")
            }
            return (.long(n), budget - 1)
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
