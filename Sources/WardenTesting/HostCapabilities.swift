import CWardenLinux
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the machine offers, so kernel tests are skipped (with the reason) rather than passing silently
/// where a mechanism is missing.
public enum HostCapabilities {
    /// Why the sandbox cannot run here, or nil when it can.
    public static let sandboxMissing: String? = {
        if getuid() != 0 { return "not root: cgroups cannot be created" }
        let bwrap = ProcessInfo.processInfo.environment["WARDEN_BWRAP"] ?? "/usr/bin/bwrap"
        if access(bwrap, X_OK) != 0 { return "bubblewrap is not installed (apt-get install bubblewrap)" }
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        if !mounts.contains(" cgroup2 ") { return "no cgroup v2 filesystem is mounted" }
        let abi = warden_landlock_abi()
        if abi < 6 { return "Landlock ABI \(abi) < 6 (Linux 6.12+ with Landlock enabled is needed)" }
        return nil
    }()

    public static var canSandbox: Bool {
        if let reason = sandboxMissing {
            FileHandle.standardError.write(Data("skipping sandbox tests: \(reason)\n".utf8))
            return false
        }
        return true
    }
}
