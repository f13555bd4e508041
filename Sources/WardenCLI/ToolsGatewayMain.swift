import CWardenLinux
import Foundation
import WardenAudit
import WardenCore
import WardenGateway
import WardenPolicy

/// `warden __tools-gateway CONFIG`: the tools door on its own (the MCP gateway speaking to the agent on
/// standard input and output, one JSON-RPC message per line), composed with the audit store, the pins
/// and the approvals broker of the configuration's state directory.
enum ToolsGatewayMain {
    static func main(arguments: [String]) -> Never {
        func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("warden __tools-gateway: \(message)\n".utf8))
            exit(2)
        }
        guard arguments.count == 1 || arguments.count == 2,
            let data = FileManager.default.contents(atPath: arguments[0]),
            let configuration = try? JSONDecoder().decode(ToolsGatewayConfiguration.self, from: data)
        else { fail("started without its configuration (a JSON file)") }
        // A server that exits between a check and a write must fail that write (EPIPE), not end the
        // gateway: SIGPIPE is ignored here (Foundation's Process resets it for the servers it starts).
        signal(SIGPIPE, SIG_IGN)
        // Group-committed: concurrent agent sessions' records share a commit; under
        // decision_records = "journal" each goes to the journal first (EventJournal).
        let store = AuditEventSinks(stateDirectory: configuration.stateDirectory).sink(at: configuration.auditStore)
        let sink: EventJournal
        switch configuration.decisionRecords {
        case .commit: sink = EventJournal(groupCommitting: store)
        case .journal:
            guard let path = configuration.journal else { fail("decision_records = journal needs a journal path") }
            do {
                sink = try EventJournal(path: path, sink: store)
            } catch {
                fail("\(error)")
            }
        }
        // Started for a run: the supervisor reads these lines (its terminal's prompt), for both doors.
        let onHeld: @Sendable (Approval) -> Void = { approval in
            if configuration.listen != nil { tell(["ask": approval.id]) }
        }
        let runEntity = Entity(uid: EntityUID(type: "Run", id: configuration.run.rawValue), attributes: [:])
        let gateway: ToolsGateway
        do {
            let engine = try engine(configuration, runEntity: runEntity)
            gateway = try ToolsGateway(
                run: configuration.run, runEntity: runEntity, engine: engine,
                pins: try ToolPins(path: configuration.stateDirectory + "/mcp-pins.db"), sink: sink,
                broker: try? ApprovalBroker(path: configuration.stateDirectory + "/approvals.db") { _ in sink },
                servers: configuration.servers, roots: configuration.roots,
                admitNewTools: configuration.admitNewTools,
                approvalTimeout: .milliseconds(configuration.approvalTimeoutMilliseconds),
                resolve: configuration.resolve, catalogPath: configuration.catalog,
                onHeld: onHeld)
        } catch {
            fail("\(error)")
        }
        // The model door, in the same process: the same policies, records and approvals, and the tools
        // door's verdict on the tool calls the model proposes.
        var modelDoor: ModelDoor?
        if let models = configuration.models {
            do {
                let tools: ToolsGateway? = configuration.servers.isEmpty ? nil : gateway
                var check: (@Sendable (ProposedCall) -> ToolCallVerdict)?
                if let tools { check = { tools.verdict(on: $0) } }
                modelDoor = try ModelDoor(
                    run: configuration.run, runEntity: runEntity, engine: gateway.engine, sink: sink,
                    broker: gateway.broker, settings: models,
                    approvalTimeout: .milliseconds(configuration.approvalTimeoutMilliseconds),
                    toolCheck: check,
                    onHeld: onHeld)
            } catch {
                fail("\(error)")
            }
        }
        Self.modelDoor = modelDoor
        Self.configurationPath = arguments[0]
        var modelServer: ModelHTTPServer?
        if let modelDoor, let address = configuration.modelListen {
            let parts = address.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else {
                fail("model_listen: '\(address)' is not HOST:PORT, e.g. 127.0.0.1:8932")
            }
            do {
                modelServer = try ModelHTTPServer.serve(modelDoor, host: String(parts[0]), port: port)
            } catch {
                fail("cannot listen on \(address): \(error)")
            }
            FileHandle.standardError.write(
                Data("warden __tools-gateway: model door at http://\(parts[0]):\(modelServer?.port ?? port)/v1\n".utf8))
        }
        var http: ToolsHTTPServer?
        if let address = configuration.httpListen {
            // On its own: a loopback port of the host; the line on standard error says which.
            let parts = address.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else {
                fail("http_listen: '\(address)' is not HOST:PORT, e.g. 127.0.0.1:8931")
            }
            do {
                http = try ToolsHTTPServer.serve(
                    gateway, host: String(parts[0]), port: port)
            } catch {
                fail("cannot listen on \(address): \(error)")
            }
            FileHandle.standardError.write(
                Data("warden __tools-gateway: MCP at http://\(parts[0]):\(http?.port ?? port)/mcp\n".utf8))
        }
        if http != nil || modelServer != nil, configuration.listen == nil {
            // HTTP only: until SIGTERM.
            waitForSignal()
            modelServer?.close()
            modelDoor?.close()
            http?.close()
            gateway.close()
            exit(0)
        }
        if let listen = configuration.listen {
            if configuration.httpInSandbox { answerSupervisor(gateway, models: modelDoor) }
            // Started by a run's supervisor: dies with it, in a process group of its own.
            setpgid(0, 0)
            if arguments.count == 2, let parent = Int32(arguments[1]), warden_die_with_parent(parent) != 0 {
                fail("its supervisor is gone")
            }
            serve(gateway, socket: listen)
        }
        session(gateway, input: 0, output: 1)
        gateway.close()
        exit(0)
    }

    /// Reads the supervisor's requests on standard input, one JSON object a line, on a thread of its
    /// own: `{"netns": "/proc/PID/ns/net", "mcp": true, "model": true}` asks for the Streamable HTTP
    /// endpoint and the model door on that network namespace's loopback; the answers are `{"http": URL}`
    /// / `{"model": URL}` or `{"http_error": WHY}` / `{"model_error": WHY}` on standard output.
    /// `{"cut": WHY}` cuts the model (the run is stopping).
    static func answerSupervisor(_ gateway: ToolsGateway, models: ModelDoor?) {
        let thread = Thread {
            var servers: [ToolsHTTPServer] = []
            var modelServers: [ModelHTTPServer] = []
            while let line = readLine() {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                else { continue }
                if let reason = object["cut"] as? String {
                    // The supervisor stops the run: the model goes first.
                    models?.cut(reason: reason, by: "supervisor")
                    continue
                }
                guard let path = object["netns"] as? String else { continue }
                if let models, object["model"] as? Bool == true {
                    tell(
                        listen(in: path, port: ModelDoorSettings.portInSandbox, key: "model") { fd in
                            modelServers.append(try ModelHTTPServer.serve(models, listener: fd))
                            return ModelDoorSettings.openAIBaseInSandbox
                        })
                }
                guard object["mcp"] as? Bool ?? true else { continue }
                tell(
                    listen(in: path, port: ToolsGatewayConfiguration.httpPortInSandbox, key: "http") { fd in
                        servers.append(try ToolsHTTPServer.serve(gateway, listener: fd))
                        return ToolsGatewayConfiguration.urlInSandbox
                    })
            }
        }
        thread.start()
    }

    /// A listener on 127.0.0.1:`port` inside the network namespace at `path`, handed to `serve`; the
    /// answer for the supervisor: `{KEY: URL}` or `{KEY_error: WHY}`.
    static func listen(in path: String, port: UInt16, key: String, serve: (Int32) throws -> String) -> [String: Any] {
        let namespace = open(path, O_RDONLY | O_CLOEXEC)
        let fd =
            namespace < 0
            ? -1
            : warden_netns_listen(namespace, Int32(SOCK_STREAM.rawValue), UInt32(0x7F00_0001).bigEndian, port, 256)
        let reason = String(cString: strerror(errno))
        if namespace >= 0 { close(namespace) }
        guard fd >= 0 else { return [key + "_error": "cannot listen on the sandbox's 127.0.0.1:\(port): \(reason)"] }
        do {
            return [key: try serve(fd)]
        } catch {
            return [key + "_error": "\(error)"]
        }
    }

    /// One line of JSON to the supervisor.
    static func tell(_ object: [String: Any]) {
        guard var data = try? JSONSerialization.data(withJSONObject: object) else { return }
        data.append(0x0A)
        FileHandle.standardOutput.write(data)
    }

    /// Listens on `path` (mode 0666: the agent's uid connects; the directory is the sandbox's only
    /// way to it), tells the supervisor it is ready, and serves each connection — one agent session,
    /// one JSON-RPC message per line — on a thread of its own, until SIGTERM.
    static func serve(_ gateway: ToolsGateway, socket path: String) -> Never {
        unlink(path)
        let listener = warden_unix_listen(path, 64)
        guard listener >= 0, chmod(path, 0o666) == 0 else {
            tell(["error": "cannot listen on \(path): \(String(cString: strerror(errno)))"])
            exit(1)
        }
        let signalFD = signalPipe()
        tell(["ready": true, "socket": path])
        let acceptor = Thread {
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    return
                }
                let worker = Thread {
                    Self.session(gateway, input: connection, output: connection)
                    close(connection)
                }
                worker.start()
            }
        }
        acceptor.start()
        // SIGUSR1: `warden model cut` (its reason in the run's directory); SIGHUP: `warden policy
        // reload` (the policies named in the configuration file, read again); SIGTERM or SIGINT: the end.
        loop: while true {
            var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, -1) >= 0 || errno == EINTR else { break }
            var byte: UInt8 = 0
            while read(signalFD, &byte, 1) == 1 {
                switch Int32(byte) {
                case SIGUSR1: cutFromMarker(gateway)
                case SIGHUP: reload(gateway)
                default: break loop
                }
            }
        }
        unlink(path)
        modelDoor?.close()
        gateway.close()
        exit(0)
    }

    nonisolated(unsafe) static var modelDoor: ModelDoor?
    nonisolated(unsafe) static var configurationPath = ""

    /// `warden model cut RUN` left its reason in the run's directory and sent SIGUSR1.
    static func cutFromMarker(_ gateway: ToolsGateway) {
        guard let door = modelDoor,
            let data = FileManager.default.contents(atPath: configurationPath),
            let configuration = try? JSONDecoder().decode(ToolsGatewayConfiguration.self, from: data),
            let directory = configuration.runDirectory
        else { return }
        let marker = FileManager.default.contents(atPath: ModelDoorSettings.cutPath(runDirectory: directory))
        let reason = marker.flatMap { String(data: $0, encoding: .utf8) }?.trimmingCharacters(
            in: .whitespacesAndNewlines)
        door.cut(reason: reason?.isEmpty == false ? reason ?? "" : "cut by an operator", by: "operator")
    }

    /// Swaps the doors' policies for those the configuration file names now; a bad set is refused (and
    /// recorded) and the old one stays.
    static func reload(_ gateway: ToolsGateway) {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: configurationPath))
            let configuration = try JSONDecoder().decode(ToolsGatewayConfiguration.self, from: data)
            let next = try engine(configuration, runEntity: gateway.runEntity)
            gateway.engine.replace(with: next.snapshot)
            try gateway.record(
                .policyReloaded, subject: "tools",
                [
                    "door": modelDoor == nil ? "tools" : "tools,model",
                    "policies": configuration.policies.joined(separator: ","),
                    "count": String(next.snapshot.policies.policies.count),
                ])
        } catch {
            try? gateway.record(.warning, subject: "tools", ["warning": "policy reload refused: \(error)"])
        }
    }

    /// The doors' policies (none: nothing is permitted), with the run as an entity.
    static func engine(_ configuration: ToolsGatewayConfiguration, runEntity: Entity) throws -> PolicyEngine {
        configuration.policies.isEmpty
            ? try PolicyEngine(policies: "", source: "<no policies>", entities: try Entities([runEntity]))
            : try PolicyEngine(
                policyFiles: configuration.policies, entitiesFile: configuration.entities, extraEntities: [runEntity])
    }

    /// A descriptor that becomes readable on SIGTERM, SIGINT, SIGHUP or SIGUSR1.
    static func signalPipe() -> Int32 {
        let signals = [SIGTERM, SIGINT, SIGHUP, SIGUSR1]
        return signals.withUnsafeBufferPointer { warden_signal_pipe($0.baseAddress, Int32($0.count)) }
    }

    /// Waits until SIGTERM, SIGINT or SIGHUP.
    static func waitForSignal(_ fd: Int32? = nil) {
        var fds = [pollfd(fd: fd ?? signalPipe(), events: Int16(POLLIN), revents: 0)]
        while poll(&fds, 1, -1) < 0 && errno == EINTR {}
    }

    /// Writes all of `bytes` (retrying short writes and EINTR); false when the descriptor is gone.
    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let w = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if w < 0 && errno == EINTR { continue }
            if w <= 0 { return false }
            offset += w
        }
        return true
    }

    /// One agent session: lines in on `input`, answers out on `output` (each line written whole, under
    /// a lock: answers and notifications come from several threads), until the agent closes it. A line
    /// longer than ``ToolsSession/messageMax`` is answered with an error and skipped, not read whole.
    static func session(_ gateway: ToolsGateway, input: Int32, output: Int32) {
        let writing = NSLock()
        let session = gateway.openSession { line in
            writing.lock()
            defer { writing.unlock() }
            return writeAll(output, Array(line.utf8)[...])
        }
        defer { session.close() }
        var buffer: [UInt8] = []
        var skipping = false
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            var start = 0
            while start < n {
                guard let newline = chunk[start..<n].firstIndex(of: 0x0A) else {
                    if !skipping { buffer += chunk[start..<n] }
                    break
                }
                if !skipping { buffer += chunk[start..<newline] }
                start = newline + 1
                if skipping {
                    skipping = false
                    continue
                }
                let line = buffer
                buffer.removeAll(keepingCapacity: true)
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                session.receive(line)
            }
            if buffer.count > ToolsSession.messageMax {
                buffer = []
                skipping = true
                _ = session.write(
                    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"a message longer than \(ToolsSession.messageMax >> 20) MiB is not read; send smaller arguments\"}}\n"
                )
            }
        }
    }
}
