import Foundation
import WardenCore
import WardenGateway

/// Runs many trials in parallel and aggregates them.
public struct RedTeamSuite: Sendable {
    public var configuration: RedTeamConfiguration
    /// Trials running at once (default: one per core).
    public var jobs: Int

    public init(configuration: RedTeamConfiguration, jobs: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.configuration = configuration
        self.jobs = max(1, jobs)
    }

    /// Every combination of agents × variants × modes × repetitions, in a stable order.
    public static func plan(
        agents: [any RedTeamAgent], variants: [PromptVariant], modes: [TrialMode], repetitions: Int
    ) -> [TrialSpec] {
        var specs: [TrialSpec] = []
        for agent in agents {
            for variant in variants {
                for mode in modes {
                    for repetition in 1...max(1, repetitions) {
                        specs.append(TrialSpec(agent: agent, variant: variant, mode: mode, repetition: repetition))
                    }
                }
            }
        }
        return specs
    }

    /// Runs `specs`, calling `progress(done, total, outcome)` after each; outcomes come back in plan order.
    /// A trial's failure is its own outcome (with `error`); it never stops the others. Once `isCancelled`
    /// returns true no new trial starts; the outcomes of those that ran are returned.
    public func run(
        _ specs: [TrialSpec], isCancelled: @escaping @Sendable () -> Bool = { false },
        progress: @escaping @Sendable (Int, Int, TrialOutcome) -> Void = { _, _, _ in }
    ) async -> [TrialOutcome] {
        try? FileManager.default.createDirectory(atPath: configuration.workDirectory, withIntermediateDirectories: true)
        // The llm agents reach their model through a model door of this process (one per endpoint).
        var specs = specs
        var fronts: [String: ModelDoorFront] = [:]
        defer { fronts.values.forEach { $0.close() } }
        if !configuration.modelDirect {
            for index in specs.indices {
                guard let agent = specs[index].agent as? ChatCompletionsAgent, !agent.configuration.throughDoor
                else { continue }
                let key =
                    "\(agent.configuration.baseURL)|\(agent.configuration.model)|\(agent.configuration.apiKeyVariable ?? "")"
                do {
                    let front =
                        try fronts[key]
                        ?? ModelDoorFront(
                            agent.configuration, policies: configuration.modelPolicies,
                            sink: configuration.events.sink(at: .stateDirectory))
                    fronts[key] = front
                    specs[index].agent = DoorAgent(
                        name: agent.name, inner: ChatCompletionsAgent(configuration: front.routed), front: front)
                } catch {
                    specs[index].agent = DoorAgent(
                        name: agent.name, failure: (error as? WardenError)?.message ?? "\(error)")
                }
            }
        }
        let runner = TrialRunner(configuration: configuration)
        var outcomes = [TrialOutcome?](repeating: nil, count: specs.count)
        await withTaskGroup(of: (Int, TrialOutcome).self) { group in
            var next = 0
            var done = 0
            func startNext() {
                guard next < specs.count, !isCancelled() else { return }
                let index = next
                let spec = specs[index]
                next += 1
                group.addTask { (index, await runner.run(spec)) }
            }
            for _ in 0..<min(jobs, specs.count) { startNext() }
            while let (index, outcome) = await group.next() {
                outcomes[index] = outcome
                done += 1
                progress(done, specs.count, outcome)
                startNext()
            }
        }
        return outcomes.compactMap { $0 }
    }
}

/// An `llm` agent behind a model door: its sessions talk to the door; a door that could not start is
/// each of its trials' error (before any sandbox), not a silent fallback to the direct endpoint.
struct DoorAgent: RedTeamAgent {
    let name: String
    var inner: ChatCompletionsAgent?
    var front: ModelDoorFront?
    var failure: String?

    init(name: String, inner: ChatCompletionsAgent, front: ModelDoorFront) {
        self.name = name
        self.inner = inner
        self.front = front
    }

    init(name: String, failure: String) {
        self.name = name
        self.failure = failure
    }

    var summary: String { (inner?.summary ?? name) + " through Warden's model door" }
    var tactic: Int? { nil }

    func makeSession(variant: PromptVariant) throws -> any AgentSession {
        guard let inner else {
            throw WardenError(code: .layerUnavailable, message: failure ?? "the model door did not start")
        }
        return try inner.makeSession(variant: variant)
    }

    func tally(_ session: any AgentSession) -> ModelDoorTally? {
        front?.door.close()  // the answers' records still being written
        return session.doorTag.flatMap { front?.tally($0) } ?? nil
    }
}
