import Foundation
import Testing
import WardenCore
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// A layer that cannot be applied refuses the run, names the layer and the fix, and starts nothing.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct FailClosedTests {
    /// Asserts a refusal: exit 125, one line naming `layer`, and no process or active run left.
    func expectRefusal(
        _ harness: WardenHarness, _ result: CommandResult, layer: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(result.status == 125, "\(result.standardError)", sourceLocation: sourceLocation)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "one line: \(result.standardError)", sourceLocation: sourceLocation)
        #expect(
            result.standardError.hasPrefix("warden: \(layer):"), "\(result.standardError)",
            sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: harness.workspace + "/started"), sourceLocation: sourceLocation)
        let active = try harness.run(["ps", "--json"]).standardOutput
        #expect(
            active.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || active.contains("[]")
                || !active.contains("\"running\""), sourceLocation: sourceLocation)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/unified/warden")) ?? []
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: harness.stateDirectory + "/runs")) ?? []
        for run in runs {
            #expect(!leftovers.contains(run), "cgroup of \(run) left behind", sourceLocation: sourceLocation)
        }
    }

    @Test func missingBubblewrapRefusesToStart() throws {
        let harness = try WardenHarness()
        let result = try harness.run(
            ["run", "--workspace", harness.workspace, "--", "/bin/touch", "started"],
            environment: ["WARDEN_BWRAP": "/nonexistent/bwrap"])
        try expectRefusal(harness, result, layer: "bubblewrap")
        #expect(result.standardError.contains("apt-get install bubblewrap"))
    }

    @Test func unusableCgroupRootRefusesToStart() throws {
        let harness = try WardenHarness()
        // A directory that is not a cgroup2 filesystem: nothing can be written there as a cgroup.
        let result = try harness.run(
            ["run", "--workspace", harness.workspace, "--", "/bin/touch", "started"],
            environment: ["WARDEN_CGROUP_ROOT": harness.outside])
        try expectRefusal(harness, result, layer: "cgroup")
    }

    @Test func readOnlyCgroupRootRefusesToStart() throws {
        let harness = try WardenHarness()
        let mountPoint = harness.root + "/ro-cgroup"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "cgroup2", "-o", "ro", "none", mountPoint]
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            try Test.cancel("cannot mount a read-only cgroup2 here; this machine lacks the mechanism for this test")
        }
        defer { umount(mountPoint) }
        let result = try harness.run(
            ["run", "--workspace", harness.workspace, "--", "/bin/touch", "started"],
            environment: ["WARDEN_CGROUP_ROOT": mountPoint])
        try expectRefusal(harness, result, layer: "cgroup")
    }

    @Test func detachedRefusalIsReportedToo() throws {
        let harness = try WardenHarness()
        let result = try harness.run(
            ["run", "--detach", "--workspace", harness.workspace, "--", "/bin/touch", "started"],
            environment: ["WARDEN_BWRAP": "/nonexistent/bwrap"])
        try expectRefusal(harness, result, layer: "bubblewrap")
    }

    @Test func degradedLayerIsRecorded() throws {
        let harness = try WardenHarness()
        let result = try harness.run([
            "run", "--allow-degraded", "landlock", "--workspace", harness.workspace, "--", "/bin/true",
        ])
        #expect(result.status == 0)
        // Landlock is available here, so nothing is degraded; the flag only permits it.
        let runs =
            try JSONSerialization.jsonObject(
                with: Data(try harness.run(["ps", "--all", "--json"]).standardOutput.utf8)) as? [[String: Any]]
        let layers = runs?.first?["layers"] as? [[String: Any]] ?? []
        #expect(layers.first { $0["layer"] as? String == "landlock" }?["status"] as? String == "applied")
    }

    @Test func theOffSwitchCannotBeDegraded() throws {
        let harness = try WardenHarness()
        for layer in ["cgroup", "bubblewrap"] {
            let result = try harness.run([
                "run", "--allow-degraded", layer, "--workspace", harness.workspace, "--", "/bin/true",
            ])
            #expect(result.status == 2)
            #expect(result.standardError.contains("cannot be degraded"))
        }
    }
}
