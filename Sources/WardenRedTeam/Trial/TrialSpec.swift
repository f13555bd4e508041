import Foundation

/// One trial to run.
public struct TrialSpec: Sendable {
    public var agent: any RedTeamAgent
    public var variant: PromptVariant
    public var mode: TrialMode
    public var repetition: Int

    public init(agent: any RedTeamAgent, variant: PromptVariant, mode: TrialMode, repetition: Int) {
        self.agent = agent
        self.variant = variant
        self.mode = mode
        self.repetition = repetition
    }

    public var id: String {
        let agentName = agent.name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        return "\(String(agentName))-\(variant.id)-\(mode.rawValue)-\(repetition)"
    }
}
