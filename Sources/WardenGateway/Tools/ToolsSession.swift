import Foundation
import Synchronization
import WardenCore
import WardenGuard
import WardenPolicy

/// One agent's connection to the tools door (a stdio bridge, a socket connection, or a Streamable HTTP
/// session). Requests are answered concurrently (a call held for a person does not stop the next), at
/// most ``inFlightMax`` at a time; `notifications/cancelled` cancels the named request at its server.
/// A request carrying the 2026-07-28 `_meta` is answered in that revision (with `resultType`); an
/// `initialize` fixes an older one for the session.
public final class ToolsSession: @unchecked Sendable {
    // @unchecked: `revision`, the counters and `inFlight` are guarded by `lock`; `write` is the
    // caller's (thread-safe) writer.
    public let id: Int
    unowned let gateway: ToolsGateway
    /// Whether Warden may send this session messages of its own (list changes, progress).
    let pushes: Bool
    public let write: @Sendable (String) -> Bool
    private let lock = NSLock()
    private var negotiated: String?
    private var calls = 0
    private var denied = 0
    private var inFlight: [String: ToolsGateway.CallContext] = [:]
    private let group = DispatchGroup()
    /// What entered this session's context (labels, sources, untrusted values): WardenGuard's taint.
    let taint = SessionTaint()
    /// This session's datamarking marker (used for servers with `spotlight = true`).
    let spotlight = Spotlight.random()

    /// The most requests of one session answered at once; more get an error.
    public static let inFlightMax = 64
    /// The longest message Warden reads (a bigger one is answered with an error and skipped).
    public static let messageMax = 16 << 20

    init(id: Int, gateway: ToolsGateway, pushes: Bool, write: @escaping @Sendable (String) -> Bool) {
        self.id = id
        self.gateway = gateway
        self.pushes = pushes
        self.write = write
    }

    var revision: String? {
        get { lock.withLock { negotiated } }
        set { lock.withLock { negotiated = newValue } }
    }

    /// Whether the session speaks the stateless revision (its requests carried its `_meta`).
    var isModern: Bool { revision == MCPRevision.modern }

    func count(denied wasDenied: Bool) {
        lock.withLock {
            calls += 1
            if wasDenied { denied += 1 }
        }
    }

    /// `context.session`: what a policy may count on — calls decided so far, denials, and the labels
    /// of what entered the agent's context: `untrusted`, `sensitive`, `sources` (`server.tool`s whose
    /// output it read) and `findings` (the detectors that fired on that output).
    var cedarCounters: CedarValue {
        let labels = taint.summary
        return lock.withLock {
            .record([
                "calls": .long(Int64(calls)), "denied": .long(Int64(denied)), "id": .long(Int64(id)),
                "untrusted": .bool(labels.untrusted), "sensitive": .bool(labels.sensitive),
                "sources": .set(Set(labels.sources.map(CedarValue.string))),
                "findings": .set(Set(labels.findings.map(CedarValue.string))),
            ])
        }
    }

    /// Ends the session once its requests still running are answered (an agent that closed its
    /// input may still read); `cancel` cancels them first (the agent is gone).
    public func close(cancel: Bool = false) {
        if cancel {
            let running = lock.withLock { Array(inFlight.values) }
            for call in running { call.cancel(reason: "the agent's session ended") }
        }
        group.wait()
        gateway.closeSession(self)
    }

    /// One message from the agent. Requests are answered on their own threads through `write`
    /// (or `reply`, when given: a Streamable HTTP request's own response); notifications are acted on
    /// at once. A message that is not JSON-RPC gets an error naming what is wrong.
    public func receive(_ bytes: [UInt8], reply: (@Sendable (String) -> Void)? = nil) {
        let answer = reply ?? { [write] line in _ = write(line) }
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes: bytes)
        } catch {
            answer(RPCMessage.error(id: .null, code: RPCMessage.Code.parseError, message: "not JSON: \(error)").line)
            return
        }
        let message: RPCMessage
        do {
            message = try RPCMessage.parse(value)
        } catch {
            answer(RPCMessage.error(id: error.id ?? .null, code: error.code, message: error.message).line)
            return
        }
        switch message {
        case .notification(let method, let params):
            if method == "notifications/cancelled", let target = params?["requestId"], let key = Self.key(target) {
                let call = lock.withLock { inFlight[key] }
                call?.cancel(reason: params?["reason"]?.stringValue ?? "cancelled by the agent")
            }
        case .result, .error:
            // Warden sends the agent no requests; an answer to none is dropped.
            break
        case .request(let id, let method, let params):
            guard let key = Self.key(id) else { return }
            let call = ToolsGateway.CallContext(agentID: id)
            let admitted = lock.withLock { () -> String? in
                if inFlight[key] != nil { return "id \(key) is already in flight in this session; use a new id" }
                if inFlight.count >= Self.inFlightMax {
                    return "more than \(Self.inFlightMax) requests in flight in this session; wait for answers"
                }
                inFlight[key] = call
                return nil
            }
            if let refusal = admitted {
                answer(RPCMessage.error(id: id, code: RPCMessage.Code.invalidRequest, message: refusal).line)
                return
            }
            group.enter()
            // On a dispatch worker: starting a thread per request costs more than the request itself,
            // and the pool grows past the cores when its workers block (a call held for a person),
            // which a test checks (callsHeldForAPersonDoNotStallTheSessionsOtherRequests).
            DispatchQueue.global().async { [self] in
                defer {
                    lock.withLock { _ = inFlight.removeValue(forKey: key) }
                    group.leave()
                }
                let line = respond(id: id, method: method, params: params, call: call)
                // A cancelled request is not answered (its requester has stopped waiting).
                if !call.isCancelled { answer(line) }
            }
        }
    }

    /// The answer line to one request, in the revision it came in.
    func respond(id: JSONValue, method: String, params: JSONValue?, call: ToolsGateway.CallContext) -> String {
        let named = MCPRevision.named(in: params)
        if let named {
            guard named == MCPRevision.modern else {
                return Self.unsupported(id: id, named: named)
            }
            revision = MCPRevision.modern
        } else if method == "server/discover" {
            revision = MCPRevision.modern
        }
        do {
            var result = try gateway.answer(method, params, in: self, call: call)
            if named != nil || method == "server/discover", case .object(var members) = result {
                if !members.contains(where: { $0.key == "resultType" }) {
                    members.append(("resultType", .string("complete")))
                }
                // The stateless revision's caching hints: Warden's lists change with pins and
                // policies, so nothing is cached, and nothing is shared between users.
                if Self.cacheable.contains(method) {
                    members.removeAll { $0.key == "ttlMs" || $0.key == "cacheScope" }
                    members += [("ttlMs", .number("0")), ("cacheScope", .string("private"))]
                }
                result = .object(members)
            }
            return RPCMessage.result(id: id, result: result).line
        } catch let fault as RPCFault {
            return RPCMessage.error(id: id, code: fault.code, message: fault.message).line
        } catch {
            return RPCMessage.error(
                id: id, code: RPCMessage.Code.internalError, message: (error as? WardenError)?.message ?? "\(error)"
            ).line
        }
    }

    /// The methods whose 2026-07-28 results carry caching hints.
    static let cacheable: Set<String> = [
        "server/discover", "tools/list", "resources/list", "resources/templates/list", "resources/read", "prompts/list",
    ]

    /// The error for a revision Warden does not speak, naming the ones it does (`data.supported`).
    static func unsupported(id: JSONValue, named: String) -> String {
        JSONValue.object([
            ("jsonrpc", .string("2.0")), ("id", id),
            (
                "error",
                .object([
                    ("code", .number(String(MCPRevision.unsupportedVersionCode))),
                    ("message", .string("Warden's tools door does not speak MCP revision \(named)")),
                    ("data", .object([("supported", .array(MCPRevision.supported.map(JSONValue.string)))])),
                ])
            ),
        ]).serialized + "\n"
    }

    /// A request id as a key (a string id and a number id never collide).
    static func key(_ id: JSONValue) -> String? {
        switch id {
        case .string(let s): return "s:" + s
        case .number(let n): return "n:" + n
        default: return nil
        }
    }
}
