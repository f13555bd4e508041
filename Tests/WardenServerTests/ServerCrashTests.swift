import Foundation
import Testing
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon is a second way in, never the off-switch's only path: killed with SIGKILL under live runs,
/// the runs stay confined, the CLI still stops them and answers their approvals, and a new daemon picks up
/// everything from the state directory.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct ServerCrashTests {
    @Test func killingTheDaemonLeavesRunsConfinedAndTheCLIInCharge() async throws {
        let harness = try WardenHarness()
        let mirror = try Mirror(harness)
        var daemon = try Daemon(harness)
        let held = try mirror.startAskingRun(harness, name: "held")
        let other = try harness.start(["--name", "other"], command: ["/bin/sleep", "300"])
        let approvalID = try #require(harness.pendingApproval(excluding: [])?["id"] as? String)
        #expect(!KernelProbe.processes(inRun: held).isEmpty)

        daemon.crash()
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(daemon.process.processIdentifier)/status"))
        // The runs go on, confined: same processes, same state, the held request still held.
        try await Task.sleep(for: .milliseconds(300))
        #expect(!KernelProbe.processes(inRun: held).isEmpty, "the run was not taken down")
        #expect(try harness.inspect(held)["state"] as? String == "running")
        #expect(try harness.inspect(other)["state"] as? String == "running")
        #expect(Mirror.codes(harness, "held").isEmpty, "nothing went out while nobody could answer")

        // The CLI answers the approval and the held connection proceeds; the CLI stops a run.
        let approved = try harness.run(["approve", approvalID, "--as", "cli"])
        #expect(approved.status == 0, "\(approved.standardError)")
        #expect(harness.waitUntil(timeout: 20) { Mirror.codes(harness, "held") == ["200"] })
        let stopped = try harness.run(["stop", "--grace", "0", other])
        #expect(stopped.status == 0 && KernelProbe.processes(inRun: other).isEmpty, "\(stopped.standardError)")

        // A new daemon (the stale socket replaced) sees what happened meanwhile.
        daemon = try Daemon(harness)
        let api = APIClient(daemon, .unix)
        defer { Task { await api.shutdown() } }
        let runs = try await api.get("/v1/runs?all=true").array
        #expect(runs.first { $0["id"] as? String == other }?["state"] as? String == "stopped", "\(runs)")
        #expect(runs.first { $0["id"] as? String == held }?["state"] as? String == "running")
        let approvals = try await api.get("/v1/approvals?all=true").array
        #expect(approvals.first { $0["id"] as? String == approvalID }?["state"] as? String == "used", "\(approvals)")
        let stop = try await api.post("/v1/stop-all", body: #"{"grace": "0s"}"#)
        #expect(stop.status == 200 && (stop.object["remaining_processes"] as? NSNumber)?.intValue == 0, "\(stop.body)")
        #expect(KernelProbe.processes(inRun: held).isEmpty)
        #expect(try harness.run(["audit", "verify"]).status == 0, "the log verifies across the crash")
    }
}
