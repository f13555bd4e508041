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
        static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop latency (placeholder).")
        func run() throws {}
    }
}
