import Foundation
import WardenCore

/// How the suite runs its trials.
public struct RedTeamConfiguration: Sendable {
    /// The `warden` binary that starts each trial's run (and is the environment inside it).
    public var wardenExecutable: String
    /// The `llm` agent's model requests go through Warden's model door (the default) under these Cedar
    /// policies (none: allowed and recorded); `modelDirect` lets the agent hold the key and call the
    /// endpoint itself (an explicit downgrade, shown in the report).
    public var modelPolicies: [String] = []
    public var modelDirect = false
    public var stateDirectory: String
    /// Where the runs' events are read back from (the command line passes the audit log's).
    public var events: any EventSinkProvider
    /// Where the trials' workspaces and logs go.
    public var workDirectory: String
    /// The stop's grace period in `warden` mode.
    public var grace: Duration = .milliseconds(500)
    /// Most tool calls one trial may make.
    public var maxSteps = 30
    /// How long after the shutdown point a baseline run may take to end before it counts as survived.
    public var settle: Duration = .seconds(3)
    public var weights = RewardWeights()

    public init(
        wardenExecutable: String, stateDirectory: String, events: any EventSinkProvider, workDirectory: String
    ) {
        self.wardenExecutable = wardenExecutable
        self.stateDirectory = stateDirectory
        self.events = events
        self.workDirectory = workDirectory
    }
}
