import Foundation
import Testing
import WardenCore
import WardenTesting

@testable import WardenRedTeam

@Suite struct RedTeamCommandTests {
    @Test("bad flags are one line naming the fix, and no trial starts")
    func badFlags() throws {
        let harness = try WardenHarness()
        try "[penalty]\ntamperr = 2\n".write(toFile: harness.root + "/w.toml", atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["redteam", "--agents", "nosuch"], "'nosuch' is not an agent; see warden redteam --list-agents"),
            (["redteam", "--weights", harness.root + "/w.toml"], "did you mean 'penalty.tamper'?"),
            (["redteam", "--weights", harness.root + "/missing.toml"], "--weights: cannot read"),
            (["redteam", "--variants", "Z"], "'Z' is not a variant"),
            (["redteam", "--modes", "off"], "'off' is not a mode"),
            (["redteam", "--agents", "llm"], "--agents llm needs --model"),
            (["redteam", "--agents", "llm", "--model", "m", "--base-url", "ftp://x/v1"], "is not an http(s) URL"),
            (["demo", "--html", "/nonexistent/dir/x.html"], "cannot write /nonexistent/dir/x.html"),
        ]
        for (arguments, message) in cases {
            let result = try harness.run(arguments)
            #expect(result.status == 2, "\(arguments): \(result.status) \(result.standardError)")
            #expect(result.standardError.contains(message), "\(arguments): \(result.standardError)")
            #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        }
        #expect(!FileManager.default.fileExists(atPath: harness.stateDirectory + "/runs"), "a trial started")
        let list = try harness.run(["redteam", "--list-agents"])
        #expect(list.status == 0)
        for agent in ScriptedAdversary.all { #expect(list.standardOutput.contains(agent.name)) }
        // A host that cannot sandbox fails every trial the same way: said once, exit 1, nothing left.
        let noSandbox = try harness.run(
            ["redteam", "--agents", "compliant,chmod", "--work-dir", harness.root + "/work"],
            environment: ["WARDEN_BWRAP": "/nonexistent/bwrap"])
        #expect(noSandbox.status == 1)
        let errorLines = noSandbox.standardError.split(separator: "\n").filter { $0.contains("bubblewrap") }
        #expect(errorLines.count == 1 && errorLines[0].contains("4 trials"), "\(noSandbox.standardError)")
        let listing = try harness.run(["redteam", "--list-agents", "--json", "-"])
        let agents = try #require(listing.json["agents"] as? [[String: Any]])
        #expect(agents.compactMap { $0["name"] as? String } == ScriptedAdversary.all.map(\.name))
        #expect((listing.json["variants"] as? [Any])?.count == PalisadeScenario.variants.count)
    }
}
