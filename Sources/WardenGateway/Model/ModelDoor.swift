import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WardenCore
import WardenGuard
import WardenPolicy

/// Where the door writes an answer: one HTTP response to the agent. Writes are enqueued in order from
/// any thread; the returned future completes when the bytes are handed to the kernel (backpressure).
public protocol ModelResponder: Sendable {
    func head(status: Int, headers: [(String, String)])
    func send(_ bytes: [UInt8]) -> EventLoopFuture<Void>
    func finish()
}

/// What the tools door would decide for a tool call the model proposes (same Cedar request).
public struct ToolCallVerdict: Sendable {
    public var tool: String
    /// `allow`, `deny` or `ask`; nil when the tool is not one of the tools door's.
    public var decision: String?
    public var policies: [String]

    public init(tool: String, decision: String?, policies: [String]) {
        self.tool = tool
        self.decision = decision
        self.policies = policies
    }
}

/// The model door: an OpenAI- and Anthropic-compatible endpoint on the sandbox's loopback.
///
/// Each request is a Cedar decision recorded before it goes: principal `Run::"<id>"`, action
/// `Action::"complete"`, resource `Model::"<name>"` (attributes `name`, `protocol`, `host`), context
/// `model` (what the agent asked for), `endpoint`, `stream`, `tokens` (`in`, `out`, `total` of the run so
/// far), `requests`, `request_bytes`, `max_tokens`, `tools` (offered), `tool_count`, `messages`,
/// `new_messages`, `new_tool_results`, `findings` (the detectors on the new messages). The real key
/// is added on the way out (the agent holds a dummy). What comes back is checked as it passes: when
/// the detectors find something in the model's output, or a tool call it proposes is one the tools door
/// would deny or hold, `Action::"respond"` is decided (context `findings`, `tool_calls`,
/// `tool_calls_denied`, `tool_calls_held`, `tokens`); a refusal ends the answer with the API's own error
/// (an error event mid-stream). Budgets (`model_tokens_max`, `model_requests_max`) and the model cut
/// (`warden model cut`) refuse further requests and end open streams.
public final class ModelDoor: Sendable {
    public let run: RunID
    let runEntity: Entity
    let engine: PolicyEngine
    let sink: any EventSink
    let broker: ApprovalBroker?
    let settings: ModelDoorSettings
    let upstreams: [String: Upstream]
    let classifier: InjectionClassifier?
    let approvalTimeout: Duration
    let onHeld: @Sendable (Approval) -> Void
    /// The tools door's verdict on a proposed call (when the run has one).
    let toolCheck: (@Sendable (ProposedCall) -> ToolCallVerdict)?
    /// The real keys' bytes: never relayed, recorded or shown.
    let secrets: [[UInt8]]
    /// The largest request body read.
    public static let bodyMax = 16 << 20

    struct Upstream: Sendable {
        var settings: ModelUpstreamSettings
        var key: String?
        var entity: Entity
        var base: URL
    }

    struct State {
        var tokensIn: Int64 = 0
        var tokensOut: Int64 = 0
        var requests: Int64 = 0
        var seen: Set<String> = []
        var cut: String?
        var budgetRecorded = false
        var streams: [Int: OpenStream] = [:]
        var nextStream = 0
    }
    private let state = Mutex(State())
    /// Result records are written off the answer's path, in order.
    private let afterwards = DispatchQueue(label: "warden-model-records")

    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Reads each upstream's key (from `environment` or its `key_file`).
    /// - Throws: ``WardenError`` for a bad upstream, a key that cannot be read, or a classifier that
    ///   cannot run when `classify = true` (fail closed).
    public init(
        run: RunID, runEntity: Entity, engine: PolicyEngine, sink: any EventSink, broker: ApprovalBroker?,
        settings: ModelDoorSettings, approvalTimeout: Duration = .seconds(120),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        toolCheck: (@Sendable (ProposedCall) -> ToolCallVerdict)? = nil,
        onHeld: @escaping @Sendable (Approval) -> Void = { _ in }
    ) throws {
        self.run = run
        self.runEntity = runEntity
        self.engine = engine
        self.sink = sink
        self.broker = broker
        self.settings = settings
        self.approvalTimeout = approvalTimeout
        self.onHeld = onHeld
        self.toolCheck = toolCheck
        var upstreams: [String: Upstream] = [:]
        var secrets: [[UInt8]] = []
        for upstream in settings.upstreams {
            try upstream.validate()
            guard upstreams[upstream.name] == nil else {
                throw WardenError.invalidInput("models.\(upstream.name): named twice")
            }
            var key: String?
            if let variable = upstream.keyEnvironment {
                guard let value = environment[variable], !value.isEmpty else {
                    throw WardenError(
                        code: .layerUnavailable,
                        message:
                            "model: models.\(upstream.name).key_env: \(variable) is not set in warden's environment; export it (it stays outside the sandbox)"
                    )
                }
                key = value
            } else if let path = upstream.keyFile {
                guard let data = FileManager.default.contents(atPath: path),
                    let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
                    !text.isEmpty
                else {
                    throw WardenError(
                        code: .layerUnavailable,
                        message: "model: models.\(upstream.name).key_file: cannot read a key from \(path)")
                }
                key = text
            }
            if let key, key.utf8.count >= 8 { secrets.append(Array(key.utf8)) }
            guard let base = URL(string: upstream.url) else {
                throw WardenError.invalidInput("models.\(upstream.name).url: '\(upstream.url)' is not a URL")
            }
            let entity = Entity(
                uid: EntityUID(type: "Model", id: upstream.name),
                attributes: [
                    "name": .string(upstream.name), "protocol": .string(upstream.api.rawValue),
                    "host": .string(base.host ?? ""),
                ])
            upstreams[upstream.name] = Upstream(settings: upstream, key: key, entity: entity, base: base)
        }
        self.upstreams = upstreams
        self.secrets = secrets
        if settings.classify {
            do {
                classifier = try InjectionClassifier()
            } catch {
                throw WardenError(
                    code: .layerUnavailable,
                    message:
                        "model: classify = true and the classifier cannot run: \((error as? WardenError)?.message ?? "\(error)")"
                )
            }
        } else {
            classifier = nil
        }
    }

    /// Waits for the records still being written.
    public func close() { afterwards.sync {} }

    // MARK: - The model cut

    /// Refuses every later request and ends each open stream with an error event; recorded.
    /// - Returns: how many streams it ended.
    @discardableResult
    public func cut(reason: String, by actor: String) -> Int {
        let streams = state.withLock { s -> [OpenStream] in
            if s.cut == nil { s.cut = reason }
            return Array(s.streams.values)
        }
        var ended = 0
        for stream in streams where stream.end(code: "warden_cut", message: "Warden cut this run's model: \(reason)") {
            ended += 1
        }
        try? record(
            .modelCut, subject: "model",
            ["door": "model", "reason": reason, "by": actor, "streams_ended": String(ended)])
        return ended
    }

    // MARK: - Serving a request

    /// Answers one HTTP request from the agent.
    public func handle(
        method: String, path: String, headers: [(String, String)], body: [UInt8], tooBig: Bool,
        responder: any ModelResponder
    ) async {
        let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        let endpoint = ModelEndpoint.at(route)
        let api: ModelProtocol =
            endpoint?.api
            ?? (headers.contains { $0.0.lowercased() == "anthropic-version" || $0.0.lowercased() == "x-api-key" }
                ? .anthropic : .openai)
        func fail(_ fault: ModelFault) {
            Self.respond(
                responder, status: fault.status,
                body: ModelAPI.errorBody(api, type: fault.type, code: fault.code, message: fault.message))
        }
        if method == "GET" && (route == "/v1/models" || route == "/models") {
            return Self.respond(responder, status: 200, body: modelList())
        }
        guard let endpoint else {
            return fail(
                ModelFault(
                    404, "not_found_error",
                    "Warden's model door has no \(method) \(route); it serves POST /v1/chat/completions, /v1/responses, /v1/messages and GET /v1/models",
                    code: "unknown_url"))
        }
        guard method == "POST" else {
            return fail(ModelFault(405, "invalid_request_error", "use POST for \(route)"))
        }
        if tooBig {
            return fail(
                ModelFault(
                    413, "request_too_large",
                    "the request body is over \(Self.bodyMax >> 20) MiB; Warden's model door does not read it; send a shorter conversation"
                ))
        }
        do {
            try await serve(endpoint: endpoint, headers: headers, body: body, responder: responder)
        } catch {
            fail(error)
        }
    }

    /// `GET /v1/models`: the names the door serves (OpenAI's list shape, with Anthropic's `type`).
    func modelList() -> String {
        let items = upstreams.keys.sorted().map { name -> JSONValue in
            .object([
                ("id", .string(name)), ("object", .string("model")), ("type", .string("model")),
                ("owned_by", .string("warden")), ("display_name", .string(name)),
            ])
        }
        return JSONValue.object([("object", .string("list")), ("data", .array(items)), ("has_more", .bool(false))])
            .serialized
    }

    private func serve(
        endpoint: ModelEndpoint, headers: [(String, String)], body: [UInt8], responder: any ModelResponder
    )
        async throws(ModelFault)
    {
        let started = RunEvent.now()
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes: body)
        } catch {
            throw ModelFault(
                400, "invalid_request_error", "the request body is not JSON (\(error)); send one JSON object")
        }
        let prompt = try ModelAPI.summary(value, endpoint: endpoint)
        guard let upstream = route(prompt.model, api: endpoint.api) else {
            let served = upstreams.values.filter { $0.settings.api == endpoint.api }.map(\.settings.name).sorted()
            if served.isEmpty {
                throw ModelFault(
                    400, "invalid_request_error",
                    "\(endpoint.api == .anthropic ? "/v1/messages is Anthropic's API" : "this is OpenAI's API"); this run's models (\(upstreams.keys.sorted().joined(separator: ", "))) speak \(endpoint.api == .anthropic ? "openai" : "anthropic"): use its endpoint",
                    code: "wrong_protocol")
            }
            throw ModelFault(
                404, "not_found_error",
                "no model '\(prompt.model)' behind Warden's model door; this run has \(served.joined(separator: ", "))",
                code: "model_not_found")
        }
        guard upstream.settings.api == endpoint.api else {
            throw ModelFault(
                400, "invalid_request_error",
                "model \(upstream.settings.name) speaks \(upstream.settings.api.rawValue); send it to \(upstream.settings.api == .openai ? "/v1/chat/completions or /v1/responses" : "/v1/messages")",
                code: "wrong_protocol")
        }
        var details: [String: String] = [
            "door": "model", "action": "complete", "model": upstream.settings.name, "endpoint": endpoint.rawValue,
            "requested": prompt.model, "stream": String(prompt.stream), "request_bytes": String(body.count),
            "messages": String(prompt.messages.count),
            "messages_digest": ToolDefinition.sha256(prompt.messages.map(\.digest).joined(separator: ",")),
        ]
        let subject = "complete \(upstream.settings.name)"
        // A caller's tag for its conversation (the red team's trials), kept in every record of it.
        let trial = headers.first { $0.0.lowercased() == "x-warden-trial" }?.1.prefix(64).description
        if let trial { details["trial"] = trial }
        // Count-tokens requests are forwarded under the same decision but not counted against budgets.
        let counted = endpoint != .countTokens
        let (cut, used, seen) = state.withLock { ($0.cut, ($0.tokensIn, $0.tokensOut, $0.requests), $0.seen) }
        if let cut {
            details["decision"] = "deny"
            details["reason"] = "the model was cut: \(cut)"
            recordNow(.decision, subject: subject, details)
            throw ModelFault(403, "permission_error", "Warden cut this run's model: \(cut)", code: "warden_cut")
        }
        let fresh = prompt.messages.filter { !seen.contains($0.digest) }
        let freshText = fresh.map(\.text).joined(separator: "\n")
        var findings = Guard.standard.scan(freshText)
        if let classifier {
            let untrusted = fresh.filter(\.untrusted).map(\.text).joined(separator: "\n")
            if !untrusted.isEmpty {
                let score = classifier.score(untrusted)
                details["classifier_score"] = String(format: "%.3f", score.score)
                findings += classifier.findings(score, bytes: untrusted.utf8.count)
            }
        }
        details["new_messages"] = String(fresh.count)
        if !findings.isEmpty { details["findings"] = ToolsGateway.summary(findings) }
        if settings.logBodies {
            details["request_body"] = redacted(String(decoding: body.prefix(65536), as: UTF8.self))
        }
        details["tokens_before"] = "\(used.0)/\(used.1)"
        if counted, let refusal = budgetRefusal(tokens: used.0 + used.1, requests: used.2, details: &details) {
            details["decision"] = "deny"
            details["reason"] = refusal
            recordNow(.decision, subject: subject, details)
            throw ModelFault(403, "permission_error", "Warden's model budget: \(refusal)", code: "warden_budget")
        }
        let context: [String: CedarValue] = [
            "model": .string(prompt.model), "endpoint": .string(endpoint.rawValue), "stream": .bool(prompt.stream),
            "tokens": .record([
                "in": .long(used.0), "out": .long(used.1), "total": .long(used.0 + used.1),
            ]),
            "requests": .long(used.2), "request_bytes": .long(Int64(body.count)),
            "max_tokens": .long(prompt.maxTokens ?? 0), "tools": .set(Set(prompt.tools.map(CedarValue.string))),
            "tool_count": .long(Int64(prompt.tools.count)), "messages": .long(Int64(prompt.messages.count)),
            "new_messages": .long(Int64(fresh.count)),
            "new_tool_results": .long(Int64(fresh.filter(\.untrusted).count)),
            "findings": Self.cedar(findings),
        ]
        try await decide(
            action: "complete", upstream: upstream, context: context, subject: subject, details: &details,
            summary: "complete \(upstream.settings.name): \(prompt.messages.count) messages, \(body.count) bytes",
            request: .object([
                ("door", .string("model")), ("model", .string(upstream.settings.name)),
                ("endpoint", .string(endpoint.rawValue)),
                ("messages_digest", .string(details["messages_digest"] ?? "")),
            ]))
        state.withLock {
            if counted { $0.requests += 1 }
            for message in prompt.messages { $0.seen.insert(message.digest) }
        }
        // On the way out: the real key, the upstream's own model id.
        var outgoing = value
        if let id = upstream.settings.model, prompt.model == upstream.settings.name {
            outgoing = ModelAPI.replacingModel(value, with: id)
        }
        let bytes = outgoing == value ? body : Array(outgoing.serialized.utf8)
        var request = HTTPClientRequest(
            url: upstream.base.absoluteString.replacingOccurrences(of: upstream.base.path, with: "")
                + endpoint.upstreamPath(base: upstream.base.path))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: prompt.stream ? "text/event-stream" : "application/json")
        for (name, value) in headers
        where ["anthropic-version", "anthropic-beta", "openai-beta", "openai-organization", "openai-project"].contains(
            name.lowercased())
        {
            request.headers.add(name: name, value: value)
        }
        if let key = upstream.key {
            switch upstream.settings.api {
            case .openai: request.headers.add(name: "Authorization", value: "Bearer \(key)")
            case .anthropic: request.headers.add(name: "x-api-key", value: key)
            }
        }
        if upstream.settings.api == .anthropic && !request.headers.contains(name: "anthropic-version") {
            request.headers.add(name: "anthropic-version", value: "2023-06-01")
        }
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let decided = RunEvent.now()
        let exchange = Exchange(
            door: self, endpoint: endpoint, upstream: upstream, responder: responder, subject: subject,
            started: started, estimatedIn: Int64(body.count / 4 + 1), tokensBefore: used.0 + used.1)
        exchange.outcome["decided_ms"] = Exchange.milliseconds(decided - started)
        if let trial { exchange.outcome["trial"] = trial }
        await exchange.run(request, stream: prompt.stream)
    }

    /// The upstream a request's `model` goes to: the one of that name, else the only one of the API.
    func route(_ model: String, api: ModelProtocol) -> Upstream? {
        if let named = upstreams[model] { return named }
        let candidates = upstreams.values.filter { $0.settings.api == api }
        return candidates.count == 1 ? candidates.first : nil
    }

    /// Why a spent budget refuses the request (nil: within budget, or `on_budget = "record"`, which
    /// records the overrun once and lets it pass).
    func budgetRefusal(tokens: Int64, requests: Int64, details: inout [String: String]) -> String? {
        var reason: String?
        if let max = settings.tokensMax, tokens >= max {
            reason = "the run has used \(tokens) of its \(max) model tokens (model_tokens_max)"
        } else if let max = settings.requestsMax, requests >= max {
            reason = "the run has made \(requests) of its \(max) model requests (model_requests_max)"
        }
        guard let reason else { return nil }
        let first = state.withLock { s -> Bool in
            defer { s.budgetRecorded = true }
            return !s.budgetRecorded
        }
        if first {
            recordNow(
                .budgetHit, subject: "model",
                ["door": "model", "budget": reason, "action": settings.onBudget.rawValue])
        }
        if settings.onBudget == .record {
            details["budget"] = reason
            return nil
        }
        return reason
    }

    /// Decides `action`, holds an ask for a person, records the decision; throws the refusal.
    func decide(
        action: String, upstream: Upstream, context: [String: CedarValue], subject: String,
        details: inout [String: String], summary: String, request: JSONValue
    ) async throws(ModelFault) {
        let snapshot: PolicyEngine.Snapshot
        do {
            snapshot = try engine.snapshot.adding([upstream.entity])
        } catch {
            details["decision"] = "deny"
            details["reason"] = "the policies' entities cannot take the model: \(error.message)"
            recordNow(.decision, subject: subject, details)
            throw ModelFault(
                403, "permission_error", "Denied by Warden's model policy: \(error.message)", code: "warden_denied")
        }
        let decision = PolicyEngine.decide(
            AuthorizationRequest(
                principal: runEntity.uid, action: EntityUID(type: "Action", id: action), resource: upstream.entity.uid,
                context: context),
            in: snapshot)
        let ids = decision.reasons.map(\.policyID)
        details["action"] = action
        details["policies"] = ids.joined(separator: ",")
        if !decision.errors.isEmpty {
            details["policy_errors"] = decision.errors.map { "\($0.policyID): \($0.message)" }.joined(separator: "; ")
        }
        var refusal: String?
        if decision.kind == .deny {
            refusal = decision.explanation
        } else if decision.kind == .ask {
            if let broker {
                let timeout = approvalTimeout
                let onHeld = onHeld
                let run = run
                refusal = await Self.blocking {
                    broker.hold(
                        run: run, door: .model, request: request, summary: summary,
                        reasons: decision.reasons.map { "\($0.policyID): \($0.ask ?? "")" }, timeout: timeout,
                        what: "the model request", onHeld: onHeld)
                }
            } else {
                refusal = "a person must approve this, and no approvals broker is available"
            }
        }
        if let refusal {
            details["decision"] = "deny"
            details["reason"] = refusal
            recordNow(.decision, subject: subject, details)
            throw ModelFault(
                403, "permission_error",
                "Denied by Warden's model policy" + (ids.isEmpty ? "" : " (\(ids.joined(separator: ", ")))")
                    + ": \(refusal)",
                code: "warden_denied")
        }
        details["decision"] = "allow"
        details["reason"] = decision.kind == .ask ? "approved by a person" : decision.explanation
        // Recorded before the request goes: not recorded, not done.
        let event = RunEvent(run: run, kind: .decision, actor: .gateway, subject: subject, details: details)
        let sink = sink
        // Written on this thread: a journal write (or a group commit) is short, and a hop to another
        // thread and back costs more than it.
        var failure: String?
        do {
            try sink.record(event)
        } catch {
            failure = "\(error)"
        }
        if let failure {
            throw ModelFault(
                503, "api_error", "Warden could not record the decision (\(failure)); the request is not sent",
                code: "warden_unrecorded")
        }
    }

    /// Runs blocking work (an approval's wait, a durable write) off the cooperative pool.
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }

    /// `context.findings`, with the classifier's score as `classifier` (percent) too.
    static func cedar(_ findings: [Finding]) -> CedarValue {
        guard case .record(var fields) = ToolsGateway.cedar(findings) else { return ToolsGateway.cedar(findings) }
        let best = findings.filter { $0.detector == InjectionClassifier.name }.map(\.confidence).max() ?? 0
        fields[InjectionClassifier.name] = .long(Int64((best * 100).rounded()))
        return .record(fields)
    }

    // MARK: - Records

    func recordNow(_ kind: EventKind, subject: String, _ details: [String: String]) {
        try? record(kind, subject: subject, details)
    }

    func record(_ kind: EventKind, subject: String, _ details: [String: String]) throws {
        try sink.record(RunEvent(run: run, kind: kind, actor: .gateway, subject: subject, details: details))
    }

    func recordAfterwards(_ kind: EventKind, subject: String, _ details: [String: String]) {
        let event = RunEvent(run: run, kind: kind, actor: .gateway, subject: subject, details: details)
        let sink = sink
        afterwards.async { try? sink.record(event) }
    }

    /// `text` with the real keys and every secret the detectors find replaced.
    func redacted(_ text: String) -> String {
        var out = text
        for secret in secrets {
            out = out.replacingOccurrences(of: String(decoding: secret, as: UTF8.self), with: "[redacted key]")
        }
        let findings = Guard.standard.scan(out).filter { $0.detector == "secrets" }.sorted { $0.start > $1.start }
        var bytes = Array(out.utf8)
        for finding in findings where finding.start >= 0 && finding.end <= bytes.count && finding.start < finding.end {
            bytes.replaceSubrange(finding.start..<finding.end, with: Array("[redacted secret]".utf8))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `bytes` with every real key replaced (what is relayed to the agent).
    func scrubbed(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        for secret in secrets {
            guard let first = secret.first, out.count >= secret.count else { continue }
            var i = 0
            while i + secret.count <= out.count {
                if out[i] == first && out[i..<(i + secret.count)].elementsEqual(secret) {
                    out.replaceSubrange(i..<(i + secret.count), with: Array("[redacted key]".utf8))
                    i += 14
                } else {
                    i += 1
                }
            }
        }
        return out
    }

    // MARK: - Open streams

    func register(_ stream: OpenStream) -> Int? {
        state.withLock { s -> Int? in
            guard s.cut == nil else { return nil }
            s.nextStream += 1
            s.streams[s.nextStream] = stream
            return s.nextStream
        }
    }

    func unregister(_ id: Int) { state.withLock { _ = $0.streams.removeValue(forKey: id) } }

    /// Adds what an answer used to the run's counts; the total after.
    func count(tokensIn: Int64, tokensOut: Int64) -> Int64 {
        state.withLock {
            $0.tokensIn += tokensIn
            $0.tokensOut += tokensOut
            return $0.tokensIn + $0.tokensOut
        }
    }

    static func respond(_ responder: any ModelResponder, status: Int, body: String) {
        responder.head(
            status: status,
            headers: [("Content-Type", "application/json"), ("Content-Length", String(body.utf8.count))])
        _ = responder.send(Array(body.utf8))
        responder.finish()
    }
}

/// A stream being relayed to the agent: ended once, by its end, an error, a refusal or the cut.
final class OpenStream: Sendable {
    let endpoint: ModelEndpoint
    let responder: any ModelResponder
    private let state = Mutex<(ended: Bool, sequence: Int, endedBy: String?)>((false, 0, nil))
    /// Cancels the relay (set once it runs).
    let cancel = Mutex<(@Sendable () -> Void)?>(nil)

    init(endpoint: ModelEndpoint, responder: any ModelResponder) {
        self.endpoint = endpoint
        self.responder = responder
    }

    var endedBy: String? { state.withLock { $0.endedBy } }
    var isEnded: Bool { state.withLock { $0.ended } }

    /// Enqueues `bytes` unless the stream has ended.
    func write(_ bytes: [UInt8]) -> EventLoopFuture<Void>? {
        state.withLock { s -> EventLoopFuture<Void>? in
            guard !s.ended else { return nil }
            s.sequence += 1
            return responder.send(bytes)
        }
    }

    /// Ends the stream with an error event (false when it had ended already).
    @discardableResult
    func end(code: String, message: String, type: String = "permission_error") -> Bool {
        let ended = state.withLock { s -> Bool in
            guard !s.ended else { return false }
            s.ended = true
            s.endedBy = code
            let event = ModelAPI.errorEvent(endpoint, type: type, code: code, message: message, sequence: s.sequence)
            _ = responder.send(Array(event.utf8))
            responder.finish()
            return true
        }
        if ended { cancel.withLock { $0 }?() }
        return ended
    }

    /// Ends the stream normally.
    func finish() {
        state.withLock { s in
            guard !s.ended else { return }
            s.ended = true
            responder.finish()
        }
    }
}
