import ArgumentParser
import CWardenLinux
import Foundation
import WardenCore
import WardenGateway
import WardenPolicy
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

extension Warden {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command as an agent under the supervisor and its off-switch.",
            discussion: """
                The agent runs in its own cgroup, PID/mount/network/IPC/UTS namespaces, a read-only root with \
                a writable workspace, a seccomp deny-list and Landlock. If any layer cannot be applied the run \
                is refused; --allow-degraded LAYER (limits, root, seccomp, landlock) runs anyway and records it.

                Relative --protect, --hide and --tripwire paths are relative to the workspace. A --profile \
                (TOML) may set every flag (keys: name, workspace, network, pids_max, memory_max, cpu_max, \
                protect, hide, tripwire, on_tamper, grace, lease, allow_degraded, pass_env, command, user, read, view, \
                output_max, audit_store, policies, entities, [resolve], egress_bytes_max, connection_bytes_max, \
                connections_max, on_budget, on_mediator_loss, approval_timeout, decision_records); flags \
                win, and lists from both are combined.

                --network proxy: the sandbox still has only loopback; its one way out is Warden's egress door \
                (an HTTP proxy on 127.0.0.1:3128, SOCKS5 on :1080, a resolver on :53 and transparent \
                listeners), where every connection is a decision of the --policy files (deny by default), \
                recorded before it is made. See docs/egress.md.

                Exit status: the agent's (128+N if killed by signal N); 125 if Warden refused or failed to start it; 2 for bad input.
                Ctrl-C runs the stop protocol (notice, grace, kill); a second Ctrl-C kills at once.

                Examples:
                  warden run --workspace ./ws -- python3 agent.py
                  warden run --workspace ./ws --protect config.yaml --tripwire shutdown.sh --on-tamper stop -- ./agent
                  warden run --profile coder.toml --detach --json
                  warden run --network proxy --policy pip-only.cedar --workspace ./ws -- pip download requests
                  warden run --explain --read /opt/tools --workspace ./ws -- /opt/tools/agent

                The agent runs as an unprivileged host identity of its own (--user auto, the default: a uid \
                from 2000000000-2000065535 that no other live run has, so per-user kernel limits are the run's \
                own), in its own user namespace, with the workspace idmapped so that its files stay its owner's. It sees the system \
                directories (/usr, /bin, /lib*, /etc without its secrets, /sys), the workspace and --read paths; \
                nothing of /root, /home, /var, /srv, /mnt, /run, daemon sockets or Warden's state. PATH is the \
                system directories (--pass-env PATH passes yours).
                """)

        @Option(help: "A TOML run profile; flags override it.")
        var profile: String?
        @Option(
            help:
                "A TOML file of [mcp.servers.NAME] tables: the tools door's servers, added to the profile's (repeatable)."
        )
        var mcp: [String] = []
        @Option(
            name: .customLong("model"),
            help: ArgumentHelp(
                "The model door: an upstream model as NAME=URL, e.g. local=http://127.0.0.1:8080/v1 (repeatable).",
                discussion:
                    "The agent sees OPENAI_BASE_URL/ANTHROPIC_BASE_URL on its own loopback and a dummy key; each request is a Cedar decision (Action::\"complete\", Model::\"NAME\")."
            ))
        var models: [String] = []
        @Option(
            name: .customLong("model-key-env"),
            help: "NAME=ENV: the environment variable (of this warden, never the sandbox) holding NAME's real key.")
        var modelKeyEnv: [String] = []
        @Option(
            name: .customLong("model-protocol"), help: "NAME=openai|anthropic: the API NAME speaks (default openai).")
        var modelProtocol: [String] = []
        @Option(name: .customLong("model-tokens-max"), help: "Most model tokens (in and out) the run may use.")
        var modelTokensMax: Int64?
        @Option(help: "A name for the run, shown by `warden ps` and accepted wherever a run id is.")
        var name: String?
        @Option(help: "The directory the agent may write to (its working directory and HOME).")
        var workspace: String?
        @Option(
            help:
                "none (default: no network at all), proxy (only through Warden's egress door: every connection a --policy decision) or host (unsafe; warned and recorded)."
        )
        var network: NetworkMode?
        @Option(
            name: .customLong("policy"),
            help: "With --network proxy: a Cedar policy file deciding connections (repeatable; none = deny all).")
        var policies: [String] = []
        @Option(help: "With --network proxy: Cedar entities (JSON) the policies refer to.")
        var entities: String?
        @Option(
            help:
                "With --network proxy: connect NAME to ADDRESS instead of resolving it, as curl's --resolve (repeatable)."
        )
        var resolve: [String] = []
        @Option(
            name: .customLong("egress-bytes-max"),
            help: "With --network proxy: most bytes the run may send out in all, e.g. 100M (default: no limit).")
        var egressBytesMax: String?
        @Option(
            name: .customLong("connection-bytes-max"),
            help: "With --network proxy: most bytes one connection may carry either way (default: no limit).")
        var connectionBytesMax: String?
        @Option(
            name: .customLong("connections-max"),
            help: "With --network proxy: most connections open at once (default 256).")
        var connectionsMax: Int?
        @Option(
            name: .customLong("on-budget"),
            help: "record (default) or stop: what reaching an egress budget does besides cutting the connection.")
        var onBudget: BudgetAction?
        @Option(
            name: .customLong("on-mediator-loss"),
            help:
                "stop (default) or record: what happens to the run if its doors' process dies (the doors close either way)."
        )
        var onMediatorLoss: MediatorLossAction?
        @Option(
            name: .customLong("approval-timeout"),
            help: "How long an ask waits for a person before it is denied, e.g. 30s (default 2m).")
        var approvalTimeout: String?
        @Option(
            name: .customLong("decision-records"),
            help: """
                With --network proxy: commit (default: each decision is committed to the audit log, fsync, \
                before its connection) or journal (appended to the run's journal before it, committed in \
                batches within about a millisecond: survives the door's death, not a host crash in that moment).
                """)
        var decisionRecords: DecisionRecords?
        @Option(name: .customLong("pids-max"), help: "Most processes the run may have at once, or max (default 4096).")
        var pidsMax: String?
        @Option(name: .customLong("memory-max"), help: "Memory limit, e.g. 512M, 2G, or max (default max).")
        var memoryMax: String?
        @Option(name: .customLong("cpu-max"), help: "CPUs the run may use, e.g. 0.5 or 2 (default: no limit).")
        var cpuMax: String?
        @Option(help: "A path kept read-only even inside the workspace (repeatable).")
        var protect: [String] = []
        @Option(help: "A path replaced by an empty one inside the sandbox, e.g. weights or secrets (repeatable).")
        var hide: [String] = []
        @Option(help: "A file watched from outside; any change is recorded as an incident (repeatable).")
        var tripwire: [String] = []
        @Option(name: .customLong("on-tamper"), help: "record (default) or stop: what a tripwire incident does.")
        var onTamper: TamperAction?
        @Option(help: "How long the agent has to exit after a stop notice, e.g. 5s (default 5s).")
        var grace: String?
        @Option(help: "Dead-man switch: stop the run unless `warden renew` extends it within this time, e.g. 10m.")
        var lease: String?
        @Option(
            name: .customLong("allow-degraded"),
            help:
                "Run even if this layer is unavailable: limits, root (the agent as host root), seccomp or landlock (repeatable).",
            transform: Layer.degradable)
        var allowDegraded: [Layer] = []
        @Option(
            name: .customLong("audit-store"),
            help:
                "Record the run's events in this audit store: postgres://USER@HOST:PORT/DB or sqlite:PATH (default: the state directory's)."
        )
        var auditStore: String?
        @Option(
            help:
                "The unprivileged host identity the agent runs as: auto (default; a uid of this run's own from 2000000000-2000065535, owned by nothing on the host) or UID[:GID], which every run given it shares."
        )
        var user: String?
        @Option(
            name: .customLong("read"),
            help: "Add a host path to the agent's read view, read-only, e.g. /opt/tools (repeatable).")
        var readPaths: [String] = []
        @Option(
            help:
                "minimal (default: system directories, the workspace, --read paths) or host (the whole host, read-only; recorded)."
        )
        var view: ReadView?
        @Option(
            name: .customLong("output-max"),
            help: "With --detach: most bytes of the agent's output kept (the latest), e.g. 64M, or max (default 16M).")
        var outputMax: String?
        @Flag(help: "Print the sandbox that would be built (identity, mounts, Landlock rules, environment) and exit.")
        var explain = false
        @Option(name: .customLong("pass-env"), help: "Pass this environment variable to the agent (repeatable).")
        var passEnv: [String] = []
        @Flag(help: "Return once the agent is running and print the run id; the supervisor keeps running.")
        var detach = false
        @Flag(help: "Print the result (or, with --detach, the id) as JSON.")
        var json = false
        @Option(name: .customLong("ready-fd"), help: .hidden)
        var readyFD: Int32?
        /// With --ready-fd: the agent keeps this process's standard descriptors (the red-team harness
        /// talks to its environment through them) instead of writing to output.log.
        @Flag(name: .customLong("keep-stdio"), help: .hidden)
        var keepStdio = false
        /// The agent's command is the sandbox's PID 1 (see RunPlan.agentIsInit).
        @Flag(name: .customLong("agent-is-init"), help: .hidden)
        var agentIsInit = false
        @OptionGroup var state: StateOptions
        @Argument(parsing: .postTerminator, help: "The agent's command and arguments, after --.")
        var command: [String] = []

        func overrides() throws -> RunProfileOverrides {
            var flags = RunProfileOverrides()
            flags.name = name
            flags.workspace = workspace
            flags.network = network
            let cwd = FileManager.default.currentDirectoryPath
            flags.policies = policies.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 }
            flags.entities = entities.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 }
            for pin in resolve {
                let parsed = try EgressSettings.parseResolve(pin, field: "--resolve")
                flags.resolve[parsed.name] = parsed.address
            }
            flags.egressBytesMax = try egressBytesMax.map { try ByteSize(parsing: $0, field: "--egress-bytes-max") }
            flags.connectionBytesMax = try connectionBytesMax.map {
                try ByteSize(parsing: $0, field: "--connection-bytes-max")
            }
            if let connectionsMax {
                guard (1...65536).contains(connectionsMax) else {
                    throw WardenError.invalidInput("--connections-max: give a number of connections from 1 to 65536")
                }
                flags.connectionsMax = connectionsMax
            }
            flags.onBudget = onBudget
            func pair(_ text: String, flag: String, example: String) throws -> (String, String) {
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex,
                    text.index(after: equals) != text.endIndex
                else { throw WardenError.invalidInput("\(flag): '\(text)' is not NAME=VALUE, e.g. \(example)") }
                return (String(text[..<equals]), String(text[text.index(after: equals)...]))
            }
            for item in models {
                let (name, url) = try pair(item, flag: "--model", example: "local=http://127.0.0.1:8080/v1")
                var upstream = ModelUpstreamSettings(name: name, url: url)
                try upstream.validate(field: "--model \(name)")
                upstream.api = .openai
                flags.models[name] = upstream
            }
            for item in modelKeyEnv {
                let (name, variable) = try pair(item, flag: "--model-key-env", example: "openai=OPENAI_API_KEY")
                guard flags.models[name] != nil else {
                    throw WardenError.invalidInput("--model-key-env: no --model \(name)=URL to give a key to")
                }
                flags.models[name]?.keyEnvironment = variable
            }
            for item in modelProtocol {
                let (name, text) = try pair(item, flag: "--model-protocol", example: "claude=anthropic")
                guard flags.models[name] != nil else {
                    throw WardenError.invalidInput("--model-protocol: no --model \(name)=URL")
                }
                guard let api = ModelProtocol(rawValue: text) else {
                    throw WardenError.invalidInput(
                        "--model-protocol: '\(text)' is not a protocol; use openai or anthropic")
                }
                flags.models[name]?.api = api
            }
            if let modelTokensMax {
                guard modelTokensMax >= 1 else {
                    throw WardenError.invalidInput("--model-tokens-max: give a positive number")
                }
                flags.modelTokensMax = modelTokensMax
            }
            flags.onMediatorLoss = onMediatorLoss
            flags.decisionRecords = decisionRecords
            flags.approvalTimeout = try approvalTimeout.map { try DurationSpec.parse($0, field: "--approval-timeout") }
            if let pidsMax { flags.pidsMax = try RunProfileOverrides.parsePidsMax(pidsMax, field: "--pids-max") }
            if let memoryMax { flags.memoryMax = try ByteSize(parsing: memoryMax, field: "--memory-max") }
            if let cpuMax { flags.cpuMax = try RunProfileOverrides.parseCPU(cpuMax, field: "--cpu-max") }
            flags.protect = protect
            flags.hide = hide
            flags.tripwires = tripwire
            flags.onTamper = onTamper
            if let grace { flags.grace = try DurationSpec.parse(grace, field: "--grace") }
            if let lease {
                let duration = try DurationSpec.parse(lease, field: "--lease")
                guard duration >= .milliseconds(100) else {
                    throw WardenError.invalidInput("--lease: '\(lease)' is too short; give at least 100ms")
                }
                flags.lease = duration
            }
            flags.allowDegraded = Set(allowDegraded)
            flags.passEnvironment = passEnv
            flags.user = try user.map { try AgentUser(parsing: $0, field: "--user") }
            flags.read = readPaths
            flags.view = view
            if let outputMax { flags.outputMax = try ByteSize(parsing: outputMax, field: "--output-max") }
            flags.command = command
            flags.auditStore = try auditStore.map {
                try AuditStoreLocation(
                    parsing: $0, field: "--audit-store", workingDirectory: FileManager.default.currentDirectoryPath)
            }
            return flags
        }

        /// A TOML file's settings; `flag` names it in errors.
        static func readTOML(_ file: String, flag: String) throws -> (RunProfileOverrides, String) {
            let path = URL(fileURLWithPath: file).standardizedFileURL.path
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                let reason =
                    FileManager.default.fileExists(atPath: path) ? "it is unreadable or not UTF-8" : "it does not exist"
                throw WardenError.invalidInput("\(flag): cannot read \(file): \(reason)")
            }
            let settings = try RunProfileOverrides(
                toml: text, file: file, baseDirectory: (path as NSString).deletingLastPathComponent)
            return (settings, path)
        }

        func loadProfile() throws -> (RunProfile, String?) {
            var flags = try overrides()
            var profileOverrides = RunProfileOverrides()
            var profilePath: String?
            if let profile {
                (profileOverrides, profilePath) = try Self.readTOML(profile, flag: "--profile")
            }
            for file in mcp {
                let (servers, _) = try Self.readTOML(file, flag: "--mcp")
                guard servers == RunProfileOverrides(toolServers: servers.toolServers) else {
                    throw WardenError.invalidInput(
                        "--mcp \(file): an --mcp file holds only [mcp.servers.NAME] tables; put run settings in --profile"
                    )
                }
                guard !servers.toolServers.isEmpty else {
                    throw WardenError.invalidInput("--mcp \(file): no [mcp.servers.NAME] table in it")
                }
                for (name, server) in servers.toolServers { flags.toolServers[name] = server }
            }
            return (RunProfile().merged(with: profileOverrides).merged(with: flags), profilePath)
        }

        func run() throws {
            let (profile, profilePath) = try loadProfile()
            var host = state.host
            if let profilePath { host.hiddenPaths.append(profilePath) }
            // An --mcp file may hold a server's headers: hidden like the profile.
            for file in mcp { host.hiddenPaths.append(URL(fileURLWithPath: file).standardizedFileURL.path) }
            var plan = try RunPlan.make(
                profile: profile, host: host, callerEnvironment: state.environment,
                workingDirectory: FileManager.default.currentDirectoryPath)
            plan.agentIsInit = agentIsInit
            plan.profilePath = profilePath ?? ""
            if plan.network == .proxy, !plan.egress.policies.isEmpty {
                // A bad policy refuses the run here, with file:line:col, before anything is created.
                _ = try PolicyEngine(policyFiles: plan.egress.policies, entitiesFile: plan.egress.entities)
            }
            if explain {
                return print(
                    json ? try Output.json(SandboxExplanation(plan: plan)) : SandboxExplanation(plan: plan).text)
            }
            if detach { return try detachSupervisor() }
            let supervisor = Supervisor(plan: plan, registry: state.registry)
            let id: RunID
            do {
                id = try supervisor.start(detached: readyFD != nil && !keepStdio)
            } catch {
                report(error: error)
                throw error
            }
            for warning in supervisor.warnings { Output.error("warning: \(warning)") }
            if supervisor.relaysKeys {
                Output.error("run \(id) has a terminal of its own; \(Supervisor.stopKeyName) stops it")
                // Requests the doors hold are asked here too (`warden approve` still answers them).
                if plan.network == .proxy || !plan.tools.isEmpty, let broker = try? state.approvals() {
                    supervisor.approvals = TerminalDesk(broker: broker, run: id, approver: currentApprover(as: nil))
                }
            }
            if let readyFD {
                reportReady(["id": id.rawValue, "warnings": supervisor.warnings.joined(separator: "\n")])
                close(readyFD)
            }
            let code = supervisor.superviseUntilExit()
            let record = try? state.registry.load(id)
            if json {
                print(try Output.json(RunSummary(id: id, record: record, exitCode: code)))
            } else if readyFD == nil, let stop = record?.stop {
                Output.error(
                    "run \(id) stopped (\(stop.reason)) in \(String(format: "%.1f", stop.latencyMilliseconds)) ms; exit status \(code)"
                )
            }
            if code != 0 { throw ExitCode(code) }
        }

        private func report(error: any Error) {
            guard readyFD != nil else { return }
            reportReady(["error": "\(error)"])
        }

        private func reportReady(_ object: [String: String]) {
            guard let readyFD, let data = try? JSONSerialization.data(withJSONObject: object) else { return }
            let line = data + Data([0x0A])
            _ = line.withUnsafeBytes { write(readyFD, $0.baseAddress, $0.count) }
        }

        /// Re-executes `warden run` without `--detach` as a session leader with a readiness pipe, and
        /// returns once that supervisor reports the agent running (or why it refused).
        private func detachSupervisor() throws {
            var fds: [Int32] = [0, 0]
            guard warden_pipe_cloexec(&fds) == 0 else { throw WardenError(code: .systemCall, message: "pipe2 failed") }
            var arguments = Array(CommandLine.arguments.dropFirst())
            let terminator = arguments.firstIndex(of: "--") ?? arguments.count
            if let index = arguments[..<terminator].firstIndex(of: "--detach") { arguments.remove(at: index) }
            arguments.insert(contentsOf: ["--ready-fd", String(fds[1])], at: 1)
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(null) }
            let executable = state.host.wardenExecutable
            let result = WardenProcess.spawn(
                argv: [executable] + arguments, keepFDs: [fds[1]], stdio: (null, null, null), newSession: true)
            close(fds[1])
            defer { close(fds[0]) }
            guard result.pid > 0 else {
                throw WardenError(
                    code: .systemCall,
                    message: "cannot start the detached supervisor: \(String(cString: strerror(result.err)))")
            }
            close(result.pidfd)
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while read(fds[0], &byte, 1) == 1, byte != 0x0A { bytes.append(byte) }
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: String] else {
                throw WardenError(code: .systemCall, message: "the detached supervisor exited before the run started")
            }
            if let error = object["error"] {
                throw WardenError(code: .layerUnavailable, message: error)
            }
            for warning in (object["warnings"] ?? "").split(separator: "\n") { Output.error("warning: \(warning)") }
            guard let id = object["id"] else {
                throw WardenError(code: .systemCall, message: "no run id from the supervisor")
            }
            print(json ? try Output.json(["id": id]) : id)
        }
    }
}

/// What a foreground `warden run --json` prints at the end.
struct RunSummary: Encodable {
    var id: RunID
    var state: String
    var exitCode: Int32
    var stopReason: String?
    var stopLatencyMilliseconds: Double?

    init(id: RunID, record: RunRecord?, exitCode: Int32) {
        self.id = id
        self.state = record?.state.rawValue ?? "unknown"
        self.exitCode = exitCode
        self.stopReason = record?.stop?.reason
        self.stopLatencyMilliseconds = record?.stop?.latencyMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case id, state
        case exitCode = "exit_code"
        case stopReason = "stop_reason"
        case stopLatencyMilliseconds = "stop_latency_ms"
    }
}
