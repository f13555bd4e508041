import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The MCP revisions the tools door speaks, newest first (each side in the one it speaks).
enum MCPRevision {
    /// The stateless revision: no `initialize`; `server/discover`; each request carries its `_meta`.
    static let modern = "2026-07-28"
    /// The revisions reached through the `initialize` handshake.
    static let handshake = ["2025-11-25", "2025-06-18"]
    static let supported = [modern] + handshake
    static let latestHandshake = handshake[0]

    static let versionKey = "io.modelcontextprotocol/protocolVersion"
    static let capabilitiesKey = "io.modelcontextprotocol/clientCapabilities"
    static let clientInfoKey = "io.modelcontextprotocol/clientInfo"
    /// The error a request in a revision the peer does not speak gets (with `data.supported`).
    static let unsupportedVersionCode = -32022

    /// The revision a request names in its `_meta` (2026-07-28 and later), if any.
    static func named(in params: JSONValue?) -> String? { params?["_meta"]?[versionKey]?.stringValue }
}

/// How an upstream's messages travel: a stdio process or a Streamable HTTP endpoint.
protocol UpstreamTransport: AnyObject, Sendable {
    /// Starts receiving: each message (JSON bytes) to `deliver`, and `ended` once nothing more will come.
    func start(deliver: @escaping @Sendable ([UInt8]) -> Void, ended: @escaping @Sendable () -> Void) throws
    /// Sends one message (`revision`: the one spoken, once known).
    func send(_ message: RPCMessage, revision: String?) throws
    func close()
}

/// One operator's MCP server, as the gateway's client. Warden numbers the requests itself (an agent's
/// ids never reach a server, so they cannot collide or be spoofed there; an answer to an id Warden did
/// not send, or a second answer, is dropped), answers the server's own requests (`ping`; `roots/list`
/// with the workspace only; sampling and elicitation refused), speaks the newest revision both speak
/// (`server/discover` first, then the `initialize` handshake), and times every request out.
final class MCPUpstream: @unchecked Sendable {
    // @unchecked: the mutable state is guarded by `condition`.
    let name: String
    let timeout: Duration
    let transport: any UpstreamTransport
    private let condition = NSCondition()
    private var nextID: Int64 = 1
    private var answers: [Int64: RPCMessage] = [:]
    private var abandoned: Set<Int64> = []
    private var exited = false
    private(set) var protocolVersion = ""
    /// What the server said it offers (`tools`, `resources`, `prompts`).
    private(set) var capabilities: JSONValue = .object([])
    private(set) var notifications = 0
    private let roots: [String]
    /// A server's notification the gateway may pass on (list changes, progress).
    var onNotification: (@Sendable (String, JSONValue?) -> Void)?
    /// Requests the server made that Warden refused, by method.
    private(set) var refusedRequests: [String: Int] = [:]
    var onRefusedRequest: (@Sendable (String) -> Void)?

    var isModern: Bool { protocolVersion == MCPRevision.modern }

    init(name: String, transport: any UpstreamTransport, roots: [String], timeout: Duration) throws {
        self.name = name
        self.timeout = timeout
        self.roots = roots
        self.transport = transport
        try transport.start(
            deliver: { [weak self] bytes in self?.handle(bytes) }, ended: { [weak self] in self?.markExited() })
        do {
            try negotiate()
        } catch {
            transport.close()
            throw error
        }
    }

    deinit { transport.close() }

    func close() { transport.close() }

    private func markExited() {
        condition.lock()
        exited = true
        condition.broadcast()
        condition.unlock()
    }

    /// `server/discover` in the stateless revision; a server that does not answer it with that
    /// revision gets the `initialize` handshake.
    private func negotiate() throws {
        if let discovered = try? request("server/discover", nil, revision: MCPRevision.modern),
            case .array(let versions)? = discovered["supportedVersions"],
            versions.contains(.string(MCPRevision.modern))
        {
            protocolVersion = MCPRevision.modern
            capabilities = discovered["capabilities"] ?? .object([])
            return
        }
        condition.lock()
        let gone = exited
        condition.unlock()
        if gone { throw WardenError(code: .conflict, message: "mcp server \(name) exited as it started") }
        let result = try request(
            "initialize",
            .object([
                ("protocolVersion", .string(MCPRevision.latestHandshake)),
                ("capabilities", .object([("roots", .object([("listChanged", .bool(false))]))])),
                ("clientInfo", .object([("name", .string("warden")), ("version", .string("0"))])),
            ]), revision: nil)
        guard let version = result["protocolVersion"]?.stringValue, MCPRevision.handshake.contains(version) else {
            throw WardenError(
                code: .conflict,
                message:
                    "mcp server \(name) speaks revision \(result["protocolVersion"]?.stringValue ?? "?"); Warden speaks \(MCPRevision.supported.joined(separator: ", "))"
            )
        }
        protocolVersion = version
        capabilities = result["capabilities"] ?? .object([])
        try transport.send(.notification(method: "notifications/initialized", params: nil), revision: version)
    }

    /// The `_meta` every request of the stateless revision carries.
    static func modernMeta(_ extra: [(key: String, value: JSONValue)] = []) -> JSONValue {
        .object(
            [
                (MCPRevision.versionKey, .string(MCPRevision.modern)),
                (MCPRevision.capabilitiesKey, .object([])),
                (
                    MCPRevision.clientInfoKey,
                    .object([("name", .string("warden")), ("version", .string("0"))])
                ),
            ] + extra)
    }

    /// Sends a request and waits for its answer (at most `timeout`). `sent` learns Warden's id for it
    /// (to cancel it), `cancelled` is polled while it waits.
    /// - Throws: ``WardenError``: the server's error, a timeout, a cancellation, or its exit.
    func request(
        _ method: String, _ params: JSONValue?, revision: String? = nil, sent: ((Int64) -> Void)? = nil
    ) throws -> JSONValue {
        let spoken = revision ?? (protocolVersion.isEmpty ? nil : protocolVersion)
        var params = params
        if spoken == MCPRevision.modern {
            var members: [(key: String, value: JSONValue)] = []
            if case .object(let given)? = params { members = given }
            var meta: [(key: String, value: JSONValue)] = []
            if let index = members.firstIndex(where: { $0.key == "_meta" }) {
                if case .object(let given) = members[index].value { meta = given }
                members.remove(at: index)
            }
            members.append(("_meta", Self.modernMeta(meta)))
            params = .object(members)
        }
        condition.lock()
        let id = nextID
        nextID += 1
        condition.unlock()
        sent?(id)
        try transport.send(.request(id: .number(String(id)), method: method, params: params), revision: spoken)
        let deadline = Date().addingTimeInterval(timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while answers[id] == nil {
            if abandoned.remove(id) != nil {
                throw WardenError(code: .conflict, message: "\(method) was cancelled")
            }
            if exited {
                throw WardenError(code: .conflict, message: "mcp server \(name) exited before answering \(method)")
            }
            guard condition.wait(until: deadline) else {
                abandoned.insert(id)
                throw WardenError(
                    code: .conflict, message: "mcp server \(name) did not answer \(method) within \(timeout)")
            }
        }
        switch answers.removeValue(forKey: id) {
        case .result(_, let result): return result
        case .error(_, let code, let message):
            throw WardenError(code: .conflict, message: "mcp server \(name): \(method): \(message) (\(code))")
        default: throw WardenError(code: .conflict, message: "mcp server \(name): no answer to \(method)")
        }
    }

    /// Cancels a request Warden sent (the agent cancelled its own): the server is told, and the
    /// request's waiter returns at once.
    func cancel(_ id: Int64, reason: String) {
        condition.lock()
        abandoned.insert(id)
        condition.broadcast()
        condition.unlock()
        try? transport.send(
            .notification(
                method: "notifications/cancelled",
                params: .object([("requestId", .number(String(id))), ("reason", .string(reason))])),
            revision: protocolVersion)
    }

    private func handle(_ bytes: [UInt8]) {
        guard !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }),
            let value = try? JSONValue.parse(bytes: bytes), let message = try? RPCMessage.parse(value)
        else { return }
        switch message {
        case .result(let id, _), .error(let id, _, _):
            guard let number = id.int64 else { return }
            condition.lock()
            // Only ids Warden sent and still waits for; a spoofed, repeated or late answer is dropped.
            if number < nextID && answers[number] == nil && abandoned.remove(number) == nil {
                answers[number] = message
            }
            condition.broadcast()
            condition.unlock()
        case .request(let id, let method, _):
            let answer: RPCMessage
            switch method {
            case "ping": answer = .result(id: id, result: .object([]))
            case "roots/list":
                answer = .result(
                    id: id,
                    result: .object([
                        (
                            "roots",
                            .array(
                                roots.map {
                                    .object([("uri", .string("file://" + $0)), ("name", .string("workspace"))])
                                })
                        )
                    ]))
            default:
                // Sampling (the server asking for the agent's model) and elicitation (asking a person
                // through the agent's client) are refused: neither may answer a Warden `ask`.
                condition.lock()
                refusedRequests[method, default: 0] += 1
                condition.unlock()
                onRefusedRequest?(method)
                answer = .error(
                    id: id, code: RPCMessage.Code.methodNotFound,
                    message: "\(method) is not available through Warden's tools door")
            }
            try? transport.send(answer, revision: protocolVersion)
        case .notification(let method, let params):
            condition.lock()
            notifications += 1
            condition.unlock()
            onNotification?(method, params)
        }
    }
}

/// A stdio server: its own process (under its own sandbox when started for a run), one JSON-RPC
/// message per line on its standard input and output. Ended with SIGTERM (a sandboxed server's
/// `warden run` stops its sandbox), then SIGKILL.
final class StdioTransport: UpstreamTransport, @unchecked Sendable {
    // @unchecked: writes are serialized by `lock`; the process is set up before it is shared.
    let name: String
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let lock = NSLock()

    /// The longest line a server may send (a bigger one ends the server: it is not read into memory).
    static let lineMax = 16 << 20

    init(name: String, command: [String], stderr: String? = nil) throws {
        self.name = name
        guard let executable = command.first else {
            throw WardenError.invalidInput("mcp.servers.\(name).command: empty; give the server's command line")
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + command.dropFirst()
        process.standardInput = input
        process.standardOutput = output
        // Its complaints go where the gateway's go (the run's tools-gateway.log).
        process.standardError = stderr.flatMap { FileHandle(forWritingAtPath: $0) } ?? FileHandle.standardError
    }

    func start(deliver: @escaping @Sendable ([UInt8]) -> Void, ended: @escaping @Sendable () -> Void) throws {
        process.terminationHandler = { _ in ended() }
        do {
            try process.run()
        } catch {
            throw WardenError(
                code: .systemCall,
                message: "mcp server \(name): cannot start \(process.arguments?.first ?? "?"): \(error)")
        }
        let reader = output.fileHandleForReading
        let thread = Thread { [self] in
            var buffer = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let line = buffer[buffer.startIndex..<newline]
                    buffer.removeSubrange(buffer.startIndex...newline)
                    deliver(Array(line))
                }
                if buffer.count > Self.lineMax {
                    close()
                    break
                }
            }
            ended()
        }
        thread.name = "warden-mcp-\(name)"
        thread.start()
    }

    func send(_ message: RPCMessage, revision: String?) throws {
        let data = Data(message.line.utf8)
        lock.lock()
        defer { lock.unlock() }
        guard process.isRunning else { throw WardenError(code: .conflict, message: "mcp server \(name) has exited") }
        do {
            try input.fileHandleForWriting.write(contentsOf: data)
        } catch {
            throw WardenError(code: .conflict, message: "mcp server \(name): cannot write to it: \(error)")
        }
    }

    func close() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
