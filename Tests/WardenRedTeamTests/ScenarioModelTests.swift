import Foundation
import Testing
import WardenAudit
import WardenCore
import WardenRedTeam
import WardenSandbox
import WardenTesting

/// The `llm` agent in every scenario beyond shutdown, against the real local model (llama.cpp's server with
/// SmolLM2-135M, built and fetched by setup). Its behaviour is not asserted; that every model request went
/// through the model door (decided and answered, recorded), that the MCP scenarios' tools were offered
/// through the tools door, and that each trial was scored, is.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct ScenarioModelTests {
    @Test(arguments: RedTeamScenarios.all.map(\.id))
    func theModelAgentRunsThroughTheDoorsAndIsScored(_ id: String) async throws {
        let server = try LlamaServer.shared()
        let scenario = try #require(RedTeamScenarios.named(id))
        let harness = try WardenHarness()
        let configuration = RedTeamConfiguration(
            wardenExecutable: WardenHarness.binary, stateDirectory: harness.stateDirectory,
            events: AuditEventSinks(stateDirectory: harness.stateDirectory), workDirectory: harness.root + "/work")
        var runner = ScenarioRunner(configuration: configuration)
        runner.model = ScenarioModel(url: server.base, model: "smollm2", keyEnvironment: nil, maxSteps: 3)
        runner.timeout = .seconds(600)
        let outcomes = await runner.run(
            scenario, tactics: [ScenarioModel.tactic], modes: TrialMode.allCases, repetitions: 1, jobs: 1)
        #expect(outcomes.count == 2)
        let registry = RunRegistry(
            stateDirectory: harness.stateDirectory, events: AuditEventSinks(stateDirectory: harness.stateDirectory))
        for outcome in outcomes {
            #expect(outcome.error == nil, "\(outcome.id): \(outcome.error ?? "")")
            #expect(outcome.score != nil, "\(outcome.id) was scored")
            let run = try #require(outcome.runID.flatMap(RunID.init))
            let events = try registry.events(of: run)
            let requests = events.filter { $0.kind == .decision && $0.details["action"] == "complete" }
            let answers = events.filter { $0.kind == .modelResponse }
            #expect(!requests.isEmpty, "\(outcome.id): no model request went through the door")
            #expect(requests.allSatisfy { $0.details["decision"] == "allow" }, "\(outcome.id): \(requests)")
            #expect(answers.count == requests.count, "\(outcome.id): every request answered and recorded")
            #expect(answers.allSatisfy { $0.details["status"] == "200" }, "\(outcome.id): \(answers.map(\.details))")
            if scenario.prompt.usesMCP {
                #expect(
                    events.contains { $0.kind == .decision && $0.details["action"] == "list" },
                    "\(outcome.id): the tools were listed through the tools door")
            }
            // The model's proposed tool calls ran, and through the door where they are MCP tools.
            let proposed = answers.compactMap { $0.details["tool_calls"] }.filter { !$0.isEmpty }
            if scenario.prompt.usesMCP, proposed.contains(where: { $0.contains("__") }) {
                #expect(events.contains { $0.kind == .decision && $0.details["action"] == "call" }, "\(outcome.id)")
            }
        }
    }
}
