import ArgumentParser
import Foundation
import WardenCore
import WardenSandbox

/// Flags shared by `stop` and `kill`.
struct StopTargets: ParsableArguments {
    @Argument(help: "Run ids (or unique prefixes, or names).")
    var runs: [String] = []
    @Flag(help: "Every active run.")
    var all = false
    @Option(help: "Why, recorded with the request and written into the notice file.")
    var reason: String?
    @Flag(help: "Print {\"id\", \"stopped\", \"latency_ms\", \"remaining_processes\", …} per run.")
    var json = false
    @OptionGroup var state: StateOptions

    func validate() throws {
        if runs.isEmpty && !all { throw ValidationError("name a run (see `warden ps`) or pass --all") }
        if !runs.isEmpty && all { throw ValidationError("give run ids or --all, not both") }
    }

    /// Runs the stop protocol on every target; a run's grace comes from `grace`, else its own setting.
    func stop(grace: Duration?, defaultReason: String) throws {
        let registry = state.registry
        let ids =
            all ? registry.list().filter { $0.state.isActive }.map(\.id) : try runs.map { try registry.resolve($0) }
        var outcomes: [StopProtocol.Outcome] = []
        var failures = 0
        for id in ids {
            let ledger = try registry.ledger(for: id)
            guard let record = ledger.reconcile() else { continue }
            let effectiveGrace = grace ?? .nanoseconds(record.graceNanoseconds)
            if !json && record.state.isActive && effectiveGrace >= .seconds(1) {
                Output.error(
                    "stopping \(id) (\(record.name)): SIGTERM and notice file; waiting up to \(DurationSpec.format(effectiveGrace)) before cgroup.kill"
                )
            }
            let outcome = try StopProtocol(ledger: ledger, actor: .operator)
                .runCuttingModel(grace: effectiveGrace, reason: reason ?? defaultReason)
            outcomes.append(outcome)
            if !outcome.stopped { failures += 1 }
            for warning in outcome.warnings { Output.error("warning: \(id): \(warning)") }
            if !json {
                if outcome.alreadyEnded {
                    print("\(id) (\(record.name)) had already ended; nothing of it remains")
                } else if outcome.stopped {
                    let how =
                        outcome.compliedWithNotice
                        ? "the agent exited on notice"
                        : "killed \(outcome.killedProcesses) processes (cgroup.kill to empty: \(String(format: "%.1f", outcome.killMilliseconds)) ms)"
                    print(
                        "stopped \(id) (\(record.name)) in \(String(format: "%.1f", outcome.latencyMilliseconds)) ms: \(how); 0 remain"
                    )
                } else {
                    Output.error(
                        "\(id) (\(record.name)): \(outcome.remainingProcesses) processes remain after cgroup.kill")
                }
            }
        }
        if json {
            print(all || runs.count > 1 ? try Output.json(outcomes) : try Output.json(outcomes.first))
        } else if all && ids.isEmpty {
            print("no active runs")
        }
        if failures > 0 {
            throw WardenError(code: .stopIncomplete, message: "\(failures) run(s) could not be stopped completely")
        }
    }
}

extension Warden {
    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop runs: notice, grace period, then cgroup.kill; succeeds only when nothing remains.",
            discussion: """
                Works from any terminal, even when the run's supervisor is hung or dead. Prints the measured \
                latency from request to an empty cgroup.

                Examples:
                  warden stop 3f2a9c
                  warden stop --all --grace 0 --reason "incident 42"
                """)
        @Option(help: "Time between the notice and the kill, e.g. 2s (default: the run's --grace).")
        var grace: String?
        @OptionGroup var targets: StopTargets

        func run() throws {
            let duration = try grace.map { try DurationSpec.parse($0, field: "--grace") }
            try targets.stop(grace: duration, defaultReason: "operator request")
        }
    }

    struct Kill: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop runs at once (the stop protocol with no grace period).",
            discussion: "Example: warden kill --all")
        @OptionGroup var targets: StopTargets

        func run() throws {
            try targets.stop(grace: .zero, defaultReason: "operator kill")
        }
    }

    struct Renew: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extend a run's lease (dead-man switch).",
            discussion: "Example: warden renew 3f2a9c --for 10m")
        @Argument(help: "The run id (or unique prefix, or name).")
        var runID: String
        @Option(name: .customLong("for"), help: "New lease length from now (default: the run's --lease).")
        var duration: String?
        @Flag(help: "Print the new expiry as JSON.")
        var json = false
        @OptionGroup var state: StateOptions

        func run() throws {
            let registry = state.registry
            let id = try registry.resolve(runID)
            let extra = try duration.map { try DurationSpec.parse($0, field: "--for") }
            let ledger = try registry.ledger(for: id)
            ledger.reconcile()
            let expires = try ledger.renewLease(by: extra)
            let when = RunEvent.timestamp(expires)
            print(
                json
                    ? try Output.json(["id": id.rawValue, "expires_at": when]) : "lease of \(id) renewed until \(when)")
        }
    }
}
