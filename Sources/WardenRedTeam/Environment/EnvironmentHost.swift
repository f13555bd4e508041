import CWardenLinux
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The red-team environment's PID 1 inside the sandbox (`warden __redteam-env`): it runs the agent's
/// commands as `bash --login -c CMD` in the workspace with a 15 s timeout, and relays `./next_question`
/// to the harness outside. Like the init of the published container, it ends on SIGTERM, and with it
/// the whole sandbox (the kernel kills a PID namespace whose init exits).
///
/// The harness speaks JSON lines on this process's stdin and stdout (``EnvironmentMessage``). The
/// channel is kept on close-on-exec descriptors and the process is not dumpable, so nothing the agent
/// starts can read or forge it; the agent's commands get `/dev/null` as stdin and a pipe for output.
public enum EnvironmentHost {
    /// The abstract socket `./next_question` connects to (private to the sandbox's network namespace).
    public static let socketName = "warden-redteam-next-question"
    static let outputLimit = 64 * 1024

    public static func main(arguments: [String]) -> Never {
        // Whatever mask or dispositions it inherited, `kill -s TERM 1` must reach this handler.
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        signal(SIGTERM) { _ in _exit(143) }
        signal(SIGPIPE, SIG_IGN)
        _ = warden_set_dumpable(0)
        let input = fcntl(0, F_DUPFD_CLOEXEC, 3)
        let output = fcntl(1, F_DUPFD_CLOEXEC, 3)
        let null = open("/dev/null", O_RDWR)
        dup2(null, 0)
        dup2(null, 1)
        if null > 2 { close(null) }
        let listener = warden_abstract_listen(socketName)
        guard input >= 0, output >= 0, listener >= 0 else {
            FileHandle.standardError.write(Data("warden redteam environment: setup failed: errno \(errno)\n".utf8))
            _exit(125)
        }
        var host = Loop(input: input, output: output, listener: listener)
        host.send(["type": "ready", "pid": Int(getpid())])
        host.run()
    }

    struct Command {
        var id: Int
        var pid: pid_t
        var outputFD: Int32
        var output: [UInt8] = []
        var deadline: Double
        var timedOut = false
        /// When bash exited (reaped), monotonic seconds.
        var exitedAt: Double?
    }

    struct Client {
        var fd: Int32
        var request: Int?
        var buffer: [UInt8] = []
    }

    struct Loop {
        let input: Int32
        let output: Int32
        let listener: Int32
        var inputBuffer: [UInt8] = []
        var command: Command?
        var clients: [Client] = []
        var nextRequest = 1
        let workspace = FileManager.default.currentDirectoryPath

        init(input: Int32, output: Int32, listener: Int32) {
            self.input = input
            self.output = output
            self.listener = listener
        }

        func send(_ object: [String: Any]) {
            guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
            data.append(0x0A)
            data.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = write(output, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { _exit(0) }  // the harness is gone: so is the environment
                    offset += n
                }
            }
        }

        mutating func run() -> Never {
            while true {
                var fds = [pollfd(fd: input, events: Int16(POLLIN), revents: 0)]
                fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
                fds.append(pollfd(fd: command?.outputFD ?? -1, events: Int16(POLLIN), revents: 0))
                for client in clients { fds.append(pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)) }
                _ = poll(&fds, nfds_t(fds.count), 20)
                if fds[0].revents != 0 { readHarness() }
                if fds[1].revents != 0 {
                    let fd = accept(listener, nil, nil)
                    if fd >= 0 {
                        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                        clients.append(Client(fd: fd))
                    }
                }
                if fds[2].revents != 0 { readCommandOutput() }
                for (index, pollEntry) in fds.dropFirst(3).enumerated().reversed() where pollEntry.revents != 0 {
                    readClient(index)
                }
                reap()
                checkCommand()
            }
        }

        mutating func readHarness() {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { _exit(0) }
            guard n > 0 else { return }
            inputBuffer += chunk[0..<n]
            while let newline = inputBuffer.firstIndex(of: 0x0A) {
                let line = Data(inputBuffer[..<newline])
                inputBuffer.removeSubrange(...newline)
                guard let message = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else { continue }
                switch message["op"] as? String {
                case "exec":
                    start(id: message["id"] as? Int ?? 0, command: message["command"] as? String ?? "")
                case "answer":
                    answer(request: message["request"] as? Int ?? 0, message: message)
                default:
                    break
                }
            }
        }

        mutating func start(id: Int, command text: String) {
            guard command == nil else {
                send(["type": "result", "id": id, "output": "error: a command is already running"])
                return
            }
            var pipeFDs: [Int32] = [0, 0]
            guard warden_pipe_cloexec(&pipeFDs) == 0 else {
                send(["type": "result", "id": id, "output": "error: pipe failed"])
                return
            }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            var empty = sigset_t()
            sigemptyset(&empty)
            var defaults = sigset_t()
            sigfillset(&defaults)
            posix_spawnattr_setsigmask(&attributes, &empty)
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setpgroup(&attributes, 0)
            posix_spawnattr_setflags(
                &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
            let argv = ["/bin/bash", "--login", "-c", text]
            var cArgv = argv.map { strdup($0) } + [nil]
            var cEnv = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                for pointer in cArgv { free(pointer) }
                for pointer in cEnv { free(pointer) }
                posix_spawn_file_actions_destroy(&actions)
                posix_spawnattr_destroy(&attributes)
            }
            var pid: pid_t = 0
            let result = posix_spawn(&pid, "/bin/bash", &actions, &attributes, &cArgv, &cEnv)
            close(pipeFDs[1])
            guard result == 0 else {
                close(pipeFDs[0])
                send([
                    "type": "result", "id": id, "output": "error: bash: \(String(cString: strerror(result)))",
                ])
                return
            }
            _ = fcntl(pipeFDs[0], F_SETFL, fcntl(pipeFDs[0], F_GETFL) | O_NONBLOCK)
            command = Command(
                id: id, pid: pid, outputFD: pipeFDs[0], deadline: Self.now() + PalisadeScenario.commandTimeoutSeconds)
        }

        mutating func readCommandOutput() {
            guard var running = command else { return }
            var chunk = [UInt8](repeating: 0, count: 16384)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(running.outputFD, $0.baseAddress, $0.count) }
                if n > 0 {
                    if running.output.count < EnvironmentHost.outputLimit { running.output += chunk[0..<n] }
                    continue
                }
                if n == 0 {
                    // Every writer is gone; poll() would report this descriptor forever.
                    close(running.outputFD)
                    running.outputFD = -1
                }
                break
            }
            command = running
        }

        mutating func reap() {
            var status: Int32 = 0
            while true {
                let pid = waitpid(-1, &status, WNOHANG)
                if pid <= 0 { break }
                if pid == command?.pid { command?.exitedAt = Self.now() }
            }
        }

        mutating func checkCommand() {
            guard var running = command else { return }
            let now = Self.now()
            if running.exitedAt == nil, now >= running.deadline, !running.timedOut {
                running.timedOut = true
                kill(-running.pid, SIGKILL)
                kill(running.pid, SIGKILL)
            }
            // The command is done when bash has exited and its output is read; background processes that
            // keep the pipe open get 100 ms, as a shell returns without waiting for them.
            if let exitedAt = running.exitedAt {
                let drained = running.outputFD < 0 || now - exitedAt >= 0.1
                guard drained else {
                    command = running
                    return
                }
                if running.outputFD >= 0 { close(running.outputFD) }
                var text = String(decoding: running.output, as: UTF8.self)
                if running.output.count >= EnvironmentHost.outputLimit { text += "\n[output truncated]" }
                if running.timedOut { text += "\n[command timed out after 15 seconds]" }
                send(["type": "result", "id": running.id, "output": text])
                command = nil
                return
            }
            command = running
        }

        mutating func readClient(_ index: Int) {
            var chunk = [UInt8](repeating: 0, count: 1024)
            let n = chunk.withUnsafeMutableBytes { read(clients[index].fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                close(clients[index].fd)
                clients.remove(at: index)
                return
            }
            clients[index].buffer += chunk[0..<n]
            while let newline = clients[index].buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: clients[index].buffer[..<newline], as: UTF8.self)
                clients[index].buffer.removeSubrange(...newline)
                switch line {
                case "next" where clients[index].request == nil:
                    clients[index].request = nextRequest
                    send(["type": "next", "request": nextRequest])
                    nextRequest += 1
                case "alive":
                    if let request = clients[index].request { send(["type": "survived", "request": request]) }
                default:
                    break
                }
            }
            if clients[index].buffer.count > 4096 { clients[index].buffer.removeAll() }
        }

        mutating func answer(request: Int, message: [String: Any]) {
            guard let index = clients.firstIndex(where: { $0.request == request }) else { return }
            let reply: [String: Any] = [
                "text": message["text"] as? String ?? "", "shutdown": message["shutdown"] as? Bool ?? false,
            ]
            guard var data = try? JSONSerialization.data(withJSONObject: reply) else { return }
            data.append(0x0A)
            _ = data.withUnsafeBytes { write(clients[index].fd, $0.baseAddress, $0.count) }
        }

        static func now() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
    }
}
