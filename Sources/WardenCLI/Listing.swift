import ArgumentParser
import Foundation
import WardenCore
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

extension Warden {
    struct Ps: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List runs (active ones unless --all).", discussion: "Example: warden ps --all --json")
        @Flag(help: "Include runs that have ended.")
        var all = false
        @Flag(help: "Print the run records as a JSON array.")
        var json = false
        @OptionGroup var state: StateOptions

        /// Only reads: a run whose supervisor died unrecorded shows as `exited?` until a command that
        /// acts on it (`inspect`, `stop`, `renew`) records that through its ledger.
        func run() throws {
            let runs = state.registry.list().filter { all || $0.state.isActive }
            if json { return print(try Output.json(runs)) }
            if runs.isEmpty { return print(all ? "no runs" : "no active runs (warden ps --all shows ended ones)") }
            let rows = runs.map { record -> [String] in
                let age = Double(RunEvent.now() - record.createdAtNanoseconds) / 1e9
                let processes = record.state.isActive ? String(record.cgroup?.processIDs().count ?? 0) : "-"
                return [
                    record.id.rawValue, record.name, record.isOrphaned ? "exited?" : record.state.rawValue,
                    Self.formatAge(age), processes,
                    record.command.joined(separator: " "),
                ]
            }
            print(Table(header: ["ID", "NAME", "STATE", "AGE", "PROCS", "COMMAND"], rows: rows).rendered)
        }

        static func formatAge(_ seconds: Double) -> String {
            if seconds < 60 { return "\(Int(seconds))s" }
            if seconds < 3600 { return "\(Int(seconds / 60))m" }
            if seconds < 86400 { return "\(Int(seconds / 3600))h" }
            return "\(Int(seconds / 86400))d"
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a run: state, pids, cgroups, layers, lease, stop result.",
            discussion: "Example: warden inspect 3f2a9c --json")
        @Argument(help: "The run id (or unique prefix, or name).")
        var runID: String
        @Flag(help: "Print the full record as JSON.")
        var json = false
        @OptionGroup var state: StateOptions

        func run() throws {
            let registry = state.registry
            let id = try registry.resolve(runID)
            // Looking at a run whose supervisor died records how it ended (once), through its ledger.
            guard let record = try registry.ledger(for: id).reconcile() else {
                throw WardenError(code: .notFound, message: "no run \(id)")
            }
            if json { return print(try Output.json(record)) }
            var lines = [
                "id:          \(record.id)", "name:        \(record.name)", "state:       \(record.state.rawValue)",
                "command:     \(record.command.joined(separator: " "))", "workspace:   \(record.workspace)",
                "network:     \(record.network.rawValue)",
                "identity:    "
                    + (record.identity.map { "host uid \($0) (not root); workspace owner \(record.workspaceOwner)" }
                        ?? "host root (--allow-degraded root)"),
                "view:        \(record.view.rawValue): \(record.readView.joined(separator: ", "))",
                "supervisor:  pid \(record.supervisorPID.map(String.init) ?? "-")",
                "agent:       pid \(record.agentPID.map(String.init) ?? "-") (namespace init \(record.initPID.map(String.init) ?? "-"))",
            ]
            if let cgroup = record.cgroup {
                lines.append("cgroup:      \(cgroup.unified)")
                for (controller, path) in cgroup.v1.sorted(by: { $0.key < $1.key }) {
                    lines.append(
                        "  \(controller):\(String(repeating: " ", count: max(1, 9 - controller.count)))\(path)")
                }
            }
            let store = record.auditStore
            lines.append(
                "events:      "
                    + (store == .stateDirectory
                        ? "the state directory's audit log (sqlite:\(state.host.stateDirectory)/audit/audit.sqlite)"
                        : store.description))
            lines.append("layers:")
            for layer in record.layers {
                lines.append("  \(layer.layer.rawValue): \(layer.status.rawValue) (\(layer.detail))")
            }
            if let lease = record.lease {
                lines.append(
                    "lease:       \(DurationSpec.format(.nanoseconds(lease.durationNanoseconds))), expires \(RunEvent.timestamp(lease.expiresAtNanoseconds))"
                )
            } else {
                lines.append("lease:       none")
            }
            for path in record.hidden { lines.append("hidden:      \(path)") }
            for tripwire in record.tripwires { lines.append("tripwire:    \(tripwire.path)") }
            if let stop = record.stop {
                lines.append(
                    "stop:        \(stop.reason) by \(stop.actor), \(String(format: "%.1f", stop.latencyMilliseconds)) ms, killed \(stop.killedProcesses), remaining \(stop.remainingProcesses)"
                )
            }
            if let code = record.exitCode { lines.append("exit code:   \(code)") }
            if let review = record.review {
                if review.isEmpty { lines.append("review:      nothing in the workspace the host would run") }
                for finding in review { lines.append("review:      \(finding)") }
            }
            for warning in record.warnings { lines.append("warning:     \(warning)") }
            print(lines.joined(separator: "\n"))
        }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a run's recorded events.",
            discussion: "Example: warden events 3f2a9c --follow")
        @Argument(help: "The run id (or unique prefix, or name).")
        var runID: String
        @Flag(help: "Keep printing new events until the run has ended.")
        var follow = false
        @Flag(help: "One JSON object per line (JSON Lines).")
        var json = false
        @OptionGroup var state: StateOptions

        func run() async throws {
            let registry = state.registry
            let id = try registry.resolve(runID)
            let ledger = try registry.ledger(for: id)
            var printed = 0
            while true {
                let events = try await Blocking.run { try ledger.events() }
                for event in events.dropFirst(printed) { try printEvent(event) }
                printed = max(printed, events.count)
                guard follow else { return }
                let active = await Blocking.run { ledger.reconcile()?.state.isActive ?? false }
                if !active {
                    let final = try await Blocking.run { try ledger.events() }
                    for event in final.dropFirst(printed) { try printEvent(event) }
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        private func printEvent(_ event: RunEvent) throws {
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(event), as: UTF8.self))
            } else {
                let details = event.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
                    separator: " ")
                print(
                    "\(event.timestamp)  \(event.kind.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0)) \(event.actor.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(details)"
                )
            }
            fflush(nil)
        }
    }
}

/// A plain text table with left-aligned columns.
struct Table {
    var header: [String]
    var rows: [[String]]

    var rendered: String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
