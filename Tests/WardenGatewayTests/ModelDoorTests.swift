import Foundation
import Testing
import WardenBench
import WardenCore
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The model door through the real binary: `warden run --model …` with the agent in the sandbox
/// speaking HTTP to the door on its own loopback, a stand-in upstream in this process (hosted-API
/// behaviour: Anthropic's format, rate limits, stalls, resets, malformed streams) and llama.cpp's server
/// with SmolLM2 as the real model.
@Suite(.serialized)
struct ModelDoorTests {
    static let agent = ToolsGatewayTests.peers + "/model_agent.py"
    /// The real key: only its prefix is known to the probe in the sandbox.
    static let marker = "sk-warden-test-"

    static let policy = """
        @id("models") permit(principal, action == Action::"complete", resource) when { resource.name != "t" };
        @id("answers") permit(principal, action == Action::"respond", resource);
        @id("no-secrets-out") forbid(principal, action == Action::"respond", resource) when { context.findings.secrets > 0 };
        @id("no-refused-calls") forbid(principal, action == Action::"respond", resource) when { context.tool_calls_denied != [] };
        """

    /// A run of `model_agent.py ARGS` under the door in front of `upstream`, with `extra` profile lines;
    /// its output lines as JSON, its id, and the key it was given.
    struct Run {
        let harness: WardenHarness
        let key = ModelDoorTests.marker + UUID().uuidString.prefix(12).lowercased()
        var id = ""
        var lines: [[String: Any]] = []
        var stderr = ""

        init(_ harness: WardenHarness) { self.harness = harness }

        func profile(
            upstream: String, top: String = "", tables: String = "", timeout: String = "2s",
            policy: String = ModelDoorTests.policy
        ) throws -> String {
            let policyPath = harness.outside + "/model.cedar"
            try policy.write(toFile: policyPath, atomically: true, encoding: .utf8)
            let path = harness.outside + "/agent.toml"
            try """
            network = "none"
            policies = ["\(policyPath)"]
            read = ["\(ToolsGatewayTests.peers)"]
            \(top)

            [models.s]
            url = "\(upstream)"
            key_env = "WARDEN_TEST_MODEL_KEY"
            timeout = "\(timeout)"

            \(tables)
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        mutating func run(
            _ arguments: [String], profile: String, flags: [String] = [], environment: [String: String] = [:]
        ) throws {
            let result = try harness.run(
                ["run", "--profile", profile, "--workspace", harness.workspace] + flags + [
                    "--", "/usr/bin/python3", ModelDoorTests.agent,
                ] + arguments, environment: ["WARDEN_TEST_MODEL_KEY": key].merging(environment) { $1 })
            stderr = result.standardError
            lines = result.standardOutput.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let list = try harness.run(["ps", "--all", "--json"]).standardOutput
            let runs = (try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]]) ?? []
            id = runs.last?["id"] as? String ?? ""
        }

        func events(_ kind: String) throws -> [[String: String]] { try harness.events(id, kind: kind) }
        func decisions() throws -> [[String: String]] { try events("decision").filter { $0["door"] == "model" } }
    }

    static func errorCode(_ line: [String: Any]?) -> String? {
        let event = line?["error_event"] as? [String: Any]
        let body = line?["body"] as? [String: Any]
        let error = (event?["error"] ?? body?["error"]) as? [String: Any]
        return (error?["code"] ?? event?["code"]) as? String ?? error?["type"] as? String
    }

    static func chat(_ model: String, stream: Bool = false, tools: Bool = false) -> String {
        let offered =
            tools ? #","tools":[{"type":"function","function":{"name":"fs__write_file","parameters":{}}}]"# : ""
        return #"{"model":"\#(model)","stream":\#(stream),"messages":[{"role":"user","content":"hi"}]\#(offered)}"#
    }

    /// The key stays outside: nothing in the sandbox holds it, the upstream receives it, the agent's
    /// answer and the record never show it.
    @Test func theRealKeyNeverEntersTheSandboxAndOnlyTheUpstreamSeesIt() throws {
        let harness = try WardenHarness()
        let upstream = try ModelStandIn()
        defer { upstream.close() }
        var run = Run(harness)
        let profile = try run.profile(upstream: upstream.openAIBase)
        // Passing the key's variable into the sandbox is refused, with the reason.
        let passed = try harness.run(
            [
                "run", "--profile", profile, "--workspace", harness.workspace, "--pass-env", "WARDEN_TEST_MODEL_KEY",
                "--", "/bin/true",
            ],
            environment: ["WARDEN_TEST_MODEL_KEY": run.key])
        #expect(
            passed.status != 0 && passed.standardError.contains("stays outside the sandbox"), "\(passed.standardError)")
        // A real OPENAI_API_KEY of the caller's, passed on, is replaced by the dummy.
        try run.run(
            ["probe", "sk-warden-", "test-", "request", "/v1/chat/completions", Self.chat("echo-key")],
            profile: profile,
            flags: ["--pass-env", "OPENAI_API_KEY"], environment: ["OPENAI_API_KEY": run.key])
        let probe = try #require(run.lines.first, "the probe ran: \(run.stderr)")
        #expect((probe["found"] as? [String]) == [], "the key is nowhere in the sandbox: \(probe)")
        #expect(probe["base"] as? String == "http://127.0.0.1:8932/v1")
        #expect(probe["anthropic"] as? String == "http://127.0.0.1:8932")
        #expect((probe["key"] as? String)?.hasPrefix("warden-dummy-") == true, "a dummy key: \(probe)")
        let answer = try #require(run.lines.dropFirst().first)
        #expect(answer["status"] as? Int == 200, "\(answer)")
        let text = "\(answer)"
        #expect(!text.contains(run.key) && text.contains("[redacted key]"), "the echoed key is scrubbed: \(text)")
        let seen = try #require(upstream.seen.last)
        let authorization = seen.headers.first { $0.0.lowercased() == "authorization" }?.1
        #expect(authorization == "Bearer \(run.key)", "the upstream got the real key: \(seen.headers)")
        #expect(!seen.headers.contains { $0.1.contains("warden-dummy-") }, "not the dummy")
        // Not in the record, not in any file of the state directory (the run's logs included).
        let events = try harness.run(["events", "--json", run.id]).standardOutput
        #expect(!events.contains(run.key) && events.contains("\"door\":\"model\""), "recorded, without the key")
        var leaked: [String] = []
        let walker = FileManager.default.enumerator(atPath: harness.stateDirectory)
        while let file = walker?.nextObject() as? String {
            let path = harness.stateDirectory + "/" + file
            if let data = FileManager.default.contents(atPath: path), data.count < 64 << 20,
                data.range(of: Data(run.key.utf8)) != nil
            {
                leaked.append(file)
            }
        }
        #expect(leaked.isEmpty, "no state file holds the key: \(leaked)")
        #expect(!run.stderr.contains(run.key))
    }

    /// Streams go through event by event; a stream the policy refuses, or one the upstream breaks, ends
    /// with the API's error event, never a torn connection; each is recorded.
    @Test func streamsAreRelayedIntactAndEveryFailureEndsWellFormed() throws {
        let harness = try WardenHarness()
        let upstream = try ModelStandIn()
        defer { upstream.close() }
        var run = Run(harness)
        let profile = try run.profile(upstream: upstream.openAIBase)
        try run.run(
            [
                "request", "/v1/chat/completions", Self.chat("chunks-10000", stream: true),
                "request", "/v1/chat/completions", Self.chat("secret", stream: true),
                "request", "/v1/chat/completions", Self.chat("stall", stream: true),
                "request", "/v1/chat/completions", Self.chat("reset", stream: true),
                "request", "/v1/chat/completions", Self.chat("malformed", stream: true),
                "request", "/v1/chat/completions", Self.chat("status-429"),
                "request", "/v1/chat/completions", Self.chat("secret"),
            ], profile: profile)
        try #require(run.lines.count == 7, "\(run.lines) \(run.stderr)")
        let long = run.lines[0]
        #expect(long["events"] as? Int == 10_002 && long["done"] as? String == "yes", "10,000 chunks, finish, [DONE]")
        let expected = (0..<10_000).map { "t\($0) " }.joined()
        #expect((long["text"] as? String)?.utf8.count == expected.utf8.count, "relayed whole")
        #expect((long["text"] as? String) == expected ? true : false, "relayed intact, in order")
        // The secret in the output: the policy forbids the answer; the stream ends with an error event.
        #expect(Self.errorCode(run.lines[1]) == "warden_denied", "\(run.lines[1])")
        #expect(!"\(run.lines[1])".contains(ModelStandIn.secret), "the completed secret is not relayed")
        #expect(Self.errorCode(run.lines[2]) == "upstream_timeout", "a stalled upstream: \(run.lines[2])")
        #expect(Self.errorCode(run.lines[3]) == "upstream_error", "a reset upstream: \(run.lines[3])")
        #expect(Self.errorCode(run.lines[4]) == "upstream_malformed", "malformed SSE: \(run.lines[4])")
        for line in run.lines[1...4] {
            #expect(line["torn"] as? String == "no", "each stream ended well-formed: \(line)")
        }
        #expect(run.lines[5]["status"] as? Int == 429, "the upstream's rate limit is relayed: \(run.lines[5])")
        #expect(run.lines[6]["status"] as? Int == 403 && Self.errorCode(run.lines[6]) == "warden_denied")
        let responses = try run.events("model.response")
        #expect(responses.count == 7, "every answer recorded: \(responses)")
        #expect(responses.filter { $0["ended_by"] == "policy" }.count == 2)
        #expect(responses.contains { $0["error"] == "stalled" })
        #expect(responses.contains { $0["error"]?.hasPrefix("stream broke") == true })
        #expect(responses.contains { $0["error"] == "malformed event from the upstream" })
        #expect(responses.contains { $0["status"] == "429" })
        let respond = try run.decisions().filter { $0["action"] == "respond" }
        #expect(respond.count == 2 && respond.allSatisfy { $0["decision"] == "deny" }, "\(respond)")
    }

    /// A token budget ends the stream that spends it and refuses what follows; `warden model cut` ends
    /// an open stream at once and refuses every later request; both recorded.
    @Test func theBudgetAndTheModelCutEndStreamsMidway() throws {
        let harness = try WardenHarness()
        let upstream = try ModelStandIn()
        defer { upstream.close() }
        var run = Run(harness)
        let profile = try run.profile(upstream: upstream.openAIBase, top: "model_tokens_max = 60")
        try run.run(
            [
                "request", "/v1/chat/completions", Self.chat("chunks-8", stream: true),
                "request", "/v1/chat/completions", Self.chat("chunks-500", stream: true),
                "request", "/v1/chat/completions", Self.chat("chunks-8"),
            ], profile: profile)
        try #require(run.lines.count == 3, "\(run.lines) \(run.stderr)")
        #expect(run.lines[0]["done"] as? String == "yes", "within the budget")
        #expect(Self.errorCode(run.lines[1]) == "warden_budget", "spent mid-stream: \(run.lines[1])")
        #expect((run.lines[1]["events"] as? Int ?? 0) < 100, "ended early: \(run.lines[1]["events"] ?? "")")
        #expect(run.lines[2]["status"] as? Int == 403 && Self.errorCode(run.lines[2]) == "warden_budget")
        #expect(try run.events("budget.hit").contains { $0["door"] == "model" })

        // The cut, mid-stream (a slow stream: 400 chunks, one every 50 ms).
        let cutHarness = try WardenHarness()
        var cutRun = Run(cutHarness)
        let cutProfile = try cutRun.profile(upstream: upstream.openAIBase)
        let out = cutHarness.outside + "/agent.out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let agent = cutHarness.process(
            WardenHarness.binary,
            arguments: [
                "run", "--name", "cutme", "--profile", cutProfile, "--workspace", cutHarness.workspace, "--",
                "/usr/bin/python3", Self.agent, "request", "/v1/chat/completions", Self.chat("slow", stream: true),
                "request", "/v1/chat/completions", Self.chat("chunks-8"),
            ])
        agent.environment?["WARDEN_TEST_MODEL_KEY"] = cutRun.key
        agent.standardOutput = FileHandle(forWritingAtPath: out)
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
        // Wait until the stream is open (the upstream has the request), then cut.
        #expect(cutHarness.waitUntil(timeout: 20) { upstream.seen.contains { $0.body.contains("\"slow\"") } })
        usleep(300_000)
        let cut = try cutHarness.run(["model", "cut", "cutme", "--reason", "test cut", "--json"])
        #expect(cut.status == 0, "\(cut.standardError)")
        #expect(cut.standardOutput.contains("\"streams_ended\" : \"1\""), "\(cut.standardOutput)")
        #expect(cutHarness.waitUntil(timeout: 20) { !agent.isRunning })
        let lines = String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
            .split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        try #require(lines.count == 2, "\(lines)")
        #expect(Self.errorCode(lines[0]) == "warden_cut" && lines[0]["torn"] as? String == "no", "\(lines[0])")
        #expect((lines[0]["events"] as? Int ?? 400) < 300, "ended at the cut, not at the end")
        #expect(lines[1]["status"] as? Int == 403 && Self.errorCode(lines[1]) == "warden_cut")
        cutRun.id = try #require(
            (try JSONSerialization.jsonObject(
                with: Data(cutHarness.run(["ps", "--all", "--json"]).standardOutput.utf8))
                as? [[String: Any]])?.last?["id"] as? String)
        let cuts = try cutRun.events("model.cut")
        #expect(cuts.count == 1 && cuts.first?["reason"] == "test cut" && cuts.first?["by"] == "operator")
        let usage = try cutHarness.run(["model", "usage", "cutme", "--json"])
        #expect(usage.json["cut"] as? Bool == true && usage.json["denied"] as? Int == 1, "\(usage.standardOutput)")
    }

    /// `warden policy reload` changes which models a live run may use.
    @Test func aPolicyReloadChangesTheAllowedModelsOnALiveRun() throws {
        let harness = try WardenHarness()
        let upstream = try ModelStandIn()
        defer { upstream.close() }
        var run = Run(harness)
        let profile = try run.profile(
            upstream: upstream.openAIBase, tables: "[models.t]\nurl = \"\(upstream.openAIBase)\"")
        let out = harness.outside + "/agent.out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let agent = harness.process(
            WardenHarness.binary,
            arguments: [
                "run", "--name", "reload", "--profile", profile, "--workspace", harness.workspace, "--", "/bin/sh",
                "-c",
                "/usr/bin/python3 \(Self.agent) request /v1/chat/completions '\(Self.chat("t"))'; while [ ! -e go ]; do sleep 0.1; done; /usr/bin/python3 \(Self.agent) request /v1/chat/completions '\(Self.chat("t"))'",
            ])
        agent.environment?["WARDEN_TEST_MODEL_KEY"] = run.key
        agent.standardOutput = FileHandle(forWritingAtPath: out)
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
        #expect(harness.waitUntil(timeout: 20) { (FileManager.default.contents(atPath: out)?.count ?? 0) > 0 })
        let everything = harness.outside + "/all.cedar"
        try #"@id("all-models") permit(principal, action == Action::"complete", resource);"#
            .write(toFile: everything, atomically: true, encoding: .utf8)
        let reload = try harness.run(["policy", "reload", "reload", "--policy", everything])
        #expect(reload.status == 0, "\(reload.standardError)")
        FileManager.default.createFile(atPath: harness.workspace + "/go", contents: nil)
        #expect(harness.waitUntil(timeout: 20) { !agent.isRunning })
        let lines = String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
            .split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        try #require(lines.count == 2, "\(lines)")
        #expect(lines[0]["status"] as? Int == 403 && Self.errorCode(lines[0]) == "warden_denied", "\(lines[0])")
        #expect(lines[1]["status"] as? Int == 200, "allowed after the reload: \(lines[1])")
    }

    /// Bad input gets one clear error in the API's own shape; Anthropic's Messages (whole and streamed,
    /// with a tool call) go to an Anthropic upstream with its key header.
    @Test func badInputGetsClearAPIErrorsAndAnthropicsFormatWorks() throws {
        let harness = try WardenHarness()
        let upstream = try ModelStandIn()
        defer { upstream.close() }
        var run = Run(harness)
        let profile = try run.profile(
            upstream: upstream.openAIBase,
            tables:
                "[models.claude]\nurl = \"\(upstream.anthropicBase)\"\nprotocol = \"anthropic\"\nkey_env = \"WARDEN_TEST_MODEL_KEY\""
        )
        let messages =
            #"{"model":"claude","max_tokens":50,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"read_file","input_schema":{}}]"#
        try run.run(
            [
                "request", "/v1/chat/completions", "{not json",
                "request", "/v1/chat/completions", "@big:52428800",
                "request", "/v1/embeddings", #"{"model":"s"}"#,
                "request", "/v1/messages", #"{"model":"s","messages":[]}"#,
                "request", "/v1/chat/completions", #"{"messages":[]}"#,
                "request", "/v1/messages",
                messages.replacingOccurrences(of: "\"model\":\"claude\"", with: "\"model\":\"tool\"") + "}",
                "request", "/v1/messages",
                messages.replacingOccurrences(of: "\"model\":\"claude\"", with: "\"model\":\"tool\"")
                    + #","stream":true}"#,
            ], profile: profile)
        try #require(run.lines.count == 7, "\(run.lines) \(run.stderr)")
        #expect(run.lines[0]["status"] as? Int == 400 && "\(run.lines[0])".contains("not JSON"), "\(run.lines[0])")
        #expect(run.lines[1]["status"] as? Int == 413 && "\(run.lines[1])".contains("16 MiB"), "\(run.lines[1])")
        #expect(run.lines[2]["status"] as? Int == 404 && Self.errorCode(run.lines[2]) == "unknown_url")
        #expect(run.lines[3]["status"] as? Int == 400 && "\(run.lines[3])".contains("speaks openai"), "\(run.lines[3])")
        #expect(
            run.lines[4]["status"] as? Int == 400 && "\(run.lines[4])".contains("no \\\"model\\\""), "\(run.lines[4])")
        // "tool" is not a name the door serves: with one Anthropic upstream, it goes there.
        #expect(run.lines[5]["status"] as? Int == 200, "\(run.lines[5])")
        #expect(run.lines[6]["done"] as? String == "yes", "\(run.lines[6])")
        let anthropic = upstream.seen.filter { $0.path == "/v1/messages" }
        #expect(anthropic.count == 2)
        #expect(anthropic.allSatisfy { seen in seen.headers.contains { $0.0 == "x-api-key" && $0.1 == run.key } })
        #expect(anthropic.allSatisfy { seen in seen.headers.contains { $0.0 == "anthropic-version" } })
        let responses = try run.events("model.response").filter { $0["model"] == "claude" }
        #expect(responses.count == 2 && responses.allSatisfy { $0["tool_calls"] == "read_file" }, "\(responses)")
        #expect(responses.allSatisfy { $0["tokens_in"] == "11" }, "Anthropic's usage counted")
    }

    /// A key from a file (hidden from the sandbox), `model_requests_max` under `on_budget = "record"`
    /// (recorded, not enforced), `log_bodies` (bodies recorded with secrets redacted), and an `ask` on
    /// `complete` that a person approves from another terminal.
    @Test func aKeyFileRecordedBudgetsBodiesAndAnAskedRequest() throws {
        let harness = try WardenHarness()
        let upstream = try ModelStandIn()
        defer { upstream.close() }
        var run = Run(harness)
        let keyFile = harness.outside + "/model.key"
        try (run.key + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
        let askPolicy = Self.policy.replacingOccurrences(
            of:
                #"@id("models") permit(principal, action == Action::"complete", resource) when { resource.name != "t" };"#,
            with: #"""
                @id("models") permit(principal, action == Action::"complete", resource) when { context.requests < 3 };
                @id("fourth-asks") @ask("a fourth request needs a person") permit(principal, action == Action::"complete", resource) when { context.requests >= 3 };
                """#)
        var profile = try run.profile(
            upstream: upstream.openAIBase, top: "model_requests_max = 2\non_budget = \"record\"\nlog_bodies = true",
            policy: askPolicy)
        // The key from the file, not the environment.
        var text = try String(contentsOfFile: profile, encoding: .utf8)
        text = text.replacingOccurrences(of: #"key_env = "WARDEN_TEST_MODEL_KEY""#, with: "key_file = \"\(keyFile)\"")
        try text.write(toFile: profile, atomically: true, encoding: .utf8)
        profile = harness.outside + "/agent.toml"
        let out = harness.outside + "/agent.out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let secretPrompt = #"{"model":"s","messages":[{"role":"user","content":"my key is AKIAIOSFODNN7EXAMPLE"}]}"#
        let agent = harness.process(
            WardenHarness.binary,
            arguments: [
                "run", "--name", "asks", "--profile", profile, "--workspace", harness.workspace, "--approval-timeout",
                "20s", "--", "/usr/bin/python3", Self.agent, "probe", "sk-warden-", "test-",
                "request", "/v1/chat/completions", secretPrompt, "request", "/v1/chat/completions",
                Self.chat("chunks-2"),
                "request", "/v1/chat/completions", Self.chat("chunks-3"), "request", "/v1/chat/completions",
                Self.chat("chunks-4"),
            ])
        agent.environment?.removeValue(forKey: "WARDEN_TEST_MODEL_KEY")
        agent.standardOutput = FileHandle(forWritingAtPath: out)
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
        let held = try #require(harness.pendingApproval(excluding: []), "the fourth request is held")
        let heldID = try #require(held["id"] as? String)
        #expect("\(held)".contains("model"), "\(held)")
        #expect(try harness.run(["approve", heldID, "--as", "tester"]).status == 0)
        #expect(harness.waitUntil(timeout: 30) { !agent.isRunning })
        let lines = String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
            .split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        try #require(lines.count == 5, "\(lines)")
        #expect((lines[0]["found"] as? [String]) == [], "the key file is hidden: \(lines[0])")
        for line in lines[1...4] { #expect(line["status"] as? Int == 200, "\(line)") }
        #expect(
            upstream.seen.allSatisfy { $0.headers.contains { $0.0 == "Authorization" && $0.1 == "Bearer \(run.key)" } })
        run.id = try #require(
            (try JSONSerialization.jsonObject(with: Data(harness.run(["ps", "--all", "--json"]).standardOutput.utf8))
                as? [[String: Any]])?.last?["id"] as? String)
        let budget = try run.events("budget.hit")
        #expect(budget.count == 1 && budget.first?["action"] == "record", "recorded once, not enforced: \(budget)")
        let decisions = try run.decisions().filter { $0["action"] == "complete" }
        #expect(decisions.count == 4 && decisions.last?["reason"] == "approved by a person", "\(decisions)")
        let bodies = decisions.compactMap { $0["request_body"] }
        #expect(
            bodies.count == 4 && bodies[0].contains("[redacted secret]") && !bodies[0].contains("AKIAIOSFODNN7EXAMPLE"))
        #expect(try run.events("model.response").allSatisfy { $0["response_body"]?.isEmpty == false })
    }

    /// A tool call the model proposes goes through the tools door's own Cedar request before the agent
    /// sees it: one the tools door would deny (a write outside the workspace) is refused with the answer;
    /// one it would allow passes.
    @Test func aProposedToolCallTheToolsDoorWouldDenyNeverReachesTheAgent() throws {
        let harness = try WardenHarness()
        let upstream = try ModelStandIn()
        defer { upstream.close() }
        var run = Run(harness)
        let profile = try ToolsDoorRunTests.profile(harness, policy: ToolsGatewayTests.policy + "\n" + Self.policy)
        let handle = try #require(FileHandle(forWritingAtPath: profile))
        handle.seekToEndOfFile()
        handle.write(
            Data(
                "\n[models.s]\nurl = \"\(upstream.openAIBase)\"\nkey_env = \"WARDEN_TEST_MODEL_KEY\"\ntimeout = \"5s\"\n"
                    .utf8))
        handle.closeFile()
        let offering = { (tool: String, stream: Bool) in
            #"{"model":"tool","stream":\#(stream),"messages":[{"role":"user","content":"go"}],"tools":[{"type":"function","function":{"name":"\#(tool)","parameters":{}}}]}"#
        }
        try run.run(
            [
                "request", "/v1/chat/completions", offering("fs__write_file", false),
                "request", "/v1/chat/completions", offering("fs__write_file", true),
                "request", "/v1/chat/completions", offering("fs__read_file", false),
            ], profile: profile)
        try #require(run.lines.count == 3, "\(run.lines) \(run.stderr)")
        #expect(
            run.lines[0]["status"] as? Int == 403 && "\(run.lines[0])".contains("no-refused-calls"), "\(run.lines[0])")
        #expect(Self.errorCode(run.lines[1]) == "warden_denied", "mid-stream: \(run.lines[1])")
        #expect(run.lines[2]["status"] as? Int == 200, "an allowed call passes: \(run.lines[2])")
        let respond = try run.decisions().filter { $0["action"] == "respond" }
        #expect(respond.count == 2 && respond.allSatisfy { $0["tool_calls_denied"] == "fs__write_file" }, "\(respond)")
        // Evaluated, not recorded as tool calls: the agent made none.
        #expect(try run.events("decision").filter { $0["door"] == "tools" && $0["action"] == "call" }.isEmpty)
    }

    /// The real model: llama.cpp's server with SmolLM2-135M. The agent offers a tool; the model's tool
    /// call comes back through the door (parsed into `tool_calls`), runs in the sandbox, and its result
    /// goes back as a new, untrusted message; streamed and whole.
    @Test(arguments: ["stream", "whole"])
    func aRealLocalModelsToolCallsRunInTheSandboxThroughTheDoor(mode: String) throws {
        let server = try LlamaServer.shared()
        let harness = try WardenHarness()
        try "The meeting moved to Thursday at 10.".write(
            toFile: harness.workspace + "/notes.txt", atomically: true, encoding: .utf8)
        var run = Run(harness)
        let profile = try run.profile(upstream: server.base, timeout: "60s")
        try run.run(["loop", "s", mode], profile: profile)
        let tool = try #require(
            run.lines.first { $0["tool"] != nil }, "the model called a tool: \(run.lines) \(run.stderr)")
        #expect(tool["tool"] as? String == "read_file")
        #expect(tool["result"] as? String == "The meeting moved to Thursday at 10.", "run in the sandbox: \(tool)")
        #expect(run.lines.last?["answer"] is String, "the model answered after the result: \(run.lines)")
        let decisions = try run.decisions().filter { $0["action"] == "complete" }
        #expect(decisions.count >= 2 && decisions.allSatisfy { $0["decision"] == "allow" }, "\(decisions)")
        // The second request carries the tool call and its result as new messages.
        #expect(decisions.count >= 2 && Int(decisions[1]["new_messages"] ?? "") == 2, "\(decisions)")
        let responses = try run.events("model.response")
        #expect(responses.first?["tool_calls"] == "read_file", "\(responses)")
        #expect(responses.allSatisfy { $0["status"] == "200" }, "\(responses)")
        if mode == "whole" { #expect(responses.allSatisfy { $0["tokens_estimated"] == nil }, "usage reported") }
    }
}
