import ArgumentParser
import Foundation
import WardenAudit
import WardenCore
import WardenRedTeam
import WardenSandbox

/// The `warden` command line: parses, calls a module, prints. It is the composition root: it picks the
/// audit store behind the registry's event sinks.
@main
struct Warden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "Run AI agents under a kernel-enforced off-switch.",
        discussion: """
            Start an agent with `warden run`, end it with `warden stop` from any terminal. The off-switch is the \
            run's cgroup, written from outside the sandbox; the agent cannot see, signal or outlive it.

            Examples:
              warden run --workspace ./ws --tripwire shutdown.sh -- python3 agent.py
              warden run --detach --lease 5m --workspace ./ws -- ./agent
              warden stop --all
              warden policy eval --policies agent.cedar --principal 'Agent::"a"' --action 'Action::"call"' --resource 'Tool::"fs.write"'
              warden audit verify
            Environment: WARDEN_STATE_DIR (state and run registry), WARDEN_BWRAP (bubblewrap binary),
            WARDEN_CGROUP_ROOT (cgroup v2 mount point).
            """,
        subcommands: [
            Run.self, Stop.self, Kill.self, Renew.self, Ps.self, Inspect.self, Events.self, PolicyCommand.self,
            Approvals.self, Approve.self, Deny.self, MCP.self, Model.self, GuardCommand.self, Audit.self, RedTeam.self,
            Demo.self, Serve.self,
            Bench.self,
        ]
    )

    /// Dispatches the hidden inner-shim mode before argument parsing, then runs the command and turns
    /// any error into one line on stderr.
    ///
    /// On the main actor: a synchronous command (`warden run`'s supervisor, `warden stop`) then runs on
    /// the main thread, outside Swift's cooperative pool, so its blocking waits starve no task and it
    /// may wait for the async PostgreSQL store through `Blocking.wait`.
    @MainActor
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "__shim" { InnerShim.main(arguments: Array(arguments.dropFirst())) }
        if arguments.first == "__mediator" { MediatorMain.main(arguments: Array(arguments.dropFirst())) }
        if arguments.first == "__tools-gateway" { ToolsGatewayMain.main(arguments: Array(arguments.dropFirst())) }
        // The red-team environment inside a trial's sandbox, and its ./next_question (a link to warden).
        if arguments.first == "__redteam-env" { EnvironmentHost.main(arguments: Array(arguments.dropFirst())) }
        // The red team's home robot, an MCP server over stdio behind a trial's tools door.
        if arguments.first == "__robot-world" { RobotWorldServer.main() }
        if (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent }) == "next_question" {
            NextQuestion.main()
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as WardenError {
            FileHandle.standardError.write(Data("warden: \(error.message)\n".utf8))
            Foundation.exit(error.code == .invalidInput || error.code == .notFound ? 2 : 125)
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is CleanExit {
                exit(withError: error)
            }
            if error is ExitCode { Foundation.exit(code.rawValue) }
            let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let subcommand = arguments.first.flatMap { name in
                configuration.subcommands.first { $0._commandName == name }.map { _ in name }
            }
            let hint = subcommand.map { " (see 'warden \($0) --help')" } ?? " (see 'warden --help')"
            FileHandle.standardError.write(Data("warden: \(message)\(hint)\n".utf8))
            // Bad input exits 2, whether Warden or the argument parser found it (its own code is 64).
            Foundation.exit(code.rawValue == 0 || code == .validationFailure ? 2 : code.rawValue)
        }
    }
}

/// Options every command that touches the registry shares.
struct StateOptions: ParsableArguments {
    @Option(
        name: .customLong("state-dir"),
        help: "Warden's state directory (default: $WARDEN_STATE_DIR or /var/lib/warden).")
    var stateDirectory: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    var host: HostConfiguration { HostConfiguration.fromEnvironment(environment, stateDirectory: stateDirectory) }

    /// The registry, its runs' events in the audit log.
    var registry: RunRegistry {
        let state = host.stateDirectory
        return RunRegistry(stateDirectory: state, events: AuditEventSinks(stateDirectory: state))
    }
}

/// JSON output in one style for every command.
enum Output {
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// One JSON object on one line (for streams: `--watch`, `--follow`).
    static func line<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func error(_ line: String) {
        FileHandle.standardError.write(Data("warden: \(line)\n".utf8))
    }
}
