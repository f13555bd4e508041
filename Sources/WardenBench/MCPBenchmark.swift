import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// `warden bench mcp`: added latency per `tools/call` through the tools door over a direct stdio
/// connection from the same client to the same server, and calls per second, with a 10- and a
/// 1,000-policy set. The upstream is a minimal JSON-RPC server (no SDK) so the gateway is what is
/// measured; every call through the door is a Cedar decision recorded durably before it goes.
public struct MCPBenchmark {
    public struct Row: Codable, Sendable {
        public var path: String
        public var medianMicroseconds: Double
        public var p99Microseconds: Double
        public var callsPerSecond: Double

        enum CodingKeys: String, CodingKey {
            case path
            case medianMicroseconds = "call_p50_us"
            case p99Microseconds = "call_p99_us"
            case callsPerSecond = "calls_per_s"
        }
    }

    public let wardenExecutable: String
    public var calls = 2000
    /// mcp-proxy (PyPI, MIT), the peer over Streamable HTTP, when installed (setup.sh puts it here).
    public var mcpProxy = "/var/cache/warden-peers/mcp-proxy-0.13.0/bin/mcp-proxy"
    let directory: String

    public init(wardenExecutable: String) throws {
        self.wardenExecutable = wardenExecutable
        directory = "/var/tmp/warden-bench-mcp-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
        try Self.server.write(toFile: directory + "/server.py", atomically: true, encoding: .utf8)
    }

    public func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }

    public func run(progress: (String) -> Void) throws -> [Row] {
        var rows: [Row] = []
        progress("mcp: direct")
        rows.append(try measure("direct", command: ["/usr/bin/python3", directory + "/server.py"], tool: "echo"))
        for count in [10, 1000] {
            var policies = [
                #"@id("bench") permit(principal, action == Action::"call", resource == Tool::"bench.echo");"#
            ]
            for i in 1..<count {
                policies.append(
                    "@id(\"other\(i)\") permit(principal, action == Action::\"call\", resource == Tool::\"s\(i).t\") when { context.arguments has x };"
                )
            }
            let policyPath = directory + "/tools-\(count).cedar"
            try policies.joined(separator: "\n").write(toFile: policyPath, atomically: true, encoding: .utf8)
            for records in [DecisionRecords.commit, .journal] {
                progress("mcp: warden door (\(count) policies, \(records.rawValue))")
                var configuration = ToolsGatewayConfiguration(
                    run: RunID.random(), policies: [policyPath],
                    servers: [
                        ToolServerSettings(name: "bench", command: ["/usr/bin/python3", directory + "/server.py"])
                    ],
                    roots: [directory], stateDirectory: directory + "/state")
                configuration.decisionRecords = records
                configuration.journal = directory + "/tools-\(count).journal"
                let path = directory + "/gateway-\(count)-\(records.rawValue).json"
                try JSONEncoder().encode(configuration).write(to: URL(fileURLWithPath: path))
                rows.append(
                    try measure(
                        "warden door (\(count) policies, \(records.rawValue))",
                        command: [wardenExecutable, "__tools-gateway", path], tool: "bench__echo"))
            }
        }
        // Eight calls in flight at once (the client does not wait for each answer): throughput.
        progress("mcp: direct, 8 in flight")
        rows.append(
            try measure(
                "direct (8 in flight)", command: ["/usr/bin/python3", directory + "/server.py"], tool: "echo",
                inFlight: 8))
        progress("mcp: warden door, 8 in flight")
        rows.append(
            try measure(
                "warden door (10 policies, journal, 8 in flight)",
                command: [wardenExecutable, "__tools-gateway", directory + "/gateway-10-journal.json"],
                tool: "bench__echo", inFlight: 8))
        // Over Streamable HTTP: Warden's endpoint and mcp-proxy's, each in front of the same server.
        progress("mcp: warden door over HTTP (10 policies, journal)")
        var configuration = ToolsGatewayConfiguration(
            run: RunID.random(), policies: [directory + "/tools-10.cedar"],
            servers: [ToolServerSettings(name: "bench", command: ["/usr/bin/python3", directory + "/server.py"])],
            roots: [directory], stateDirectory: directory + "/state")
        configuration.decisionRecords = .journal
        configuration.journal = directory + "/tools-http.journal"
        let port = try Self.freePort()
        configuration.httpListen = "127.0.0.1:\(port)"
        let path = directory + "/gateway-http.json"
        try JSONEncoder().encode(configuration).write(to: URL(fileURLWithPath: path))
        rows.append(
            try measureHTTP(
                "warden door over HTTP (10 policies, journal)", command: [wardenExecutable, "__tools-gateway", path],
                port: port, tool: "bench__echo"))
        if FileManager.default.isExecutableFile(atPath: mcpProxy) {
            progress("mcp: mcp-proxy 0.13.0 over HTTP")
            let port = try Self.freePort()
            rows.append(
                try measureHTTP(
                    "mcp-proxy 0.13.0 over HTTP (no policy)",
                    command: [
                        mcpProxy, "--host", "127.0.0.1", "--port", String(port), "--log-level", "WARNING",
                        "/usr/bin/python3", directory + "/server.py",
                    ], port: port, tool: "echo"))
        }
        return rows
    }

    /// A loopback port free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw WardenError(code: .systemCall, message: "bench mcp: no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A keep-alive HTTP/1.1 connection speaking MCP's Streamable HTTP (JSON or SSE answers, plain
    /// or chunked bodies), for the benchmark's client.
    final class HTTPConnection {
        let fd: Int32
        var session: String?
        private var buffer: [UInt8] = []

        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else {
                close(fd)
                throw WardenError(code: .systemCall, message: "bench mcp: cannot connect to 127.0.0.1:\(port)")
            }
        }

        deinit { close(fd) }

        private func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw WardenError(code: .systemCall, message: "bench mcp: the HTTP peer closed") }
            buffer += chunk[0..<n]
        }

        private func line() throws -> String {
            while true {
                if let end = buffer.firstIndex(of: 0x0A) {
                    let text = String(decoding: buffer[..<end], as: UTF8.self)
                    buffer.removeSubrange(...end)
                    return text.hasSuffix("\r") ? String(text.dropLast()) : text
                }
                try fill()
            }
        }

        private func bytes(_ count: Int) throws -> [UInt8] {
            while buffer.count < count { try fill() }
            defer { buffer.removeSubrange(..<count) }
            return Array(buffer[..<count])
        }

        /// POSTs one message and returns the answer's JSON text (nil for a 202).
        func post(_ body: String) throws -> String? {
            var head =
                "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: \(body.utf8.count)\r\n"
            if let session { head += "Mcp-Session-Id: \(session)\r\nMCP-Protocol-Version: 2025-06-18\r\n" }
            let request = Array((head + "\r\n" + body).utf8)
            guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else {
                throw WardenError(code: .systemCall, message: "bench mcp: cannot write to the HTTP peer")
            }
            let status = try line()
            var length: Int?
            var chunked = false
            while true {
                let header = try line()
                if header.isEmpty { break }
                let parts = header.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { continue }
                switch parts[0].lowercased() {
                case "content-length": length = Int(parts[1])
                case "transfer-encoding": chunked = parts[1].lowercased().contains("chunked")
                case "mcp-session-id": session = parts[1]
                default: break
                }
            }
            var body: [UInt8] = []
            if chunked {
                while true {
                    let size = Int(try line().split(separator: ";").first ?? "0", radix: 16) ?? 0
                    if size == 0 {
                        _ = try line()
                        break
                    }
                    body += try bytes(size)
                    _ = try line()
                }
            } else if let length {
                body = try bytes(length)
            }
            if status.contains(" 202") { return nil }
            let text = String(decoding: body, as: UTF8.self)
            // An SSE answer: the data of its message event.
            if let data = text.split(separator: "\n").last(where: { $0.hasPrefix("data:") }) {
                return String(data.dropFirst(5)).trimmingCharacters(in: .whitespaces)
            }
            return text
        }
    }

    /// Starts `command` (serving Streamable HTTP on `port`), initializes, lists, then makes `calls`
    /// sequential calls over one keep-alive connection; latencies from write to answer.
    func measureHTTP(_ label: String, command: [String], port: Int, tool: String) throws -> Row {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            let deadline = Date().addingTimeInterval(3)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        var connection: HTTPConnection?
        let deadline = Date().addingTimeInterval(30)
        while connection == nil && Date() < deadline {
            connection = try? HTTPConnection(port: port)
            if connection == nil { usleep(100_000) }
        }
        guard let connection else {
            throw WardenError(code: .systemCall, message: "bench mcp: \(label) did not listen")
        }
        func check(_ answer: String?) throws {
            guard let answer, !answer.contains("\"error\""), !answer.contains("\"isError\":true") else {
                throw WardenError(
                    code: .systemCall,
                    message: "bench mcp: \(label) answered an error: \(answer?.prefix(200) ?? "nothing")")
            }
        }
        try check(
            try connection.post(
                #"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#
            ))
        _ = try connection.post(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        try check(try connection.post(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#))
        var samples: [Double] = []
        samples.reserveCapacity(calls)
        let started = monotonic()
        for i in 0..<(calls + 50) {
            let t0 = monotonic()
            try check(
                try connection.post(
                    #"{"jsonrpc":"2.0","id":\#(i + 2),"method":"tools/call","params":{"name":"\#(tool)","arguments":{"text":"hello \#(i)"}}}"#
                ))
            if i >= 50 { samples.append(Double(monotonic() - t0) / 1000) }
        }
        let elapsed = Double(monotonic() - started) / 1e9
        samples.sort()
        return Row(
            path: label, medianMicroseconds: samples[samples.count / 2],
            p99Microseconds: samples[min(samples.count - 1, samples.count * 99 / 100)],
            callsPerSecond: Double(calls + 50) / elapsed)
    }

    /// Initializes, lists, then makes `calls` calls, `inFlight` at a time (1: sequential); latencies
    /// from write to answer.
    func measure(_ label: String, command: [String], tool: String, inFlight: Int = 1) throws -> Row {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
        let writer = input.fileHandleForWriting.fileDescriptor
        let reader = output.fileHandleForReading.fileDescriptor
        var pending: [UInt8] = []
        func send(_ line: String) { _ = Array(line.utf8).withUnsafeBytes { write(writer, $0.baseAddress, $0.count) } }
        /// The next answer's id.
        @discardableResult
        func receive() throws -> Int {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !pending.contains(0x0A) {
                let n = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                guard n > 0 else { throw WardenError(code: .systemCall, message: "bench mcp: \(label) closed") }
                pending += buffer[0..<n]
            }
            guard let newline = pending.firstIndex(of: 0x0A) else { return -1 }
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            if line.contains("\"error\"") || line.contains("\"isError\":true") {
                throw WardenError(
                    code: .systemCall, message: "bench mcp: \(label) answered an error: \(line.prefix(200))")
            }
            return (try? JSONValue.parse(bytes: Array(line.utf8)))?["id"]?.int64.map { Int($0) } ?? -1
        }
        send(
            #"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#
                + "\n")
        try receive()
        send(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"# + "\n")
        send(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"# + "\n")
        try receive()
        var samples: [Double] = []
        samples.reserveCapacity(calls)
        let started = monotonic()
        var sentAt: [Int: Int64] = [:]
        var next = 0
        func call() {
            sentAt[next + 2] = monotonic()
            send(
                #"{"jsonrpc":"2.0","id":\#(next + 2),"method":"tools/call","params":{"name":"\#(tool)","arguments":{"text":"hello \#(next)"}}}"#
                    + "\n")
            next += 1
        }
        let total = calls + 50
        while next < min(inFlight, total) { call() }
        var answered = 0
        while answered < total {
            let id = try receive()
            guard let t0 = sentAt.removeValue(forKey: id) else { continue }
            answered += 1
            if id - 2 >= 50 { samples.append(Double(monotonic() - t0) / 1000) }
            if next < total { call() }
        }
        let elapsed = Double(monotonic() - started) / 1e9
        samples.sort()
        return Row(
            path: label, medianMicroseconds: samples[samples.count / 2],
            p99Microseconds: samples[min(samples.count - 1, samples.count * 99 / 100)],
            callsPerSecond: Double(calls + 50) / elapsed)
    }

    func monotonic() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// A minimal MCP server over stdio without an SDK: initialize, tools/list (one tool), tools/call.
    static let server = #"""
        import json, sys
        TOOL = {"name": "echo", "description": "Echoes its text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}
        out = sys.stdout
        for line in sys.stdin:
            m = json.loads(line)
            if "id" not in m:
                continue
            method = m.get("method")
            if method == "initialize":
                r = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "bench", "version": "0"}}
            elif method == "tools/list":
                r = {"tools": [TOOL]}
            elif method == "tools/call":
                r = {"content": [{"type": "text", "text": m["params"]["arguments"].get("text", "")}]}
            else:
                r = {}
            out.write(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}) + "\n")
            out.flush()
        """#
}
