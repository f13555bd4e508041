import CWardenLinux
import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The last step inside the sandbox: the `warden` binary re-executed by bubblewrap as `warden __shim`.
///
/// It applies Landlock (and `no_new_privs`), reports to the supervisor on the status descriptor, waits
/// for the supervisor's go (sent only once the start is recorded), marks every inherited descriptor
/// close-on-exec and execs the agent. Any failure ends here: the agent never runs unconfined.
public enum InnerShim {
    /// Runs the shim with the arguments after `__shim`; never returns.
    public static func main(arguments: [String]) -> Never {
        guard let options = ShimArguments(parsing: arguments) else {
            FileHandle.standardError.write(
                Data("warden: the inner shim is started by `warden run`, not by hand\n".utf8))
            exit(126)
        }
        var report: [String: String] = [:]
        do {
            // First the identity: the user namespace needs `unshare`, which the seccomp filter refuses,
            // and writes to /proc, which Landlock would.
            if let identity = options.identity {
                guard warden_become(identity.uid, identity.gid) == 0 else {
                    throw FileIO.systemError("identity: become uid \(identity)")
                }
                let made = warden_own_userns(identity.uid, identity.gid)
                if made == 0 {
                    report["identity"] = "uid \(identity) in its own user namespace"
                } else if made == -1, errno == EPERM || errno == EACCES || errno == ENOSPC {
                    // Unprivileged user namespaces are restricted here (Ubuntu's AppArmor default,
                    // user.max_user_namespaces): the agent is still the unprivileged host uid.
                    report["identity"] =
                        "uid \(identity) (no user namespace of its own: \(String(cString: strerror(errno))))"
                } else {
                    throw FileIO.systemError("identity: user namespace")
                }
                guard getuid() != 0, geteuid() != 0 else { throw FileIO.systemError("identity: still root") }
            }
            if options.landlock {
                let rules = LandlockRules(
                    readOnly: options.readOnly, readWrite: options.readWrite, listable: options.listable,
                    denyTCP: options.denyTCP, connectPorts: options.connectPorts)
                let applied = try rules.restrictSelf()
                report["landlock"] = "applied abi=\(applied.abi) \(applied.features.joined(separator: ","))"
            } else {
                guard warden_set_no_new_privs() == 0 else { throw FileIO.systemError("no_new_privs") }
                report["landlock"] = "skipped"
            }
            if options.seccompLog {
                // Two copies of the deny-list, as bubblewrap and the shim used to install them: the
                // enforcing one (clone3 → ENOSYS, so libc falls back to a clone whose namespace flags the
                // filter can read; unlogged, as libc tries clone3 for every thread), then the same list
                // with SECCOMP_FILTER_FLAG_LOG, so the kernel writes each denial to its audit log, where
                // the supervisor reads and records it. For one call the strictest answer wins. Installed
                // here, after the identity, whose user namespace needs the `unshare` both refuse.
                for logged in [false, true] {
                    let program = try SeccompFilter.makeDefault(
                        forAuditLog: logged, localSocketsOnly: options.localSocketsOnly
                    ).bytes
                    let installed = program.withUnsafeBytes {
                        logged
                            ? warden_seccomp_install_logged($0.baseAddress, UInt16(program.count / 8))
                            : warden_seccomp_install($0.baseAddress, UInt16(program.count / 8))
                    }
                    guard installed == 0 else { throw FileIO.systemError("seccomp: install the filter") }
                }
                report["seccomp_log"] = "applied"
            }
        } catch {
            send(["error": "\(error)"], to: options.statusFD)
            exit(126)
        }
        send(report, to: options.statusFD)
        if options.goFD >= 0 {
            var byte: UInt8 = 0
            var n: Int
            repeat { n = read(options.goFD, &byte, 1) } while n < 0 && errno == EINTR
            guard n == 1 else { exit(126) }
        }
        if options.controllingTerminal {
            // A session of the agent's own (bubblewrap's --new-session one is led by the sandbox's init),
            // whose controlling terminal is the relayed pty, with the agent (this process, after exec)
            // its foreground group: job control and window-size signals work. Not the operator's
            // terminal: that one never enters the sandbox.
            if setsid() >= 0 { _ = [0, 1, 2].first { isatty($0) == 1 && warden_set_controlling_tty($0) == 0 } }
        }
        _ = warden_close_range_cloexec(3)
        var argv = options.command.map { strdup($0) } + [nil]
        execvp(options.command[0], &argv)
        let reason = String(cString: strerror(errno))
        FileHandle.standardError.write(Data("warden: cannot run '\(options.command[0])': \(reason)\n".utf8))
        exit(errno == ENOENT ? 127 : 126)
    }

    private static func send(_ object: [String: String], to fd: Int32) {
        guard fd >= 0, let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return
        }
        let line = data + Data([0x0A])
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
