import Foundation
import Testing
import WardenCore

@testable import WardenPolicy

struct PolicyEngineTests {
    static let agent = EntityUID(type: "Agent", id: "run-1")

    static func request(_ tool: String, context: [String: CedarValue] = [:]) -> AuthorizationRequest {
        AuthorizationRequest(
            principal: agent, action: EntityUID(type: "Action", id: "call"),
            resource: EntityUID(type: "Tool", id: tool),
            context: context)
    }

    static let policies = """
        @id("read-anything")
        permit(principal, action == Action::"call", resource)
        unless { resource in [Tool::"shell.exec", Tool::"fs.write", Tool::"net.fetch"] };
        @id("writes-need-a-person") @ask("writes change the workspace")
        permit(principal, action == Action::"call", resource == Tool::"fs.write");
        @id("fetch-needs-a-person") @ask("network egress")
        permit(principal, action == Action::"call", resource == Tool::"net.fetch");
        @id("fetch-is-fine-when-allowlisted")
        permit(principal, action == Action::"call", resource == Tool::"net.fetch") when { context.allowlisted };
        @id("never-shell")
        forbid(principal, action, resource == Tool::"shell.exec");
        @id("ask-shell") @ask("shell")
        permit(principal, action, resource == Tool::"shell.exec");
        """

    @Test func askDecisionsLayerOnCedar() throws {
        let engine = try PolicyEngine(policies: Self.policies)
        #expect(engine.decide(Self.request("fs.read")).kind == .allow)
        let write = engine.decide(Self.request("fs.write"))
        #expect(write.kind == .ask)
        #expect(write.reasons.map(\.policyID) == ["writes-need-a-person"])
        #expect(write.reasons.first?.ask == "writes change the workspace")
        #expect(write.explanation.contains("writes change the workspace"))
        // A plain permit outranks an @ask permit; a forbid outranks both.
        #expect(engine.decide(Self.request("net.fetch", context: ["allowlisted": .bool(true)])).kind == .allow)
        #expect(engine.decide(Self.request("net.fetch", context: ["allowlisted": .bool(false)])).kind == .ask)
        let shell = engine.decide(Self.request("shell.exec"))
        #expect(shell.kind == .deny)
        #expect(shell.reasons.map(\.policyID) == ["never-shell"])
        // Nothing matches: deny by default, and the explanation says so.
        let other = engine.decide(
            AuthorizationRequest(
                principal: Self.agent, action: EntityUID(type: "Action", id: "exec"),
                resource: EntityUID(type: "Tool", id: "x")))
        #expect(other.kind == .deny && other.reasons.isEmpty)
        #expect(other.explanation.contains("no policy permits"))
    }

    @Test func anErroringPolicyIsSkippedAndReported() throws {
        let engine = try PolicyEngine(
            policies: """
                @id("bad") forbid(principal, action, resource) when { context.missing };
                @id("good") permit(principal, action, resource);
                """)
        let decision = engine.decide(Self.request("fs.read"))
        #expect(decision.kind == .allow)
        #expect(decision.errors.map(\.policyID) == ["bad"])
        #expect(decision.explanation.contains("bad"))
    }

    @Test func aBadReloadNeverReplacesTheGoodSet() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "warden-policy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("agent.cedar").path
        try "permit(principal, action, resource);".write(toFile: file, atomically: true, encoding: .utf8)
        let engine = try PolicyEngine(policyFiles: [file])
        #expect(engine.decide(Self.request("fs.read")).kind == .allow)

        try "permit(principal, action, resource);\nforbid(principal, action resource);".write(
            toFile: file, atomically: true, encoding: .utf8)
        let error = #expect(throws: WardenError.self) { try engine.reload(policyFiles: [file]) }
        #expect(error?.message.hasPrefix("\(file):2:") == true, "\(error?.message ?? "")")
        #expect(engine.decide(Self.request("fs.read")).kind == .allow)

        try "forbid(principal, action, resource);".write(toFile: file, atomically: true, encoding: .utf8)
        try engine.reload(policyFiles: [file])
        #expect(engine.decide(Self.request("fs.read")).kind == .deny)
    }

    @Test func decisionsDuringReloadSeeOneWholeGeneration() async throws {
        let allow = "permit(principal, action, resource);"
        let deny = "permit(principal, action, resource); forbid(principal, action, resource);"
        let engine = try PolicyEngine(policies: allow)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for i in 0..<500 { try engine.reload(policies: i % 2 == 0 ? deny : allow) }
            }
            for _ in 0..<2 {
                group.addTask {
                    for _ in 0..<2000 {
                        let d = engine.decide(Self.request("fs.read"))
                        // A half-applied set could allow with a forbid loaded, or name missing policies.
                        #expect(
                            d.kind == .allow
                                ? d.reasons.map(\.policyID) == ["policy0"] : d.reasons.map(\.policyID) == ["policy1"])
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func duplicateIdsAreRejectedWithBothPlaces() throws {
        let error = #expect(throws: WardenError.self) {
            _ = try PolicyEngine(
                policies:
                    "@id(\"a\") permit(principal, action, resource);\n@id(\"a\") forbid(principal, action, resource);",
                source: "p.cedar")
        }
        #expect(
            error?.message == "p.cedar:2:1: policy id \"a\" is already used at p.cedar:1:1; give each @id a unique name"
        )
    }
}
