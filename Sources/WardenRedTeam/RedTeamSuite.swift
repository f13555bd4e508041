import Foundation

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
