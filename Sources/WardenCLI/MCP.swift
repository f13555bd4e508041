import ArgumentParser
import CWardenLinux
import Foundation
import WardenCore
import WardenGateway
import WardenGuard
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

extension Warden {
    struct MCP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mcp",
            abstract: "The tools door (MCP gateway): pinned tool definitions and their approval.",
            discussion: """
                Warden pins each MCP server's tool definitions (name, description, input schema, \
                annotations; a SHA-256 digest) the first time it sees the server. A definition that changes \
                afterwards (a "rug pull"), an approved definition under a new name (a rename) and a tool new \
                to a pinned server are hidden from the agent and their calls denied, recorded as \
                tool.quarantined, until a person approves them here.

                Inside a run with [mcp.servers.NAME] in its profile, the agent's MCP client starts \
                `warden mcp connect` as its (stdio) server: that is the tools door.

                Examples:
                  warden mcp connect                   # inside the sandbox: the MCP server the agent sees
                  warden mcp pins                      # every server's pins; pending ones say why
                  warden mcp pins --server fs --json
                  warden mcp approve fs write_file     # the pending definition becomes the pin
                  warden mcp approve fs                # everything pending for fs
                  warden mcp ls 3f2a9c                 # what that run's agent is shown, and why not the rest
                  warden mcp scan servers.toml         # tool poisoning in the servers' definitions, offline
                """,
            subcommands: [Connect.self, Pins.self, ApprovePin.self, List.self, Scan.self])
    }
}

extension Warden.MCP {
    struct Connect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inside a run: the tools door as a stdio MCP server (configure it as the agent's MCP server).",
            discussion: """
                Relays standard input and output to the run's tools gateway, whose socket the sandbox sees at \
                $WARDEN_MCP_SOCKET (/run/warden/mcp.sock). An .mcp.json entry:
                  {"mcpServers": {"warden": {"command": "warden", "args": ["mcp", "connect"]}}}
                A client that speaks Streamable HTTP can use $WARDEN_MCP_URL instead \
                (http://127.0.0.1:8931/mcp, on the sandbox's own loopback; not with --network host).
                """)
        @Option(help: "The gateway's socket (default: $WARDEN_MCP_SOCKET or /run/warden/mcp.sock).")
        var socket: String?

        func run() throws {
            let path = socket ?? ProcessInfo.processInfo.environment["WARDEN_MCP_SOCKET"] ?? "/run/warden/mcp.sock"
            let fd = warden_unix_connect(path)
            guard fd >= 0 else {
                throw WardenError(
                    code: .notFound,
                    message:
                        "mcp connect: no tools gateway at \(path) (\(String(cString: strerror(errno)))); run this inside a run whose profile has [mcp.servers.NAME]"
                )
            }
            // The agent's requests go in on one thread; the answers come back on this one.
            let upload = Thread {
                Self.pump(from: 0, to: fd)
                shutdown(fd, Int32(SHUT_WR))
            }
            upload.start()
            Self.pump(from: fd, to: 1)
        }

        static func pump(from source: Int32, to destination: Int32) {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                guard ToolsGatewayMain.writeAll(destination, buffer[0..<n]) else { return }
            }
        }
    }

    struct Pins: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List pinned tool definitions, and those waiting for approval.")
        @OptionGroup var state: StateOptions
        @Option(help: "Only this server's pins.")
        var server: String?
        @Flag(help: "Print the pins as JSON.")
        var json = false

        func run() throws {
            let pins = try ToolPins(path: state.host.stateDirectory + "/mcp-pins.db").list(server: server)
            if json { return print(try Output.json(pins)) }
            if pins.isEmpty { return print("no pinned tools\(server.map { " for \($0)" } ?? "") yet") }
            print(
                "SERVER".padding(toLength: 14, withPad: " ", startingAt: 0)
                    + "TOOL".padding(toLength: 24, withPad: " ", startingAt: 0) + "DIGEST        STATE")
            for pin in pins {
                let state =
                    pin.pendingReason.map { "pending: \($0) (warden mcp approve \(pin.server) \(pin.tool))" }
                    ?? "approved"
                print(
                    pin.server.padding(toLength: 14, withPad: " ", startingAt: 0)
                        + pin.tool.padding(toLength: 24, withPad: " ", startingAt: 0)
                        + String((pin.digest ?? "-").prefix(12)).padding(toLength: 14, withPad: " ", startingAt: 0)
                        + state)
            }
        }
    }

    struct ApprovePin: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "approve",
            abstract: "Approve the pending definition of a server's tool (or all of its pending tools).")
        @OptionGroup var state: StateOptions
        @Argument(help: "The server's name, as in the profile's [mcp.servers.NAME].")
        var server: String
        @Argument(help: "The tool's name on that server (without the server__ prefix); all pending if omitted.")
        var tool: String?

        func run() throws {
            let approved = try ToolPins(path: state.host.stateDirectory + "/mcp-pins.db").approve(
                server: server, tool: tool)
            for name in approved { print("approved \(server).\(name): its current definition is the pin") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "What a run's agent is shown through the tools door, and why the rest is held back.",
            discussion: """
                Reads what the run's gateway wrote at the agent's last list: each tool, prompt and resource \
                listed, and each one hidden with its reason (no policy could allow it, a changed or renamed \
                definition waiting for `warden mcp approve`, a new tool on a pinned server, a resource two \
                servers both list); and each server's MCP revision and transport.
                """)
        @OptionGroup var state: StateOptions
        @Argument(help: "The run (its id, a prefix of it, or its name).")
        var runID: String
        @Flag(help: "Print it as JSON.")
        var json = false

        func run() throws {
            let registry = state.registry
            let id = try registry.resolve(runID)
            let path = registry.directory(for: id) + "/" + ToolsGatewayConfiguration.catalogFile
            guard let data = FileManager.default.contents(atPath: path) else {
                throw WardenError(
                    code: .notFound,
                    message:
                        "mcp ls: run \(id) has no tools catalog yet: its agent has not listed tools (or the run has no [mcp.servers])"
                )
            }
            if json { return print(String(decoding: data, as: UTF8.self)) }
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw WardenError(code: .conflict, message: "mcp ls: \(path) is not the gateway's catalog")
            }
            for server in object["servers"] as? [[String: String]] ?? [] {
                print(
                    "server \(server["name"] ?? "?"): \(server["transport"] ?? "?"), MCP \(server["revision"] ?? "?"), \(server["trust"] ?? "?")"
                )
            }
            print(
                "KIND".padding(toLength: 10, withPad: " ", startingAt: 0)
                    + "NAME".padding(toLength: 32, withPad: " ", startingAt: 0) + "SHOWN")
            for entry in object["entries"] as? [[String: String]] ?? [] {
                let shown = entry["status"] == "listed" ? "yes" : "no: \(entry["reason"] ?? "")"
                print(
                    (entry["kind"] ?? "").padding(toLength: 10, withPad: " ", startingAt: 0)
                        + (entry["name"] ?? "").padding(toLength: 32, withPad: " ", startingAt: 0) + shown)
            }
        }
    }
}

extension Warden.MCP {
    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Scan MCP servers' tool definitions for tool poisoning, offline: nothing is called.",
            discussion: """
                Lists each server's tools and runs Warden's detectors over every definition (description, \
                input schema, annotations): instructions addressed to the model, hidden Unicode, secrets. \
                Stdio servers run in a sandbox of their own, as in a run (no network unless the server's \
                network = "proxy"); a URL is reached directly. The tools door applies the same scan at each \
                list: a poisoned tool is quarantined unless the server says on_poisoned = "record".

                Exit status: 0 when nothing is poisoned, 1 when something is (or a server failed), 2 for bad \
                input.

                Examples:
                  warden mcp scan profile.toml          # every [mcp.servers.NAME] of a profile or --mcp file
                  warden mcp scan https://tools.example/mcp --json
                """)
        @OptionGroup var state: StateOptions
        @Argument(help: "A profile or --mcp file with [mcp.servers.NAME] tables, or a server's http(s) URL.")
        var target: String
        @Flag(help: "Print the report as JSON.")
        var json = false

        func run() throws {
            var servers: [ToolServerSettings]
            if target.hasPrefix("http://") || target.hasPrefix("https://") {
                var server = ToolServerSettings(name: "url", command: [])
                server.url = target
                servers = [server]
            } else {
                let (settings, _) = try Warden.Run.readTOML(target, flag: "scan")
                servers = settings.toolServers.values.sorted { $0.name < $1.name }
                guard !servers.isEmpty else {
                    throw WardenError.invalidInput("mcp scan: \(target) has no [mcp.servers.NAME] table")
                }
            }
            // A server the profile cannot describe is bad input (exit 2), not a finding.
            for server in servers { try server.validate() }
            let warden = state.host.wardenExecutable
            let workspaces = "/var/tmp/warden-tools/scan-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: workspaces) }
            for i in servers.indices where servers[i].url == nil {
                try ToolsGatewayProcess.sandbox(
                    &servers[i], warden: warden, workspace: workspaces + "/" + servers[i].name)
            }
            let reports = ToolsScanner.scan(servers)
            if json {
                print(try Output.json(reports))
            } else {
                for report in reports {
                    if let error = report.error {
                        print("\(report.server): not scanned: \(error)")
                        continue
                    }
                    print(
                        "\(report.server) (\(report.revision ?? "?")): \(report.tools.count) tools, \(report.poisoned) poisoned"
                    )
                    for tool in report.tools {
                        let verdict = tool.poisoned ? "POISONED" : tool.findings.isEmpty ? "clean" : "findings"
                        print("  \(verdict.padding(toLength: 9, withPad: " ", startingAt: 0)) \(tool.name)")
                        for hit in tool.findings {
                            let confidence = String(format: "%.2f", hit.finding.confidence)
                            print("      \(hit.field): \(hit.finding.detector) \(confidence) \(hit.finding.detail)")
                        }
                    }
                }
            }
            if reports.contains(where: { $0.poisoned > 0 || $0.error != nil }) { throw ExitCode(1) }
        }
    }
}
