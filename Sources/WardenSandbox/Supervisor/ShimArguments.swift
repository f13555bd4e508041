import WardenCore

/// What the supervisor tells the inner shim, and the one encoding of it on the shim's command line
/// (`warden __shim …`): ``arguments`` writes it, ``init(parsing:)`` reads it back.
public struct ShimArguments: Sendable, Equatable {
    /// Where the shim reports Landlock's result (one JSON line).
    public var statusFD: Int32 = -1
    /// The shim waits for one byte here before it execs the agent (sent once the start is recorded).
    public var goFD: Int32 = -1
    /// Landlock: paths readable (and executable) by the agent.
    public var readOnly: [String] = []
    /// Landlock: paths the agent may also write.
    public var readWrite: [String] = []
    /// Landlock: directories whose listings (not files) the agent may read, beneath them.
    public var listable: [String] = []
    /// The host identity the shim becomes before it execs the agent; nil: stay root (degraded).
    public var identity: AgentIdentity?
    /// Landlock: refuse TCP bind and connect (no network).
    public var denyTCP = false
    /// Landlock: with `denyTCP`, loopback ports the agent may still connect to (the tools door's).
    public var connectPorts: [UInt16] = []
    /// False when the operator allowed the run without Landlock.
    public var landlock = true
    /// Re-install the seccomp deny-list with the kernel's log flag, so denials reach the audit log.
    public var seccompLog = false
    /// Under `--network none`: `socket` may make only AF_UNIX, AF_INET(6) and NETLINK_ROUTE sockets.
    public var localSocketsOnly = false
    /// Standard input (or output) is the run's relayed pty: make it the agent's controlling terminal,
    /// so job control and window-size signals work for screen programs.
    public var controllingTerminal = false
    /// The agent's command.
    public var command: [String] = []

    public init() {}

    /// The arguments after `warden __shim`.
    public var arguments: [String] {
        var args = ["--status-fd", String(statusFD)]
        if goFD >= 0 { args += ["--go-fd", String(goFD)] }
        if landlock {
            for path in readWrite { args += ["--rw", path] }
            for path in readOnly { args += ["--ro", path] }
            for path in listable { args += ["--ls", path] }
            if denyTCP { args.append("--deny-tcp") }
            for port in connectPorts { args += ["--connect-port", String(port)] }
        } else {
            args.append("--no-landlock")
        }
        if seccompLog { args.append("--seccomp-log") }
        if localSocketsOnly { args.append("--local-sockets") }
        if let identity { args += ["--user", identity.description] }
        if controllingTerminal { args.append("--tty") }
        return args + ["--"] + command
    }

    /// Reads what ``arguments`` wrote; nil for anything else (the shim was not started by Warden).
    public init?(parsing arguments: [String]) {
        var index = 0
        func next() -> String? {
            index += 1
            return index < arguments.count ? arguments[index] : nil
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--status-fd":
                guard let fd = next().flatMap({ Int32($0) }) else { return nil }
                statusFD = fd
            case "--go-fd":
                guard let fd = next().flatMap({ Int32($0) }) else { return nil }
                goFD = fd
            case "--ro":
                guard let path = next() else { return nil }
                readOnly.append(path)
            case "--rw":
                guard let path = next() else { return nil }
                readWrite.append(path)
            case "--ls":
                guard let path = next() else { return nil }
                listable.append(path)
            case "--user":
                guard let text = next(), let parsed = try? AgentIdentity(parsing: text, field: "--user") else {
                    return nil
                }
                identity = parsed
            case "--deny-tcp": denyTCP = true
            case "--connect-port":
                guard let text = next(), let port = UInt16(text) else { return nil }
                connectPorts.append(port)
            case "--no-landlock": landlock = false
            case "--seccomp-log": seccompLog = true
            case "--local-sockets": localSocketsOnly = true
            case "--tty": controllingTerminal = true
            case "--":
                command = Array(arguments[(index + 1)...])
                if command.isEmpty { return nil }
                return
            default: return nil
            }
            index += 1
        }
        return nil
    }
}
