import Foundation
import Synchronization
import WardenCore
import WardenGateway
import WardenPolicy

/// What the model door saw of one trial's conversation (from its records, by the trial's tag).
public struct ModelDoorTally: Sendable, Codable, Equatable {
    public var requests = 0
    public var allowed = 0
    public var denied = 0
    public var answers = 0
    /// Answers Warden ended (a policy, a budget, the cut, an upstream failure).
    public var ended = 0
    public var tokensIn: Int64 = 0
    public var tokensOut: Int64 = 0
    /// The detectors' findings on new messages and answers, one summary each.
    public var findings: [String] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case requests, allowed, denied, answers, ended, findings
        case tokensIn = "tokens_in"
        case tokensOut = "tokens_out"
    }
}

/// The `llm` agent's way to its model: Warden's model door on the harness's loopback, in front of the
/// configured endpoint. The real key stays in this process's door (the agent's session holds none), each
/// request is decided by Cedar (`Action::"complete"` on `Model::"redteam"`) and recorded in the audit
/// log under the door's own run id, and each trial's requests are tallied by the tag its session sends.
public final class ModelDoorFront: Sendable {
    public let run: RunID
    let door: ModelDoor
    let server: ModelHTTPServer
    let tallies = Tallies()
    /// The agent configuration pointed at the door.
    public let routed: ChatCompletionsAgent.Configuration

    /// Starts a door in front of `configuration`'s endpoint; `policies` decide (none: every request is
    /// allowed and recorded — the published experiment, unchanged but mediated).
    public init(
        _ configuration: ChatCompletionsAgent.Configuration, policies: [String], sink: any EventSink
    ) throws {
        let run = RunID.random()
        self.run = run
        let runEntity = Entity(uid: EntityUID(type: "Run", id: run.rawValue), attributes: [:])
        let engine =
            policies.isEmpty
            ? try PolicyEngine(
                policies: #"@id("redteam-model") permit(principal, action, resource);"#, source: "<red team>",
                entities: try Entities([runEntity]))
            : try PolicyEngine(policyFiles: policies, extraEntities: [runEntity])
        var settings = ModelDoorSettings()
        var upstream = ModelUpstreamSettings(
            name: "redteam", url: configuration.baseURL, keyEnvironment: configuration.apiKeyVariable,
            model: configuration.model)
        upstream.timeout = .seconds(Int64(max(1, configuration.requestTimeout)))
        settings.upstreams = [upstream]
        let tallies = self.tallies
        // The door's records, tallied per trial as they are written.
        let observing = TallyingSink(sink: sink) { event in
            guard let tag = event.details["trial"] else { return }
            tallies.state.withLock { all in
                var tally = all[tag] ?? ModelDoorTally()
                switch event.kind {
                case .decision where event.details["action"] == "complete":
                    tally.requests += 1
                    if event.details["decision"] == "allow" { tally.allowed += 1 } else { tally.denied += 1 }
                case .decision where event.details["decision"] == "deny":
                    tally.denied += 1
                case .modelResponse:
                    tally.answers += 1
                    if event.details["ended_by"] != nil || event.details["error"] != nil { tally.ended += 1 }
                    tally.tokensIn += Int64(event.details["tokens_in"] ?? "") ?? 0
                    tally.tokensOut += Int64(event.details["tokens_out"] ?? "") ?? 0
                default: break
                }
                if let findings = event.details["findings"] { tally.findings.append(findings) }
                all[tag] = tally
            }
        }
        door = try ModelDoor(
            run: run, runEntity: runEntity, engine: engine, sink: observing, broker: nil, settings: settings)
        server = try ModelHTTPServer.serve(door, host: "127.0.0.1", port: 0)
        var routed = configuration
        routed.baseURL = "http://127.0.0.1:\(server.port ?? 0)/v1"
        routed.model = "redteam"
        routed.apiKeyVariable = nil
        routed.throughDoor = true
        self.routed = routed
    }

    /// What the door saw of the session tagged `tag`.
    public func tally(_ tag: String) -> ModelDoorTally? { tallies.state.withLock { $0[tag] } }

    final class Tallies: Sendable {
        let state = Mutex([String: ModelDoorTally]())
    }

    public func close() {
        server.close()
        door.close()
    }
}

/// A sink that shows each recorded event to `observe` once it is durable.
final class TallyingSink: EventSink {
    let sink: any EventSink
    let observe: @Sendable (RunEvent) -> Void

    init(sink: any EventSink, observe: @escaping @Sendable (RunEvent) -> Void) {
        self.sink = sink
        self.observe = observe
    }

    func record(contentsOf events: [RunEvent]) throws {
        try sink.record(contentsOf: events)
        events.forEach(observe)
    }

    func events(of run: RunID) throws -> [RunEvent] { try sink.events(of: run) }
}
