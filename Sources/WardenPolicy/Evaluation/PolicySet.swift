/// Cedar's answer: the decision, the policies that determined it, and the policies that failed to evaluate.
public struct AuthorizationResponse: Sendable, Equatable {
    public enum Decision: String, Sendable, Codable { case allow, deny }

    public struct PolicyError: Sendable, Equatable, Codable {
        public var policyID: String
        public var message: String
    }

    public var decision: Decision
    /// Satisfied forbids when denied by one; otherwise satisfied permits (empty on a default deny).
    public var reasons: [String]
    public var errors: [PolicyError]
}

/// A parsed, indexed set of policies.
///
/// Each policy is filed under the most selective part of its scope — a principal entity or type, else an
/// action, else a resource — so a request only evaluates policies whose scope can match it, instead of
/// scanning every policy.
public struct PolicySet: Sendable {
    public let policies: [Policy]

    private enum Key: Hashable {
        case entity(EntityUID)
        case type(String)
    }

    /// Policies filed under one key, split again by action so that a principal's bucket is not scanned
    /// for other actions' policies.
    private struct Bucket: Sendable {
        var byAction: [Key: [Int32]] = [:]
        var anyAction: [Int32] = []

        mutating func add(_ n: Int32, actionKeys: [Key]?) {
            guard let actionKeys else { return anyAction.append(n) }
            for k in actionKeys { byAction[k, default: []].append(n) }
        }
    }

    private var principalIndex: [Key: Bucket] = [:]
    private var resourceIndex: [Key: Bucket] = [:]
    private var actionOnly = Bucket()

    public init(_ policies: [Policy]) {
        self.policies = policies
        for (i, policy) in policies.enumerated() {
            let n = Int32(i)
            let actionKeys = Self.keys(policy.action)
            if let keys = Self.keys(policy.principal) {
                for k in keys { principalIndex[k, default: Bucket()].add(n, actionKeys: actionKeys) }
            } else if let keys = Self.keys(policy.resource) {
                for k in keys { resourceIndex[k, default: Bucket()].add(n, actionKeys: actionKeys) }
            } else {
                actionOnly.add(n, actionKeys: actionKeys)
            }
        }
    }

    /// Parses Cedar text into a policy set; ids are `policy0`, `policy1`, … unless a prefix is given.
    public init(text: String, idPrefix: String = "policy") throws(PolicyParseError) {
        self.init(try Parser.parsePolicies(text, idPrefix: idPrefix))
    }

    private static func keys(_ constraint: ScopeConstraint) -> [Key]? {
        switch constraint {
        case .any: return nil
        case .equals(let e), .in(let e), .isIn(_, let e): return [.entity(e)]
        case .is(let t): return [.type(t)]
        case .inAny(let list):
            var seen = Set<EntityUID>()
            return list.filter { seen.insert($0).inserted }.map { .entity($0) }
        }
    }

    /// The keys a request's entity is filed under: itself, its type and every ancestor.
    private static func lookupKeys(_ uid: EntityUID, _ entities: Entities) -> [Key] {
        var keys: [Key] = [.entity(uid), .type(uid.type)]
        if let ancestors = entities[uid]?.ancestors {
            keys.reserveCapacity(2 + ancestors.count)
            for a in ancestors { keys.append(.entity(a)) }
        }
        return keys
    }

    /// Indices of the policies whose scope could match, in file order, without duplicates.
    private func candidates(for request: AuthorizationRequest, entities: Entities) -> [Int32] {
        var out: [Int32] = []
        let actionKeys = Self.lookupKeys(request.action, entities)
        func collect(_ bucket: Bucket) {
            out += bucket.anyAction
            if bucket.byAction.isEmpty { return }
            for k in actionKeys { if let l = bucket.byAction[k] { out += l } }
        }
        collect(actionOnly)
        if !principalIndex.isEmpty {
            for k in Self.lookupKeys(request.principal, entities) { if let b = principalIndex[k] { collect(b) } }
        }
        if !resourceIndex.isEmpty {
            for k in Self.lookupKeys(request.resource, entities) { if let b = resourceIndex[k] { collect(b) } }
        }
        out.sort()
        // An action list naming two ancestors of the request's action files the policy twice.
        var deduplicated: [Int32] = []
        deduplicated.reserveCapacity(out.count)
        for i in out where deduplicated.last != i { deduplicated.append(i) }
        return deduplicated
    }

    /// How many policies a request evaluates after the index (for tests and diagnostics).
    func candidateCount(for request: AuthorizationRequest, entities: Entities) -> Int {
        candidates(for: request, entities: entities).count
    }

    /// Authorizes a request exactly as Cedar does: a satisfied forbid denies; otherwise a satisfied permit
    /// allows; otherwise deny. A policy whose condition errors is skipped and reported in `errors`.
    public func isAuthorized(_ request: AuthorizationRequest, entities: Entities) -> AuthorizationResponse {
        let evaluation = evaluate(request, entities: entities)
        if !evaluation.forbids.isEmpty {
            return AuthorizationResponse(
                decision: .deny, reasons: evaluation.forbids.map { policies[$0].id }, errors: evaluation.errors)
        }
        return AuthorizationResponse(
            decision: evaluation.permits.isEmpty ? .deny : .allow, reasons: evaluation.permits.map { policies[$0].id },
            errors: evaluation.errors)
    }

    /// Whether *some* request with this principal, action and resource — whatever its context — could
    /// be allowed (or asked): the tools door lists a tool only then ("listing = calling").
    ///
    /// Exact for policies whose conditions do not read the context: they are evaluated (with an empty
    /// context they never look at). A permit that reads the context is assumed satisfiable; a forbid that
    /// reads it is assumed not to apply. So a "no" is certain — every call would be denied — and a "yes"
    /// is wrong only for a permit whose context conditions no request can satisfy.
    public func couldAllow(principal: EntityUID, action: EntityUID, resource: EntityUID, entities: Entities) -> Bool {
        let request = AuthorizationRequest(principal: principal, action: action, resource: resource, context: [:])
        let evaluator = Evaluator(request: request, entities: entities)
        var possible = false
        for i in candidates(for: request, entities: entities) {
            let policy = policies[Int(i)]
            guard Self.scopeMatches(policy, request, entities) else { continue }
            if policy.readsContext {
                if policy.effect == .permit { possible = true }
                continue
            }
            do throws(EvaluationError) {
                var satisfied = true
                for condition in policy.conditions {
                    guard case .bool(let b) = try evaluator.evaluate(condition.body) else {
                        throw EvaluationError("type error")
                    }
                    if b != (condition.kind == .when) {
                        satisfied = false
                        break
                    }
                }
                guard satisfied else { continue }
                // A context-free forbid that holds denies every such request.
                if policy.effect == .forbid { return false }
                possible = true
            } catch {
                // Skipped at decision time too, for every context.
            }
        }
        return possible
    }

    struct Evaluation {
        var permits: [Int] = []
        var forbids: [Int] = []
        var errors: [AuthorizationResponse.PolicyError] = []
    }

    /// Every satisfied policy, split by effect, plus the errors.
    func evaluate(_ request: AuthorizationRequest, entities: Entities) -> Evaluation {
        var result = Evaluation()
        let evaluator = Evaluator(request: request, entities: entities)
        for i in candidates(for: request, entities: entities) {
            let policy = policies[Int(i)]
            guard Self.scopeMatches(policy, request, entities) else { continue }
            do throws(EvaluationError) {
                var satisfied = true
                for condition in policy.conditions {
                    guard case .bool(let b) = try evaluator.evaluate(condition.body) else {
                        throw EvaluationError("type error: a \(condition.kind.rawValue) condition must be a bool")
                    }
                    if b != (condition.kind == .when) {
                        satisfied = false
                        break
                    }
                }
                if satisfied {
                    if policy.effect == .permit { result.permits.append(Int(i)) } else { result.forbids.append(Int(i)) }
                }
            } catch {
                result.errors.append(.init(policyID: policy.id, message: error.message))
            }
        }
        return result
    }

    @inline(__always)
    static func scopeMatches(_ policy: Policy, _ request: AuthorizationRequest, _ entities: Entities) -> Bool {
        matches(policy.principal, request.principal, entities) && matches(policy.action, request.action, entities)
            && matches(policy.resource, request.resource, entities)
    }

    @inline(__always)
    private static func matches(_ constraint: ScopeConstraint, _ uid: EntityUID, _ entities: Entities) -> Bool {
        switch constraint {
        case .any: return true
        case .equals(let e): return uid == e
        case .in(let e): return entities.isDescendant(uid, of: e)
        case .inAny(let list): return list.contains { entities.isDescendant(uid, of: $0) }
        case .is(let t): return exactlyEqual(uid.type, t)
        case .isIn(let t, let e): return exactlyEqual(uid.type, t) && entities.isDescendant(uid, of: e)
        }
    }
}
