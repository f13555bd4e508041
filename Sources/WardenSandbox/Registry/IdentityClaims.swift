import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Which run holds which per-run agent identity, host-wide (uids are the host's, whatever state
/// directory a run is registered in): `/run/warden/identities/<uid>` names the run that claimed the uid,
/// its state directory and its supervisor. Used by ``RunLedger`` only, under `identities/lock`.
///
/// A run claims the lowest uid of ``AgentIdentity/perRunRange`` that no live run holds, in the same
/// critical section that writes its record (so a concurrent start sees the record and its claim
/// together), and gives it back with the transition that ends it. A claim is stale, and taken over,
/// once its supervisor is gone and its record says the run ended or its cgroup is empty. `/run` is
/// emptied at boot, when every run has ended anyway.
struct IdentityClaims {
    let registry: RunRegistry

    let directory = "/run/warden/identities"

    struct Claim: Codable {
        var run: RunID
        var stateDirectory: String
        var supervisorPID: Int32
        var supervisorStartTime: UInt64?
    }

    /// Runs `body` with the uid claimed for `run`; the claim is undone if `body` throws.
    func claim<T>(for run: RunID, _ body: (AgentIdentity) throws -> T) throws -> T {
        try withLock {
            var held = Set<UInt32>()
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                guard let uid = UInt32(name), AgentIdentity.perRunRange.contains(uid) else { continue }
                if let claim = claim(of: uid), isLive(claim) {
                    held.insert(uid)
                } else {
                    unlink(path(of: uid))
                }
            }
            guard let uid = AgentIdentity.perRunRange.first(where: { !held.contains($0) }) else {
                throw WardenError(
                    code: .conflict,
                    message:
                        "every per-run agent identity (\(AgentIdentity.perRunRange.count)) is held by a live run; stop some, or pass --user UID to share one"
                )
            }
            let claim = Claim(
                run: run, stateDirectory: registry.stateDirectory, supervisorPID: getpid(),
                supervisorStartTime: ProcessIdentity.startTime(of: getpid()))
            try FileIO.writeAtomically(try JSONEncoder().encode(claim), to: path(of: uid), durable: false)
            do {
                return try body(AgentIdentity(uid: uid, gid: uid))
            } catch {
                unlink(path(of: uid))
                throw error
            }
        }
    }

    /// Gives `identity` back when `run` holds it (a run given a fixed `--user` holds no claim).
    func release(_ identity: AgentIdentity, of run: RunID) {
        guard AgentIdentity.perRunRange.contains(identity.uid) else { return }
        try? withLock {
            if claim(of: identity.uid)?.run == run { unlink(path(of: identity.uid)) }
        }
    }

    private func path(of uid: UInt32) -> String { directory + "/" + String(uid) }

    private func claim(of uid: UInt32) -> Claim? {
        FileManager.default.contents(atPath: path(of: uid)).flatMap { try? JSONDecoder().decode(Claim.self, from: $0) }
    }

    /// A run that may still have processes running as its identity.
    private func isLive(_ claim: Claim) -> Bool {
        if ProcessIdentity.isAlive(pid: claim.supervisorPID, startTime: claim.supervisorStartTime) { return true }
        let registry = RunRegistry(stateDirectory: claim.stateDirectory, events: registry.events)
        guard let record = try? registry.load(claim.run) else { return false }
        return record.state.isActive && record.cgroup?.isPopulated() == true
    }

    private func withLock<T>(_ body: () throws -> T) throws -> T {
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw WardenError(
                code: .systemCall,
                message:
                    "identity: \(directory), where runs claim their host identities, cannot be created (\(error.localizedDescription)); run Warden as root, or pass --user UID to give the agent a fixed identity"
            )
        }
        return try FileIO.withExclusiveLock(directory + "/lock", body)
    }
}
