import Foundation
import WardenCore

/// The bubblewrap invocation for a run: namespaces, the mount layout, and the inner shim as the command.
///
/// Mount order matters: bubblewrap applies mounts in argument order, so the private `/tmp` and `/run`
/// come before the workspace (which may live beneath them), and the hidden and protected paths come
/// last so nothing can re-expose them.
public struct BubblewrapCommand: Sendable {
    public var plan: RunPlan
    /// Whether the shim installs the seccomp deny-list (after it has made the agent's identity: the
    /// filter refuses the `unshare` that needs).
    public var seccomp: Bool
    public var infoFD: Int32
    public var statusFD: Int32
    public var goFD: Int32
    public var applyLandlock: Bool
    /// `/etc/passwd` and `/etc/group` with the agent's entry added (memfds), when it has an identity.
    public var accountFDs: (passwd: Int32, group: Int32)?
    /// The agent's terminal is a pty Warden relays (a foreground run on a terminal).
    public var controllingTerminal: Bool
    /// `/etc/resolv.conf` pointing to the door's resolver (a memfd), under `--network proxy`.
    public var resolverFD: Int32?
    /// The tools door's socket directory, bound read-only at /run/warden.
    public var toolsSocketDirectory: String?

    public init(
        plan: RunPlan, seccomp: Bool, infoFD: Int32, statusFD: Int32, goFD: Int32 = -1, applyLandlock: Bool,
        accountFDs: (passwd: Int32, group: Int32)? = nil, controllingTerminal: Bool = false
    ) {
        self.controllingTerminal = controllingTerminal
        self.plan = plan
        self.seccomp = seccomp
        self.infoFD = infoFD
        self.statusFD = statusFD
        self.goFD = goFD
        self.applyLandlock = applyLandlock
        self.accountFDs = accountFDs
    }

    /// What the inner shim is told (its argument encoding lives in ``ShimArguments``).
    public var shim: ShimArguments {
        var shim = ShimArguments()
        shim.statusFD = statusFD
        shim.goFD = goFD
        shim.landlock = applyLandlock
        shim.readWrite = writablePaths
        switch plan.view {
        case .host:
            shim.readOnly = ["/"]
        case .minimal:
            shim.readOnly = plan.viewLayout.landlockReadable(
                extra: plan.read + plan.runtimeDirectories + [plan.host.wardenExecutable])
            // Listing directories (not reading files) anywhere in the view: `ls /`, `find /` work.
            shim.listable = ["/"]
        }
        shim.denyTCP = plan.network == .none
        // The tools door's Streamable HTTP endpoint on the sandbox's loopback.
        if !plan.tools.isEmpty { shim.connectPorts = [ToolsGatewayConfiguration.httpPortInSandbox] }
        // The model door's endpoint likewise (Landlock allows TCP connect to that port only).
        if !plan.models.upstreams.isEmpty { shim.connectPorts.append(ModelDoorSettings.portInSandbox) }
        shim.seccompLog = seccomp
        shim.localSocketsOnly = seccomp && plan.network != .host
        shim.identity = plan.identity
        shim.controllingTerminal = controllingTerminal
        shim.command = plan.command
        return shim
    }

    /// Paths that are writable inside the sandbox, for the Landlock rules that mirror the mounts.
    var writablePaths: [String] { [plan.workspace, "/tmp", "/dev", "/dev/shm"] }

    /// The full argv, starting with the bubblewrap binary.
    public var arguments: [String] {
        var args = [plan.host.bubblewrap, "--die-with-parent", "--new-session"]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if plan.agentIsInit { args.append("--as-pid-1") }
        if plan.network != .host { args.append("--unshare-net") }
        args += ["--hostname", "warden"]
        args += viewArguments
        args += ["--proc", "/proc", "--dev", "/dev"]
        // The private /tmp is memory: bound it so filling it cannot take the host's RAM.
        args += ["--perms", "1777", "--size", String(temporarySize), "--tmpfs", "/tmp", "--tmpfs", "/run"]
        // --read paths under /tmp or /run would be hidden by those private mounts: bound again on top.
        for path in plan.read where FileIO.isWithin(path, "/tmp") || FileIO.isWithin(path, "/run") {
            args += parentDirectories(of: path) + ["--ro-bind", path, path]
        }
        if let toolsSocketDirectory {
            args += ["--ro-bind", toolsSocketDirectory, ToolsGatewayConfiguration.directoryInSandbox]
            // `warden` itself at a fixed place on the agent's PATH, for `warden mcp connect`.
            args += [
                "--ro-bind", plan.host.wardenExecutable, ToolsGatewayConfiguration.directoryInSandbox + "/warden",
            ]
        }
        // cgroupfs must not be visible inside: an empty read-only tmpfs replaces it.
        if plan.view == .host || plan.viewLayout.containsDirectory("/sys") {
            args += ["--tmpfs", "/sys/fs/cgroup", "--remount-ro", "/sys/fs/cgroup"]
        }
        args += parentDirectories(of: plan.workspace)
        args += ["--bind", plan.workspace, plan.workspace]
        // The shim is this binary; it must be reachable even when it lives under /tmp or /run, which
        // are private inside. Read-only, like the rest of the host.
        args += parentDirectories(of: plan.host.wardenExecutable)
        args += ["--ro-bind", plan.host.wardenExecutable, plan.host.wardenExecutable]
        if let accountFDs {
            args += ["--perms", "0644", "--ro-bind-data", String(accountFDs.passwd), "/etc/passwd"]
            args += ["--perms", "0644", "--ro-bind-data", String(accountFDs.group), "/etc/group"]
        }
        if let resolverFD {
            args += ["--perms", "0644", "--ro-bind-data", String(resolverFD), "/etc/resolv.conf"]
        }
        for path in plan.protect { args += ["--ro-bind", path, path] }
        for path in plan.hiddenPaths() {
            if FileIO.isDirectory(path) {
                args += ["--tmpfs", path, "--remount-ro", path]
            } else {
                args += ["--ro-bind", "/dev/null", path]
            }
        }
        args += ["--chdir", plan.workspace, "--clearenv"]
        for (name, value) in plan.environment { args += ["--setenv", name, value] }
        args += ["--cap-drop", "ALL"]
        // The shim needs these two to become the agent's identity; setresuid to it clears them all.
        if plan.identity != nil { args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] }
        args += ["--info-fd", String(infoFD)]
        args += ["--", plan.host.wardenExecutable, "__shim"] + shim.arguments
        return args
    }

    /// The read-only host directories: the minimal view, or the whole host with `--view host`.
    var viewArguments: [String] {
        guard plan.view == .minimal else { return ["--ro-bind", "/", "/"] }
        var args: [String] = []
        for entry in plan.viewLayout.entries {
            switch entry {
            case .directory(let path): args += ["--ro-bind", path, path]
            case .symlink(let path, let target): args += ["--symlink", target, path]
            }
        }
        for path in plan.read + plan.runtimeDirectories {
            args += parentDirectories(of: path) + ["--ro-bind", path, path]
        }
        return args
    }

    /// The directories above a bind mount's target that the view does not contain, created 0755: bubblewrap
    /// makes missing parents 0700, which the agent's unprivileged identity could not traverse.
    func parentDirectories(of path: String) -> [String] {
        guard plan.view == .minimal else { return [] }
        var parents: [String] = []
        var current = (path as NSString).deletingLastPathComponent
        while current != "/" && !current.isEmpty && !plan.viewLayout.containsDirectory(current) {
            parents.insert(current, at: 0)
            current = (current as NSString).deletingLastPathComponent
        }
        return parents.flatMap { ["--perms", "0755", "--dir", $0] }
    }

    /// Bytes the private `/tmp` may hold: half the memory limit, or 1 GiB without one.
    public var temporarySize: UInt64 {
        plan.limits.memoryMax.map { max($0 / 2, 1 << 20) } ?? (1 << 30)
    }
}
