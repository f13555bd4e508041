import CWardenLinux
import Foundation
import WardenCore
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// One trial's sandbox, seen from the harness: a `warden run` whose agent is the environment host,
/// and the JSON-lines channel to it.
final class SandboxedEnvironment: @unchecked Sendable {
    // @unchecked: every stored property is a `let`; the descriptors are written only by `send` (one
    // agent loop per trial) and closed once by `finish`.
    enum Message: Sendable {
        case ready
        /// A command's output (with the environment's own notes on truncation or timeout).
        case result(id: Int, output: String)
        case next(request: Int)
        case survived(request: Int)
    }

    let runID: RunID
    let supervisorPID: pid_t
    private let supervisorPIDFD: Int32
    private let toEnvironment: Int32
    let messages: AsyncStream<Message>
    let logPath: String

    private init(
        runID: RunID, supervisorPID: pid_t, supervisorPIDFD: Int32, toEnvironment: Int32,
        messages: AsyncStream<Message>, logPath: String
    ) {
        self.runID = runID
        self.supervisorPID = supervisorPID
        self.supervisorPIDFD = supervisorPIDFD
        self.toEnvironment = toEnvironment
        self.messages = messages
        self.logPath = logPath
    }

    /// Starts `warden run` for `workspace` and waits until the environment inside reports ready.
    ///
    /// - Throws: ``WardenError`` with the supervisor's own message when the run was refused.
    static func start(
        configuration: RedTeamConfiguration, workspace: String, name: String, logPath: String
    ) async throws -> SandboxedEnvironment {
        try await Blocking.run {
            try startBlocking(configuration: configuration, workspace: workspace, name: name, logPath: logPath)
        }
    }

    private static func startBlocking(
        configuration: RedTeamConfiguration, workspace: String, name: String, logPath: String
    ) throws -> SandboxedEnvironment {
        var toEnv: [Int32] = [0, 0]
        var fromEnv: [Int32] = [0, 0]
        var ready: [Int32] = [0, 0]
        guard warden_pipe_cloexec(&toEnv) == 0, warden_pipe_cloexec(&fromEnv) == 0, warden_pipe_cloexec(&ready) == 0
        else { throw WardenError(code: .systemCall, message: "pipe2 failed: \(String(cString: strerror(errno)))") }
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard log >= 0 else {
            throw WardenError(
                code: .systemCall, message: "cannot create \(logPath): \(String(cString: strerror(errno)))")
        }
        let warden = configuration.wardenExecutable
        var argv = [warden, "run", "--state-dir", configuration.stateDirectory, "--ready-fd", String(ready[1])]
        argv += ["--keep-stdio", "--agent-is-init", "--name", name, "--workspace", workspace]
        for path in PalisadeScenario.tripwires { argv += ["--tripwire", path] }
        argv += ["--on-tamper", "record"]
        argv += ["--grace", DurationSpec.format(configuration.grace), "--pids-max", "512", "--memory-max", "1G"]
        argv += ["--", warden, "__redteam-env"]
        let result = WardenProcess.spawn(
            argv: argv, keepFDs: [ready[1]],
            stdio: (toEnv[0], fromEnv[1], log))
        close(toEnv[0])
        close(fromEnv[1])
        close(ready[1])
        close(log)
        guard result.pid > 0 else {
            for fd in [toEnv[1], fromEnv[0], ready[0]] { close(fd) }
            throw WardenError(
                code: .systemCall, message: "cannot start \(warden): \(String(cString: strerror(result.err)))")
        }
        let readyLine = WardenProcess.readLine(ready[0])
        close(ready[0])
        let report = (try? JSONSerialization.jsonObject(with: Data(readyLine.utf8))) as? [String: String]
        guard let idText = report?["id"], let id = RunID(idText) else {
            close(toEnv[1])
            close(fromEnv[0])
            var status: Int32 = 0
            waitpid(result.pid, &status, 0)
            close(result.pidfd)
            let reason =
                report?["error"]
                ?? (try? String(contentsOfFile: logPath, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "warden run exited"
            throw WardenError(code: .layerUnavailable, message: "the trial's sandbox did not start: \(reason)")
        }
        let readFD = fromEnv[0]
        let (stream, continuation) = AsyncStream.makeStream(of: Message.self)
        let thread = Thread {
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                buffer += chunk[0..<n]
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let line = Data(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    if let message = parse(line) { continuation.yield(message) }
                }
            }
            close(readFD)
            continuation.finish()
        }
        thread.start()
        return SandboxedEnvironment(
            runID: id, supervisorPID: result.pid, supervisorPIDFD: result.pidfd, toEnvironment: toEnv[1],
            messages: stream, logPath: logPath)
    }

    private static func parse(_ line: Data) -> Message? {
        guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else { return nil }
        switch object["type"] as? String {
        case "ready": return .ready
        case "result":
            return .result(id: object["id"] as? Int ?? -1, output: object["output"] as? String ?? "")
        case "next": return (object["request"] as? Int).map { .next(request: $0) }
        case "survived": return (object["request"] as? Int).map { .survived(request: $0) }
        default: return nil
        }
    }

    /// Sends one message; false when the environment is gone.
    @discardableResult
    func send(_ object: [String: Any]) -> Bool {
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return false
        }
        data.append(0x0A)
        return data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(toEnvironment, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    /// Closes the channel and waits for the supervisor (`warden run`) to exit; returns its exit code.
    func finish() async -> Int32 {
        close(toEnvironment)
        let pid = supervisorPID
        let pidfd = supervisorPIDFD
        return await Blocking.run {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            close(pidfd)
            return Supervisor.exitCode(status)
        }
    }
}
