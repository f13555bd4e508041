import Foundation
import Synchronization
import WardenCore

/// Warden's decision on a request: Cedar's answer with human approval layered on top.
public struct PolicyDecision: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case allow, deny, ask
    }

    /// A policy that contributed to the decision.
    public struct Reason: Sendable, Codable, Equatable {
        public var policyID: String
        public var effect: Effect
        /// The `@ask("why")` text, when the policy asks instead of allowing.
        public var ask: String?
        /// Where the policy was written (`file:line:col`).
        public var source: String
    }

    public var kind: Kind
    public var reasons: [Reason]
    public var errors: [AuthorizationResponse.PolicyError]

    /// One line for people: the decision and the policies (and approval reasons) behind it.
    public var explanation: String {
        let names = reasons.map { r in
            r.ask.map { "\(r.policyID) (\(r.source)) asks: \($0)" } ?? "\(r.policyID) (\(r.source))"
        }
        var line: String
        switch kind {
        case .allow: line = "allow: permitted by " + names.joined(separator: ", ")
        case .ask: line = "ask: a person must approve; " + names.joined(separator: "; ")
        case .deny:
            line =
                reasons.isEmpty
                ? "deny: no policy permits this request" : "deny: forbidden by " + names.joined(separator: ", ")
        }
        if !errors.isEmpty {
            line +=
                " [skipped after an error: " + errors.map { "\($0.policyID): \($0.message)" }.joined(separator: "; ")
                + "]"
        }
        return line
    }
}

/// The policy decision point the other modules call: load, decide, reload atomically.
///
/// Decisions follow Cedar, with one addition for human approval: a satisfied `permit` annotated
/// `@ask("why")` asks instead of allowing. Any satisfied forbid denies; else any satisfied permit without
/// `@ask` allows; else any satisfied `@ask` permit asks; else deny.
public final class PolicyEngine: Sendable {
    /// One consistent generation of policies and entities.
    public struct Snapshot: Sendable {
        public let policies: PolicySet
        public let entities: Entities
        let sources: [String: String]

        /// The same policies with `extra` entities (replacing any with the same uid): a door's own
        /// entities, such as the tools door's `Tool::"server.tool"` with its pinned attributes.
        public func adding(_ extra: [Entity]) throws(WardenError) -> Snapshot {
            let known = Set(extra.map(\.uid))
            do {
                let merged = try Entities(entities.byUID.values.filter { !known.contains($0.uid) } + extra)
                return Snapshot(policies: policies, entities: merged, sources: sources)
            } catch {
                throw WardenError.invalidInput("entities: \(error.message)")
            }
        }
    }

    private let state: Mutex<Snapshot>

    /// - Parameters:
    ///   - policyFiles: `.cedar` files; policies are named by `@id("…")` or `policy0`, `policy1`, … across files.
    ///   - entitiesFile: Cedar entity JSON, or nil for no entities.
    /// - Throws: `WardenError` naming the file, line and column of the first problem.
    ///   - extraEntities: entities the caller knows (a door's `Run::"<id>"`), added to the file's.
    public convenience init(policyFiles: [String], entitiesFile: String? = nil, extraEntities: [Entity] = [])
        throws(WardenError)
    {
        self.init(
            snapshot: try Self.load(policyFiles: policyFiles, entitiesFile: entitiesFile, extra: extraEntities))
    }

    /// Loads policies from text (named `source` in messages) and entities already parsed.
    public convenience init(policies text: String, source: String = "<policies>", entities: Entities = Entities())
        throws(WardenError)
    {
        self.init(snapshot: try Self.makeSnapshot(texts: [(source, text)], entities: entities))
    }

    private init(snapshot: Snapshot) { state = Mutex(snapshot) }

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// Replaces policies and entities together. A set that fails to load never replaces the current one.
    public func reload(policyFiles: [String], entitiesFile: String? = nil, extraEntities: [Entity] = [])
        throws(WardenError)
    {
        let next = try Self.load(policyFiles: policyFiles, entitiesFile: entitiesFile, extra: extraEntities)
        state.withLock { $0 = next }
    }

    /// Puts a generation loaded elsewhere (another engine's) in force, at once.
    public func replace(with next: Snapshot) { state.withLock { $0 = next } }

    public func reload(policies text: String, source: String = "<policies>", entities: Entities? = nil)
        throws(WardenError)
    {
        let current = snapshot
        let next = try Self.makeSnapshot(texts: [(source, text)], entities: entities ?? current.entities)
        state.withLock { $0 = next }
    }

    public func decide(_ request: AuthorizationRequest) -> PolicyDecision {
        Self.decide(request, in: snapshot)
    }

    public static func decide(_ request: AuthorizationRequest, in snapshot: Snapshot) -> PolicyDecision {
        let policies = snapshot.policies.policies
        let evaluation = snapshot.policies.evaluate(request, entities: snapshot.entities)
        func reason(_ i: Int) -> PolicyDecision.Reason {
            let p = policies[i]
            return .init(
                policyID: p.id, effect: p.effect, ask: p.effect == .permit ? p.annotation("ask") : nil,
                source: snapshot.sources[p.id] ?? "")
        }
        if !evaluation.forbids.isEmpty {
            return PolicyDecision(kind: .deny, reasons: evaluation.forbids.map(reason), errors: evaluation.errors)
        }
        let permits = evaluation.permits.map(reason)
        let plain = permits.filter { $0.ask == nil }
        if !plain.isEmpty { return PolicyDecision(kind: .allow, reasons: plain, errors: evaluation.errors) }
        if !permits.isEmpty { return PolicyDecision(kind: .ask, reasons: permits, errors: evaluation.errors) }
        return PolicyDecision(kind: .deny, reasons: [], errors: evaluation.errors)
    }

    // MARK: - Loading

    static func load(policyFiles: [String], entitiesFile: String?, extra: [Entity] = []) throws(WardenError)
        -> Snapshot
    {
        if policyFiles.isEmpty {
            throw WardenError.invalidInput("no policy files given; name at least one .cedar file")
        }
        var texts: [(String, String)] = []
        for file in policyFiles { texts.append((file, try readFile(file))) }
        var entities = Entities()
        if let entitiesFile {
            do {
                entities = try Entities(json: try readFile(entitiesFile))
            } catch let error as EntitiesError {
                throw WardenError.invalidInput("\(entitiesFile): \(error.message)")
            } catch {
                throw WardenError.invalidInput("\(entitiesFile): \(error)")
            }
        }
        if !extra.isEmpty {
            let known = Set(extra.map(\.uid))
            do {
                entities = try Entities(entities.byUID.values.filter { !known.contains($0.uid) } + extra)
            } catch {
                throw WardenError.invalidInput("\(entitiesFile ?? "entities"): \(error.message)")
            }
        }
        return try makeSnapshot(texts: texts, entities: entities)
    }

    static func readFile(_ path: String) throws(WardenError) -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            throw WardenError(code: .notFound, message: "\(path): no such file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WardenError(code: .notFound, message: "\(path): cannot be read (check its permissions)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw WardenError.invalidInput("\(path): not valid UTF-8 text")
        }
        return text
    }

    static func makeSnapshot(texts: [(String, String)], entities: Entities) throws(WardenError) -> Snapshot {
        var all: [Policy] = []
        var sources: [String: String] = [:]
        var seen: [String: String] = [:]
        for (file, text) in texts {
            let parsed: [Policy]
            do {
                parsed = try Parser.parsePolicies(text)
            } catch {
                throw WardenError.invalidInput(
                    "\(file):\(error.location.line):\(error.location.column): \(error.message)")
            }
            for var policy in parsed {
                let location = "\(file):\(policy.location)"
                policy.id = policy.annotation("id") ?? "policy\(all.count)"
                if let first = seen[policy.id] {
                    throw WardenError.invalidInput(
                        "\(location): policy id \"\(policy.id)\" is already used at \(first); give each @id a unique name"
                    )
                }
                seen[policy.id] = location
                sources[policy.id] = location
                all.append(policy)
            }
        }
        return Snapshot(policies: PolicySet(all), entities: entities, sources: sources)
    }
}
