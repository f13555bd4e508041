import ArgumentParser
import Foundation
import WardenCore
import WardenSandbox

extension Warden {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks that print tables (median, p99, and a baseline in the same run).",
            subcommands: [BenchStop.self])
    }

    struct BenchStop: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stop",
            abstract: "Stop latency for process trees, against killing the process group and the PID-namespace init.",
            discussion: """
                Trees: 1 process; 200 setsid double-forked daemons; 1000 processes; a fork bomb under \
                pids.max=4096. Latency is request until the cgroup is empty (for the process-group baseline: \
                until the group is gone). "left alive" counts processes a method missed. Also times \
                `warden run -- true` against bare `true`. Needs root (it creates cgroups).

                Example: warden bench stop --repetitions 20
                """)
        @Option(help: "Repetitions per scenario and method (at least 1).")
        var repetitions = 20
        @Option(help: "Only scenarios whose name contains this text.")
        var only: String?
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if repetitions < 1 { throw ValidationError("--repetitions must be at least 1") }
        }

        func run() throws {
            let host = HostConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, stateDirectory: nil)
            let bench = try StopBenchmark(
                wardenExecutable: host.wardenExecutable, repetitions: repetitions, cgroupRoot: host.cgroupRoot)
            defer { bench.cleanUp() }
            let progress: (String) -> Void = { line in
                FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
            }
            let startup = try bench.measureStartup(progress: progress)
            var rows: [StopBenchmark.Row] = []
            for scenario in StopBenchmark.Scenario.standard where only.map({ scenario.name.contains($0) }) ?? true {
                rows += bench.measure(scenario, progress: progress)
            }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if json {
                struct Report: Encodable {
                    var rows: [StopBenchmark.Row]
                    var startup: [StopBenchmark.Startup]
                }
                return print(try Output.json(Report(rows: rows, startup: startup)))
            }
            let format: (Double) -> String = { String(format: "%.2f", $0) }
            var table = [["scenario", "method", "reps", "median ms", "p99 ms", "left alive", "p99 vs warden"]]
            for row in rows {
                let warden = rows.first { $0.scenario == row.scenario && $0.method == .warden }
                let ratio = warden.map { String(format: "%.2fx", row.p99Milliseconds / $0.p99Milliseconds) } ?? "-"
                table.append([
                    row.scenario, row.method.rawValue,
                    "\(row.repetitions)\(row.failures > 0 ? " (\(row.failures) failed)" : "")",
                    format(row.medianMilliseconds), format(row.p99Milliseconds), String(row.maxLeftAlive),
                    row.method == .warden ? "1.00x" : ratio,
                ])
            }
            print(Table.markdown(table))
            print()
            let bare = startup.first { $0.command == "true" }?.medianMilliseconds ?? 0
            var startupTable = [["command", "reps", "median ms", "p99 ms", "added (median)"]]
            for row in startup {
                startupTable.append([
                    row.command, "\(row.repetitions)", format(row.medianMilliseconds), format(row.p99Milliseconds),
                    row.command == "true" ? "-" : "+" + format(row.medianMilliseconds - bare) + " ms",
                ])
            }
            print(Table.markdown(startupTable))
        }
    }
}

extension Table {
    /// A Markdown table (pastes into the README as is).
    static func markdown(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            "| "
                + row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(
                    separator: " | ") + " |"
        }
        let separator = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(header), separator] + rows.dropFirst().map(line)).joined(separator: "\n")
    }
}
