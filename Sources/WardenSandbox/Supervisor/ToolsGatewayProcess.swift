import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The tools door's process for a run (`warden __tools-gateway CONFIG PARENT`), started by the
/// supervisor before the agent, outside the sandbox and the agent's cgroup. It starts each operator's
/// MCP server in a Warden sandbox of its own (a nested `warden run --network none`) and listens on a
/// Unix socket in the run's directory, which the sandbox sees read-only at /run/warden/mcp.sock.
public final class ToolsGatewayProcess {
    let process: Process
    let socketDirectory: String
    /// The servers' workspaces (removed with the gateway).
    let serverWorkspaces: String
    var pid: Int32 { process.processIdentifier }

    private init(process: Process, socketDirectory: String, serverWorkspaces: String) {
        self.process = process
        self.socketDirectory = socketDirectory
        self.serverWorkspaces = serverWorkspaces
    }

    /// Writes the configuration, starts the gateway and waits (up to 60 s: it starts the servers)
    /// until it listens. Fails closed: a gateway that does not come up refuses the run.
    /// Wraps a stdio server's command in a sandbox of its own (a nested `warden run`): its network
    /// (`none`, or its own egress door under its own policies), an empty `workspace` of its own, and only
    /// the paths its profile lets it read.
    public static func sandbox(_ server: inout ToolServerSettings, warden: String, workspace: String) throws {
        try FileManager.default.createDirectory(
            atPath: workspace, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        var wrapped = [
            warden, "run", "--network", server.network.rawValue, "--name", "mcp-\(server.name)",
            "--workspace", workspace, "--grace", "1s",
        ]
        for path in server.read { wrapped += ["--read", path] }
        for path in server.policies { wrapped += ["--policy", path] }
        for path in server.hide { wrapped += ["--hide", path] }
        server.command = wrapped + ["--"] + server.command
    }

    static func start(plan: RunPlan, id: RunID, runDirectory: String) throws -> ToolsGatewayProcess {
        let directory = ToolsGatewayConfiguration.socketDirectory(runDirectory: runDirectory)
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        chmod(directory, 0o755)
        // The mount point for the warden binary inside (/run/warden/warden).
        _ = FileManager.default.createFile(
            atPath: directory + "/warden", contents: nil, attributes: [.posixPermissions: 0o755])
        let serverWorkspaces = "/var/tmp/warden-tools/\(id)"
        var servers: [ToolServerSettings] = []
        for var server in plan.tools {
            // A `url` server is remote: Warden reaches it (under the run's egress policies), nothing runs.
            if server.url != nil {
                servers.append(server)
                continue
            }
            // Each server in a sandbox of its own: no network (or its own egress door under its own
            // policies), an empty workspace of its own, and only the paths its profile lets it read.
            // (Not under the state directory: no sandbox may reach Warden's own files.)
            try Self.sandbox(
                &server, warden: plan.host.wardenExecutable, workspace: serverWorkspaces + "/" + server.name)
            servers.append(server)
        }
        var configuration = ToolsGatewayConfiguration(
            run: id, policies: plan.egress.policies, entities: plan.egress.entities, servers: servers,
            roots: [plan.workspace], stateDirectory: plan.host.stateDirectory, auditStore: plan.auditStore)
        configuration.listen = directory + "/mcp.sock"
        configuration.httpInSandbox = plan.network != .host
        configuration.resolve = plan.egress.resolve
        configuration.catalog = runDirectory + "/" + ToolsGatewayConfiguration.catalogFile
        configuration.decisionRecords = plan.egress.decisionRecords
        configuration.journal = ToolsGatewayConfiguration.journalPath(runDirectory: runDirectory)
        configuration.approvalTimeoutMilliseconds = plan.egress.approvalTimeout.nanoseconds / 1_000_000
        configuration.runDirectory = runDirectory
        if !plan.models.upstreams.isEmpty { configuration.models = plan.models }
        let path = runDirectory + "/tools-gateway.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try FileIO.writeAtomically(try encoder.encode(configuration), to: path, mode: 0o600)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: plan.host.wardenExecutable)
        process.arguments = ["__tools-gateway", path, String(getpid())]
        var environment = [
            "PATH": RunPlan.defaultPath, "LANG": "C.UTF-8", "WARDEN_STATE_DIR": plan.host.stateDirectory,
        ]
        // The `url` servers' bearer tokens: in the gateway's environment only (never a file, never the
        // sandbox).
        for server in plan.tools {
            if let variable = server.bearerTokenEnvironment {
                environment[variable] = ProcessInfo.processInfo.environment[variable]
            }
        }
        // The models' keys likewise (a key_file is read by the gateway; the sandbox sees it hidden).
        for upstream in plan.models.upstreams {
            if let variable = upstream.keyEnvironment {
                environment[variable] = ProcessInfo.processInfo.environment[variable]
            }
        }
        process.environment = environment
        let ready = Pipe()
        let requests = Pipe()
        process.standardInput = requests
        process.standardOutput = ready
        let log = runDirectory + "/tools-gateway.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o600])
        process.standardError = FileHandle(forWritingAtPath: log) ?? FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw WardenError(code: .layerUnavailable, message: "tools: cannot start the gateway: \(error)")
        }
        let gateway = ToolsGatewayProcess(
            process: process, socketDirectory: directory, serverWorkspaces: serverWorkspaces)
        gateway.requests = requests.fileHandleForWriting
        // One line: {"ready": true} or {"error": "…"}.
        let reader = ready.fileHandleForReading
        var fds = [pollfd(fd: reader.fileDescriptor, events: Int16(POLLIN), revents: 0)]
        let line: Data? = poll(&fds, 1, 60_000) == 1 ? reader.availableData : nil
        let object = line.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        guard let object, object["ready"] as? Bool == true else {
            gateway.terminate()
            let reason =
                object?["error"] as? String
                ?? "it did not come up (see \(log))"
            throw WardenError(
                code: .layerUnavailable, message: "tools: the gateway failed: \(reason); the run is refused")
        }
        gateway.messages = reader.fileDescriptor
        // For `warden model cut` (SIGUSR1 to this pid).
        try? FileIO.writeAtomically(
            Data("\(gateway.pid)\n".utf8), to: ModelDoorSettings.gatewayPIDPath(runDirectory: runDirectory), mode: 0o600
        )
        _ = fcntl(gateway.messages, F_SETFL, fcntl(gateway.messages, F_GETFL) | O_NONBLOCK)
        return gateway
    }

    private var pendingOutput = Data()
    /// The gateway's standard input: the supervisor's requests (`{"netns": …}`).
    private var requests: FileHandle?

    /// Asks the gateway for its Streamable HTTP endpoint in the sandbox's network namespace and waits
    /// (up to 10 s) for it. Fails closed: no endpoint, no run.
    func openHTTP(initPID: pid_t, mcp: Bool, model: Bool) throws -> (mcp: String?, model: String?) {
        guard let requests,
            var line = try? JSONSerialization.data(withJSONObject: [
                "netns": "/proc/\(initPID)/ns/net", "mcp": mcp, "model": model,
            ])
        else { throw WardenError(code: .layerUnavailable, message: "tools: the gateway takes no requests") }
        line.append(0x0A)
        do {
            try requests.write(contentsOf: line)
        } catch {
            throw WardenError(
                code: .layerUnavailable, message: "tools: the gateway is gone (\(error)); the run is refused")
        }
        let deadline = Date().addingTimeInterval(10)
        var urls: (mcp: String?, model: String?) = (nil, nil)
        while Date() < deadline {
            for object in drainLines() {
                if let url = object["http"] as? String { urls.mcp = url }
                if let url = object["model"] as? String { urls.model = url }
                if let reason = object["http_error"] as? String {
                    throw WardenError(
                        code: .layerUnavailable,
                        message: "tools: the Streamable HTTP endpoint failed: \(reason); the run is refused")
                }
                if let reason = object["model_error"] as? String {
                    throw WardenError(
                        code: .layerUnavailable,
                        message: "model: the door's endpoint failed: \(reason); the run is refused")
                }
            }
            if (urls.mcp != nil || !mcp) && (urls.model != nil || !model) { return urls }
            var fds = [pollfd(fd: messages, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 1, 100)
        }
        throw WardenError(
            code: .layerUnavailable,
            message: "tools: the gateway did not open its Streamable HTTP endpoint; the run is refused")
    }

    /// Tells the model door to refuse everything from now on and end its open streams (best effort:
    /// the stop does not wait for it).
    func cutModel(reason: String) {
        guard let requests, var line = try? JSONSerialization.data(withJSONObject: ["cut": reason]) else { return }
        line.append(0x0A)
        try? requests.write(contentsOf: line)
    }

    /// Lines the gateway wrote since the last look (asks are kept for `drainAsks`).
    private var heldAsks: [String] = []

    private func drainLines() -> [[String: Any]] {
        var objects: [[String: Any]] = []
        for object in readObjects() {
            if let id = object["ask"] as? String { heldAsks.append(id) } else { objects.append(object) }
        }
        return objects
    }

    /// The gateway's standard output after its ready line: `{"ask":"ID"}` per held call.
    private(set) var messages: Int32 = -1

    /// The ids of calls held for a person since the last call (non-blocking).
    func drainAsks() -> [String] {
        var asks = heldAsks
        heldAsks = []
        for object in readObjects() {
            if let id = object["ask"] as? String { asks.append(id) }
        }
        return asks
    }

    /// Whether the gateway's output has ended (it exited).
    private(set) var ended = false

    /// The JSON objects the gateway wrote since the last read (non-blocking).
    private func readObjects() -> [[String: Any]] {
        guard messages >= 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(messages, $0.baseAddress, $0.count) }
            if n == 0 {
                // The gateway is gone: nothing more to poll (a hung-up pipe would wake the loop forever).
                messages = -1
                ended = true
                break
            }
            if n < 0 { break }
            pendingOutput.append(contentsOf: buffer[0..<n])
        }
        var objects: [[String: Any]] = []
        while let newline = pendingOutput.firstIndex(of: 0x0A) {
            let line = pendingOutput[pendingOutput.startIndex..<newline]
            pendingOutput.removeSubrange(pendingOutput.startIndex...newline)
            if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] { objects.append(object) }
        }
        return objects
    }

    /// Ends the gateway (its servers' sandboxes end with it) and waits for it.
    func terminate() {
        defer { try? FileManager.default.removeItem(atPath: serverWorkspaces) }
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

extension ToolsGatewayProcess {
    /// Asks a run's model door to cut the model (`warden model cut`, and `warden stop` before its
    /// notice): leaves `reason` in the run's directory and sends the gateway SIGUSR1. False when the run
    /// has no model door or its gateway is gone.
    public static func requestModelCut(runDirectory: String, reason: String) -> Bool {
        let configuration = runDirectory + "/tools-gateway.json"
        guard let data = FileManager.default.contents(atPath: configuration),
            let parsed = try? JSONDecoder().decode(ToolsGatewayConfiguration.self, from: data), parsed.models != nil,
            let text = try? String(
                contentsOfFile: ModelDoorSettings.gatewayPIDPath(runDirectory: runDirectory), encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        else { return false }
        do {
            try FileIO.writeAtomically(
                Data(reason.utf8), to: ModelDoorSettings.cutPath(runDirectory: runDirectory), mode: 0o600)
        } catch {
            return false
        }
        return kill(pid, SIGUSR1) == 0
    }
}
