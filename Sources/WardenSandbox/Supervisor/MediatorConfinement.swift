import CWardenLinux
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// What confines a run's mediator once its listeners exist inside the run's network namespace: it
/// keeps root's uid (the state directory's files are root's) but no capability, may write only the
/// directories it records into, and has the agent's seccomp deny-list (no ptrace, mount, setns, bpf,
/// module loading…). A compromised door can then neither enter another namespace, nor change the
/// host's files, nor trace the supervisor.
///
/// Applied by the mediator to itself while it has one thread, so every thread it starts inherits it.
public enum MediatorConfinement {
    /// Confines the calling process; returns what was applied, for the record.
    /// - Parameter writable: the directories the mediator writes (its run directory, the state
    ///   directory with the audit log and the approvals, an audit store elsewhere).
    /// - Throws: ``WardenError``; the mediator must not serve when this fails (fail closed).
    public static func apply(writable: [String]) throws -> [String] {
        let threads = warden_thread_count()
        guard threads == 1 else {
            throw WardenError(
                code: .layerUnavailable,
                message:
                    "mediator confinement: the process has \(threads) threads; it must confine itself before starting any"
            )
        }
        guard warden_drop_all_capabilities() == 0 else {
            throw FileIO.systemError("mediator confinement: drop capabilities")
        }
        let landlock = try LandlockRules(readOnly: ["/"], readWrite: writable, denyTCP: false).restrictSelf()
        let program = try SeccompFilter.makeDefault().bytes
        let installed = program.withUnsafeBytes { warden_seccomp_install($0.baseAddress, UInt16(program.count / 8)) }
        guard installed == 0 else { throw FileIO.systemError("mediator confinement: seccomp") }
        return [
            "capabilities: none", "landlock ABI \(landlock.abi): writes only to \(writable.joined(separator: ", "))",
            "seccomp: deny-list",
        ]
    }
}
