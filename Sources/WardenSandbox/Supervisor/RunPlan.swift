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

    /// Environment variables an agent keeps; everything else is dropped.
    public static let environmentAllowlist = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "COLUMNS", "LINES"]
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
        for warden in [host.stateDirectory] + host.hiddenPaths where !warden.isEmpty {
            if warden == workspace || warden.hasPrefix(workspace + "/") || workspace.hasPrefix(warden + "/") {
                throw WardenError.invalidInput(
                    "--workspace: \(workspace) overlaps Warden's own files at \(warden); the agent must never reach them; pick another directory"
                )
            }
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
        let protect = try profile.protect.map { try resolve($0, flag: "--protect", mustExist: true) }
        let hide = try profile.hide.map { try resolve($0, flag: "--hide", mustExist: false) }
        let tripwires = try profile.tripwires.map { try resolve($0, flag: "--tripwire", mustExist: true) }
        for path in hide where path == workspace || path == "/" {
            throw WardenError.invalidInput("--hide: \(path) cannot be hidden; it is the workspace or the root")
        }
        var environment: [(String, String)] = []
        for name in environmentAllowlist + profile.passEnvironment {
            if let value = callerEnvironment[name] { environment.append((name, value)) }
        }
        if callerEnvironment["PATH"] == nil { environment.append(("PATH", defaultPath)) }
        environment.append(("HOME", workspace))
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
