import Foundation
import WardenAudit
import WardenCore
import WardenGateway
import WardenSandbox

/// `warden __mediator CONFIG PARENT_PID` (started by a run's supervisor, never by people): composes the
/// mediator with the run's audit store and the state directory's approvals broker. Descriptor 3 is the
/// run's network namespace, 4 the control pipe.
enum MediatorMain {
    static func main(arguments: [String]) -> Never {
        guard arguments.count == 2, let parent = Int32(arguments[1]),
            let configuration = try? MediatorConfiguration.load(arguments[0])
        else {
            FileHandle.standardError.write(Data("warden __mediator: started without its configuration\n".utf8))
            exit(2)
        }
        let sinks = AuditEventSinks(stateDirectory: configuration.stateDirectory)
        let sink = sinks.sink(at: configuration.auditStore)
        let broker = try? ApprovalBroker(path: configuration.stateDirectory + "/approvals.db") { _ in sink }
        // The door's records are group-committed (concurrent decisions share a commit); under
        // decision_records = "journal" they go to the run's journal first (EventJournal).
        let runDirectory = (arguments[0] as NSString).deletingLastPathComponent
        let journal: EventJournal
        switch configuration.egress.decisionRecords {
        case .commit: journal = EventJournal(groupCommitting: sink)
        case .journal:
            do {
                journal = try EventJournal(
                    path: MediatorConfiguration.journalPath(runDirectory: runDirectory), sink: sink)
            } catch {
                FileHandle.standardError.write(Data("warden __mediator: \(error)\n".utf8))
                exit(1)
            }
        }
        let status = Mediator.serve(
            configuration: configuration, configurationPath: arguments[0], netns: 3, control: 4, parent: parent,
            sink: journal, broker: broker,
            confine: {
                // What it records into: its run directory (the journal), the state directory (the audit
                // log, its key and head, the approvals), and an SQLite audit store kept elsewhere.
                var writable = [runDirectory, configuration.stateDirectory]
                if case .sqlite(let path) = configuration.auditStore {
                    writable.append((path as NSString).deletingLastPathComponent)
                }
                return try MediatorConfinement.apply(writable: writable)
            })
        // What is still journaled is committed now (or, if this fails, by the supervisor's recovery).
        try? journal.close()
        exit(status)
    }
}
