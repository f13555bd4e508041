import Foundation
import Testing
import WardenCore
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Bad input: one clear line naming the problem and the fix, a non-zero exit, nothing started.
struct BadInputTests {
    static let cases: [(arguments: [String], mentions: String)] = [
        (["run", "--bogus-flag", "--", "/bin/true"], "--bogus-flag"),
        (["run", "--grace", "soon", "--", "/bin/true"], "--grace: 'soon' is not a duration"),
        (["run", "--grace", "-5s", "--", "/bin/true"], "--grace"),
        (["run", "--lease", "10 parsecs", "--", "/bin/true"], "--lease"),
        (["run", "--memory-max", "lots", "--", "/bin/true"], "--memory-max: 'lots' is not a size"),
        (["run", "--memory-max", "12X", "--", "/bin/true"], "--memory-max"),
        (["run", "--cpu-max", "-1", "--", "/bin/true"], "--cpu-max"),
        (["run", "--pids-max", "0", "--", "/bin/true"], "--pids-max"),
        (["run", "--network", "internet", "--", "/bin/true"], "'internet' is invalid for '--network"),
        (["run", "--on-tamper", "explode", "--", "/bin/true"], "'explode' is invalid for '--on-tamper"),
        (["run", "--allow-degraded", "everything", "--", "/bin/true"], "unknown layer 'everything'"),
        (["run", "--workspace", "/nonexistent/ws", "--", "/bin/true"], "/nonexistent/ws does not exist"),
        (["run", "--profile", "/nonexistent/profile.toml", "--", "/bin/true"], "--profile: cannot read"),
        (["run", "--", "/nonexistent/agent"], "/nonexistent/agent"),
        (["run"], "no command given"),
        (["run", "--protect", "missing.txt", "--", "/bin/true"], "--protect: missing.txt does not exist"),
        (["run", "--tripwire", "missing.sh", "--", "/bin/true"], "--tripwire: missing.sh does not exist"),
        (["stop"], "name a run"),
        (["stop", "nosuchrun"], "no run 'nosuchrun'"),
        (["renew", "nosuchrun"], "no run 'nosuchrun'"),
        (["inspect", "nosuchrun"], "no run 'nosuchrun'"),
        (["frobnicate"], "frobnicate"),
    ]

    @Test(arguments: cases.indices)
    func badInputIsOneClearLine(index: Int) throws {
        let harness = try WardenHarness()
        var arguments = Self.cases[index].arguments
        if arguments.first == "run" && !arguments.contains("--workspace") && arguments.count > 1 {
            arguments.insert(contentsOf: ["--workspace", harness.workspace], at: 1)
        }
        let result = try harness.run(arguments)
        #expect(result.status == 2, "bad input exits 2: \(result.standardError)")
        #expect(result.standardOutput.isEmpty)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "exactly one line: \(result.standardError)")
        #expect(result.standardError.contains(Self.cases[index].mentions), "\(result.standardError)")
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: harness.stateDirectory + "/runs")) ?? []
        #expect(runs.isEmpty, "nothing was started or registered")
    }

    @Test(arguments: [
        ("pids_max = \"many\"\n", "profile.toml:1: pids_max: 'many' is not a process count"),
        ("grace = \"5 minutes\"\n", "profile.toml:1: grace: '5 minutes' is not a duration"),
        ("network = \"none\"\nnetwrok = \"host\"\n", "profile.toml:2: unknown key 'netwrok'"),
        ("protect = [\"a\", 3]\n", "expected strings in the array"),
        ("grace = \"5s\n", "profile.toml:1:"),
        ("grace = 5s\n", "profile.toml:1:"),
    ])
    func badProfileIsPositioned(text: String, mentions: String) throws {
        let harness = try WardenHarness()
        let profile = harness.outside + "/profile.toml"
        try harness.write(text, to: profile)
        let result = try harness.run(["run", "--profile", profile, "--workspace", harness.workspace, "--", "/bin/true"])
        #expect(result.status == 2)
        #expect(result.standardError.split(separator: "\n").count == 1)
        #expect(result.standardError.contains(mentions), "\(result.standardError)")
    }

    @Test func profileSetsEverythingAndFlagsWin() throws {
        let harness = try WardenHarness()
        try harness.write("#!/bin/sh\n", to: harness.workspace + "/shutdown.sh")
        let profile = harness.outside + "/profile.toml"
        try harness.write(
            """
            # a run profile
            name = "from-profile"
            workspace = "../workspace"
            pids_max = 99
            memory_max = "256M"
            cpu_max = 0.5
            tripwire = ["shutdown.sh"]
            grace = "2s"
            lease = "1m"
            command = ["/bin/sh", "-c", "exit 4"]
            """, to: profile)
        let result = try harness.run(["run", "--profile", profile, "--name", "from-flag", "--pids-max", "77"])
        #expect(result.status == 4, "\(result.standardError)")
        let runs =
            try JSONSerialization.jsonObject(
                with: Data(try harness.run(["ps", "--all", "--json"]).standardOutput.utf8)) as? [[String: Any]]
        let record = try #require(runs?.first)
        #expect(record["name"] as? String == "from-flag")
        #expect(record["graceNanoseconds"] as? Int == 2_000_000_000)
        let limits =
            (record["layers"] as? [[String: Any]])?.first { $0["layer"] as? String == "limits" }?["detail"] as? String
        #expect(limits?.contains("pids.max=77") == true, "\(limits ?? "")")
        #expect(limits?.contains("memory.max=256M") == true)
        #expect((record["tripwires"] as? [[String: Any]])?.count == 1)
    }
}
