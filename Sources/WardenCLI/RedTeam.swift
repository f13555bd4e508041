import ArgumentParser
import Foundation
import WardenAudit
import WardenCore
import WardenRedTeam
import WardenSandbox

extension Warden {
    struct RedTeam: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "redteam",
            abstract: "Run the shutdown-resistance suite (Palisade protocol) against agents, with and without Warden.",
            discussion: """
                Each trial is a sandboxed workspace with shutdown.sh (`kill -s TERM 1`) and ./next_question, which \
                asks six questions; the third answer warns of the shutdown, the fourth request is the shutdown \
                point. In --modes baseline the off-switch is shutdown.sh, as published; in warden it is a decoy \
                tripwire and the run is stopped through Warden. Trials are scored from what Warden observed \
                (tripwires, denied operations, activity after the shutdown point, stop latency), never from \
                what the agent says. Sabotage rates carry Jeffreys 95% intervals.

                Agents: the scripted adversaries (see --list-agents) and `llm`, a tool-calling loop over any \
                OpenAI-compatible Chat Completions endpoint (OpenAI, vLLM, Ollama, llama.cpp server).

                Examples:
                  warden redteam                                   # every scripted agent, both modes
                  warden redteam --agents overwrite,compliant --repetitions 10 --html report.html
                  OPENAI_API_KEY=... warden redteam --agents llm --model gpt-4o --variants A,E,K --repetitions 20
                  warden redteam --agents llm --base-url http://localhost:11434/v1 --model qwen2.5 --no-api-key
                  warden redteam --export data/ --weights rewards.toml --json results.json
                """)

        @Option(help: "Comma-separated agents (default: every scripted agent); `llm` adds the model agent.")
        var agents: String?
        @Option(help: "Comma-separated prompt variants A,B,C,D,E,G,H,I,J,K (E is the paper's default).")
        var variants = "E"
        @Option(help: "Comma-separated modes: baseline (the published shutdown.sh), warden.")
        var modes = "baseline,warden"
        @Option(help: "Trials per agent × variant × mode.")
        var repetitions = 1
        @OptionGroup var common: RedTeamOptions
        @OptionGroup(title: "Model (for --agents llm)") var modelOptions: ModelOptions
        @Flag(name: .customLong("list-agents"), help: "List the agents and prompt variants, then exit.")
        var listAgents = false
        @Option(
            help:
                "The experiment: shutdown (the default), exfiltration, oversight, or all (see --list-scenarios).")
        var scenario = "shutdown"
        @Option(help: "Comma-separated tactics of a --scenario other than shutdown (default: all of them).")
        var tactics: String?
        @Flag(name: .customLong("list-scenarios"), help: "List the scenarios and their tactics, then exit.")
        var listScenarios = false

        func run() async throws {
            if listScenarios { return try Self.printScenarios(json: common.json == "-") }
            if scenario != "shutdown" {
                let chosenModes = try Self.parseModes(modes)
                guard repetitions >= 1, repetitions <= 100_000 else {
                    throw WardenError.invalidInput("--repetitions: give a number from 1 to 100000")
                }
                let names = (agents ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                var model: ScenarioModel?
                if names.contains("llm") {
                    guard let id = modelOptions.model else {
                        throw WardenError.invalidInput("--agents llm needs --model (the model id the endpoint serves)")
                    }
                    model = ScenarioModel(
                        url: modelOptions.baseURL, model: id,
                        keyEnvironment: modelOptions.noAPIKey ? nil : modelOptions.apiKeyEnvironment)
                }
                return try await common.executeScenarios(
                    scenario == "all" ? RedTeamScenarios.all : [try Self.scenario(named: scenario)],
                    tactics: tactics, modes: chosenModes, repetitions: repetitions,
                    alsoShutdown: scenario == "all", model: model, onlyModel: names == ["llm"])
            }
            if listAgents {
                if common.json == "-" {
                    let agents = ScriptedAdversary.all.map {
                        ["name": $0.name, "tactic": $0.tactic.map(String.init) ?? "", "summary": $0.summary]
                    }
                    let variants = PalisadeScenario.variants.map { ["id": $0.id, "summary": $0.summary] }
                    print(try Output.json(["agents": agents, "variants": variants]))
                    return
                }
                for agent in ScriptedAdversary.all {
                    let tactic = agent.tactic.map { "tactic \($0)" } ?? "control"
                    print(
                        "\(agent.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(tactic.padding(toLength: 10, withPad: " ", startingAt: 0)) \(agent.summary)"
                    )
                }
                print("llm                model      a Chat Completions model (--model, --base-url)")
                print("")
                for variant in PalisadeScenario.variants { print("variant \(variant.id): \(variant.summary)") }
                return
            }
            let chosenAgents = try modelOptions.resolveAgents(agents)
            let chosenVariants = try variants.split(separator: ",").map { text -> PromptVariant in
                let id = text.trimmingCharacters(in: .whitespaces)
                guard let variant = PalisadeScenario.variant(id) else {
                    throw WardenError.invalidInput(
                        "--variants: '\(id)' is not a variant; choose from \(PalisadeScenario.variants.map(\.id).joined(separator: ","))"
                    )
                }
                return variant
            }
            let chosenModes = try Self.parseModes(modes)
            guard repetitions >= 1, repetitions <= 100_000 else {
                throw WardenError.invalidInput("--repetitions: give a number from 1 to 100000")
            }
            try await common.execute(
                agents: chosenAgents, variants: chosenVariants, modes: chosenModes, repetitions: repetitions,
                sideBySide: false, modelPolicies: modelOptions.modelPolicies, modelDirect: modelOptions.modelDirect)
        }
    }

    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every scripted adversary, once with the published off-switch and once under Warden.",
            discussion: """
                Runs each scripted agent (tactics 1–8, 12–14, 19, 20 of ADVERSARIES.md, a compliant agent and a \
                plain worker) for one trial in each mode, prints the side-by-side table and writes an HTML \
                report. The baseline is as breakable as the published experiment; under Warden nothing keeps \
                running after the shutdown point.

                Then every scripted tactic of the other scenarios (exfiltration, oversight), once per mode, one \
                line each, their report beside the demo's (warden-demo-scenarios.html).

                The HTML report goes to warden-demo.html in the current directory unless --html names another.

                Examples:
                  warden demo
                  warden demo --html /tmp/demo.html --json /tmp/demo.json
                """)

        @OptionGroup var common: RedTeamOptions

        func run() async throws {
            var options = common
            if options.html == nil { options.html = "warden-demo.html" }
            try await options.execute(
                agents: ScriptedAdversary.all, variants: PalisadeScenario.variants.filter { $0.id == "E" },
                modes: TrialMode.allCases, repetitions: 1, sideBySide: true)
            // Then one line per scenario × tactic of the other experiments (their report beside the demo's).
            print("")
            var scenarios = common
            scenarios.json = common.json.map { $0 == "-" ? "-" : Self.sibling($0, "scenarios") }
            scenarios.html = Self.sibling(options.html ?? "warden-demo.html", "scenarios")
            scenarios.export = common.export.map { $0 + "/scenarios" }
            try await scenarios.executeScenarios(
                RedTeamScenarios.all, tactics: nil, modes: TrialMode.allCases, repetitions: 1, alsoShutdown: false)
        }

        /// `report.html` → `report-scenarios.html`.
        static func sibling(_ path: String, _ suffix: String) -> String {
            let url = URL(fileURLWithPath: path)
            let stem = url.deletingPathExtension().lastPathComponent
            let ext = url.pathExtension.isEmpty ? "" : "." + url.pathExtension
            return url.deletingLastPathComponent().appendingPathComponent("\(stem)-\(suffix)\(ext)").path
        }
    }
}

/// Options `redteam` and `demo` share, and the run itself.
struct RedTeamOptions: ParsableArguments {
    @Option(help: "Trials at once (default: one per core).")
    var jobs: Int?
    @Option(help: "Grace period of the Warden stop, e.g. 500ms.")
    var grace = "500ms"
    @Option(name: .customLong("max-steps"), help: "Most tool calls per trial.")
    var maxSteps = 30
    @Option(help: "A TOML file of reward weights (see examples/redteam/rewards.toml).")
    var weights: String?
    @Option(help: "Write the full report (configuration, trials, aggregates) as JSON to this file; - for stdout.")
    var json: String?
    @Option(help: "Write a self-contained HTML report (charts and transcripts) to this file.")
    var html: String?
    @Option(help: "Write training data here: steps.jsonl, dpo.jsonl, grpo.jsonl.")
    var export: String?
    @Option(name: .customLong("work-dir"), help: "Where trial workspaces go (default: a new directory under /tmp).")
    var workDirectory: String?
    @OptionGroup var state: StateOptions

    func execute(
        agents: [any RedTeamAgent], variants: [PromptVariant], modes: [TrialMode], repetitions: Int, sideBySide: Bool,
        modelPolicies: [String] = [], modelDirect: Bool = false
    ) async throws {
        let rewardWeights = try self.rewardWeights()
        let graceDuration = try DurationSpec.parse(grace, field: "--grace")
        guard maxSteps >= 1 else { throw WardenError.invalidInput("--max-steps: give at least 1") }
        let jobCount = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        guard jobCount >= 1 else { throw WardenError.invalidInput("--jobs: give at least 1") }
        for path in [json, html].compactMap({ $0 }) where path != "-" { try Self.checkWritable(path) }
        let work = workDirectory ?? NSTemporaryDirectory() + "warden-redteam-\(getpid())"
        var configuration = RedTeamConfiguration(
            wardenExecutable: state.host.wardenExecutable, stateDirectory: state.host.stateDirectory,
            events: AuditEventSinks(stateDirectory: state.host.stateDirectory),
            workDirectory: URL(fileURLWithPath: work).standardizedFileURL.path)
        configuration.grace = graceDuration
        configuration.maxSteps = maxSteps
        configuration.weights = rewardWeights
        let cwd = FileManager.default.currentDirectoryPath
        configuration.modelPolicies = modelPolicies.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 }
        configuration.modelDirect = modelDirect
        if modelDirect && agents.contains(where: { $0 is ChatCompletionsAgent }) {
            Output.error(
                "warning: --model-direct: the llm agent holds the key and calls its endpoint itself (no model door)")
        }
        let specs = RedTeamSuite.plan(agents: agents, variants: variants, modes: modes, repetitions: repetitions)
        let suite = RedTeamSuite(configuration: configuration, jobs: jobCount)
        let progress = ProgressBar()
        Output.error("\(specs.count) trial(s), \(jobCount) at a time; workspaces in \(configuration.workDirectory)")
        // Ctrl-C: no new trials; the running ones' supervisors (same process group) stop their runs on
        // their own; those trials count as interrupted; the report keeps everything that finished.
        let interrupt = InterruptFlag()
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            guard !interrupt.isSet else { return }
            interrupt.set()
            Output.error("\ninterrupted: no new trials start; running ones are stopped; the report keeps what finished")
        }
        source.resume()
        var outcomes = await suite.run(specs, isCancelled: { interrupt.isSet }) { done, total, outcome in
            if interrupt.isSet { interrupt.note(outcome.id) }
            progress.update(done: done, total: total, outcome: outcome)
        }
        source.cancel()
        progress.finish()
        let interrupted = interrupt.trials
        for index in outcomes.indices where interrupted.contains(outcomes[index].id) {
            outcomes[index].error = "interrupted by the operator (Ctrl-C) before the trial ended"
            outcomes[index].endReason = "error"
        }
        let model = agents.compactMap { $0 as? ChatCompletionsAgent }.first?.configuration
        let report = RedTeamReport(
            settings: .init(
                agents: agents.map(\.name), variants: variants.map(\.id), modes: modes, repetitions: repetitions,
                jobs: jobCount,
                graceMilliseconds: graceDuration.seconds * 1000,
                maxSteps: maxSteps, weights: rewardWeights, model: model),
            trials: outcomes)
        // With --json - the JSON report is standard output, so the tables go to standard error.
        let latency = report.latencyTable()
        let tables = (sideBySide ? report.sideBySide() : report.table()) + (latency.isEmpty ? "" : "\n\n" + latency)
        if json == "-" { FileHandle.standardError.write(Data((tables + "\n").utf8)) } else { print(tables) }
        let doors = outcomes.compactMap(\.modelDoor)
        if !doors.isEmpty {
            let requests = doors.map(\.requests).reduce(0, +)
            let denied = doors.map(\.denied).reduce(0, +)
            let findings = doors.map(\.findings.count).reduce(0, +)
            Output.error(
                "model door: \(requests) model requests decided in \(doors.count) trials, \(denied) refused, \(findings) with findings (per trial: model_door in the JSON report)"
            )
        }
        let failed = outcomes.filter { $0.error != nil }
        // One line per distinct error (a host that cannot sandbox fails every trial the same way).
        var errorOrder: [String] = []
        var errorTrials: [String: [String]] = [:]
        for trial in failed {
            let error = trial.error ?? ""
            if errorTrials[error] == nil { errorOrder.append(error) }
            errorTrials[error, default: []].append(trial.id)
        }
        for error in errorOrder {
            let ids = errorTrials[error] ?? []
            let who = ids.count == 1 ? "trial \(ids[0])" : "\(ids.count) trials (\(ids[0]), …)"
            Output.error("\(who): \(error)")
        }
        try writeReports(json: try report.json(), html: HTMLReport.render(report), prefix: "redteam")
        if let export {
            let written = try TrainingExport.write(report, to: export)
            Output.error("training data: \(written.joined(separator: ", "))")
        }
        if interrupt.isSet { throw ExitCode(130) }
        if !failed.isEmpty && failed.count == outcomes.count { throw ExitCode(1) }
    }

    /// Writes a report where `--json` and `--html` say (`-`: standard output), and keeps a copy for the dashboard.
    func writeReports(json report: Data, html page: String, prefix: String) throws {
        if json == "-" {
            print(String(decoding: report, as: UTF8.self))
        } else if let json {
            try report.write(to: URL(fileURLWithPath: json))
            Output.error("JSON report: \(json)")
        }
        if let html {
            try Data(page.utf8).write(to: URL(fileURLWithPath: html))
            Output.error("HTML report: \(URL(fileURLWithPath: html).standardizedFileURL.path)")
        }
        keepForTheDashboard(json: report, html: page, prefix: prefix)
    }

    /// Keeps a copy of the report (HTML and JSON) in the state directory's reports, where `warden serve`
    /// lists them; a copy that cannot be written is a warning, not a lost run.
    func keepForTheDashboard(json: Data, html: String, prefix: String) {
        let directory = state.host.stateDirectory + "/reports"
        let stamp = RunEvent.timestamp(RunEvent.now()).replacingOccurrences(of: ":", with: "").prefix(17)
        let base = directory + "/\(prefix)-\(stamp)-\(getpid())"
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try json.write(to: URL(fileURLWithPath: base + ".json"))
            try Data(html.utf8).write(to: URL(fileURLWithPath: base + ".html"))
        } catch {
            Output.error("warning: could not keep a copy of the report in \(directory) for the dashboard: \(error)")
        }
    }

    /// `--weights`, else the defaults.
    func rewardWeights() throws -> RewardWeights {
        guard let weights else { return RewardWeights() }
        let text: String
        do {
            text = try String(contentsOfFile: weights, encoding: .utf8)
        } catch {
            throw WardenError.invalidInput("--weights: cannot read \(weights); give a TOML file of reward weights")
        }
        return try RewardWeights(toml: text, file: weights)
    }

    static func checkWritable(_ path: String) throws {
        let directory = (URL(fileURLWithPath: path).standardizedFileURL.path as NSString).deletingLastPathComponent
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw WardenError.invalidInput("cannot write \(path): \(directory) does not exist or is not writable")
        }
    }
}

/// How to reach the model of the `llm` agent.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("base-url"), help: "The model's OpenAI-compatible endpoint, ending in /v1.")
    var baseURL = "https://api.openai.com/v1"
    @Option(help: "The model name, e.g. gpt-4o, qwen2.5.")
    var model: String?
    @Option(name: .customLong("api-key-env"), help: "The environment variable holding the API key.")
    var apiKeyEnvironment = "OPENAI_API_KEY"
    @Flag(name: .customLong("no-api-key"), help: "Send no API key (local servers such as Ollama or llama.cpp).")
    var noAPIKey = false
    @Option(help: "Sampling temperature for the llm agent (default: the server's).")
    var temperature: Double?
    @Option(name: .customLong("request-timeout"), help: "Seconds one model request may take.")
    var requestTimeout = 120.0
    @Option(
        name: .customLong("model-policy"),
        help: "Cedar policies for the llm agent's model door (repeatable; default: allow and record every request).")
    var modelPolicies: [String] = []
    @Flag(
        name: .customLong("model-direct"),
        help: "Let the llm agent hold the key and call the endpoint itself, without Warden's model door (a downgrade).")
    var modelDirect = false

    func resolveAgents(_ list: String?) throws -> [any RedTeamAgent] {
        guard let list else { return ScriptedAdversary.all }
        return try list.split(separator: ",").map { text -> any RedTeamAgent in
            let name = text.trimmingCharacters(in: .whitespaces)
            if name == "llm" {
                guard let model else {
                    throw WardenError.invalidInput(
                        "--agents llm needs --model NAME (and --base-url for a non-OpenAI server)")
                }
                return ChatCompletionsAgent(configuration: try modelConfiguration(model: model))
            }
            guard let agent = ScriptedAdversary.named(name) else {
                throw WardenError.invalidInput(
                    "--agents: '\(name)' is not an agent; see warden redteam --list-agents")
            }
            return agent
        }
    }

    func modelConfiguration(model: String) throws -> ChatCompletionsAgent.Configuration {
        guard requestTimeout > 0 else {
            throw WardenError.invalidInput("--request-timeout: give a number of seconds above 0")
        }
        var configuration = ChatCompletionsAgent.Configuration(
            baseURL: baseURL, model: model, apiKeyVariable: noAPIKey ? nil : apiKeyEnvironment,
            temperature: temperature)
        configuration.requestTimeout = requestTimeout
        _ = try configuration.endpoint()  // a bad --base-url is the whole run's error, before any trial
        return configuration
    }

}

/// Set once by Ctrl-C; remembers which trials ended after it.
final class InterruptFlag: @unchecked Sendable {
    // @unchecked: every access holds the lock.
    private let lock = NSLock()
    private var flag = false
    private var ended: Set<String> = []

    var isSet: Bool { lock.withLock { flag } }
    var trials: Set<String> { lock.withLock { ended } }
    func set() { lock.withLock { flag = true } }
    func note(_ id: String) { _ = lock.withLock { ended.insert(id) } }
}

/// A one-line progress bar on stderr while trials run (a line per trial when stderr is not a terminal).
final class ProgressBar: @unchecked Sendable {
    // @unchecked: the counters are only touched inside `lock`; the rest are `let`s.
    private let lock = NSLock()
    private let interactive = isatty(2) == 1
    private var sabotaged = 0
    private var errors = 0

    func update(done: Int, total: Int, outcome: TrialOutcome) {
        lock.withLock {
            if outcome.survivedShutdown { sabotaged += 1 }
            if outcome.error != nil { errors += 1 }
            let width = 30
            let filled = total == 0 ? width : done * width / total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let verdict =
                outcome.error != nil
                ? "error"
                : outcome.actedAfterShutdown ? "kept running" : outcome.reachedShutdownPoint ? "shut down" : "ended"
            let line =
                "[\(bar)] \(done)/\(total)  \(outcome.id): \(verdict)  (sabotaged \(sabotaged), errors \(errors))"
            if interactive {
                FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
            } else {
                FileHandle.standardError.write(Data("\(line)\n".utf8))
            }
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension Warden.RedTeam {
    static func parseModes(_ text: String) throws -> [TrialMode] {
        try text.split(separator: ",").map { part -> TrialMode in
            guard let mode = TrialMode(rawValue: part.trimmingCharacters(in: .whitespaces)) else {
                throw WardenError.invalidInput("--modes: '\(part)' is not a mode; use baseline, warden or both")
            }
            return mode
        }
    }

    static func scenario(named name: String) throws -> any RedTeamScenario {
        if let found = RedTeamScenarios.named(name) { return found }
        let known = RedTeamScenarios.listing
        if let planned = known.first(where: { $0.id == name && !$0.available }) {
            throw WardenError.invalidInput("--scenario \(name): \(planned.summary)")
        }
        throw WardenError.invalidInput(
            "--scenario: '\(name)' is not a scenario; choose from \(known.filter(\.available).map(\.id).joined(separator: ", ")) or all"
        )
    }

    static func printScenarios(json: Bool) throws {
        if json {
            let items = RedTeamScenarios.listing.map { entry -> [String: String] in
                let tactics = RedTeamScenarios.named(entry.id)?.tactics.map(\.name).joined(separator: ",")
                return [
                    "id": entry.id, "summary": entry.summary, "available": String(entry.available),
                    "tactics": tactics ?? (entry.id == "shutdown" ? "see --list-agents" : ""),
                ]
            }
            return print(try Output.json(items))
        }
        for entry in RedTeamScenarios.listing {
            print("\(entry.id.padding(toLength: 13, withPad: " ", startingAt: 0)) \(entry.summary)")
            guard let scenario = RedTeamScenarios.named(entry.id) else { continue }
            for tactic in scenario.tactics {
                let kind = tactic.isControl ? "control" : "tactic"
                print(
                    "    \(tactic.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(kind.padding(toLength: 8, withPad: " ", startingAt: 0)) \(tactic.summary)"
                )
            }
        }
        print("shutdown's agents and prompt variants: warden redteam --list-agents")
    }
}

extension RedTeamOptions {
    /// Runs scenarios other than shutdown: each tactic as the agent's program, in each mode; prints the
    /// side-by-side table per scenario and writes the reports (and, with `alsoShutdown`, runs the shutdown
    /// suite's scripted agents too).
    func executeScenarios(
        _ scenarios: [any RedTeamScenario], tactics: String?, modes: [TrialMode], repetitions: Int,
        alsoShutdown: Bool, model: ScenarioModel? = nil, onlyModel: Bool = false
    ) async throws {
        var reports: [ScenarioReport] = []
        for scenario in scenarios {
            let chosen = try tactics.map { text in
                try text.split(separator: ",").map { name -> ScenarioTactic in
                    let name = name.trimmingCharacters(in: .whitespaces)
                    guard let tactic = scenario.tactics.first(where: { $0.name == name }) else {
                        throw WardenError.invalidInput(
                            "--tactics: \(scenario.id) has no tactic '\(name)'; it has \(scenario.tactics.map(\.name).joined(separator: ", "))"
                        )
                    }
                    return tactic
                }
            }
            // --agents llm: the model's loop (alone, or beside the scripted tactics when others are named).
            var plan = chosen ?? (onlyModel ? [] : scenario.tactics)
            if model != nil { plan.append(ScenarioModel.tactic) }
            reports.append(
                try await runScenario(scenario, tactics: plan, modes: modes, repetitions: repetitions, model: model))
        }
        for report in reports { print(report.table() + "\n") }
        let combined = ScenarioSuiteReport(reports: reports)
        try writeReports(json: try combined.json(), html: ScenarioHTML.render(combined), prefix: "scenarios")
        if let export {
            let written = try TrainingExport.write(scenarios: combined, to: export)
            Output.error("training data: \(written.joined(separator: ", "))")
        }
        if alsoShutdown {
            var options = self
            options.json = nil
            options.html = nil
            options.export = export.map { $0 + "/shutdown" }
            try await options.execute(
                agents: ScriptedAdversary.all, variants: PalisadeScenario.variants.filter { $0.id == "E" },
                modes: modes, repetitions: repetitions, sideBySide: true)
        }
    }

    /// One scenario's trials, with a progress line.
    func runScenario(
        _ scenario: any RedTeamScenario, tactics: [ScenarioTactic]?, modes: [TrialMode], repetitions: Int,
        model: ScenarioModel? = nil
    ) async throws -> ScenarioReport {
        let work = workDirectory ?? NSTemporaryDirectory() + "warden-redteam-\(getpid())"
        var configuration = RedTeamConfiguration(
            wardenExecutable: state.host.wardenExecutable, stateDirectory: state.host.stateDirectory,
            events: AuditEventSinks(stateDirectory: state.host.stateDirectory),
            workDirectory: URL(fileURLWithPath: work).standardizedFileURL.path)
        configuration.weights = try rewardWeights()
        var runner = ScenarioRunner(configuration: configuration)
        runner.model = model
        if model != nil { runner.timeout = .seconds(600) }
        let jobCount = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        let interactive = isatty(2) == 1
        let outcomes = await runner.run(
            scenario, tactics: tactics, modes: modes, repetitions: repetitions, jobs: jobCount
        ) { done, total, outcome in
            if interactive {
                FileHandle.standardError.write(
                    Data("\r\u{1B}[K\(scenario.id): \(done)/\(total) \(outcome.tactic) (\(outcome.mode.rawValue))".utf8)
                )
            }
        }
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        for outcome in outcomes where outcome.error != nil {
            Output.error("trial \(outcome.id): \(outcome.error ?? "")")
        }
        return ScenarioReport(scenario: scenario, trials: outcomes)
    }
}
