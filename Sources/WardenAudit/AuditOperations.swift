import Foundation
import WardenCore

/// What the `warden audit` commands do, kept out of the CLI: verification, export and import.
public enum AuditOperations {
    /// The public key to trust: `--key` (hex, or a file holding it), else this machine's own key.
    public static func trustedKey(_ option: String?, stateDirectory: String) throws(AuditError) -> String {
        if let option {
            var text = option
            if FileManager.default.fileExists(atPath: option) {
                guard let contents = try? String(contentsOfFile: option, encoding: .utf8) else {
                    throw AuditError(code: .invalidInput, message: "--key \(option): cannot be read")
                }
                text = contents
            }
            let hex = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            guard hex.count == 64, AuditHex.decode(hex) != nil else {
                throw AuditError(
                    code: .invalidInput,
                    message:
                        "--key: expected 64 hex digits (an Ed25519 public key from `warden audit key`) or a file holding them"
                )
            }
            return hex
        }
        return try CheckpointSigner.loadOrCreate(directory: stateDirectory + "/audit").publicKeyHex
    }

    /// Verifies `[from, through]` of the store, streaming in pages.
    public static func verify(
        store: any AuditStore, publicKey: String?, from: Int64 = 1, through: Int64? = nil, head: AuditCheckpoint?,
        progress: ((Int64) -> Void)? = nil
    ) async throws(AuditError) -> AuditVerification {
        let checkpoints = try await store.checkpoints()
        var verifier = AuditVerifier(
            checkpoints: checkpoints, publicKeyHex: publicKey, from: from, through: through, head: head)
        let pageSize = 20_000
        // Read the next page while the current one is hashed.
        var page = try await store.verificationRows(from: max(1, from), through: through, limit: pageSize)
        while !verifier.failed, !page.isEmpty {
            let last = page.last?.sequence ?? 0
            let more = page.count == pageSize
            let following = Task { () async -> Result<[VerificationRow], AuditError> in
                do throws(AuditError) {
                    return .success(
                        more ? try await store.verificationRows(from: last + 1, through: through, limit: pageSize) : [])
                } catch {
                    return .failure(error)
                }
            }
            verifier.consume(rows: page)
            progress?(last)
            page = try await following.value.get()
        }
        return verifier.finish()
    }

    /// Writes events and checkpoints as JSON Lines: `{"record": "event", …}` and `{"record": "checkpoint", …}`,
    /// each checkpoint right after the event it covers.
    public static func export(store: any AuditStore, write: (String) throws -> Void) async throws -> Int64 {
        let checkpoints = Dictionary(
            try await store.checkpoints().map { ($0.sequence, $0) }, uniquingKeysWith: { a, _ in a })
        var next: Int64 = 1
        var count: Int64 = 0
        while true {
            let page = try await store.events(from: next, through: nil, limit: 20_000)
            if page.isEmpty { break }
            for stored in page {
                guard case .object(let members) = stored.event.json else { continue }
                try write(JSONValue.object([("record", .string("event"))] + members).serialized)
                if let c = checkpoints[stored.event.sequence], case .object(let cm) = c.json {
                    try write(JSONValue.object([("record", .string("checkpoint"))] + cm).serialized)
                }
                count += 1
            }
            guard let last = page.last?.event.sequence else { break }
            next = last + 1
        }
        return count
    }

    /// Imports an export into an empty store, verifying the chain and every checkpoint as it goes;
    /// nothing is written unless the whole file verifies.
    public static func importLines(_ lines: [Substring], into store: any AuditStore, publicKey: String?)
        async throws(AuditError)
        -> AuditVerification
    {
        guard try await store.lastSequence() == 0 else {
            throw AuditError(
                code: .conflict, message: "\(store.location) already holds events; import only into an empty store")
        }
        var events: [StoredEvent] = []
        var checkpoints: [AuditCheckpoint] = []
        for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let json: JSONValue
            do {
                json = try JSONValue.parse(String(line))
            } catch {
                throw AuditError(code: .invalidInput, message: "line \(index + 1): invalid JSON at \(error)")
            }
            switch json["record"]?.stringValue {
            case "event":
                let event = try AuditEvent(json: json)
                events.append(
                    StoredEvent(event: event, canonicalDetails: try AuditEvent.canonicalDetails(event.draft.details)))
            case "checkpoint":
                checkpoints.append(try AuditCheckpoint(json: json))
            default:
                throw AuditError(
                    code: .invalidInput, message: "line \(index + 1): \"record\" must be event or checkpoint")
            }
        }
        var verifier = AuditVerifier(checkpoints: checkpoints, publicKeyHex: publicKey)
        verifier.consume(events)
        let report = verifier.finish()
        guard report.ok else { return report }
        try await store.importRecords(events, checkpoints: checkpoints)
        return report
    }
}
