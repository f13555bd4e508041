import ArgumentParser
import Foundation
import WardenCore
import WardenSandbox

extension Warden {
    struct Model: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "model",
            abstract: "The model door (LLM proxy): cut a run's model, see what its model requests used.",
            discussion: """
                A run started with --model NAME=URL (or [models.NAME] in its profile) reaches its model only \
                through Warden's door on the sandbox's loopback (OPENAI_BASE_URL, ANTHROPIC_BASE_URL), with a \
                dummy key; Warden adds the real key outside the sandbox and decides each request with Cedar \
                (Action::"complete" on Model::"NAME").

                Examples:
                  warden model cut 3f2a9c --reason "looping"   # every later request refused, open streams end
                  warden model usage 3f2a9c --json             # requests, tokens, refusals, findings
                """,
            subcommands: [Cut.self, Usage.self])
    }
}

extension Warden.Model {
    struct Cut: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refuse all further model requests of a run at once and end its open streams.",
            discussion: """
                The agent keeps its sandbox (its processes, files and tools) but loses its model: each open \
                stream ends with an error event the agent's SDK raises, and every later request is answered \
                with an error naming the cut. Recorded as model.cut. `warden stop` cuts the model first too.

                Example: warden model cut coder --reason "incident 42"
                """)
        @Argument(help: "The run (id, unique prefix or name).")
        var target: String
        @Option(help: "Why, recorded and shown to the agent in its errors.")
        var reason = "cut by an operator"
        @Flag(help: "Print {\"run\", \"cut\", \"streams_ended\"}.")
        var json = false
        @OptionGroup var state: StateOptions

        func run() throws {
            let registry = state.registry
            let id = try registry.resolve(target)
            let record = try registry.load(id)
            guard record.state.isActive else {
                throw WardenError(code: .conflict, message: "run \(id) has ended; its model went with it")
            }
            let events = state.registry.events.sink(at: record.auditStore)
            let before = try events.events(of: id).filter { $0.kind == .modelCut }.count
            guard ToolsGatewayProcess.requestModelCut(runDirectory: registry.directory(for: id), reason: reason) else {
                throw WardenError.invalidInput(
                    "run \(id) has no model door (start it with --model NAME=URL), or its gateway is gone")
            }
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if let cut = try events.events(of: id).filter({ $0.kind == .modelCut }).dropFirst(before).first {
                    let ended = cut.details["streams_ended"] ?? "0"
                    if json {
                        return print(try Output.json(["run": id.rawValue, "cut": "true", "streams_ended": ended]))
                    }
                    return print("run \(id): model cut (\(ended) open streams ended); every further request is refused")
                }
                usleep(50_000)
            }
            throw WardenError(
                code: .conflict,
                message: "run \(id)'s model door did not confirm the cut within 10 s (see its tools-gateway.log)")
        }
    }

    struct Usage: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a run's model requests used: requests, tokens, refusals, findings (from the audit log).",
            discussion: "Example: warden model usage coder --json")
        @Argument(help: "The run (id, unique prefix or name).")
        var target: String
        @Flag(help: "Print the counts as JSON.")
        var json = false
        @OptionGroup var state: StateOptions

        struct Counts: Codable {
            var run: String
            var requests = 0
            var allowed = 0
            var denied = 0
            var tokensIn: Int64 = 0
            var tokensOut: Int64 = 0
            var estimated = false
            var withFindings = 0
            var endedByWarden = 0
            var cut = false

            enum CodingKeys: String, CodingKey {
                case run, requests, allowed, denied, estimated, cut
                case tokensIn = "tokens_in"
                case tokensOut = "tokens_out"
                case withFindings = "with_findings"
                case endedByWarden = "ended_by_warden"
            }
        }

        func run() throws {
            let registry = state.registry
            let id = try registry.resolve(target)
            let record = try registry.load(id)
            var counts = Counts(run: id.rawValue)
            for event in try registry.events.sink(at: record.auditStore).events(of: id) {
                switch event.kind {
                case .decision where event.details["door"] == "model" && event.details["action"] == "complete":
                    counts.requests += 1
                    if event.details["decision"] == "allow" { counts.allowed += 1 } else { counts.denied += 1 }
                    if event.details["findings"] != nil { counts.withFindings += 1 }
                case .modelResponse:
                    counts.tokensIn += Int64(event.details["tokens_in"] ?? "") ?? 0
                    counts.tokensOut += Int64(event.details["tokens_out"] ?? "") ?? 0
                    if event.details["tokens_estimated"] == "true" { counts.estimated = true }
                    if event.details["ended_by"] != nil { counts.endedByWarden += 1 }
                case .modelCut: counts.cut = true
                default: break
                }
            }
            if json { return print(try Output.json(counts)) }
            print("requests   \(counts.requests) (\(counts.allowed) allowed, \(counts.denied) refused)")
            print(
                "tokens     \(counts.tokensIn) in, \(counts.tokensOut) out\(counts.estimated ? " (some estimated: the upstream did not report usage)" : "")"
            )
            print("findings   \(counts.withFindings) requests with findings on new messages")
            print(
                "ended      \(counts.endedByWarden) answers ended by Warden (policy, budget, cut or upstream failure)")
            print("cut        \(counts.cut ? "yes" : "no")")
        }
    }
}
