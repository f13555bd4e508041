import Crypto
import Foundation
import Synchronization
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The result of running the `warden` binary.
public struct CommandResult: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String

    /// stdout parsed as a JSON object (empty when it is not one).
    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(standardOutput.utf8)) as? [String: Any]) ?? [:]
    }

    /// The `key=value` lines an agent printed on stdout (the last value of a key wins).
    public var keyValues: [String: String] {
        var result: [String: String] = [:]
        for line in standardOutput.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }
}

/// A scratch world for one test: its own state directory, workspace and "outside" directory, and
/// helpers to drive the real `warden` binary and observe the kernel.
public final class WardenHarness: @unchecked Sendable {
    // @unchecked: every stored property is a `let` set in init; methods only read them.
    public let root: String
    public let stateDirectory: String
    public let workspace: String
    public let outside: String

    public init(function: String = #function) throws {
        // Not under /tmp: the sandbox has a private /tmp, which would hide the harness trivially.
        let base = "/var/tmp/warden-tests"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        root = base + "/t-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        stateDirectory = root + "/state"
        workspace = root + "/workspace"
        outside = root + "/outside"
        for directory in [stateDirectory, workspace, outside] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
    }

    deinit {
        // Leave nothing running even when a test failed half-way.
        _ = try? run(["kill", "--all"])
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The `warden` binary under test: `$WARDEN_BIN`, or the one built next to the test bundle.
    public static var binary: String {
        if let explicit = ProcessInfo.processInfo.environment["WARDEN_BIN"] { return explicit }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("warden").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return packageRoot.appendingPathComponent(".build/debug/warden").path
    }

    /// The directory holding the adversary programs.
    public static var adversaries: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/WardenSandboxTests/Adversaries").path
    }

    /// Runs `warden ARGS` with this harness's state directory and waits for it.
    @discardableResult
    public func run(_ arguments: [String], environment: [String: String] = [:]) throws
        -> CommandResult
    {
        try runProgram(Self.binary, arguments, environment: environment)
    }

    /// Runs another program (a peer) with this harness's state directory, and waits for it.
    @discardableResult
    public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws
        -> CommandResult
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["WARDEN_STATE_DIR"] = stateDirectory
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        // Files rather than pipes: a detached supervisor may inherit nothing, and nothing can block.
        let token = UUID().uuidString
        let outPath = root + "/.out-" + token
        let errPath = root + "/.err-" + token
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        let outputData = FileManager.default.contents(atPath: outPath) ?? Data()
        let errorData = FileManager.default.contents(atPath: errPath) ?? Data()
        return CommandResult(
            status: process.terminationStatus, standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData, as: UTF8.self))
    }

    /// A process (not yet started) for `executable`, with this harness's state directory in its
    /// environment, for tests that need to signal it or read its pipes themselves.
    public func process(_ executable: String, arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["WARDEN_STATE_DIR": stateDirectory]) { $1 }
        return process
    }

    /// Starts a detached run and returns its id.
    public func start(_ flags: [String], command: [String]) throws -> String {
        let result = try run(["run", "--detach", "--json", "--workspace", workspace] + flags + ["--"] + command)
        guard result.status == 0, let id = result.json["id"] as? String else {
            throw WardenError(
                code: .systemCall, message: "warden run failed (\(result.status)): \(result.standardError)")
        }
        return id
    }

    /// Copies an adversary program (and the shared library) into the workspace and returns its argv.
    public func adversary(_ name: String) throws -> [String] {
        for file in [name, "lib.sh"] {
            let target = workspace + "/" + file
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: Self.adversaries + "/" + file, toPath: target)
        }
        chmod(workspace + "/" + name, 0o755)
        return ["/bin/bash", workspace + "/" + name]
    }

    /// `warden inspect --json`.
    public func inspect(_ id: String) throws -> [String: Any] {
        try run(["inspect", "--json", id]).json
    }

    /// The run's events as dictionaries.
    public func events(_ id: String) throws -> [[String: Any]] {
        try run(["events", "--json", id]).standardOutput.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Events of one kind, with their details.
    public func events(_ id: String, kind: String) throws -> [[String: String]] {
        try events(id).filter { $0["kind"] as? String == kind }.compactMap { $0["details"] as? [String: String] }
    }

    /// The newest pending approval (`warden approvals --json`) not in `seen`, waiting up to 20 s for one.
    public func pendingApproval(excluding seen: Set<String>) -> [String: Any]? {
        var found: [String: Any]?
        waitUntil(timeout: 20) {
            let list = try? run(["approvals", "--json"]).standardOutput
            let items =
                (list.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [[String: Any]]) ?? []
            found = items.first { !seen.contains($0["id"] as? String ?? "") }
            return found != nil
        }
        return found
    }

    /// Waits for `condition` up to `timeout` seconds, polling every 20 ms.
    @discardableResult
    public func waitUntil(timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    public func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode)
    }

    public func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }
}

/// Kernel-side observation: what is still alive, independent of Warden's own report.
public enum KernelProbe {
    /// Descriptors of every namespace `pidNamespace(of:)` named, held for the life of the test process.
    private static let heldNamespaces = Mutex<[Int32]>([])

    /// The PID-namespace inode of a process (`pid:[4026532xxx]`), or nil if it is gone.
    ///
    /// The namespace is held open from here on: once a namespace is freed the kernel hands its inode
    /// number to the next new one, so a test comparing against it while other tests start sandboxes
    /// would see their processes as survivors.
    public static func pidNamespace(of pid: Int32) -> String? {
        let fd = open("/proc/\(pid)/ns/pid", O_RDONLY | O_CLOEXEC)
        if fd >= 0 { heldNamespaces.withLock { $0.append(fd) } }
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/\(pid)/ns/pid", &buffer, 255)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    /// Every live process on the machine in the given PID namespace. Zombies are left out: they have
    /// run their last instruction and only wait for a parent's `wait` (on hosts whose init never reaps,
    /// an orphaned one can linger).
    public static func processes(inNamespace namespace: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pidNamespace(of: $0) == namespace && !isZombie($0) }
    }

    /// Whether the process has exited and awaits reaping.
    public static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[close...].dropFirst(2).first == "Z"
    }

    /// Processes whose cgroup path ends with the run's id, in any hierarchy.
    public static func processes(inRun id: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return false }
            return text.contains("/warden/\(id)\n") && !isZombie(pid)
        }
    }

    /// Modification times of the heartbeat files (`hb.*`) in a directory.
    public static func heartbeats(in directory: String) -> [String: Date] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
            $0.hasPrefix("hb.")
        }
        var result: [String: Date] = [:]
        for name in names {
            let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)
            result[name] = attributes?[.modificationDate] as? Date
        }
        return result
    }

    /// Whether every process of the run is gone by three independent measures: its cgroup, its PID
    /// namespace, and heartbeats its processes were writing into the workspace.
    public static func nothingRemains(runID: String, namespace: String?, workspace: String) -> (Bool, String) {
        let inRun = processes(inRun: runID)
        if !inRun.isEmpty { return (false, "processes still in the run's cgroup: \(inRun)") }
        if let namespace {
            // A task killed a moment ago leaves its cgroup in do_exit before it becomes a zombie; for
            // that instant it is in neither list's exclusion. Such a task is gone within milliseconds, a
            // survivor is not: look again for up to half a second before calling it one.
            var inNamespace = processes(inNamespace: namespace)
            for _ in 0..<25 where !inNamespace.isEmpty {
                usleep(20_000)
                inNamespace = processes(inNamespace: namespace)
            }
            if !inNamespace.isEmpty { return (false, "processes still in the run's PID namespace: \(inNamespace)") }
        }
        let before = heartbeats(in: workspace)
        usleep(400_000)
        let after = heartbeats(in: workspace)
        if before != after {
            let moved = after.filter { before[$0.key] != $0.value }.map(\.key).sorted()
            return (false, "heartbeats still being written: \(moved)")
        }
        return (true, "")
    }

    /// SHA-256 of a file's bytes plus its mode, or "absent".
    public static func fingerprint(_ path: String) -> String {
        var st = stat()
        guard lstat(path, &st) == 0 else { return "absent" }
        let data = FileManager.default.contents(atPath: path) ?? Data()
        // swift-crypto: the warden binary under test is ~100 MB in debug builds.
        let digest = Crypto.SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        return "\(String(st.st_mode, radix: 8)):\(digest)"
    }
}
