import Foundation
import WardenCore
import WardenGuard

/// `warden mcp scan`: each server's tool definitions through the detectors (tool poisoning), offline —
/// nothing is called, only listed. Stdio servers are started as given (the CLI wraps them in their own
/// sandbox first); a `url` server is reached directly (the operator asked for it by name).
public enum ToolsScanner {
    public struct ToolReport: Sendable, Encodable {
        public var name: String
        public var digest: String
        public var poisoned: Bool
        public var findings: [ToolScan.Hit]
    }

    public struct ServerReport: Sendable, Encodable {
        public var server: String
        public var revision: String?
        public var error: String?
        public var tools: [ToolReport]
        public var poisoned: Int { tools.filter(\.poisoned).count }
    }

    /// Lists and scans each server; a server that fails is reported with its error, the others go on.
    public static func scan(
        _ servers: [ToolServerSettings], environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [ServerReport] {
        servers.map { server in
            var report = ServerReport(server: server.name, revision: nil, error: nil, tools: [])
            do {
                try server.validate()
                let transport: any UpstreamTransport
                if let text = server.url, let url = URL(string: text) {
                    transport = HTTPTransport(
                        name: server.name, url: url, address: nil,
                        headers: try ToolsGateway.requestHeaders(server, environment: environment),
                        timeout: server.timeout)
                } else {
                    // Its sandbox's own messages (its stop when the scan ends it) are not the report.
                    transport = try StdioTransport(name: server.name, command: server.command, stderr: "/dev/null")
                }
                let upstream = try MCPUpstream(
                    name: server.name, transport: transport, roots: [], timeout: server.timeout)
                defer { upstream.close() }
                report.revision = upstream.protocolVersion
                for item in try ToolsGateway.pages(upstream, "tools/list", key: "tools") {
                    guard let definition = try? ToolDefinition(listed: item) else { continue }
                    let hits = ToolsGateway.poisoning(definition)
                    report.tools.append(
                        ToolReport(
                            name: definition.name, digest: definition.digest, poisoned: ToolScan.isPoisoned(hits),
                            findings: hits))
                }
            } catch {
                report.error = (error as? WardenError)?.message ?? "\(error)"
            }
            return report
        }
    }
}
