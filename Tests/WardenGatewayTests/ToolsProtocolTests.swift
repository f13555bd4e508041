import Foundation
import Testing
import WardenCore
import WardenTesting

@testable import WardenGateway

/// The tools door's protocol between real peers: Streamable HTTP on both sides (the Python SDK's
/// servers behind, its client in front), every revision each side speaks, resources and prompts,
/// notifications, and the attacks on the wire (ids, floods, sampling and elicitation, huge messages).
@Suite(
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: MCPPeers.python2)
            && FileManager.default.isExecutableFile(atPath: MCPPeers.python1),
        "needs the mcp 2.x and 1.x peers: scripts/setup.sh installs them"))
struct ToolsProtocolTests {
    typealias Door = ToolsGatewayTests.Door
    static let peers = ToolsGatewayTests.peers

    /// A Python MCP server on a free loopback port, serving Streamable HTTP until the test ends.
    final class HTTPPeer {
        let process = Process()
        let port: UInt16
        var url: String { "http://127.0.0.1:\(port)/mcp" }

        init(python: String, script: String, descriptions: String, environment: [String: String] = [:]) throws {
            port = try LoopbackListener().port  // closed again at once: the server takes it
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [ToolsProtocolTests.peers + "/" + script]
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["TRANSPORT": "http", "PORT": String(port), "DESCRIPTIONS": descriptions].merging(environment) { $1 }
            ) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline && !Self.accepts(port) { usleep(100_000) }
        }

        static func accepts(_ port: UInt16) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = port.bigEndian
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        }

        deinit {
            // uvicorn's graceful stop waits for open keep-alive connections: SIGKILL after a moment.
            process.terminate()
            let deadline = Date().addingTimeInterval(2)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// The gateway on its own, serving Streamable HTTP on a loopback port; its URL.
    final class HTTPGateway {
        let process: Process
        let url: String

        init(_ door: Door) throws {
            process = door.harness.process(WardenHarness.binary, arguments: ["__tools-gateway", door.config])
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            var environment = process.environment ?? [:]
            environment["FS_TOKEN"] = "tok-42"
            process.environment = environment
            try process.run()
            var seen = ""
            let reader = errors.fileHandleForReading
            while !seen.contains("/mcp\n") {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            url = try #require(
                seen.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) },
                "the gateway says where it listens: \(seen)")
        }

        deinit {
            process.terminate()
            process.waitUntilExit()
        }
    }

    static let policy =
        ToolsGatewayTests.policy + """

            @id("notes")
            permit(principal, action == Action::"read", resource == Resource::"fs.notes://today");
            @id("prompts")
            permit(principal, action == Action::"get_prompt", resource) when { resource.server == "fs" };
            """

    /// The fs server over Streamable HTTP at `url`, with a header and a bearer token Warden adds.
    static func httpServer(_ url: String) -> (inout ToolsGatewayConfiguration, String) -> Void {
        { configuration, _ in
            var server = ToolServerSettings(name: "fs", command: [], timeout: .seconds(20))
            server.url = url
            server.headers = ["X-Team": "tools"]
            server.bearerTokenEnvironment = "FS_TOKEN"
            configuration.servers = [server]
        }
    }

    static func connectPolicy(_ port: UInt16) -> String {
        policy + """

            @id("the-tool-server")
            permit(principal, action == Action::"connect", resource == Host::"127.0.0.1")
            when { context.port == \(port) };
            """
    }

    @Test func streamableHTTPOnBothSidesInEveryRevisionWithTheCredentialInjected() throws {
        let calls = [
            ("fs__read_file", #"{"path": "/etc/hostname"}"#), ("fs__write_file", #"{"path": "/etc/x", "text": "1"}"#),
        ]
        let scratch = try WardenHarness()
        let descriptions = scratch.outside + "/descriptions.json"
        try ToolsGatewayTests.descriptions.write(toFile: descriptions, atomically: true, encoding: .utf8)
        // The new generation behind, over HTTP, refusing requests without its token.
        let headersLog = descriptions + ".headers"
        let server = try HTTPPeer(
            python: MCPPeers.python2, script: "mcp_server.py", descriptions: descriptions,
            environment: ["TOKEN": "tok-42", "HEADERS_LOG": headersLog])
        let door = try Door(policy: Self.connectPolicy(server.port)) { configuration, _ in
            Self.httpServer(server.url)(&configuration, "")
            configuration.httpListen = "127.0.0.1:0"
        }
        let gateway = try HTTPGateway(door)
        for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
            let result = try door.sessionOutput(calls, extra: #"{"mode": "\#(mode)"}"#, door: gateway.url)
            let (tools, answers) = try Door.parse(result)
            #expect(result.standardOutput.contains(#""version": "\#(version)""#), "\(result.standardOutput)")
            #expect(tools.contains("fs__read_file") && tools.contains("fs__write_file"), "\(tools)")
            #expect(answers.map(\.error) == [false, true], "\(answers)")
            #expect(answers.first?.text == "contents of /etc/hostname")
        }
        // Warden reached the server in the server's revision, with the operator's header and token.
        let listed = try door.events("decision").first { $0["action"] == "list" }
        #expect(listed?["revisions"] == "fs=2026-07-28", "\(listed ?? [:])")
        let seen = (try? String(contentsOfFile: headersLog, encoding: .utf8)) ?? ""
        #expect(seen.contains(#""authorization": "Bearer tok-42""#) && seen.contains(#""x-team": "tools""#))
        #expect(seen.contains(#""mcp-method": "tools/call""#), "the stateless revision's routing headers")
        // The egress decision for the server's address was made and recorded before it was reached.
        let connect = try door.events("decision").first { $0["door"] == "egress" && $0["entry"] == "tools" }
        #expect(connect?["decision"] == "allow" && connect?["port"] == String(server.port), "\(connect ?? [:])")

        // The older generation behind, over HTTP with SSE answers (2025-06-18, a session id).
        let old = try HTTPPeer(python: MCPPeers.python1, script: "mcp1_server.py", descriptions: descriptions)
        let oldDoor = try Door(policy: Self.connectPolicy(old.port)) { configuration, _ in
            var server = ToolServerSettings(name: "fs", command: [], timeout: .seconds(20))
            server.url = old.url
            configuration.servers = [server]
        }
        let (oldTools, oldAnswers) = try oldDoor.session(calls)
        #expect(oldTools.contains("fs__read_file"), "\(oldTools)")
        #expect(oldAnswers.map(\.error) == [false, true], "\(oldAnswers)")
        #expect(try oldDoor.events("decision").first { $0["action"] == "list" }?["revisions"] == "fs=2025-06-18")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: MCPPeers.fastmcp), "needs the fastmcp peer"))
    func aFastMCPServerBehindTheDoorOverStdioAndHTTP() throws {
        let calls = [
            ("fs__read_file", #"{"path": "/etc/hostname"}"#), ("fs__write_file", #"{"path": "/etc/x", "text": "1"}"#),
        ]
        let stdio = try Door(policy: Self.policy, serverPython: MCPPeers.fastmcp, serverScript: "fastmcp_server.py")
        let (tools, answers) = try stdio.session(calls)
        #expect(tools == ["fs__read_file", "fs__write_file"], "\(tools)")
        #expect(answers.map(\.error) == [false, true], "\(answers)")
        #expect(try stdio.events("decision").first { $0["action"] == "list" }?["revisions"] == "fs=2026-07-28")

        let scratch = try WardenHarness()
        let descriptions = scratch.outside + "/descriptions.json"
        try ToolsGatewayTests.descriptions.write(toFile: descriptions, atomically: true, encoding: .utf8)
        let server = try HTTPPeer(python: MCPPeers.fastmcp, script: "fastmcp_server.py", descriptions: descriptions)
        let http = try Door(policy: Self.connectPolicy(server.port)) { configuration, _ in
            var settings = ToolServerSettings(name: "fs", command: [], timeout: .seconds(20))
            settings.url = server.url
            configuration.servers = [settings]
        }
        let (httpTools, httpAnswers) = try http.session(calls)
        #expect(httpTools == ["fs__read_file", "fs__write_file"], "\(httpTools)")
        #expect(httpAnswers.first?.text == "contents of /etc/hostname", "\(httpAnswers)")
        #expect(httpAnswers.last?.error == true)
    }

    @Test func aServerURLThePoliciesDoNotAllowIsNeverReached() throws {
        let scratch = try WardenHarness()
        let descriptions = scratch.outside + "/descriptions.json"
        try ToolsGatewayTests.descriptions.write(toFile: descriptions, atomically: true, encoding: .utf8)
        let listener = try LoopbackListener()
        // A policy for another port: the server's is not allowed.
        let door = try Door(policy: Self.connectPolicy(listener.port &+ 1)) { configuration, _ in
            Self.httpServer("http://127.0.0.1:\(listener.port)/mcp")(&configuration, "")
        }
        let result = try door.harness.runProgram(
            WardenHarness.binary, ["__tools-gateway", door.config], environment: ["FS_TOKEN": "x"])
        #expect(result.status != 0)
        #expect(result.standardError.contains("do not allow connecting to 127.0.0.1"), "\(result.standardError)")
        #expect(listener.acceptedConnections() == 0, "nothing reached the server")
        let refused = try door.events("decision").first { $0["door"] == "egress" }
        #expect(refused?["decision"] == "deny", "\(refused ?? [:])")
    }

    @Test func resourcesAndPromptsAreDecidedLikeCalls() throws {
        let door = try Door(policy: Self.policy)
        let result = try door.sessionOutput(
            [],
            extra: #"{"resources": ["notes://today", "secret://key"], "prompts": [["fs__review", {"change": "x"}]]}"#)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any],
            "\(result.standardError)")
        #expect(object["resources"] as? [String] == ["notes://today"], "the secret is not listed")
        let reads = object["reads"] as? [[String: Any]] ?? []
        #expect(reads.first?["text"] as? String == "buy milk")
        #expect(reads.last?["error"] as? Bool == true, "reading the unlisted secret is refused: \(reads)")
        let refusal = reads.last?["text"] as? String ?? ""
        #expect(refusal.contains("sk-secret") == false, "the refusal carries nothing of the secret")
        #expect(object["prompts"] as? [String] == ["fs__review"])
        #expect((object["gets"] as? [[String: Any]])?.first?["text"] as? String == "Review this change: x")
        let decisions = try door.events("decision")
        #expect(
            decisions.contains { $0["action"] == "read" && $0["uri"] == "notes://today" && $0["decision"] == "allow" })
        #expect(
            decisions.contains { $0["action"] == "read" && $0["uri"] == "secret://key" && $0["decision"] == "deny" })
        #expect(decisions.contains { $0["action"] == "get_prompt" && $0["decision"] == "allow" })
    }

    /// Every fs tool allowed (the attacks need them listed).
    static let everything = """
        @id("all-of-fs")
        permit(principal, action == Action::"call", resource) when { resource.server == "fs" };
        """

    @Test func aToolThatAppearsMidSessionIsQuarantinedAndTheChangeRelayed() throws {
        // The older SDK sends list changes on its stdio session.
        let door = try Door(policy: Self.everything, serverPython: MCPPeers.python1, serverScript: "mcp1_server.py")
        let result = try door.sessionOutput(
            [("fs__grow", "{}")],
            extra: #"{"wait_for_list_changed": 10, "relist": true, "after": [["fs__extra", {}]]}"#)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any],
            "\(result.standardError)")
        #expect(object["list_changed"] as? Bool == true, "the server's list change reached the agent")
        let relisted = object["relisted"] as? [String] ?? []
        #expect(relisted.contains("fs__grow") && !relisted.contains("fs__extra"), "\(relisted)")
        let quarantined = try door.events("tool.quarantined")
        #expect(
            quarantined.contains { $0["tool"] == "extra" && $0["reason"] == "new to a pinned server" }, "\(quarantined)"
        )
        // Calling it anyway is refused.
        let after = object["after"] as? [[String: Any]] ?? []
        #expect(after.first?["error"] as? Bool == true, "\(after)")
        #expect((after.first?["text"] as? String ?? "").contains("held back: new to a pinned server"), "\(after)")
    }

    @Test func floodsSamplingAndElicitationAreRefusedAndRecorded() throws {
        let door = try Door(policy: Self.everything, serverPython: MCPPeers.python1, serverScript: "mcp1_server.py")
        let (_, calls) = try door.session([
            ("fs__spam", #"{"count": 1500}"#), ("fs__ask_human", #"{"approval": "ap-0000000001"}"#),
            ("fs__sample", "{}"), ("fs__read_file", #"{"path": "/x"}"#),
        ])
        #expect(calls.count == 4)
        #expect(calls[0].text == "sent 1500", "\(calls)")
        #expect(calls[1].text.hasPrefix("elicitation refused"), "\(calls)")
        #expect(calls[2].text.hasPrefix("sampling refused"), "\(calls)")
        #expect(calls[3].text == "contents of /x", "the gateway goes on: \(calls)")
        let warnings = try door.events("warning")
        #expect(warnings.contains { Int($0["dropped_notifications"] ?? "") ?? 0 > 0 }, "the flood was cut: \(warnings)")
        #expect(warnings.contains { $0["refused"] == "elicitation/create" }, "\(warnings)")
        #expect(warnings.contains { $0["refused"] == "sampling/createMessage" }, "\(warnings)")
        #expect(try door.events("approval.decided").isEmpty, "nothing the server did decided an approval")
    }

    /// Raw lines to the gateway on its standard input (`pause`: wait a second and a half before the
    /// next); its answers, one per line, once its input is done and it has answered.
    static func exchange(_ door: Door, _ lines: [String]) throws -> [String] {
        let process = door.harness.process(WardenHarness.binary, arguments: ["__tools-gateway", door.config])
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let writer = Thread {
            for line in lines {
                if line == Self.pause {
                    usleep(1_500_000)
                    continue
                }
                try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
            }
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let answers = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        process.waitUntilExit()
        return answers
    }

    static let pause = "<pause>"

    /// A tools/call of the fs server's `tool` with no arguments, as the agent sends it.
    static func call(_ id: Int, _ tool: String) -> String {
        #"{"jsonrpc": "2.0", "id": \#(id), "method": "tools/call", "params": {"name": "fs__\#(tool)", "arguments": {}}}"#
    }

    @Test func anIdInFlightCannotBeReusedAndAServersSpoofedAnswersAreDropped() throws {
        let door = try Door(policy: Self.everything, serverPython: MCPPeers.python2, serverScript: "rogue_server.py")
        let answers = try Self.exchange(
            door,
            [
                #"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#, Self.call(7, "slow"), Self.call(7, "slow"),
                Self.pause,
                Self.call(8, "spoof"), Self.pause, Self.call(9, "echo"),
            ])
        let byID = Dictionary(grouping: answers) { line -> String in
            (try? JSONValue.parse(bytes: Array(line.utf8)))?["id"].map { $0.serialized } ?? "?"
        }
        #expect(byID["7"]?.count == 2, "\(answers)")
        #expect(
            byID["7"]?.contains { $0.contains("already in flight") } == true, "the reused id is refused: \(answers)")
        #expect(byID["7"]?.contains { $0.contains("slept") } == true, "the first is answered: \(answers)")
        // The rogue server answered 8 with ids Warden never sent, then twice with its own: the first
        // answer counts, the rest are dropped; 9 gets its own answer, not a spoofed one. (A server can
        // still answer one of its own requests in flight with another's result: it is the authority
        // on what its tools return, and Warden's ids never cross servers or sessions.)
        #expect(byID["8"]?.count == 1 && byID["8"]?.first?.contains("first answer") == true, "\(answers)")
        #expect(byID["9"]?.count == 1 && byID["9"]?.first?.contains("echo") == true, "\(answers)")
    }

    @Test func aServerThatStopsReadingFailsTheNextCallNotTheGateway() throws {
        // The server is alive but has closed its standard input: the gateway's write gets EPIPE (and,
        // were SIGPIPE not ignored, the signal would end the gateway and every session with it).
        let door = try Door(policy: Self.everything, serverPython: MCPPeers.python2, serverScript: "rogue_server.py")
        let answers = try Self.exchange(
            door,
            [
                #"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#, Self.call(2, "deaf"), Self.pause,
                Self.call(3, "echo"),
                #"{"jsonrpc": "2.0", "id": 4, "method": "ping"}"#,
            ])
        let byID = Dictionary(grouping: answers) { line -> String in
            (try? JSONValue.parse(bytes: Array(line.utf8)))?["id"].map { $0.serialized } ?? "?"
        }
        #expect(byID["2"]?.first?.contains("no longer listening") == true, "\(answers)")
        #expect(byID["3"]?.first?.contains("cannot write") == true, "the call fails with the reason: \(answers)")
        #expect(byID["4"]?.count == 1, "and the session still answers: \(answers)")
    }

    @Test func callsHeldForAPersonDoNotStallTheSessionsOtherRequests() throws {
        let asks = ToolsGatewayTests.policy.replacingOccurrences(
            of: "@id(\"write-in-the-workspace\")", with: "@id(\"write-asks\")\n@ask(\"writes need a person\")")
        let door = try Door(policy: asks, approvalTimeoutMilliseconds: 4000)
        let write = { (id: Int) in
            #"{"jsonrpc": "2.0", "id": \#(id), "method": "tools/call", "params": {"name": "fs__write_file", "arguments": {"path": "/work/\#(id)", "text": "x"}}}"#
        }
        let answers = try Self.exchange(
            door,
            [write(1), write(2), write(3), write(4), Self.pause, #"{"jsonrpc": "2.0", "id": 9, "method": "ping"}"#])
        #expect(answers.count == 5, "\(answers)")
        // The ping is answered while the four writes still wait for a person (they expire after it).
        #expect(answers.first?.contains(#""id":9"#) == true, "\(answers)")
        #expect(answers.dropFirst().allSatisfy { $0.contains("nobody approved") }, "\(answers)")
    }

    @Test func theAgentCancelsItsCallAtTheServer() throws {
        let door = try Door(policy: Self.everything)
        let started = Date()
        let answers = try Self.exchange(
            door,
            [
                #"{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "fs__hang", "arguments": {"seconds": 15}}}"#,
                Self.pause,
                #"{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5, "reason": "changed my mind"}}"#,
                #"{"jsonrpc": "2.0", "id": 6, "method": "ping"}"#,
            ])
        #expect(
            answers.count == 1 && answers.first?.contains(#""id":6"#) == true,
            "the cancelled call is not answered: \(answers)")
        #expect(Date().timeIntervalSince(started) < 12, "the gateway did not wait for the cancelled call")
        let results = try door.events("tool.result")
        #expect(
            results.contains { $0["tool"] == "fs__hang" && $0["error"]?.contains("cancelled") == true }, "\(results)")
    }

    @Test func aHundredMegabyteMessageIsRefusedWithoutBeingRead() throws {
        let door = try Door(policy: Self.everything)
        let huge =
            #"{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "fs__write_file", "arguments": {"path": "/work/x", "text": ""#
            + String(repeating: "a", count: 100 << 20) + #""}}}"#
        let answers = try Self.exchange(
            door,
            [
                #"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#, huge,
                #"{"jsonrpc": "2.0", "id": 3, "method": "ping"}"#,
            ])
        #expect(answers.count == 3, "\(answers.map { $0.prefix(200) })")
        #expect(
            answers.contains { $0.contains("-32600") && $0.contains("not read") }, "\(answers.map { $0.prefix(200) })")
        #expect(answers.contains { $0.contains(#""id":3"#) && $0.contains(#""result":{}"#) }, "the gateway goes on")
        #expect(
            try door.events("decision").filter { $0["tool"] == "fs__write_file" }.isEmpty, "nothing was decided on it")
    }
}
