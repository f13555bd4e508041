import Foundation
import Testing
import WardenTesting

/// `warden policy …` driven through the real binary.
struct PolicyCommandTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/policies").path

    @Test func checkReportsFileLineAndColumn() throws {
        let harness = try WardenHarness()
        let bad = harness.root + "/bad.cedar"
        try harness.write(
            "permit(principal, action, resource);\n\nforbid(principal, action == Photo::\"x\", resource);\n", to: bad)
        let result = try harness.run(["policy", "check", Self.examples + "/agent.cedar", bad])
        #expect(result.status == 1)
        #expect(result.standardOutput.contains("agent.cedar: 6 policies, OK"))
        #expect(
            result.standardError
                == "warden: \(bad):3:29: expected an action entity (type Action or NAMESPACE::Action), found Photo::\"x\"\n"
        )
    }

    @Test func evalExitStatusFollowsTheDecision() throws {
        let harness = try WardenHarness()
        func eval(_ agent: String, _ tool: String, _ context: String = "{}", json: Bool = false) throws -> CommandResult
        {
            try harness.run(
                [
                    "policy", "eval", "--policies", Self.examples + "/agent.cedar", "--entities",
                    Self.examples + "/entities.json",
                    "--principal", "Agent::\"\(agent)\"", "--action", "Action::\"call\"", "--resource",
                    "Tool::\"\(tool)\"",
                    "--context", context,
                ] + (json ? ["--json"] : []))
        }
        let read = try eval("coder-1", "fs.read")
        #expect(read.status == 0)
        #expect(read.standardOutput.hasPrefix("allow: permitted by read-workspace"))
        let ask = try eval("coder-1", "fs.write", #"{"path": "/workspace/a"}"#, json: true)
        #expect(ask.status == 3)
        let decision = try JSONSerialization.jsonObject(with: Data(ask.standardOutput.utf8)) as? [String: Any]
        #expect(decision?["kind"] as? String == "ask")
        let deny = try eval("coder-1", "shell.exec")
        #expect(deny.status == 1)
        #expect(deny.standardOutput.contains("forbidden by no-shell-for-untrusted-agents"))
    }

    @Test(arguments: [
        (["--principal", "Agent:coder"], "--principal Agent:coder"),
        (["--context", "{not json"], "--context: invalid JSON at 1:2"),
        (["--context", "[1]"], "--context: the context must be a JSON object"),
        (["--context", #"{"n": 1.5}"#], "1.5 is not a 64-bit integer"),
    ])
    func evalRejectsBadInputWithOneLine(override: [String], message: String) throws {
        let harness = try WardenHarness()
        var arguments = [
            "policy", "eval", "--policies", Self.examples + "/agent.cedar", "--principal", "Agent::\"a\"", "--action",
            "Action::\"call\"", "--resource", "Tool::\"t\"",
        ]
        for pair in stride(from: 0, to: override.count, by: 2) {
            if let i = arguments.firstIndex(of: override[pair]) {
                arguments[i + 1] = override[pair + 1]
            } else {
                arguments += [override[pair], override[pair + 1]]
            }
        }
        let result = try harness.run(arguments)
        #expect(result.status == 2)
        #expect(result.standardError.contains(message), "\(result.standardError)")
        #expect(result.standardError.split(separator: "\n").count == 1)
    }

    @Test func testCommandRunsCasesAndFailsOnAMiss() throws {
        let harness = try WardenHarness()
        let good = try harness.run(["policy", "test", Self.examples + "/cases.json"])
        #expect(good.status == 0, "\(good.standardOutput)\(good.standardError)")
        #expect(good.standardOutput.hasSuffix("7 passed, 0 failed\n"))

        let cases = harness.root + "/cases.json"
        try FileManager.default.copyItem(atPath: Self.examples + "/agent.cedar", toPath: harness.root + "/agent.cedar")
        try FileManager.default.copyItem(
            atPath: Self.examples + "/entities.json", toPath: harness.root + "/entities.json")
        try harness.write(
            """
            {"policies": ["agent.cedar"], "entities": "entities.json", "cases": [
              {"name": "wrong on purpose", "principal": "Agent::\\"coder-1\\"", "action": "Action::\\"call\\"",
               "resource": "Tool::\\"fs.read\\"", "expect": "deny"}]}
            """, to: cases)
        let bad = try harness.run(["policy", "test", cases])
        #expect(bad.status == 1)
        #expect(bad.standardOutput.contains("FAIL  wrong on purpose: expected deny, got allow"))
        #expect(bad.standardOutput.hasSuffix("0 passed, 1 failed\n"))
    }

    @Test func conformanceCommandCountsEveryRequest() throws {
        let harness = try WardenHarness()
        let root = try SharedFixtures.cedarConformance()
        let result = try harness.run(["policy", "conformance", root + "/tests"])
        #expect(result.status == 0, "\(result.standardOutput)")
        #expect(result.standardOutput.hasSuffix("74 passed, 0 failed, 0 skipped (22 files)\n"))

        // A wrong expectation is a counted, listed failure and a non-zero exit.
        let copy = harness.root + "/tests"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        let original = try String(contentsOfFile: root + "/tests/decimal/1.json", encoding: .utf8)
        try harness.write(
            original.replacingOccurrences(of: "\"decision\": \"allow\"", with: "\"decision\": \"deny\"")
                .replacingOccurrences(of: "\"tests/", with: "\"\(root)/tests/")
                .replacingOccurrences(of: "\"sample-data/", with: "\"\(root)/sample-data/"),
            to: copy + "/1.json")
        let broken = try harness.run(["policy", "conformance", copy])
        #expect(broken.status == 1)
        #expect(broken.standardOutput.contains("FAIL "))
        #expect(broken.standardOutput.range(of: #"[1-9][0-9]* failed"#, options: .regularExpression) != nil)
    }
}
