/// A position in policy text: 1-based line and column (columns count Unicode scalars).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var description: String { "\(line):\(column)" }
}

/// A syntax error with the place it was found.
public struct PolicyParseError: Error, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    public var description: String { "\(location): \(message)" }
}

public enum Effect: String, Sendable, Codable {
    case permit, forbid
}

/// A constraint on `principal`, `action` or `resource` in a policy's scope.
public enum ScopeConstraint: Sendable, Equatable {
    case any
    case equals(EntityUID)
    case `in`(EntityUID)
    case inAny([EntityUID])
    case `is`(String)
    case isIn(String, EntityUID)
}

public struct Condition: Sendable {
    public enum Kind: String, Sendable { case when, unless }
    public var kind: Kind
    var body: Expr
}

/// One parsed Cedar policy.
public struct Policy: Sendable {
    /// `policy0`, `policy1`, … in file order, unless the caller names them.
    public var id: String
    public var effect: Effect
    /// Annotations in written order (`@ask("why")` → ("ask", "why")).
    public var annotations: [(key: String, value: String)]
    public var principal: ScopeConstraint
    public var action: ScopeConstraint
    public var resource: ScopeConstraint
    public var conditions: [Condition]
    public var location: SourceLocation

    public func annotation(_ key: String) -> String? {
        annotations.first { $0.key == key }?.value
    }
}

enum Variable: Sendable { case principal, action, resource, context }

enum BinaryOperator: Sendable {
    case equal, notEqual, less, lessEqual, greater, greaterEqual
    case add, subtract, multiply
    case `in`
    case contains, containsAll, containsAny
    case hasTag, getTag
}

/// Extension functions and methods, resolved at parse time (an unknown name is a syntax error, as in Cedar).
enum ExtensionFunction: String, Sendable {
    case ip, decimal, datetime, duration
    case isIpv4, isIpv6, isLoopback, isMulticast, isInRange
    case lessThan, lessThanOrEqual, greaterThan, greaterThanOrEqual
    case offset, durationSince, toDate, toTime
    case toMilliseconds, toSeconds, toMinutes, toHours, toDays

    var isConstructor: Bool { [.ip, .decimal, .datetime, .duration].contains(self) }

    /// Arguments including the receiver of a method.
    var arity: Int {
        switch self {
        case .isInRange, .lessThan, .lessThanOrEqual, .greaterThan, .greaterThanOrEqual, .offset, .durationSince: 2
        default: 1
        }
    }
}

/// A `like` pattern: literal runs and `*` wildcards.
struct LikePattern: Sendable {
    enum Element: Sendable, Equatable {
        case wildcard
        case literal(Unicode.Scalar)
    }
    var elements: [Element]

    func matches(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        // Classic wildcard matching with backtracking to the last star: linear in practice.
        var t = 0
        var p = 0
        var starP = -1
        var starT = 0
        while t < scalars.count {
            if p < elements.count, case .literal(let c) = elements[p], c == scalars[t] {
                t += 1
                p += 1
            } else if p < elements.count, elements[p] == .wildcard {
                starP = p
                starT = t
                p += 1
            } else if starP >= 0 {
                p = starP + 1
                starT += 1
                t = starT
            } else {
                return false
            }
        }
        while p < elements.count, elements[p] == .wildcard { p += 1 }
        return p == elements.count
    }
}

/// A Cedar expression.
indirect enum Expr: Sendable {
    case literal(CedarValue)
    case variable(Variable)
    case not(Expr)
    case negate(Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case ifThenElse(Expr, Expr, Expr)
    case binary(BinaryOperator, Expr, Expr)
    case getAttribute(Expr, String)
    case hasAttribute(Expr, String)
    case like(Expr, LikePattern)
    case isType(Expr, String)
    case isEmpty(Expr)
    case set([Expr])
    case record([(String, Expr)])
    case call(ExtensionFunction, [Expr])
}
