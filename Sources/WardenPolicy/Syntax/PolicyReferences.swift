/// What a policy's text refers to, for callers that must know whether a policy is explicit about
/// something (the egress door: a private address is reachable only through a policy that names it).
extension Policy {
    /// Whether any condition reads the context at all (its value can then differ from request to request
    /// with the same principal, action and resource).
    public var readsContext: Bool { conditions.contains { $0.body.readsContext } }

    /// Whether any condition reads `context.<attribute>` (or tests `context has <attribute>`).
    public func refersToContext(_ attribute: String) -> Bool {
        conditions.contains { $0.body.refersToContext(attribute) }
    }

    /// The entities its resource scope names (`==`, `in`, `in [...]`).
    public var resourceEntities: [EntityUID] {
        switch resource {
        case .equals(let uid), .in(let uid), .isIn(_, let uid): [uid]
        case .inAny(let uids): uids
        case .any, .is: []
        }
    }

    /// Every integer literal in its conditions (the egress door listens on the ports a policy can permit).
    public var integerLiterals: [Int64] {
        var result: [Int64] = []
        for condition in conditions { condition.body.collectIntegers(into: &result) }
        return result
    }
}

extension Expr {
    var readsContext: Bool {
        if case .variable(.context) = self { return true }
        return children.contains { $0.readsContext }
    }

    func refersToContext(_ attribute: String) -> Bool {
        switch self {
        case .getAttribute(.variable(.context), let name), .hasAttribute(.variable(.context), let name):
            return name == attribute
        default:
            return children.contains { $0.refersToContext(attribute) }
        }
    }

    func collectIntegers(into result: inout [Int64]) {
        if case .literal(.long(let n)) = self { result.append(n) }
        if case .literal(.set(let values)) = self {
            for case .long(let n) in values { result.append(n) }
        }
        for child in children { child.collectIntegers(into: &result) }
    }

    var children: [Expr] {
        switch self {
        case .literal, .variable: []
        case .not(let e), .negate(let e), .getAttribute(let e, _), .hasAttribute(let e, _), .like(let e, _),
            .isType(let e, _), .isEmpty(let e):
            [e]
        case .and(let a, let b), .or(let a, let b), .binary(_, let a, let b): [a, b]
        case .ifThenElse(let a, let b, let c): [a, b, c]
        case .set(let items), .call(_, let items): items
        case .record(let fields): fields.map(\.1)
        }
    }
}
