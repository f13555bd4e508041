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
        return rows
    }

    /// Initializes, lists, then makes `calls` sequential calls; latencies from write to answer.
    func measure(_ label: String, command: [String], tool: String) throws -> Row {
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
        func receive() throws {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !pending.contains(0x0A) {
                let n = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                guard n > 0 else { throw WardenError(code: .systemCall, message: "bench mcp: \(label) closed") }
                pending += buffer[0..<n]
            }
            guard let newline = pending.firstIndex(of: 0x0A) else { return }
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            if line.contains("\"error\"") || line.contains("\"isError\":true") {
                throw WardenError(
                    code: .systemCall, message: "bench mcp: \(label) answered an error: \(line.prefix(200))")
            }
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
        for i in 0..<(calls + 50) {
            let t0 = monotonic()
            send(
                #"{"jsonrpc":"2.0","id":\#(i + 2),"method":"tools/call","params":{"name":"\#(tool)","arguments":{"text":"hello \#(i)"}}}"#
                    + "\n")
            try receive()
            if i >= 50 { samples.append(Double(monotonic() - t0) / 1000) }
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
