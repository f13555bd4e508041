import Foundation
import WardenCore

/// A run's configuration, validated and resolved against the filesystem, before anything starts.
///
/// Building a plan is the "nothing half-applied" boundary: every error a user can cause is found
/// here, before a cgroup, a registry entry or a process exists.
public struct RunPlan: Sendable {
    public var name: String
    public var command: [String]
    public var workspace: String
    public var network: NetworkMode
    public var limits: RunCgroup.Limits
    public var protect: [String]
    public var hide: [String]
    public var tripwires: [String]
    public var onTamper: TamperAction
    public var grace: Duration
    public var lease: Duration?
    /// Where the run's events go.
    public var auditStore: AuditStoreLocation = .stateDirectory
    /// The agent's command is the sandbox's PID 1 (bubblewrap's `--as-pid-1`): a signal it handles,
    /// such as `kill -s TERM 1`, ends the whole sandbox, as in a container. Used by the red-team
    /// environment, whose init is Warden's own program; it must reap orphans.
    public var agentIsInit = false
    public var allowDegraded: Set<Layer>
    public var environment: [(name: String, value: String)]
    public var host: HostConfiguration
    /// The unprivileged host identity the agent runs as; nil with `--allow-degraded root`. With
    /// ``identityPerRun`` this is a placeholder until the run claims one of its own at start.
    public var identity: AgentIdentity? = .default
    /// The run claims a uid of ``AgentIdentity/perRunRange`` that no live run has (`--user auto`).
    public var identityPerRun = true
    /// The workspace directory's owner, whom the agent's files belong to on the host.
    public var workspaceOwner = AgentIdentity(uid: 0, gid: 0)
    public var view: ReadView = .minimal
    /// Paths added read-only to the view (absolute, existing).
    public var read: [String] = []
    public var viewLayout = ReadViewLayout(entries: [], secrets: [])
    /// Most bytes of a detached run's output kept in `output.log` (nil: no cap).
    public var outputMax: UInt64? = 16 << 20
    /// The egress door's policies, pins and budgets (`--network proxy`).
    public var egress = EgressSettings()
    /// The tools door's MCP servers; non-empty: a tools gateway is started for the run.
    public var tools: [ToolServerSettings] = []
    /// The model door's upstreams and budgets; upstreams non-empty: the gateway hosts a model door.
    public var models = ModelDoorSettings()
    /// The key the agent holds in place of the real one (per run).
    public var modelDummyKey = ""
    /// Whether a gateway process runs for the run (tools, models or both).
    public var hasGateway: Bool { !tools.isEmpty || !models.upstreams.isEmpty }
    /// The profile file the run was started from ("" for none): the principal's `profile` attribute.
    public var profilePath = ""

    /// Warden's own libraries outside the view (a development build's Swift runtime), bound read-only
    /// so the shim can start; empty for the static release binary and with `--view host`.
    public var runtimeDirectories: [String] = []

    /// Environment variables an agent keeps from the operator's; everything else is dropped. `PATH` is
    /// not among them: the agent gets the system directories (`--pass-env PATH` passes the operator's).
    public static let environmentAllowlist = ["LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "COLUMNS", "LINES"]
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// Files in a workspace that programs on the host run or obey (git, direnv, editors' task runners).
    public static let hostExecutedPaths = [
        ".git/config", ".git/hooks", ".git/info", ".envrc", ".vscode/tasks.json", ".vscode/settings.json",
    ]

    /// Whether the agent can see `path` (before hiding): in the workspace, the view or a `--read` path.
    public func isVisible(_ path: String) -> Bool {
        guard view == .minimal else { return true }
        return ([workspace, host.wardenExecutable] + read + runtimeDirectories).contains { FileIO.isWithin(path, $0) }
            || viewLayout.containsDirectory(path)
    }

    /// Warden's own files, the operator's hidden paths and the secrets under `/etc`, where they exist
    /// and are inside what the agent would otherwise see (a path outside the view needs no hiding).
    public func hiddenPaths() -> [String] {
        var seen = Set<String>()
        let candidates = [host.stateDirectory] + host.hiddenPaths + hide + viewLayout.secrets
        return candidates.filter { FileIO.exists($0) && isVisible($0) && seen.insert($0).inserted }
    }

    /// Validates `profile` for this host.
    ///
    /// - Parameters:
    ///   - callerEnvironment: the operator's environment, source of the allowlisted variables.
    ///   - workingDirectory: what relative workspace paths are relative to.
    /// - Throws: ``WardenError`` naming the flag or field and the fix.
    public static func make(
        profile: RunProfile, host: HostConfiguration, callerEnvironment: [String: String], workingDirectory: String
    ) throws -> RunPlan {
        guard let program = profile.command.first, !program.isEmpty else {
            throw WardenError.invalidInput(
                "no command given; put the agent's command after --, e.g. warden run -- python3 agent.py")
        }
        guard let workspaceText = profile.workspace else {
            throw WardenError.invalidInput("--workspace: no workspace given; name the directory the agent may write to")
        }
        let workspacePath = workspaceText.hasPrefix("/") ? workspaceText : workingDirectory + "/" + workspaceText
        guard FileIO.isDirectory(workspacePath), let workspace = FileIO.realPath(workspacePath) else {
            throw WardenError(
                code: .notFound,
                message:
                    "--workspace: \(workspaceText) does not exist or is not a directory; create it first (mkdir -p \(workspaceText))"
            )
        }
        guard workspace != "/" else {
            throw WardenError.invalidInput("--workspace: / cannot be the workspace; give the agent its own directory")
        }
        if let warden = host.wardenPath(overlapping: workspace) {
            throw WardenError.invalidInput(
                "--workspace: \(workspace) overlaps Warden's own files at \(warden); the agent must never reach them; pick another directory"
            )
        }
        func resolve(_ path: String, flag: String, mustExist: Bool) throws -> String {
            let absolute = path.hasPrefix("/") ? path : workspace + "/" + path
            if mustExist {
                guard FileIO.exists(absolute) else {
                    throw WardenError(
                        code: .notFound,
                        message: "\(flag): \(path) does not exist (looked at \(absolute)); create it or fix the path")
                }
            }
            return URL(fileURLWithPath: absolute).standardizedFileURL.path
        }
        // What the host executes from a workspace (git's config, hooks and info, direnv's .envrc) is
        // read-only for the agent, where it exists when the run starts; --protect adds to the list.
        let hostExecuted = Self.hostExecutedPaths.map { workspace + "/" + $0 }.filter { FileIO.exists($0) }
        let protect =
            try profile.protect.map { try resolve($0, flag: "--protect", mustExist: true) }
            + hostExecuted.filter { !profile.protect.contains($0) }
        let hide = try profile.hide.map { try resolve($0, flag: "--hide", mustExist: false) }
        let tripwires = try profile.tripwires.map { try resolve($0, flag: "--tripwire", mustExist: true) }
        for path in hide where path == workspace || path == "/" {
            throw WardenError.invalidInput("--hide: \(path) cannot be hidden; it is the workspace or the root")
        }
        var environment: [(String, String)] = []
        for name in environmentAllowlist + profile.passEnvironment {
            if let value = callerEnvironment[name] { environment.append((name, value)) }
        }
        if !environment.contains(where: { $0.0 == "PATH" }) { environment.append(("PATH", defaultPath)) }
        environment.append(("HOME", workspace))
        if profile.network == .proxy {
            // Programs that honour these reach the proxy; the others reach the transparent listeners.
            let http = "http://127.0.0.1:\(MediatorConfiguration.httpProxyPort)"
            let socks = "socks5h://127.0.0.1:\(MediatorConfiguration.socksPort)"
            for (name, value) in [
                ("HTTP_PROXY", http), ("HTTPS_PROXY", http), ("ALL_PROXY", socks),
                ("NO_PROXY", "localhost,127.0.0.1,::1"),
            ] {
                environment.removeAll { $0.0 == name || $0.0 == name.lowercased() }
                environment += [(name, value), (name.lowercased(), value)]
            }
        } else if (!profile.egress.policies.isEmpty && profile.toolServers.isEmpty && profile.models.upstreams.isEmpty)
            || !profile.egress.resolve.isEmpty
        {
            throw WardenError.invalidInput(
                "--policy and --resolve decide the egress door's connections; they need --network proxy (or [mcp.servers] for the tools door, --model for the model door)"
            )
        }
        for server in profile.toolServers {
            try server.validate()
            if let variable = server.bearerTokenEnvironment, ProcessInfo.processInfo.environment[variable] == nil {
                throw WardenError.invalidInput(
                    "mcp.servers.\(server.name).bearer_token_env: \(variable) is not set in warden's environment; export it (it stays outside the sandbox)"
                )
            }
        }
        if !profile.toolServers.isEmpty {
            // The tools door's socket, bound into the sandbox; `warden mcp connect` speaks through it.
            environment.append(("WARDEN_MCP_SOCKET", ToolsGatewayConfiguration.socketInSandbox))
            // Streamable HTTP on the sandbox's own loopback (not with --network host: the host's
            // loopback is every local user's).
            if profile.network != .host {
                environment.append(("WARDEN_MCP_URL", ToolsGatewayConfiguration.urlInSandbox))
            }
            // Last on PATH: `warden mcp connect` works, and nothing of the agent's is shadowed.
            if let index = environment.firstIndex(where: { $0.0 == "PATH" }) {
                environment[index].1 += ":" + ToolsGatewayConfiguration.directoryInSandbox
            }
        }
        var modelKeyFiles: [String] = []
        if !profile.models.upstreams.isEmpty {
            guard profile.network != .host else {
                throw WardenError.invalidInput(
                    "--model: the model door needs --network none or proxy (under --network host the agent reaches any upstream itself, and the door's port would be every local user's)"
                )
            }
            for upstream in profile.models.upstreams {
                try upstream.validate()
                if let variable = upstream.keyEnvironment, profile.passEnvironment.contains(variable) {
                    throw WardenError.invalidInput(
                        "--pass-env \(variable): it holds model \(upstream.name)'s key, which stays outside the sandbox (the door adds it); drop it from --pass-env"
                    )
                }
                if let variable = upstream.keyEnvironment, callerEnvironment[variable]?.isEmpty ?? true {
                    throw WardenError.invalidInput(
                        "models.\(upstream.name).key_env: \(variable) is not set in warden's environment; export it (it stays outside the sandbox)"
                    )
                }
                if let path = upstream.keyFile {
                    guard FileManager.default.isReadableFile(atPath: path) else {
                        throw WardenError(
                            code: .notFound,
                            message: "models.\(upstream.name).key_file: cannot read \(path); fix the path")
                    }
                    modelKeyFiles.append(URL(fileURLWithPath: path).standardizedFileURL.path)
                }
            }
            // The agent's SDKs talk to the door on its own loopback, with a dummy key; a real key the
            // caller's environment or --pass-env carried is replaced, never passed.
            let names = [
                "OPENAI_BASE_URL", "OPENAI_API_BASE", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
                "WARDEN_MODEL_URL",
            ]
            environment.removeAll { names.contains($0.0) }
            let dummy = ModelDoorSettings.dummyKey()
            environment += [
                ("OPENAI_BASE_URL", ModelDoorSettings.openAIBaseInSandbox),
                ("OPENAI_API_BASE", ModelDoorSettings.openAIBaseInSandbox),
                ("ANTHROPIC_BASE_URL", ModelDoorSettings.anthropicBaseInSandbox),
                ("WARDEN_MODEL_URL", ModelDoorSettings.openAIBaseInSandbox),
                ("OPENAI_API_KEY", dummy), ("ANTHROPIC_API_KEY", dummy),
            ]
        }
        let read = try profile.read.map { path -> String in
            let absolute = path.hasPrefix("/") ? path : workingDirectory + "/" + path
            guard FileIO.exists(absolute), let real = FileIO.realPath(absolute) else {
                throw WardenError(
                    code: .notFound, message: "--read: \(path) does not exist (looked at \(absolute)); fix the path")
            }
            guard real != "/" else {
                throw WardenError.invalidInput("--read: / is the whole host; pass --view host for that (recorded)")
            }
            if let warden = host.wardenPath(overlapping: real) {
                throw WardenError.invalidInput(
                    "--read: \(real) contains or is inside Warden's own files at \(warden); the agent must never read them"
                )
            }
            return real
        }
        let resolvedPath = environment.first { $0.0 == "PATH" }?.1
        if program.contains("/") {
            let absolute = URL(fileURLWithPath: program.hasPrefix("/") ? program : workspace + "/" + program)
                .standardizedFileURL.path
            guard FileIO.isExecutable(absolute) else {
                throw WardenError(
                    code: .notFound,
                    message: "command \(program) does not exist or is not executable (looked at \(absolute))")
            }
            let isInWorkspace = absolute.hasPrefix(workspace + "/")
            // Warden's own binary is bound into every sandbox at its path (it is the inner shim), so it
            // stays reachable under /tmp or /run; the red team's environment runs it as the agent.
            let isWarden = FileIO.realPath(absolute) == host.wardenExecutable
            for privateRoot in ["/tmp", "/run"]
            where absolute.hasPrefix(privateRoot + "/") && !isInWorkspace && !isWarden {
                throw WardenError.invalidInput(
                    "command \(program) is under \(privateRoot), which the sandbox replaces with an empty private one; move it into the workspace"
                )
            }
        } else if findExecutable(program, path: resolvedPath) == nil {
            throw WardenError(
                code: .notFound, message: "command '\(program)' was not found on PATH; give its full path")
        }
        let name = profile.name ?? (program as NSString).lastPathComponent
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) })
        else {
            throw WardenError.invalidInput("--name: '\(name)' must be 1-64 letters, digits, '-', '_' or '.'")
        }
        var plan = RunPlan(
            name: name, command: profile.command, workspace: workspace, network: profile.network,
            limits: .init(pidsMax: profile.pidsMax, memoryMax: profile.memoryMax.bytes, cpuMax: profile.cpuMax),
            protect: protect, hide: hide, tripwires: tripwires, onTamper: profile.onTamper, grace: profile.grace,
            lease: profile.lease, allowDegraded: profile.allowDegraded, environment: environment, host: host)
        plan.auditStore = profile.auditStore
        switch (profile.allowDegraded.contains(.identity), profile.user) {
        case (true, _):
            plan.identity = nil
            plan.identityPerRun = false
        case (false, .perRun):
            plan.identity = .default
            plan.identityPerRun = true
        case (false, .fixed(let identity)):
            plan.identity = identity
            plan.identityPerRun = false
        }
        plan.view = profile.view
        plan.read = read
        plan.outputMax = profile.outputMax.bytes
        plan.egress = profile.egress
        plan.tools = profile.toolServers
        plan.models = profile.models
        plan.modelDummyKey = environment.first { $0.0 == "OPENAI_API_KEY" && plan.models.upstreams.count > 0 }?.1 ?? ""
        // A key file is the door's, never the agent's.
        plan.host.hiddenPaths += modelKeyFiles
        plan.viewLayout = ReadViewLayout.current()
        if plan.view == .minimal {
            plan.runtimeDirectories = HostConfiguration.loadedLibraryDirectories().filter { directory in
                !plan.viewLayout.containsDirectory(directory) && !read.contains(directory)
            }
        }
        var st = stat()
        if stat(workspace, &st) == 0 { plan.workspaceOwner = AgentIdentity(uid: st.st_uid, gid: st.st_gid) }
        // The program must be inside what the agent will see, or the run would fail inside the sandbox.
        let resolved =
            program.contains("/")
            ? URL(fileURLWithPath: program.hasPrefix("/") ? program : workspace + "/" + program).standardizedFileURL
                .path
            : findExecutable(program, path: resolvedPath)
        if let resolved, let real = FileIO.realPath(resolved), !plan.isVisible(real) {
            throw WardenError.invalidInput(
                "command \(program) (\(real)) is outside the agent's read view; add its directory with --read, move it into the workspace, or pass --view host"
            )
        }
        return plan
    }
}

/// Facts about this host and this Warden installation that every run uses.
public struct HostConfiguration: Sendable {
    /// Warden's state: the run registry and the event logs. Hidden from every run.
    public var stateDirectory: String
    /// Other paths of Warden's own that no run may see (profiles, keys, `/etc/warden`).
    public var hiddenPaths: [String]
    public var bubblewrap: String
    /// The `warden` binary, re-executed inside the sandbox as the inner shim.
    public var wardenExecutable: String
    /// A cgroup v2 mount point overriding the one in mountinfo.
    public var cgroupRoot: String?

    public init(
        stateDirectory: String, hiddenPaths: [String], bubblewrap: String, wardenExecutable: String,
        cgroupRoot: String?
    ) {
        self.stateDirectory = stateDirectory
        self.hiddenPaths = hiddenPaths
        self.bubblewrap = bubblewrap
        self.wardenExecutable = wardenExecutable
        self.cgroupRoot = cgroupRoot
    }

    /// The first of Warden's own paths (state directory, hidden paths) that `path` is, contains or is
    /// inside; nil when it touches none.
    public func wardenPath(overlapping path: String) -> String? {
        ([stateDirectory] + hiddenPaths).first {
            !$0.isEmpty && (FileIO.isWithin(path, $0) || FileIO.isWithin($0, path))
        }
    }

    /// The directories of every shared object mapped into this process, from /proc/self/maps (a
    /// development build links the Swift runtime from its toolchain; the shim needs them in the view).
    public static func loadedLibraryDirectories() -> [String] {
        guard let maps = try? FileIO.readString("/proc/self/maps") else { return [] }
        var seen = Set<String>()
        var result: [String] = []
        for line in maps.split(separator: "\n") {
            guard let path = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first,
                path.hasPrefix("/"), path.contains(".so")
            else { continue }
            let directory = (String(path) as NSString).deletingLastPathComponent
            if seen.insert(directory).inserted { result.append(directory) }
        }
        return result
    }

    /// The default state directory: `$WARDEN_STATE_DIR`, else `/var/lib/warden` for root, else
    /// `$XDG_STATE_HOME/warden` (or `~/.local/state/warden`).
    public static func defaultStateDirectory(environment: [String: String]) -> String {
        if let explicit = environment["WARDEN_STATE_DIR"], !explicit.isEmpty { return explicit }
        if getuid() == 0 { return "/var/lib/warden" }
        if let xdg = environment["XDG_STATE_HOME"], !xdg.isEmpty { return xdg + "/warden" }
        return (environment["HOME"] ?? "/tmp") + "/.local/state/warden"
    }

    /// Reads the host configuration from the environment (`WARDEN_STATE_DIR`, `WARDEN_BWRAP`,
    /// `WARDEN_CGROUP_ROOT`).
    public static func fromEnvironment(_ environment: [String: String], stateDirectory: String?) -> HostConfiguration {
        let state = stateDirectory ?? defaultStateDirectory(environment: environment)
        let bwrap =
            environment["WARDEN_BWRAP"] ?? findExecutable("bwrap", path: environment["PATH"]) ?? "/usr/bin/bwrap"
        let executable = FileIO.realPath("/proc/self/exe") ?? CommandLine.arguments[0]
        var hidden = ["/etc/warden", "/var/lib/warden", "/run/warden"]
        if let home = environment["HOME"], home != "/" { hidden.append(home + "/.config/warden") }
        return HostConfiguration(
            stateDirectory: URL(fileURLWithPath: state).standardizedFileURL.path, hiddenPaths: hidden,
            bubblewrap: bwrap, wardenExecutable: executable, cgroupRoot: environment["WARDEN_CGROUP_ROOT"])
    }
}
