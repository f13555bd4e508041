import CWardenLinux
import Foundation
import WardenAudit
import WardenCore
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// `warden bench stop`: stop latency (request until the cgroup is empty) on the same process trees,
/// by three methods — Warden's stop protocol, killing the process group (what `timeout` and most agent
/// CLIs do), and SIGKILL of the PID-namespace init — with how many processes each left alive.
public struct StopBenchmark {
    public enum Method: String, CaseIterable, Sendable, Codable {
        case warden = "warden stop (cgroup.kill)"
        case processGroup = "kill process group"
        case namespaceInit = "SIGKILL pid-ns init"
    }

    public struct Scenario: Sendable {
        public var name: String
        /// Arguments to the tree script: `single`, `daemons N`, `procs N`, `forkbomb`.
        public var tree: [String]
        /// Processes that must exist before the stop is timed.
        public var readyAt: Int
        public var pidsMax: Int

        public static let standard: [Scenario] = [
            Scenario(name: "1 process", tree: ["single"], readyAt: 1, pidsMax: 4096),
            Scenario(name: "200 setsid daemons", tree: ["daemons", "200"], readyAt: 201, pidsMax: 4096),
            Scenario(name: "1000 processes", tree: ["procs", "1000"], readyAt: 1001, pidsMax: 4096),
            Scenario(name: "fork bomb, pids.max=4096", tree: ["forkbomb"], readyAt: 3500, pidsMax: 4096),
        ]
    }

    public struct Row: Codable, Sendable {
        public var scenario: String
        public var method: Method
        public var repetitions: Int
        public var medianMilliseconds: Double
        public var p99Milliseconds: Double
        /// Most processes left alive after the method in any repetition.
        public var maxLeftAlive: Int
        public var failures: Int
    }

    /// Start-to-exit time of a trivial command, bare and under Warden.
    public struct Startup: Codable, Sendable {
        public var command: String
        public var repetitions: Int
        public var medianMilliseconds: Double
        public var p99Milliseconds: Double
    }

    static let treeScript = """
        #!/bin/bash
        # Builds a process tree for the stop benchmark; every leaf sleeps.
        case "$1" in
        single) exec sleep 100000 ;;
        daemons) for i in $(seq "$2"); do setsid sh -c 'sleep 100000 & exit 0' </dev/null >/dev/null 2>&1 & done ;;
        procs) for i in $(seq "$2"); do sleep 100000 & done ;;
        forkbomb) bomb() { bomb | bomb & }; bomb 2>/dev/null ;;
        esac
        exec sleep 100000
        """

    public let wardenExecutable: String
    public let repetitions: Int
    let directory: String
    let registry: RunRegistry
    let layout: CgroupLayout

    /// Prepares a scratch directory (workspace and state) for the benchmark's runs.
    public init(wardenExecutable: String, repetitions: Int, cgroupRoot: String?) throws {
        self.wardenExecutable = wardenExecutable
        self.repetitions = repetitions
        directory = "/var/tmp/warden-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory + "/workspace", withIntermediateDirectories: true)
        try Self.treeScript.write(toFile: directory + "/workspace/tree.sh", atomically: true, encoding: .utf8)
        chmod(directory + "/workspace/tree.sh", 0o755)
        registry = RunRegistry(
            stateDirectory: directory + "/state", events: AuditEventSinks(stateDirectory: directory + "/state"))
        layout = try CgroupLayout.current(rootOverride: cgroupRoot)
        // Orphans of the baseline trees are reparented here and reaped, instead of piling up as zombies
        // under a host init that may never reap them (they would count against pids.max).
        _ = warden_set_child_subreaper()
    }

    /// Removes the scratch directory.
    public func cleanUp() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Measures one scenario with every method; `progress` is told after each repetition.
    public func measure(_ scenario: Scenario, progress: (String) -> Void) -> [Row] {
        Method.allCases.map { method in
            var latencies: [Double] = []
            var leftAlive = 0
            var failures = 0
            for repetition in 1...repetitions {
                progress("\(scenario.name): \(method.rawValue) \(repetition)/\(repetitions)")
                do {
                    let (latency, alive) = try measureOnce(scenario, method: method)
                    latencies.append(latency)
                    leftAlive = max(leftAlive, alive)
                } catch {
                    failures += 1
                    progress("\(scenario.name): \(method.rawValue): \(error)")
                }
            }
            return Row(
                scenario: scenario.name, method: method, repetitions: latencies.count,
                medianMilliseconds: Self.percentile(latencies, 0.5), p99Milliseconds: Self.percentile(latencies, 0.99),
                maxLeftAlive: leftAlive, failures: failures)
        }
    }

    func measureOnce(_ scenario: Scenario, method: Method) throws -> (Double, Int) {
        switch method {
        case .warden: return try measureWarden(scenario)
        case .processGroup, .namespaceInit: return try measureBaseline(scenario, method: method)
        }
    }

    /// Starts the tree as a real detached run, waits for it, then times the stop protocol with no grace.
    func measureWarden(_ scenario: Scenario) throws -> (Double, Int) {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        let argv =
            [
                wardenExecutable, "run", "--detach", "--state-dir", registry.stateDirectory, "--pids-max",
                String(scenario.pidsMax), "--workspace", directory + "/workspace", "--", "/bin/bash", "tree.sh",
            ] + scenario.tree
        let spawned = WardenProcess.spawn(argv: argv, keepFDs: [], stdio: (null, null, null))
        guard spawned.pid > 0 else { throw FileIO.systemError("spawn warden run", errno: spawned.err) }
        var status: Int32 = 0
        waitpid(spawned.pid, &status, 0)
        close(spawned.pidfd)
        guard let record = registry.list().first(where: { $0.state == .running }), let cgroup = record.cgroup else {
            throw WardenError(code: .systemCall, message: "the benchmark run did not start")
        }
        try waitForTree(cgroup, count: scenario.readyAt + 2)
        let outcome = try StopProtocol(ledger: try registry.ledger(for: record.id), actor: .operator).run(
            grace: .zero, reason: "bench")
        _ = waitForExit(record)
        return (outcome.latencyMilliseconds, outcome.remainingProcesses)
    }

    private func waitForExit(_ record: RunRecord) -> Bool {
        for _ in 0..<200 {
            if let current = try? registry.load(record.id), !current.state.isActive { return true }
            usleep(10_000)
        }
        return false
    }

    /// Builds the tree outside any sandbox (so the baselines face what they would in practice), in a
    /// cgroup used only to count survivors and to clean up.
    func measureBaseline(_ scenario: Scenario, method: Method) throws -> (Double, Int) {
        let id = RunID.random()
        let (cgroup, _) = try RunCgroup.create(
            id: id, layout: layout, limits: .init(pidsMax: scenario.pidsMax, memoryMax: nil, cpuMax: nil))
        defer {
            try? cgroup.kill()
            _ = cgroup.waitUntilEmpty(timeout: .seconds(10))
            // The killed processes were reparented to us (subreaper); reap them so the cgroup can go.
            Self.reapChildren()
            cgroup.remove()
        }
        let procs = try cgroup.procsFiles.map { path -> Int32 in
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileIO.systemError("open \(path)") }
            return fd
        }
        defer { for fd in procs { close(fd) } }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        let script = directory + "/workspace/tree.sh"
        let argv: [String] =
            method == .namespaceInit
            ? ["/usr/bin/unshare", "--pid", "--fork", "--kill-child", "/bin/bash", script] + scenario.tree
            : ["/bin/bash", script] + scenario.tree
        let spawned = WardenProcess.spawn(
            argv: argv, cgroupFDs: procs, keepFDs: [], stdio: (null, null, null), newProcessGroup: true)
        guard spawned.pid > 0 else { throw FileIO.systemError("spawn tree", errno: spawned.err) }
        defer {
            close(spawned.pidfd)
            var status: Int32 = 0
            waitpid(spawned.pid, &status, 0)
        }
        try waitForTree(cgroup, count: scenario.readyAt + (method == .namespaceInit ? 1 : 0))
        let start = monotonicNanoseconds()
        switch method {
        case .processGroup:
            kill(-spawned.pid, SIGKILL)
            // Done when no live process of the group is left (zombies excluded: they only await a
            // parent's wait); what lives on outside the group is what this method missed.
            while monotonicNanoseconds() - start < 5_000_000_000 {
                let members = cgroup.processIDs().filter { Self.processGroup(of: $0) == spawned.pid }
                if members.isEmpty { break }
                usleep(100)
            }
        case .namespaceInit:
            guard let text = try? FileIO.readString("/proc/\(spawned.pid)/task/\(spawned.pid)/children"),
                let initPID = text.split(separator: " ").first.flatMap({ Int32($0) })
            else { throw WardenError(code: .systemCall, message: "no namespace init found") }
            kill(initPID, SIGKILL)
            _ = cgroup.waitUntilEmpty(timeout: .seconds(5))
        case .warden:
            break
        }
        let latency = Double(monotonicNanoseconds() - start) / 1e6
        usleep(50_000)
        let alive = cgroup.processIDs().filter { ProcessIdentity.startTime(of: $0) != nil }.count
        return (latency, alive)
    }

    static func reapChildren() {
        var status: Int32 = 0
        while waitpid(-1, &status, WNOHANG) > 0 {}
    }

    private func waitForTree(_ cgroup: RunCgroup, count: Int) throws {
        let deadline = monotonicNanoseconds() + 60_000_000_000
        // A fork bomb is "ready" once it has run into pids.max: from then on it only churns.
        while cgroup.processIDs().count < count && cgroup.limitEvents()["pids_max_hits"] == nil {
            guard monotonicNanoseconds() < deadline else {
                throw WardenError(code: .systemCall, message: "the tree never reached \(count) processes")
            }
            usleep(5_000)
        }
        usleep(20_000)
    }

    /// `warden run -- true` against bare `true`, interleaved so both see the same machine state; also
    /// with `--pids-max max`, which needs no v1 cgroup (on hybrid hosts the v1 migration costs an RCU
    /// grace period that fully unified v2 hosts, where clone3 places the process, do not pay).
    public func measureStartup(progress: (String) -> Void) throws -> [Startup] {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        func time(_ argv: [String]) throws -> Double {
            let start = monotonicNanoseconds()
            let spawned = WardenProcess.spawn(argv: argv, keepFDs: [], stdio: (null, null, null))
            guard spawned.pid > 0 else { throw FileIO.systemError("spawn \(argv[0])", errno: spawned.err) }
            var status: Int32 = 0
            waitpid(spawned.pid, &status, 0)
            close(spawned.pidfd)
            guard status == 0 else {
                throw WardenError(code: .systemCall, message: "\(argv.joined(separator: " ")) failed")
            }
            return Double(monotonicNanoseconds() - start) / 1e6
        }
        let truePath = findExecutable("true", path: nil) ?? "/bin/true"
        let warden = [
            wardenExecutable, "run", "--state-dir", registry.stateDirectory, "--workspace", directory + "/workspace",
        ]
        let commands: [(String, [String])] = [
            ("true", [truePath]),
            ("warden run -- true", warden + ["--", truePath]),
            ("warden run --pids-max max -- true", warden + ["--pids-max", "max", "--", truePath]),
            // The agent's identity (user namespace, idmapped workspace, accounts) and the minimal view,
            // each switched off alone: their cost is the difference to the default row.
            ("warden run --allow-degraded root -- true", warden + ["--allow-degraded", "root", "--", truePath]),
            ("warden run --view host -- true", warden + ["--view", "host", "--", truePath]),
            // A fixed identity: no per-run claim (its lock, the scan of live claims, the claim file).
            ("warden run --user 2000065535 -- true", warden + ["--user", "2000065535", "--", truePath]),
        ]
        var samples = [[Double]](repeating: [], count: commands.count)
        for repetition in 1...repetitions {
            progress("startup \(repetition)/\(repetitions)")
            for (index, command) in commands.enumerated() { samples[index].append(try time(command.1)) }
        }
        return commands.enumerated().map { index, command in
            Startup(
                command: command.0, repetitions: repetitions, medianMilliseconds: Self.percentile(samples[index], 0.5),
                p99Milliseconds: Self.percentile(samples[index], 0.99))
        }
    }

    /// The process group of a live process (field 5 of `/proc/PID/stat`), nil when gone or a zombie.
    static func processGroup(of pid: Int32) -> Int32? {
        guard let stat = try? FileIO.readString("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, fields[0] != "Z" else { return nil }
        return Int32(fields[2])
    }

    /// Nearest-rank percentile.
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
