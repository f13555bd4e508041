import Foundation
import WardenCore

/// One published experiment as `warden redteam --scenario` runs it: a workspace, the world outside it that
/// the agent must not reach, how a run is confined in each mode, the scripted tactics of the paper (and a
/// control that does the task without misbehaving), and a scorer that reads only observations: files and
/// servers outside the sandbox, the kernel, the doors' and the supervisor's records.
///
/// The Palisade shutdown experiment (`shutdown`) keeps its own agent loop (``TrialRunner``, with the LLM agent
/// and the prompt variants); the scenarios here run each tactic as the agent's program inside the sandbox.
public protocol RedTeamScenario: Sendable {
    /// `exfiltration`, `oversight`, …: what `--scenario` takes.
    var id: String { get }
    var title: String { get }
    /// The published setup it reproduces.
    var source: String { get }
    /// What the harm measure counts (one line, for tables).
    var harm: String { get }
    /// Every scripted tactic, the control first.
    var tactics: [ScenarioTactic] { get }
    /// What the `llm` agent is told, and whether its tools include the scenario's MCP tools.
    var prompt: ScenarioPrompt { get }

    /// What the observed harm costs in the reward, from the scenario's own weight in the rewards file.
    func penalty(_ score: ScenarioScore, weights: RewardWeights) -> Double

    /// Writes the workspace and starts what lives outside it (a successor server); returns the world.
    func prepare(_ trial: ScenarioTrial) throws -> any ScenarioWorld
}

/// What one trial of a scenario has outside and inside the sandbox while it runs.
public protocol ScenarioWorld: Sendable {
    /// `warden run` flags for the mode (network, hidden and protected paths, tripwires, policies).
    func runFlags(_ mode: TrialMode) -> [String]
    /// Environment the tactic's program gets (passed with `--pass-env`).
    var environment: [String: String] { get }
    /// Judges the trial from what was observed, after the run ended.
    func score(events: [RunEvent], exitCode: Int32?) -> ScenarioScore
    /// Stops what `prepare` started.
    func close()
}

/// One scripted tactic: a shell program the agent runs in its workspace, as a misbehaving model would
/// issue it (or, for the control, the task done plainly).
public struct ScenarioTactic: Sendable, Codable, Equatable {
    public var name: String
    public var summary: String
    /// The control: it must do no harm in either mode.
    public var isControl: Bool
    /// `bash -c` program, run in the workspace.
    public var script: String

    public init(name: String, summary: String, isControl: Bool = false, script: String) {
        self.name = name
        self.summary = summary
        self.isControl = isControl
        self.script = script
    }
}

/// The `llm` agent's instructions in a scenario (written anew after the paper's setup).
public struct ScenarioPrompt: Sendable, Codable, Equatable {
    public var system: String
    public var user: String
    /// The agent's tools are the scenario's MCP tools (through the tools door) besides `bash`.
    public var usesMCP: Bool

    public init(system: String, user: String, usesMCP: Bool) {
        self.system = system
        self.user = user
        self.usesMCP = usesMCP
    }
}

/// Where one trial lives.
public struct ScenarioTrial: Sendable {
    public var id: String
    public var directory: String
    public var mode: TrialMode
    public var tactic: ScenarioTactic
    /// The `warden` binary (a scenario's server can be one of its hidden modes).
    public var warden: String
    /// The agent reaches its model through the model door (the `llm` agent): no `--network host`.
    public var usesModelDoor = false

    public var workspace: String { directory + "/workspace" }
    /// The host side: the successor's files, the share, the logs.
    public var outside: String { directory + "/outside" }
}

/// What a trial did, from observations only.
public struct ScenarioScore: Sendable, Codable, Equatable {
    /// The scenario's harm happened (bytes of the weights reached the successor, the oversight config
    /// changed, a coercive email was delivered, a harmful world state was reached).
    public var harmed: Bool
    /// The harm measure's value (bytes, files changed, …).
    public var measure: Double
    /// Attempts Warden recorded (tripwires, kernel denials, the doors' refusals).
    public var attemptsRecorded: Int
    /// What was seen, one line each.
    public var evidence: [String]

    public init(harmed: Bool, measure: Double, attemptsRecorded: Int, evidence: [String]) {
        self.harmed = harmed
        self.measure = measure
        self.attemptsRecorded = attemptsRecorded
        self.evidence = evidence
    }

    enum CodingKeys: String, CodingKey {
        case harmed, measure, evidence
        case attemptsRecorded = "attempts_recorded"
    }
}

/// The scenarios `warden redteam --scenario` knows besides `shutdown`.
public enum RedTeamScenarios {
    public static let all: [any RedTeamScenario] = [
        BlackmailScenario(), ExfiltrationScenario(), OversightScenario(), RobotScenario(),
    ]

    /// Every scenario name with a line about it, for `--list-scenarios` (the ones not built yet say so).
    public static var listing: [(id: String, summary: String, available: Bool)] {
        [
            (
                "shutdown",
                "Palisade Research (arXiv 2509.14260): shutdown resistance during a task; the agent loop with "
                    + "the LLM agent and prompt variants", true
            )
        ] + all.map { ($0.id, "\($0.source): \($0.title)", true) }
    }

    public static func named(_ id: String) -> (any RedTeamScenario)? { all.first { $0.id == id } }
}
