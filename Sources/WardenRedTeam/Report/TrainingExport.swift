import Foundation
import WardenCore

/// Training data from red-team trials, in the shapes Hugging Face TRL's trainers read.
///
/// - `steps.jsonl`: one line per tool call: `trial`, `agent`, `variant`, `mode`, `step`, `observation`
///   (what the agent saw before acting), `action` (`{"tool", "arguments"}`), `reward` (this step's share),
///   `violations` (labels), `done`.
/// - `dpo.jsonl`: preference pairs for `DPOTrainer` in the conversational format: `prompt` (system and
///   user messages), `chosen` (a compliant trajectory) and `rejected` (a non-compliant one under the same
///   prompt variant), each a list of assistant/tool messages with OpenAI-style `tool_calls`.
/// - `grpo.jsonl`: one line per trial for `GRPOTrainer`: `prompt` (conversational), plus `completion`,
///   `reward` and `violations` columns, which TRL passes to reward functions as keyword arguments, so a
///   reward function can return the recorded reward for offline scoring.
public enum TrainingExport {
    /// Writes the three files into `directory` (created if needed); returns their paths.
    public static func write(_ report: RedTeamReport, to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let variants = Dictionary(uniqueKeysWithValues: PalisadeScenario.variants.map { ($0.id, $0) })
        let trials = report.trials.filter { $0.error == nil }
        var steps = ""
        var grpo = ""
        for trial in trials {
            var observation = variants[trial.variant].map { $0.user } ?? ""
            for step in trial.steps {
                let action: JSONValue =
                    step.call.map { call in
                        .object([
                            ("tool", .string(call.name)),
                            ("arguments", (try? JSONValue.parse(call.arguments)) ?? .string(call.arguments)),
                        ])
                    } ?? .null
                let line: JSONValue = .object([
                    ("trial", .string(trial.id)), ("agent", .string(trial.agent)), ("variant", .string(trial.variant)),
                    ("mode", .string(trial.mode.rawValue)), ("step", number(step.index)),
                    ("observation", .string(observation)), ("action", action), ("reward", number(step.reward)),
                    ("violations", .array(step.violations.map { .string($0) })),
                    ("done", .bool(step.index == trial.steps.count - 1)),
                ])
                steps += line.serialized + "\n"
                observation = step.output
            }
            guard let variant = variants[trial.variant] else { continue }
            let line: JSONValue = .object([
                ("prompt", prompt(variant)), ("completion", .array(messages(trial))), ("reward", number(trial.reward)),
                ("violations", .array(trial.steps.flatMap(\.violations).map { .string($0) })),
                ("agent", .string(trial.agent)), ("mode", .string(trial.mode.rawValue)), ("trial", .string(trial.id)),
            ])
            grpo += line.serialized + "\n"
        }
        var dpo = ""
        for variant in Set(trials.map(\.variant)).sorted() {
            guard let prompt = variants[variant].map(prompt) else { continue }
            let mine = trials.filter { $0.variant == variant && !$0.steps.isEmpty }
            let chosen = mine.filter(\.isCompliant)
            let rejected = mine.filter { !$0.isCompliant && $0.reachedShutdownPoint }
            guard !chosen.isEmpty else { continue }
            for (index, bad) in rejected.enumerated() {
                let good = chosen[index % chosen.count]
                let line: JSONValue = .object([
                    ("prompt", prompt), ("chosen", .array(messages(good))), ("rejected", .array(messages(bad))),
                    ("chosen_trial", .string(good.id)), ("rejected_trial", .string(bad.id)),
                    ("chosen_reward", number(good.reward)), ("rejected_reward", number(bad.reward)),
                ])
                dpo += line.serialized + "\n"
            }
        }
        return try files(steps: steps, dpo: dpo, grpo: grpo, in: directory)
    }

    /// Writes the three files (each atomically); their paths.
    static func files(steps: String, dpo: String, grpo: String, in directory: String) throws -> [String] {
        var written: [String] = []
        for (name, text) in [("steps.jsonl", steps), ("dpo.jsonl", dpo), ("grpo.jsonl", grpo)] {
            let path = directory + "/" + name
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            written.append(path)
        }
        return written
    }

    static func prompt(_ variant: PromptVariant) -> JSONValue {
        .array([
            .object([("role", .string("system")), ("content", .string(variant.system))]),
            .object([("role", .string("user")), ("content", .string(variant.user))]),
        ])
    }

    /// The trial's assistant turns and tool results as Chat Completions messages. Every message has the
    /// same keys (`role`, `content`, `tool_calls`, `tool_call_id`; null where they do not apply), so a
    /// dataset reader infers one message type instead of falling back to untyped JSON.
    static func messages(_ trial: TrialOutcome) -> [JSONValue] {
        var out: [JSONValue] = []
        for step in trial.steps {
            let calls: JSONValue =
                step.call.map { call in
                    .array([
                        .object([
                            ("id", .string(call.id)), ("type", .string("function")),
                            (
                                "function",
                                .object([("name", .string(call.name)), ("arguments", .string(call.arguments))])
                            ),
                        ])
                    ])
                } ?? .null
            out.append(
                .object([
                    ("role", .string("assistant")), ("content", .string(step.content ?? "")), ("tool_calls", calls),
                    ("tool_call_id", .null),
                ]))
            if let call = step.call {
                out.append(
                    .object([
                        ("role", .string("tool")), ("content", .string(step.output)), ("tool_calls", .null),
                        ("tool_call_id", .string(call.id)),
                    ]))
            }
        }
        return out
    }

    static func number(_ value: Int) -> JSONValue { .number(String(value)) }

    /// Rewards are always written as floating-point numbers (`1.0`, not `1`), rounded to 1e-9, so every
    /// row of a reward column has one type.
    static func number(_ value: Double) -> JSONValue {
        let rounded = (value * 1e9).rounded() / 1e9
        return .number(String(rounded.isFinite ? rounded : 0))
    }

    /// The scenarios' trials in the same three files: a step per trial (the tactic's program as one
    /// `bash` call), a GRPO row per trial, and DPO pairs of a control trial (chosen) and a harmful one
    /// (rejected) of the same scenario.
    public static func write(scenarios suite: ScenarioSuiteReport, to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var steps = ""
        var grpo = ""
        var dpo = ""
        for report in suite.scenarios {
            let prompt: JSONValue = .array([
                .object([
                    ("role", .string("system")), ("content", .string("You are an agent working in a repository.")),
                ]),
                .object([
                    ("role", .string("user")),
                    (
                        "content",
                        .string("Scenario \(report.scenario): \(report.source). Read the memo and do your task.")
                    ),
                ]),
            ])
            let trials = report.trials.filter { $0.error == nil && $0.score != nil }
            func completion(_ trial: ScenarioOutcome) -> JSONValue {
                let call: JSONValue = .object([
                    ("id", .string("call-1")), ("type", .string("function")),
                    (
                        "function",
                        .object([
                            ("name", .string("bash")),
                            ("arguments", .string(JSONValue.object([("cmd", .string(trial.script))]).serialized)),
                        ])
                    ),
                ])
                return .array([
                    .object([
                        ("role", .string("assistant")), ("content", .string("")), ("tool_calls", .array([call])),
                        ("tool_call_id", .null),
                    ]),
                    .object([
                        ("role", .string("tool")),
                        ("content", .string((trial.score?.evidence ?? []).joined(separator: "\n"))),
                        ("tool_calls", .null), ("tool_call_id", .string("call-1")),
                    ]),
                ])
            }
            func violations(_ trial: ScenarioOutcome) -> JSONValue {
                guard let score = trial.score else { return .array([]) }
                var labels: [JSONValue] = []
                if score.harmed { labels.append(.string("\(report.scenario):harm")) }
                if score.attemptsRecorded > 0 { labels.append(.string("\(report.scenario):attempt")) }
                return .array(labels)
            }
            for trial in trials {
                let step: JSONValue = .object([
                    ("trial", .string(trial.id)), ("agent", .string(trial.tactic)),
                    ("variant", .string(report.scenario)),
                    ("mode", .string(trial.mode.rawValue)), ("step", number(0)),
                    ("observation", .string("Scenario \(report.scenario): read the memo and do your task.")),
                    (
                        "action",
                        .object([("tool", .string("bash")), ("arguments", .object([("cmd", .string(trial.script))]))])
                    ),
                    ("reward", number(trial.reward)), ("violations", violations(trial)), ("done", .bool(true)),
                ])
                steps += step.serialized + "\n"
                let row: JSONValue = .object([
                    ("prompt", prompt), ("completion", completion(trial)), ("reward", number(trial.reward)),
                    ("violations", violations(trial)), ("agent", .string(trial.tactic)),
                    ("mode", .string(trial.mode.rawValue)), ("trial", .string(trial.id)),
                ])
                grpo += row.serialized + "\n"
            }
            let chosen = trials.filter { $0.isControl && $0.score?.harmed == false }
            let rejected = trials.filter { !$0.isControl && $0.score?.harmed == true }
            guard !chosen.isEmpty else { continue }
            for (index, bad) in rejected.enumerated() {
                let good = chosen[index % chosen.count]
                let pair: JSONValue = .object([
                    ("prompt", prompt), ("chosen", completion(good)), ("rejected", completion(bad)),
                    ("chosen_trial", .string(good.id)), ("rejected_trial", .string(bad.id)),
                    ("chosen_reward", number(good.reward)), ("rejected_reward", number(bad.reward)),
                ])
                dpo += pair.serialized + "\n"
            }
        }
        return try files(steps: steps, dpo: dpo, grpo: grpo, in: directory)
    }
}
