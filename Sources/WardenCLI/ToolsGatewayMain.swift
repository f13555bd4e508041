import Foundation
import WardenAudit
import WardenCore
import WardenGateway
import WardenPolicy

/// `warden __tools-gateway CONFIG`: the tools door on its own (the MCP gateway speaking to the agent on
/// standard input and output, one JSON-RPC message per line), composed with the audit store, the pins
/// and the approvals broker of the configuration's state directory.
enum ToolsGatewayMain {
    static func main(arguments: [String]) -> Never {
        func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("warden __tools-gateway: \(message)\n".utf8))
            exit(2)
        }
        guard arguments.count == 1,
            let data = FileManager.default.contents(atPath: arguments[0]),
            let configuration = try? JSONDecoder().decode(ToolsGatewayConfiguration.self, from: data)
        else { fail("started without its configuration (a JSON file)") }
        let sink = AuditEventSinks(stateDirectory: configuration.stateDirectory).sink(at: configuration.auditStore)
        let gateway: ToolsGateway
        do {
            let runEntity = Entity(uid: EntityUID(type: "Run", id: configuration.run.rawValue), attributes: [:])
            let engine =
                configuration.policies.isEmpty
                ? try PolicyEngine(policies: "", source: "<no policies>", entities: try Entities([runEntity]))
                : try PolicyEngine(
                    policyFiles: configuration.policies, entitiesFile: configuration.entities,
                    extraEntities: [runEntity])
            gateway = try ToolsGateway(
                run: configuration.run, runEntity: runEntity, engine: engine,
                pins: try ToolPins(path: configuration.stateDirectory + "/mcp-pins.db"), sink: sink,
                broker: try? ApprovalBroker(path: configuration.stateDirectory + "/approvals.db") { _ in sink },
                servers: configuration.servers, roots: configuration.roots,
                admitNewTools: configuration.admitNewTools)
        } catch {
            fail("\(error)")
        }
        var buffer = Data()
        let input = FileHandle.standardInput
        while true {
            let chunk = input.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[buffer.startIndex..<newline])
                buffer.removeSubrange(buffer.startIndex...newline)
                guard !line.isEmpty, let reply = gateway.handle(line: line) else { continue }
                FileHandle.standardOutput.write(Data(reply.utf8))
            }
        }
        gateway.close()
        exit(0)
    }
}
