import WardenCore

/// The bubblewrap invocation for a run: namespaces, the mount layout, and the inner shim as the command.
///
/// Mount order matters: bubblewrap applies mounts in argument order, so the private `/tmp` and `/run`
/// come before the workspace (which may live beneath them), and the hidden and protected paths come
/// last so nothing can re-expose them.
public struct BubblewrapCommand: Sendable {
    public var plan: RunPlan
    public var seccompFD: Int32?
    public var infoFD: Int32
    public var statusFD: Int32
    public var goFD: Int32
    public var applyLandlock: Bool

    public init(plan: RunPlan, seccompFD: Int32?, infoFD: Int32, statusFD: Int32, goFD: Int32 = -1, applyLandlock: Bool)
    {
        self.plan = plan
        self.seccompFD = seccompFD
        self.infoFD = infoFD
        self.statusFD = statusFD
        self.goFD = goFD
        self.applyLandlock = applyLandlock
    }

    /// What the inner shim is told (its argument encoding lives in ``ShimArguments``).
    public var shim: ShimArguments {
        var shim = ShimArguments()
        shim.statusFD = statusFD
        shim.goFD = goFD
        shim.landlock = applyLandlock
        shim.readWrite = writablePaths
        shim.readOnly = ["/"]
        shim.denyTCP = plan.network == .none
        shim.seccompLog = seccompFD != nil
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
        if plan.network == .none { args.append("--unshare-net") }
        args += ["--hostname", "warden"]
        args += ["--ro-bind", "/", "/"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        // The private /tmp is memory: bound it so filling it cannot take the host's RAM.
        args += ["--size", String(temporarySize), "--tmpfs", "/tmp", "--tmpfs", "/run"]
        // cgroupfs must not be visible inside: an empty read-only tmpfs replaces it.
        args += ["--tmpfs", "/sys/fs/cgroup", "--remount-ro", "/sys/fs/cgroup"]
        args += ["--bind", plan.workspace, plan.workspace]
        // The shim is this binary; it must be reachable even when it lives under /tmp or /run, which
        // are private inside. Read-only, like the rest of the host.
        args += ["--ro-bind", plan.host.wardenExecutable, plan.host.wardenExecutable]
        for path in plan.protect { args += ["--ro-bind", path, path] }
        for path in hiddenPaths() {
            if FileIO.isDirectory(path) {
                args += ["--tmpfs", path, "--remount-ro", path]
            } else {
                args += ["--ro-bind", "/dev/null", path]
            }
        }
        args += ["--chdir", plan.workspace, "--clearenv"]
        for (name, value) in plan.environment { args += ["--setenv", name, value] }
        args += ["--cap-drop", "ALL"]
        if let seccompFD { args += ["--seccomp", String(seccompFD)] }
        args += ["--info-fd", String(infoFD)]
        args += ["--", plan.host.wardenExecutable, "__shim"] + shim.arguments
        return args
    }

    /// Bytes the private `/tmp` may hold: half the memory limit, or 1 GiB without one.
    var temporarySize: UInt64 {
        plan.limits.memoryMax.map { max($0 / 2, 1 << 20) } ?? (1 << 30)
    }

    /// Warden's own files and the operator's hidden paths that exist (a missing path needs no hiding).
    func hiddenPaths() -> [String] {
        var seen = Set<String>()
        return ([plan.host.stateDirectory] + plan.host.hiddenPaths + plan.hide).filter {
            FileIO.exists($0) && seen.insert($0).inserted
        }
    }
}
