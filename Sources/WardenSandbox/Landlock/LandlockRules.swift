import CWardenLinux
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Landlock rules mirroring the sandbox's mounts, applied by the inner shim to itself before it execs
/// the agent.
///
/// Rules only grant; everything the ruleset handles and no rule grants is denied. The read view's
/// paths (the whole tree with `--view host`) are readable and executable, every directory listable,
/// the writable paths (workspace, private `/tmp`, `/dev`) get full access,
/// TCP bind and connect are handled (so denied) when the network is `none`, and signals and abstract
/// Unix sockets are scoped to the sandbox.
public struct LandlockRules: Sendable, Equatable {
    public var readOnly: [String]
    public var readWrite: [String]
    /// Directories whose listings (only) are readable beneath them.
    public var listable: [String]
    public var denyTCP: Bool
    /// With `denyTCP`, the loopback ports the agent may still connect to (the tools door's endpoint).
    public var connectPorts: [UInt16]

    public init(
        readOnly: [String], readWrite: [String], listable: [String] = [], denyTCP: Bool, connectPorts: [UInt16] = []
    ) {
        self.readOnly = readOnly
        self.readWrite = readWrite
        self.listable = listable
        self.denyTCP = denyTCP
        self.connectPorts = connectPorts
    }

    /// The kernel's Landlock ABI version.
    ///
    /// - Throws: ``WardenError`` (`layerUnavailable`) naming why Landlock is missing.
    public static func probeABI() throws -> Int {
        let abi = warden_landlock_abi()
        if abi >= 1 { return Int(abi) }
        let reason =
            errno == EOPNOTSUPP
            ? "Landlock is built into this kernel but not enabled; add landlock to the lsm= boot parameter"
            : "this kernel has no Landlock (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)"
        throw WardenError(
            code: .layerUnavailable, message: "landlock: \(reason), or pass --allow-degraded landlock")
    }

    /// The minimum ABI for every feature Warden uses (TCP rules: 4; signal and socket scoping: 6).
    public static let fullABI = 6

    static func filesystemRights(abi: Int) -> UInt64 {
        var rights: UInt64 = (1 << 13) - 1
        if abi >= 2 { rights |= UInt64(WARDEN_LL_FS_REFER) }
        if abi >= 3 { rights |= UInt64(WARDEN_LL_FS_TRUNCATE) }
        if abi >= 5 { rights |= UInt64(WARDEN_LL_FS_IOCTL_DEV) }
        return rights
    }

    /// What was applied, for the run's record.
    public struct Applied: Sendable, Equatable {
        public var abi: Int
        public var features: [String]
    }

    /// Restricts the calling process. Fails closed: any error means the caller must not exec the agent.
    public func restrictSelf() throws -> Applied {
        let abi = try Self.probeABI()
        let handledFS = Self.filesystemRights(abi: abi)
        let readRights = UInt64(WARDEN_LL_FS_EXECUTE | WARDEN_LL_FS_READ_FILE | WARDEN_LL_FS_READ_DIR)
        var features = ["filesystem"]
        var handledNet: UInt64 = 0
        if denyTCP && abi >= 4 {
            handledNet = UInt64(WARDEN_LL_NET_BIND_TCP | WARDEN_LL_NET_CONNECT_TCP)
            features.append("tcp-deny")
        }
        var scoped: UInt64 = 0
        if abi >= 6 {
            scoped = UInt64(WARDEN_LL_SCOPE_ABSTRACT_UNIX_SOCKET | WARDEN_LL_SCOPE_SIGNAL)
            features += ["scope-signal", "scope-abstract-unix"]
        }
        let ruleset = warden_landlock_create_ruleset(handledFS, handledNet, scoped)
        guard ruleset >= 0 else { throw FileIO.systemError("landlock: create ruleset") }
        defer { close(ruleset) }
        func allow(_ path: String, _ rights: UInt64) throws {
            let fd = warden_open_path(path)
            guard fd >= 0 else {
                if errno == ENOENT { return }
                throw FileIO.systemError("landlock: open \(path)")
            }
            defer { close(fd) }
            var st = stat()
            fstat(fd, &st)
            // Directory-only rights are invalid on a file rule.
            let fileRights = UInt64(
                WARDEN_LL_FS_EXECUTE | WARDEN_LL_FS_WRITE_FILE | WARDEN_LL_FS_READ_FILE | WARDEN_LL_FS_TRUNCATE
                    | WARDEN_LL_FS_IOCTL_DEV)
            let granted = (st.st_mode & S_IFMT) == S_IFDIR ? rights : rights & fileRights
            guard warden_landlock_add_path_rule(ruleset, fd, granted & handledFS) == 0 else {
                throw FileIO.systemError("landlock: add rule for \(path)")
            }
        }
        if handledNet != 0 {
            // The sandbox's own network namespace has only loopback: a port here is a door's.
            for port in connectPorts {
                guard warden_landlock_add_net_port_rule(ruleset, UInt64(WARDEN_LL_NET_CONNECT_TCP), port) == 0 else {
                    throw FileIO.systemError("landlock: allow connecting to port \(port)")
                }
                features.append("tcp-connect-\(port)")
            }
        }
        for path in listable { try allow(path, UInt64(WARDEN_LL_FS_READ_DIR)) }
        for path in readOnly { try allow(path, readRights) }
        for path in readWrite { try allow(path, handledFS) }
        guard warden_set_no_new_privs() == 0 else { throw FileIO.systemError("no_new_privs") }
        // From ABI 7 the kernel can log the agent's denials (after our exec) to the audit log.
        let flags: UInt32 = abi >= 7 ? UInt32(WARDEN_LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON) : 0
        if flags != 0 { features.append("audit-log") }
        guard warden_landlock_restrict_self(ruleset, flags) == 0 else {
            throw FileIO.systemError("landlock: restrict self")
        }
        return Applied(abi: abi, features: features)
    }
}
