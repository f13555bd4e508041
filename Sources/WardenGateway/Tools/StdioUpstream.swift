import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The MCP revisions the tools door speaks, newest first (each side in the one it speaks).
enum MCPRevision {
    static let supported = ["2025-11-25", "2025-06-18"]
    static let latest = supported[0]
}

/// One operator's MCP server over stdio, as the gateway's client: Warden numbers the requests itself
/// (an agent's ids never reach a server, so they cannot collide or be spoofed there), answers the
/// server's own requests (`ping`; `roots/list` with the workspace only; sampling and elicitation
/// refused), and times every request out.
final class StdioUpstream: @unchecked Sendable {
    // @unchecked: the mutable state is guarded by `condition`; the pipes are written under it too.
    let name: String
    let timeout: Duration
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let condition = NSCondition()
    private var nextID: Int64 = 1
    private var answers: [Int64: RPCMessage] = [:]
    private var exited = false
    private(set) var protocolVersion = ""
    private(set) var notifications = 0
    private let roots: [String]

    /// The longest line a server may send (a bigger one ends the server: it is not read into memory).
    static let lineMax = 16 << 20

    init(name: String, command: [String], roots: [String], timeout: Duration, stderr: String? = nil) throws {
        self.name = name
        self.timeout = timeout
        self.roots = roots
        guard let executable = command.first else {
            throw WardenError.invalidInput("mcp.servers.\(name).command: empty; give the server's command line")
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + command.dropFirst()
        process.standardInput = input
        process.standardOutput = output
        // Its complaints go where the gateway's go (the run's tools-gateway.log).
        process.standardError = stderr.flatMap { FileHandle(forWritingAtPath: $0) } ?? FileHandle.standardError
        process.terminationHandler = { [weak self] _ in self?.markExited() }
        do {
            try process.run()
        } catch {
            throw WardenError(code: .systemCall, message: "mcp server \(name): cannot start \(executable): \(error)")
        }
        let thread = Thread { [self] in readLoop() }
        thread.name = "warden-mcp-\(name)"
        thread.start()
        try initialize()
    }

    deinit { close() }

    /// Ends the server: SIGTERM (a sandboxed server's `warden run` stops its sandbox), then SIGKILL.
    func close() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    private func markExited() {
        condition.lock()
        exited = true
        condition.broadcast()
        condition.unlock()
    }

    private func initialize() throws {
        let result = try request(
            "initialize",
            .object([
                ("protocolVersion", .string(MCPRevision.latest)),
                ("capabilities", .object([("roots", .object([("listChanged", .bool(false))]))])),
                ("clientInfo", .object([("name", .string("warden")), ("version", .string("0"))])),
            ]))
        guard let version = result["protocolVersion"]?.stringValue, MCPRevision.supported.contains(version) else {
            close()
            throw WardenError(
                code: .conflict,
                message:
                    "mcp server \(name) speaks revision \(result["protocolVersion"]?.stringValue ?? "?"); Warden speaks \(MCPRevision.supported.joined(separator: ", "))"
            )
        }
        protocolVersion = version
        try send(.notification(method: "notifications/initialized", params: nil))
    }

    /// Sends a request and waits for its answer (at most `timeout`).
    /// - Throws: ``WardenError``: the server's error, a timeout, or its exit.
    func request(_ method: String, _ params: JSONValue?) throws -> JSONValue {
        condition.lock()
        let id = nextID
        nextID += 1
        condition.unlock()
        try send(.request(id: .number(String(id)), method: method, params: params))
        let deadline = Date().addingTimeInterval(timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while answers[id] == nil {
            if exited {
                throw WardenError(code: .conflict, message: "mcp server \(name) exited before answering \(method)")
            }
            guard condition.wait(until: deadline) else {
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

    private func send(_ message: RPCMessage) throws {
        let data = Data(message.line.utf8)
        condition.lock()
        defer { condition.unlock() }
        guard !exited else { throw WardenError(code: .conflict, message: "mcp server \(name) has exited") }
        do {
            try input.fileHandleForWriting.write(contentsOf: data)
        } catch {
            throw WardenError(code: .conflict, message: "mcp server \(name): cannot write to it: \(error)")
        }
    }

    private func readLoop() {
        let reader = output.fileHandleForReading
        var buffer = Data()
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                self.handle(line: Array(line))
            }
            if buffer.count > Self.lineMax {
                close()
                break
            }
        }
        markExited()
    }

    private func handle(line: [UInt8]) {
        guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }),
            let value = try? JSONValue.parse(bytes: line), let message = try? RPCMessage.parse(value)
        else { return }
        switch message {
        case .result(let id, _), .error(let id, _, _):
            guard let number = id.int64 else { return }
            condition.lock()
            // Only ids Warden sent; a spoofed or repeated answer is dropped.
            if number < nextID && answers[number] == nil { answers[number] = message }
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
                answer = .error(
                    id: id, code: RPCMessage.Code.methodNotFound,
                    message: "\(method) is not available through Warden's tools door")
            }
            try? send(answer)
        case .notification:
            condition.lock()
            notifications += 1
            condition.unlock()
        }
    }
}
