import CWardenLinux
import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The supervisor's handle on a run's mediator (`warden __mediator`, the process behind the doors):
/// started outside the agent's cgroup and process group, handed the run's network namespace, and
/// watched through a pidfd and its control pipe.
final class MediatorProcess {
    let pid: pid_t
    let pidfd: Int32
    /// The read end of the control pipe (one JSON object per line).
    let control: Int32
    /// What the mediator said when it became ready (its ports).
    private(set) var ready: [String: Any] = [:]
    private var pending = Data()
    private(set) var reaped = false

    private var closed = false

    private init(pid: pid_t, pidfd: Int32, control: Int32) {
        self.pid = pid
        self.pidfd = pidfd
        self.control = control
        // Read without blocking from the supervisor's loop (poll says when).
        _ = fcntl(control, F_SETFL, fcntl(control, F_GETFL) | O_NONBLOCK)
    }

    /// Writes the configuration, starts the mediator and waits (up to 10 s) until it listens.
    static func start(
        configuration: MediatorConfiguration, runDirectory: String, initPID: pid_t, executable: String
    ) throws -> MediatorProcess {
        let path = MediatorConfiguration.path(runDirectory: runDirectory)
        try FileIO.writeAtomically(try configuration.encoded(), to: path, mode: 0o600)
        let netns = open("/proc/\(initPID)/ns/net", O_RDONLY | O_CLOEXEC)
        guard netns >= 0 else { throw FileIO.systemError("egress: open the run's network namespace") }
        defer { close(netns) }
        var pipeFDs: [Int32] = [-1, -1]
        guard warden_pipe_cloexec(&pipeFDs) == 0 else { throw FileIO.systemError("egress: pipe") }
        defer { close(pipeFDs[1]) }
        let log = open(runDirectory + "/mediator.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { if log >= 0 { close(log) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, log >= 0 ? log : 2, 1)
        posix_spawn_file_actions_adddup2(&actions, log >= 0 ? log : 2, 2)
        posix_spawn_file_actions_adddup2(&actions, netns, 3)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 4)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group: a Ctrl-C meant for the run reaches the supervisor, which stops the run
        // and then the mediator, in that order. Signals unblocked and at their defaults.
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = [executable, "__mediator", path, String(getpid())]
        let environment = ["PATH=\(RunPlan.defaultPath)", "LANG=C.UTF-8"]
        var pid: pid_t = 0
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            for p in cArgv { free(p) }
            for p in cEnvironment { free(p) }
        }
        let status = posix_spawn(&pid, executable, &actions, &attributes, cArgv, cEnvironment)
        guard status == 0 else { throw FileIO.systemError("egress: start the mediator", errno: status) }
        let pidfd = warden_pidfd_open(pid)
        close(pipeFDs[1])
        pipeFDs[1] = -1
        let process = MediatorProcess(pid: pid, pidfd: pidfd, control: pipeFDs[0])
        guard let first = process.readLine(timeoutMilliseconds: 10_000) else {
            process.terminate()
            throw WardenError(
                code: .layerUnavailable,
                message: "egress: the mediator did not start (see \(runDirectory)/mediator.log); the run is refused")
        }
        if let error = first["error"] as? String {
            process.terminate()
            throw WardenError(code: .layerUnavailable, message: error)
        }
        process.ready = first
        return process
    }

    /// One line from the control pipe, waiting at most `timeoutMilliseconds`; nil on timeout or EOF.
    private func readLine(timeoutMilliseconds: Int32) -> [String: Any]? {
        let deadline = monotonicNanoseconds() + Int64(timeoutMilliseconds) * 1_000_000
        while true {
            if let line = takeLine() { return line }
            let left = Int32(max(0, (deadline - monotonicNanoseconds()) / 1_000_000))
            guard left > 0 else { return nil }
            var fds = [pollfd(fd: control, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, left) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(control, &buffer, buffer.count)
            if n <= 0 { return takeLine() }
            pending.append(contentsOf: buffer[0..<n])
        }
    }

    private func takeLine() -> [String: Any]? {
        guard let newline = pending.firstIndex(of: 0x0A) else { return nil }
        let line = pending[pending.startIndex..<newline]
        pending.removeSubrange(pending.startIndex...newline)
        return (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] ?? [:]
    }

    /// The messages that arrived (the control pipe is readable); empty at EOF.
    func drainMessages() -> [[String: Any]] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(control, &buffer, buffer.count)
            guard n > 0 else { break }
            pending.append(contentsOf: buffer[0..<n])
        }
        var messages: [[String: Any]] = []
        while let line = takeLine() { messages.append(line) }
        return messages
    }

    /// Reaps it if it has exited; its exit description then, else nil.
    func exitIfDead() -> String? {
        guard !reaped else { return "already reaped" }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        reaped = true
        if status & 0x7F == 0 { return "exited with status \((status >> 8) & 0xFF)" }
        return "killed by signal \(status & 0x7F)"
    }

    /// Asks it to close its doors and waits (SIGKILL after 3 s); releases its descriptors either way.
    func terminate() {
        if !reaped {
            _ = warden_pidfd_send_signal(pidfd, SIGTERM)
            let deadline = monotonicNanoseconds() + 3_000_000_000
            while exitIfDead() == nil {
                if monotonicNanoseconds() > deadline {
                    _ = warden_pidfd_send_signal(pidfd, SIGKILL)
                    var status: Int32 = 0
                    waitpid(pid, &status, 0)
                    reaped = true
                    break
                }
                usleep(5_000)
            }
        }
        guard !closed else { return }
        closed = true
        close(pidfd)
        close(control)
    }
}
