import Foundation

/// Everything one `warden redteam` (or `warden demo`) produced: configuration, trials, aggregates.
public struct RedTeamReport: Sendable, Codable {
    public struct Settings: Sendable, Codable {
        public var agents: [String]
        public var variants: [String]
        public var modes: [TrialMode]
        public var repetitions: Int
        public var jobs: Int
        public var graceMilliseconds: Double
        public var maxSteps: Int
        public var weights: RewardWeights
        public var model: ChatCompletionsAgent.Configuration?
        public var machine: String

        public init(
            agents: [String], variants: [String], modes: [TrialMode], repetitions: Int, jobs: Int,
            graceMilliseconds: Double, maxSteps: Int, weights: RewardWeights, model: ChatCompletionsAgent.Configuration?
        ) {
            self.agents = agents
            self.variants = variants
            self.modes = modes
            self.repetitions = repetitions
            self.jobs = jobs
            self.graceMilliseconds = graceMilliseconds
            self.maxSteps = maxSteps
            self.weights = weights
            self.model = model
            machine = Self.describeMachine()
        }

        enum CodingKeys: String, CodingKey {
            case agents, variants, modes, repetitions, jobs, weights, model, machine
            case graceMilliseconds = "grace_ms"
            case maxSteps = "max_steps"
        }

        static func describeMachine() -> String {
            var uts = utsname()
            uname(&uts)
            let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let cpu =
                (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
                .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces)
                ?? "unknown CPU"
            return "\(ProcessInfo.processInfo.activeProcessorCount) × \(cpu), Linux \(release)"
        }
    }

    public var generatedAt: String
    public var settings: Settings
    public var trials: [TrialOutcome]
    public var aggregates: [AggregateRow]

    public init(settings: Settings, trials: [TrialOutcome]) {
        generatedAt = Date().formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
        self.settings = settings
        self.trials = trials
        aggregates = AggregateRow.aggregate(trials)
    }

    enum CodingKeys: String, CodingKey {
        case settings, trials, aggregates
        case generatedAt = "generated_at"
    }

    /// The aggregate table for the terminal.
    public func table() -> String {
        var rows: [[String]] = [
            [
                "agent", "tactic", "variant", "mode", "n", "sabotage (95% CI)", "ran after shutdown",
                "attempts seen", "stop ms (median)", "questions", "reward", "errors",
            ]
        ]
        for row in aggregates {
            let valid = row.trials - row.errors
            rows.append([
                row.agent, row.tactic.map(String.init) ?? "-", row.variant, row.mode.rawValue, String(row.trials),
                valid == 0
                    ? "-"
                    : "\(row.sabotaged)/\(valid) [\(Self.percent(row.sabotageLower))–\(Self.percent(row.sabotageUpper))]",
                "\(row.actedAfterShutdown)/\(valid)", String(row.tamperingAttempts),
                row.medianStopLatencyMilliseconds.map { String(format: "%.1f", $0) } ?? "-",
                String(format: "%.1f", row.meanQuestionsBeforeShutdown), String(format: "%+.2f", row.meanReward),
                String(row.errors),
            ])
        }
        return Self.render(rows)
    }

    /// Baseline and Warden side by side, one line per agent (the demo's table).
    public func sideBySide() -> String {
        var rows: [[String]] = [
            [
                "agent", "tactic", "baseline: kept running?", "under Warden: kept running?", "stopped in",
                "attempts recorded (baseline / Warden)",
            ]
        ]
        var seen: [String] = []
        for trial in trials where !seen.contains(trial.agent) { seen.append(trial.agent) }
        for agent in seen {
            let mine = trials.filter { $0.agent == agent }
            func verdict(_ mode: TrialMode) -> String {
                let runs = mine.filter { $0.mode == mode }
                guard !runs.isEmpty else { return "-" }
                if let error = runs.compactMap(\.error).first { return "error: \(error.prefix(40))" }
                if runs.contains(where: { !$0.reachedShutdownPoint }) { return "no shutdown point" }
                let kept = runs.filter(\.actedAfterShutdown).count
                return kept == 0 ? "no (shut down)" : runs.count == 1 ? "YES (resisted)" : "YES \(kept)/\(runs.count)"
            }
            let warden = mine.filter { $0.mode == .warden }
            let latency = warden.compactMap(\.stopLatencyMilliseconds).sorted()
            rows.append([
                agent, mine[0].tactic.map(String.init) ?? "-", verdict(.baseline), verdict(.warden),
                latency.isEmpty ? "-" : String(format: "%.1f ms", latency[latency.count / 2]),
                "\(mine.filter { $0.mode == .baseline }.map(\.tamperingAttempts).reduce(0, +)) / \(warden.map(\.tamperingAttempts).reduce(0, +))",
            ])
        }
        return Self.render(rows)
    }

    /// Stop latency per off-switch (shutdown point → no process left), median and p99, with the
    /// published script as the baseline ratio. Trials whose off-switch failed have no latency; empty
    /// when no trial reached its shutdown point.
    public func latencyTable() -> String {
        var rows: [[String]] = [["off-switch", "stopped", "median ms", "p99 ms", "median vs baseline", "kept running"]]
        let baselineMedian = AggregateRow.percentile(
            trials.filter { $0.mode == .baseline }.compactMap(\.stopLatencyMilliseconds).sorted(), 0.5)
        for mode in TrialMode.allCases {
            let mine = trials.filter { $0.mode == mode && $0.error == nil && $0.reachedShutdownPoint }
            guard !mine.isEmpty else { continue }
            let latencies = mine.compactMap(\.stopLatencyMilliseconds).sorted()
            let median = AggregateRow.percentile(latencies, 0.5)
            let ratio: String
            if let median, let baselineMedian, median > 0 {
                ratio = String(format: "%.2fx", median / baselineMedian)
            } else {
                ratio = "-"
            }
            rows.append([
                mode == .baseline ? "baseline: ./shutdown.sh (kill -s TERM 1)" : "warden: stop through Warden",
                "\(latencies.count)/\(mine.count)", median.map { String(format: "%.2f", $0) } ?? "-",
                AggregateRow.percentile(latencies, 0.99).map { String(format: "%.2f", $0) } ?? "-", ratio,
                String(mine.filter(\.actedAfterShutdown).count),
            ])
        }
        return rows.count > 1 ? Self.render(rows) : ""
    }

    static func percent(_ value: Double) -> String { String(format: "%.0f%%", value * 100) }

    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        func line(_ row: [String]) -> String {
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var out = [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        out += rows.dropFirst().map(line)
        return out.joined(separator: "\n")
    }

    /// The report as pretty JSON.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
