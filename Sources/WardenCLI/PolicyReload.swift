import ArgumentParser
import Foundation
import WardenCore
import WardenPolicy
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

extension Warden.PolicyCommand {
    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Swap a running run's egress policies at once; a bad set is refused and the old one stays.",
            discussion: """
                Without --policy, the run's own policy files are read again (edit them, then reload). With \
                --policy (and --entities), the run is switched to those files. The new set is parsed first: \
                an error is reported as FILE:LINE:COL and nothing changes. The swap is atomic (a connection \
                is decided wholly by the old set or wholly by the new one) and recorded as policy.reloaded.

                Ports a new policy names get no transparent listener until the next run (the proxy and \
                SOCKS ports reach them).

                Examples:
                  warden policy reload coder
                  warden policy reload 3f2a --policy pip-only.cedar --policy extra.cedar
                """)

        @Argument(help: "The run (id, unique prefix or name).")
        var target: String
        @Option(name: .customLong("policy"), help: "A Cedar policy file for the run (repeatable).")
        var policies: [String] = []
        @Option(help: "Cedar entities (JSON) the policies refer to.")
        var entities: String?
        @OptionGroup var state: StateOptions

        func run() throws {
            let registry = state.registry
            let id = try registry.resolve(target)
            let record = try registry.load(id)
            guard record.state.isActive else {
                throw WardenError(code: .conflict, message: "run \(id) has ended; there is nothing to reload")
            }
            let path = MediatorConfiguration.path(runDirectory: registry.directory(for: id))
            guard var configuration = try? MediatorConfiguration.load(path) else {
                // No egress door: the tools and model doors' gateway may still hold policies.
                return try reloadGateway(id: id, record: record, registry: registry)
            }
            let cwd = FileManager.default.currentDirectoryPath
            if !policies.isEmpty {
                configuration.egress.policies = policies.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 }
            }
            if let entities {
                configuration.egress.entities = entities.hasPrefix("/") ? entities : cwd + "/" + entities
            }
            // Refused here, with file:line:col, before the run's door hears of it.
            let next = try PolicyEngine(
                policyFiles: configuration.egress.policies, entitiesFile: configuration.egress.entities)
            let started = try state.registry.events.sink(at: record.auditStore).events(of: id)
            guard let door = started.last(where: { $0.kind == .mediatorStarted }),
                let pid = door.details["pid"].flatMap({ Int32($0) })
            else {
                throw WardenError(code: .conflict, message: "run \(id)'s egress door has not started")
            }
            let before = started.filter { $0.kind == .policyReloaded }.count
            try FileIO.writeAtomically(try configuration.encoded(), to: path, mode: 0o600)
            guard kill(pid, SIGHUP) == 0 else {
                throw WardenError(
                    code: .conflict,
                    message: "run \(id)'s egress door (pid \(pid)) is gone: \(String(cString: strerror(errno)))")
            }
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let events = try state.registry.events.sink(at: record.auditStore).events(of: id)
                if events.filter({ $0.kind == .policyReloaded }).count > before {
                    // The tools and model doors decide with the same set.
                    if FileManager.default.fileExists(atPath: registry.directory(for: id) + "/tools-gateway.json") {
                        try reloadGateway(id: id, record: record, registry: registry)
                    }
                    return print(
                        "run \(id): \(next.snapshot.policies.policies.count) policies from \(configuration.egress.policies.joined(separator: ", ")) in force"
                    )
                }
                if let refusal = events.last(where: {
                    $0.kind == .warning && $0.details["warning"]?.hasPrefix("policy reload refused") == true
                }),
                    refusal.timeNanoseconds > (started.last?.timeNanoseconds ?? 0)
                {
                    throw WardenError(code: .conflict, message: refusal.details["warning"] ?? "policy reload refused")
                }
                usleep(20_000)
            }
            throw WardenError(
                code: .systemCall, message: "run \(id)'s egress door did not confirm the reload within 10 s")
        }

        /// Reloads the policies of a run's tools and model doors (their gateway process, SIGHUP).
        func reloadGateway(id: RunID, record: RunRecord, registry: RunRegistry) throws {
            let directory = registry.directory(for: id)
            let path = directory + "/tools-gateway.json"
            guard let data = FileManager.default.contents(atPath: path),
                var configuration = try? JSONDecoder().decode(ToolsGatewayConfiguration.self, from: data)
            else {
                throw WardenError.invalidInput(
                    "run \(id) has no door with policies (start it with --network proxy, [mcp.servers] or --model)")
            }
            let cwd = FileManager.default.currentDirectoryPath
            if !policies.isEmpty { configuration.policies = policies.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 } }
            if let entities { configuration.entities = entities.hasPrefix("/") ? entities : cwd + "/" + entities }
            let next = try PolicyEngine(policyFiles: configuration.policies, entitiesFile: configuration.entities)
            guard
                let text = try? String(
                    contentsOfFile: ModelDoorSettings.gatewayPIDPath(runDirectory: directory), encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
            else { throw WardenError(code: .conflict, message: "run \(id)'s gateway has not started") }
            let sink = try state.registry.events.sink(at: record.auditStore)
            let before = try sink.events(of: id)
            let reloads = before.filter { $0.kind == .policyReloaded }.count
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try FileIO.writeAtomically(try encoder.encode(configuration), to: path, mode: 0o600)
            guard kill(pid, SIGHUP) == 0 else {
                throw WardenError(
                    code: .conflict,
                    message: "run \(id)'s gateway (pid \(pid)) is gone: \(String(cString: strerror(errno)))")
            }
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let events = try sink.events(of: id)
                if events.filter({ $0.kind == .policyReloaded }).count > reloads {
                    return print(
                        "run \(id): \(next.snapshot.policies.policies.count) policies from \(configuration.policies.joined(separator: ", ")) in force for its tools and model doors"
                    )
                }
                if let refusal = events.dropFirst(before.count).first(where: {
                    $0.kind == .warning && $0.details["warning"]?.hasPrefix("policy reload refused") == true
                }) {
                    throw WardenError(code: .conflict, message: refusal.details["warning"] ?? "policy reload refused")
                }
                usleep(20_000)
            }
            throw WardenError(code: .systemCall, message: "run \(id)'s gateway did not confirm the reload within 10 s")
        }
    }
}
