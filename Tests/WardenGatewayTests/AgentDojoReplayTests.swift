import Foundation
import Testing
import WardenTesting

/// AgentDojo v1.2.2 replayed through the tools door under the shipped default policy pack (no model:
/// each task's ground-truth calls; scripts/agentdojo). The README's figures must hold: every user task
/// kept, at least 39 of 97 quiet, and every injection task with ground-truth calls stopped (asked or
/// denied). Checked to fail with a permit-everything policy (no injection task stopped).
@Suite(
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/var/cache/warden-peers/agentdojo-0.1.35/bin/python")
            && FileManager.default.isExecutableFile(atPath: MCPPeers.python2),
        "needs the agentdojo and mcp 2.x venvs: scripts/setup.sh installs them"))
struct AgentDojoReplayTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func theDefaultPackKeepsEveryUserTaskAndStopsEveryInjectionTaskWithCalls() throws {
        let harness = try WardenHarness()
        let result = try harness.runProgram(
            MCPPeers.python2,
            [
                Self.repository + "/scripts/agentdojo/replay.py", "--warden", WardenHarness.binary, "--policy",
                Self.repository + "/examples/policies/default/tools.cedar",
            ])
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any],
            "\(result.standardError.suffix(2000))")
        var users = 0
        var kept = 0
        var quiet = 0
        var injections = 0
        var withCalls = 0
        var stopped = 0
        for suite in ["banking", "slack", "travel", "workspace"] {
            let row = try #require(report[suite] as? [String: Any], "\(suite) missing: \(result.standardError)")
            users += row["user_tasks"] as? Int ?? 0
            kept += row["kept"] as? Int ?? 0
            quiet += row["quiet"] as? Int ?? 0
            injections += row["injection_tasks"] as? Int ?? 0
            withCalls += (row["injection_tasks"] as? Int ?? 0) - (row["without_calls"] as? Int ?? 0)
            stopped += row["stopped"] as? Int ?? 0
        }
        #expect(users == 97 && injections == 35, "AgentDojo v1.2.2: 97 user tasks, 35 injection tasks")
        #expect(kept == users, "every user task kept: \(kept)/\(users)")
        #expect(quiet >= 39, "quiet: \(quiet)/\(users)")
        #expect(withCalls == 26 && stopped == withCalls, "stopped: \(stopped)/\(withCalls) with ground-truth calls")
    }
}
