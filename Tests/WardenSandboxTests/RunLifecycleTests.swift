import Foundation
import Testing
import WardenCore
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The supervisor's promises beyond a plain stop: its death ends the run, a hung supervisor does not
/// block `warden stop`, leases, exit codes, Ctrl-C, and what the agent's world looks like.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct RunLifecycleTests {
    func startSleeper(_ harness: WardenHarness, flags: [String] = []) throws -> (id: String, record: [String: Any]) {
        let argv = try harness.adversary("05-ignore-term.sh")
        let id = try harness.start(flags, command: argv)
        #expect(harness.waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: harness.workspace + "/ready") })
        return (id, try harness.inspect(id))
    }

    @Test func killingTheSupervisorEndsTheRunWithinOneSecond() throws {
        let harness = try WardenHarness()
        let (id, record) = try startSleeper(harness)
        let supervisor = Int32(record["supervisorPID"] as? Int ?? 0)
        let namespace = (record["agentPID"] as? Int).flatMap { KernelProbe.pidNamespace(of: Int32($0)) }
        #expect(supervisor > 0 && namespace != nil)
        let killedAt = Date()
        kill(supervisor, SIGKILL)
        let gone = harness.waitUntil(timeout: 1.0) {
            KernelProbe.processes(inRun: id).isEmpty && KernelProbe.processes(inNamespace: namespace ?? "").isEmpty
        }
        #expect(gone, "processes left \(Date().timeIntervalSince(killedAt))s after the supervisor died")
        let (clean, why) = KernelProbe.nothingRemains(runID: id, namespace: namespace, workspace: harness.workspace)
        #expect(clean, "\(why)")
        // The registry notices the dead supervisor and records how the run ended.
        let ended = try harness.inspect(id)
        #expect(ended["state"] as? String == "exited")
        #expect(
            (ended["warnings"] as? [String])?.contains { $0.contains("supervisor") && $0.contains("died") } == true)
        #expect(try harness.events(id, kind: "exited").first?["supervisor_died"] == "true")
        // What the host might run from the workspace is reviewed even though the supervisor could not.
        #expect(try harness.events(id, kind: "workspace.review").count == 1)
        // A later stop finds nothing and says so.
        let stop = try harness.run(["stop", id, "--json"])
        #expect(stop.status == 0)
        #expect(stop.json["stopped"] as? Bool == true)
    }

    @Test func stopWorksWhileTheSupervisorIsFrozen() throws {
        let harness = try WardenHarness()
        let (id, record) = try startSleeper(harness)
        let supervisor = Int32(record["supervisorPID"] as? Int ?? 0)
        let namespace = (record["agentPID"] as? Int).flatMap { KernelProbe.pidNamespace(of: Int32($0)) }
        kill(supervisor, SIGSTOP)
        let stop = try harness.run(["stop", id, "--grace", "200ms", "--json"])
        #expect(stop.status == 0, "\(stop.standardError)")
        #expect(stop.json["stopped"] as? Bool == true)
        #expect(stop.json["remaining_processes"] as? Int == 0)
        let (clean, why) = KernelProbe.nothingRemains(runID: id, namespace: namespace, workspace: harness.workspace)
        #expect(clean, "\(why)")
        kill(supervisor, SIGCONT)
        #expect(
            harness.waitUntil(timeout: 5) { kill(supervisor, 0) != 0 || KernelProbe.isZombie(supervisor) },
            "the supervisor exits once resumed")
        let final = try harness.inspect(id)
        #expect(final["state"] as? String == "stopped")
        #expect(try harness.events(id, kind: "exited").count == 1)
    }

    @Test func unrenewedLeaseStopsTheRun() throws {
        let harness = try WardenHarness()
        let (id, _) = try startSleeper(harness, flags: ["--lease", "1s", "--grace", "100ms"])
        let stopped = harness.waitUntil(timeout: 10) { (try? harness.inspect(id)["state"] as? String) == "stopped" }
        #expect(stopped)
        let stop = try harness.inspect(id)["stop"] as? [String: Any]
        #expect(stop?["reason"] as? String == "lease-expired")
        #expect(try harness.events(id, kind: "lease.expired").count == 1)
    }

    /// A stop the supervisor starts itself (here: the lease) keeps reading tripwires during the grace
    /// period. The agent ignores SIGTERM and, on the notice, rewrites the tripwire; the change is recorded
    /// while the grace period runs, before the kill, not only in the check after it.
    @Test func aTripwireChangedDuringTheGracePeriodIsRecordedBeforeTheKill() throws {
        let harness = try WardenHarness()
        try harness.write("#!/bin/bash\nkill -s TERM 1\n", to: harness.workspace + "/shutdown.sh")
        let script = """
            trap 'echo "echo skipped" > shutdown.sh' TERM
            touch ready
            while true; do sleep 0.05; done
            """
        let id = try harness.start(
            ["--lease", "1s", "--grace", "3s", "--tripwire", "shutdown.sh"], command: ["/bin/bash", "-c", script])
        #expect(harness.waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: harness.workspace + "/ready") })
        #expect(harness.waitUntil(timeout: 15) { (try? harness.inspect(id)["state"] as? String) == "stopped" })
        let kinds = try harness.events(id).compactMap { $0["kind"] as? String }
        let tripwire = kinds.firstIndex(of: "tripwire")
        let ignored = kinds.firstIndex(of: "notice.ignored")
        #expect(tripwire != nil && ignored != nil, "\(kinds)")
        if let tripwire, let ignored { #expect(tripwire < ignored, "recorded during the grace period: \(kinds)") }
    }

    /// A detached run's output goes to the state directory, beside the audit log: an agent that prints
    /// without end must not fill it. The log keeps the latest --output-max bytes and says so.
    @Test func aDetachedRunsOutputIsBoundedAndKeepsItsTail() throws {
        let harness = try WardenHarness()
        // 40 MiB of output, then a last line.
        let script = "head -c 41943040 /dev/zero | tr '\\0' 'x'; echo; echo the-last-line"
        let id = try harness.start(["--output-max", "1M"], command: ["/bin/bash", "-c", script])
        #expect(harness.waitUntil(timeout: 60) { (try? harness.inspect(id)["state"] as? String) == "exited" })
        let directory = harness.stateDirectory + "/runs/" + id
        let sizes = ["output.log", "output.log.1"].map {
            ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + $0))?[.size] as? Int) ?? 0
        }
        #expect(sizes.reduce(0, +) <= 1 << 20, "kept \(sizes) bytes for a 1 MiB cap")
        let tail = String(decoding: harness.contents(directory + "/output.log") ?? Data(), as: UTF8.self)
        #expect(tail.hasSuffix("the-last-line\n"), "the latest output is kept")
        let hits = try harness.events(id, kind: "limit.hit").filter { $0["limit"] == "output_max" }
        #expect(hits.count == 1, "reaching the cap is recorded once: \(hits)")
    }

    @Test func renewedLeaseKeepsTheRunAlive() throws {
        let harness = try WardenHarness()
        let (id, _) = try startSleeper(harness, flags: ["--lease", "1500ms"])
        for _ in 0..<4 {
            usleep(700_000)
            let renew = try harness.run(["renew", id, "--json"])
            #expect(renew.status == 0, "\(renew.standardError)")
        }
        // 2.8 s in, past the original lease: still running.
        #expect(try harness.inspect(id)["state"] as? String == "running")
        #expect(try harness.events(id, kind: "lease.renewed").count == 4)
        try harness.run(["kill", id])
    }

    @Test func renewingARunWithoutLeaseIsAClearError() throws {
        let harness = try WardenHarness()
        let (id, _) = try startSleeper(harness)
        let renew = try harness.run(["renew", id])
        #expect(renew.status != 0)
        #expect(renew.standardError.contains("has no lease"))
        try harness.run(["kill", id])
    }

    @Test(arguments: [0, 3, 42])
    func foregroundExitCodeIsTheAgents(code: Int) throws {
        let harness = try WardenHarness()
        let result = try harness.run(["run", "--workspace", harness.workspace, "--", "/bin/sh", "-c", "exit \(code)"])
        #expect(result.status == Int32(code))
    }

    @Test func interruptRunsTheStopProtocol() throws {
        let harness = try WardenHarness()
        _ = try harness.adversary("05-ignore-term.sh")
        let process = harness.process(
            WardenHarness.binary,
            arguments: [
                "run", "--json", "--grace", "300ms", "--workspace", harness.workspace, "--", "/bin/bash",
                "05-ignore-term.sh",
            ])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        #expect(harness.waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: harness.workspace + "/ready") })
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let summary =
            try JSONSerialization.jsonObject(with: output.fileHandleForReading.readDataToEndOfFile()) as? [String: Any]
        #expect(summary?["state"] as? String == "stopped")
        #expect((summary?["stop_reason"] as? String)?.contains("SIGINT") == true)
        #expect(process.terminationStatus == 137, "the agent ignored SIGTERM and was killed")
        let id = try #require(summary?["id"] as? String)
        #expect(try harness.events(id, kind: "notice.ignored").count == 1)
        #expect(KernelProbe.processes(inRun: id).isEmpty)
    }

    @Test func secondInterruptCutsTheGraceShort() throws {
        let harness = try WardenHarness()
        _ = try harness.adversary("05-ignore-term.sh")
        let process = harness.process(
            WardenHarness.binary,
            arguments: [
                "run", "--grace", "30s", "--workspace", harness.workspace, "--", "/bin/bash", "05-ignore-term.sh",
            ])
        try process.run()
        #expect(harness.waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: harness.workspace + "/ready") })
        let start = Date()
        kill(process.processIdentifier, SIGINT)
        usleep(300_000)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(start) < 10, "the 30 s grace was cut short by the second Ctrl-C")
        #expect(process.terminationStatus == 137)
    }

    @Test func inheritedDescriptorsDoNotReachTheAgent() throws {
        let harness = try WardenHarness()
        try harness.write("secret\n", to: harness.outside + "/secret.txt")
        // The operator's shell has descriptor 7 open on a secret file, inheritable, when it starts warden.
        let script = """
            exec 7<"\(harness.outside)/secret.txt"
            exec "\(WardenHarness.binary)" run --workspace "\(harness.workspace)" -- /bin/sh -c \
              'ls /proc/self/fd | tr "\n" " "; cat <&7 && echo LEAKED'
            """
        let process = harness.process("/bin/bash", arguments: ["-c", script])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!text.contains("LEAKED"), "\(text)")
        #expect(!text.split(separator: " ").contains("7"), "fd 7 is closed inside: \(text)")
    }

    @Test func theAgentsWorldIsConfined() throws {
        let harness = try WardenHarness()
        try harness.write("secret\n", to: harness.outside + "/outside.txt")
        let script = """
            echo "pid=$$"
            ls /proc | grep -cE '^[0-9]+$' | sed 's/^/procs=/'
            ls -A /sys/fs/cgroup | wc -l | sed 's/^/cgroupfs=/'
            echo "secret_env=${WARDEN_TEST_SECRET:-unset}"
            echo x > "\(harness.outside)/outside.txt" 2>/dev/null && echo outside=written || echo outside=denied
            echo x > /etc/warden-test 2>/dev/null && echo etc=written || echo etc=denied
            echo x > workspace-file && echo workspace=written || echo workspace=denied
            ls /proc/self/fd | wc -l | sed 's/^/fds=/'
            grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
            hostname | sed 's/^/hostname=/'
            """
        let result = try harness.run(
            ["run", "--workspace", harness.workspace, "--", "/bin/bash", "-c", script],
            environment: ["WARDEN_TEST_SECRET": "leaked"])
        let output = result.standardOutput
        #expect(result.status == 0, "\(result.standardError)")
        #expect(output.contains("pid=2\n"), "the agent is pid 2 under the namespace's init: \(output)")
        #expect(output.contains("cgroupfs=0"))
        #expect(output.contains("secret_env=unset"), "the environment is reduced to the allowlist")
        #expect(output.contains("outside=denied"))
        #expect(output.contains("etc=denied"))
        #expect(output.contains("workspace=written"))
        #expect(output.contains("fds=4"), "only stdio (and ls's own directory fd) are open: \(output)")
        #expect(output.contains("CapEff:\t0000000000000000"))
        #expect(output.contains("NoNewPrivs:\t1"))
        #expect(output.contains("Seccomp:\t2"))
        #expect(output.contains("hostname=warden"))
        let procs =
            output.split(separator: "\n").first { $0.hasPrefix("procs=") }.flatMap { Int($0.dropFirst(6)) } ?? 99
        #expect(procs <= 6, "only the sandbox's own processes are visible: \(procs)")
        #expect(try String(contentsOfFile: harness.outside + "/outside.txt", encoding: .utf8) == "secret\n")
    }

    @Test func runsWhenWardenItselfLivesUnderTmp() throws {
        // A checkout (or CI clone) under /tmp: the shim binary must still be reachable inside.
        let harness = try WardenHarness()
        let copy = "/tmp/warden-copy-\(getpid())/warden"
        try FileManager.default.createDirectory(
            atPath: "/tmp/warden-copy-\(getpid())", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: "/tmp/warden-copy-\(getpid())") }
        try FileManager.default.copyItem(atPath: WardenHarness.binary, toPath: copy)
        let process = harness.process(
            copy, arguments: ["run", "--workspace", harness.workspace, "--", "/bin/sh", "-c", "exit 5"])
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 5)
        // Warden's own binary is bound inside, so it may be the agent (the red team's environment is);
        // any other program under /tmp is still refused.
        let itself = harness.process(copy, arguments: ["run", "--workspace", harness.workspace, "--", copy, "--help"])
        try itself.run()
        itself.waitUntilExit()
        #expect(itself.terminationStatus == 0)
        let other = "/tmp/warden-copy-\(getpid())/other"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: other)
        let refused = harness.process(copy, arguments: ["run", "--workspace", harness.workspace, "--", other])
        try refused.run()
        refused.waitUntilExit()
        #expect(refused.terminationStatus == 2)
    }

    @Test func networkHostIsWarnedAndRecorded() throws {
        let harness = try WardenHarness()
        let result = try harness.run(["run", "--network", "host", "--workspace", harness.workspace, "--", "/bin/true"])
        #expect(result.status == 0)
        #expect(result.standardError.contains("--network host"))
        let runs =
            try JSONSerialization.jsonObject(
                with: Data(try harness.run(["ps", "--all", "--json"]).standardOutput.utf8)) as? [[String: Any]]
        let id = try #require(runs?.first?["id"] as? String)
        #expect(try harness.events(id, kind: "warning").first?["network"] == "host")
    }

    @Test func detachedOutputGoesToTheRunLog() throws {
        let harness = try WardenHarness()
        let id = try harness.start([], command: ["/bin/sh", "-c", "echo hello-from-agent"])
        #expect(harness.waitUntil(timeout: 5) { (try? harness.inspect(id)["state"] as? String) == "exited" })
        let log = try String(contentsOfFile: harness.stateDirectory + "/runs/\(id)/output.log", encoding: .utf8)
        #expect(log == "hello-from-agent\n")
    }

    @Test func listingsAndInspectSpeakJSON() throws {
        let harness = try WardenHarness()
        let (id, record) = try startSleeper(harness, flags: ["--lease", "1m", "--name", "sleeper"])
        #expect(record["state"] as? String == "running")
        #expect(record["supervisorPID"] is Int)
        #expect(record["agentPID"] is Int)
        let cgroup = record["cgroup"] as? [String: Any]
        #expect((cgroup?["unified"] as? String)?.hasSuffix("/warden/\(id)") == true)
        let layers = (record["layers"] as? [[String: Any]])?.compactMap { $0["layer"] as? String } ?? []
        #expect(Set(layers) == ["cgroup", "limits", "bubblewrap", "identity", "view", "seccomp", "landlock"])
        #expect(record["lease"] != nil)
        let ps =
            try JSONSerialization.jsonObject(with: Data(try harness.run(["ps", "--json"]).standardOutput.utf8))
            as? [[String: Any]]
        #expect(ps?.first?["name"] as? String == "sleeper")
        #expect(try harness.run(["inspect", "sleeper"]).standardOutput.contains("state:       running"))
        try harness.run(["kill", "sleeper"])
        #expect(try harness.run(["ps"]).standardOutput.contains("no active runs"))
    }

    @Test func stopAllStopsEveryActiveRun() throws {
        let harness = try WardenHarness()
        let argv = try harness.adversary("05-ignore-term.sh")
        let ids = try (0..<2).map { _ in try harness.start([], command: argv) }
        let result = try harness.run(["stop", "--all", "--grace", "0", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let outcomes = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [[String: Any]]
        #expect(Set(outcomes?.compactMap { $0["id"] as? String } ?? []) == Set(ids))
        #expect(
            outcomes?.allSatisfy { $0["stopped"] as? Bool == true && $0["remaining_processes"] as? Int == 0 } == true)
        for id in ids { #expect(KernelProbe.processes(inRun: id).isEmpty) }
        #expect(try harness.run(["stop", "--all"]).standardOutput.contains("no active runs"))
    }

    @Test func eventsFollowEndsWithTheRun() throws {
        let harness = try WardenHarness()
        let id = try harness.start([], command: ["/bin/sh", "-c", "sleep 0.5"])
        let follow = try harness.run(["events", id, "--follow"])
        #expect(follow.status == 0)
        #expect(follow.standardOutput.contains("exited"))
        #expect(follow.standardOutput.contains("started"))
    }
}
