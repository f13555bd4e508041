import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// What of the host's filesystem the agent sees under the minimal read view, and the Landlock rules
/// that mirror it (a mount missing from the view is not the only barrier: Landlock refuses it too).
///
/// The view is the system directories a program needs, the workspace, the `--read` paths and Warden's
/// own binary (it is the inner shim); `/proc`, `/dev`, `/tmp` and `/run` are the sandbox's own.
/// Nothing of `/root`, `/home`, `/var`, `/srv`, `/mnt`, `/media`, the host's `/run` (daemon sockets),
/// `/opt` (unless `--read /opt`) or Warden's state is there; secrets are hidden even inside `/etc`.
public struct ReadViewLayout: Sendable, Equatable {
    /// A host directory in the view: bound read-only, or (usr-merged systems' `/bin`, `/lib*`) a symlink.
    public enum Entry: Sendable, Equatable {
        case directory(String)
        case symlink(path: String, target: String)

        public var path: String {
            switch self {
            case .directory(let path), .symlink(let path, _): path
            }
        }

        /// `/usr`, or `/bin -> usr/bin`, for people.
        public var description: String {
            switch self {
            case .directory(let path): path
            case .symlink(let path, let target): path + " -> " + target
            }
        }
    }

    /// The system directories, in mount order.
    public static let systemDirectories = [
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
        // CPU topology and device facts that runtimes read (no secrets; cgroupfs is covered).
        "/sys",
    ]

    /// Files and directories under `/etc` that hold secrets: hidden even though `/etc` is in the view.
    public static let etcSecrets = [
        "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d",
        "/etc/ssl/private", "/etc/security/opasswd", "/etc/krb5.keytab", "/etc/ipsec.secrets",
        "/etc/ppp/chap-secrets", "/etc/ppp/pap-secrets", "/etc/NetworkManager/system-connections",
        "/etc/wireguard", "/etc/docker/key.json", "/etc/libvirt/secrets", "/etc/credstore",
        "/etc/credstore.encrypted", "/etc/pki/private",
    ]

    public var entries: [Entry]
    /// Secrets inside the view that exist on this host (bound over with an empty file or directory).
    public var secrets: [String]

    /// The layout for this host: which system directories exist and which are symlinks.
    public static func current() -> ReadViewLayout {
        var entries: [Entry] = []
        for path in systemDirectories {
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFLNK, let target = FileIO.readLink(path) {
                entries.append(.symlink(path: path, target: target))
            } else if (st.st_mode & S_IFMT) == S_IFDIR {
                entries.append(.directory(path))
            }
        }
        var secrets = etcSecrets.filter { FileIO.exists($0) }
        // Host SSH private keys (ssh_host_ed25519_key, …); the .pub halves stay readable.
        let ssh = "/etc/ssh"
        for name in FileIO.directoryEntries(ssh) where name.hasPrefix("ssh_host_") && name.hasSuffix("_key") {
            secrets.append(ssh + "/" + name)
        }
        return ReadViewLayout(entries: entries, secrets: secrets.sorted())
    }

    /// Whether `path` is one of the view's directories or beneath one.
    public func containsDirectory(_ path: String) -> Bool {
        entries.contains { entry in
            if case .directory(let root) = entry { return FileIO.isWithin(path, root) }
            return false
        }
    }

    /// What the agent may read under Landlock: the view's directories (symlinks resolve to what they
    /// point at), the extra paths, and the sandbox's own `/proc` and `/run`.
    public func landlockReadable(extra: [String]) -> [String] {
        entries.map(\.path) + ["/proc", "/run"] + extra
    }
}
