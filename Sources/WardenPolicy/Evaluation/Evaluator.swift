/// A request to authorize: who, what, on what, and in what circumstances.
public struct AuthorizationRequest: Sendable {
    public var principal: EntityUID
    public var action: EntityUID
    public var resource: EntityUID
    public var context: [String: CedarValue]

    public init(principal: EntityUID, action: EntityUID, resource: EntityUID, context: [String: CedarValue] = [:]) {
        self.principal = principal
        self.action = action
        self.resource = resource
        self.context = context
    }
}

/// Why an expression could not be evaluated (type error, missing attribute, overflow, bad extension value…).
public struct EvaluationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// Evaluates expressions against one request and one entity store, with Cedar's exact semantics.
struct Evaluator {
    let request: AuthorizationRequest
    let entities: Entities

    func evaluate(_ expr: Expr) throws(EvaluationError) -> CedarValue {
        switch expr {
        case .literal(let v): return v
        case .variable(let v):
            switch v {
            case .principal: return .entity(request.principal)
            case .action: return .entity(request.action)
            case .resource: return .entity(request.resource)
            case .context: return .record(request.context)
            }
        case .not(let e): return .bool(!(try bool(evaluate(e))))
        case .negate(let e):
            let n = try long(evaluate(e))
            let (r, overflow) = Int64(0).subtractingReportingOverflow(n)
            if overflow { throw EvaluationError("integer overflow while negating \(n)") }
            return .long(r)
        case .and(let a, let b):
            guard try bool(evaluate(a)) else { return .bool(false) }
            return .bool(try bool(evaluate(b)))
        case .or(let a, let b):
            if try bool(evaluate(a)) { return .bool(true) }
            return .bool(try bool(evaluate(b)))
        case .ifThenElse(let c, let t, let e):
            return try bool(evaluate(c)) ? try evaluate(t) : try evaluate(e)
        case .binary(let op, let a, let b):
            return try binary(op, evaluate(a), evaluate(b))
        case .getAttribute(let e, let name):
            switch try evaluate(e) {
            case .record(let r):
                guard let v = r[name] else {
                    throw EvaluationError("record does not have the attribute \(CedarSyntax.quoted(name))")
                }
                return v
            case .entity(let uid):
                guard let entity = entities[uid] else { throw EvaluationError("entity \(uid) does not exist") }
                guard let v = entity.attributes[name] else {
                    throw EvaluationError("entity \(uid) does not have the attribute \(CedarSyntax.quoted(name))")
                }
                return v
            case let other: throw typeError("record or entity", other)
            }
        case .hasAttribute(let e, let name):
            switch try evaluate(e) {
            case .record(let r): return .bool(r[name] != nil)
            case .entity(let uid): return .bool(entities[uid]?.attributes[name] != nil)
            case let other: throw typeError("record or entity", other)
            }
        case .like(let e, let pattern):
            guard case .string(let s) = try evaluate(e) else { throw typeError("string", try evaluate(e)) }
            return .bool(pattern.matches(s))
        case .isType(let e, let type):
            let v = try evaluate(e)
            guard case .entity(let uid) = v else { throw typeError("entity", v) }
            return .bool(exactlyEqual(uid.type, type))
        case .isEmpty(let e):
            let v = try evaluate(e)
            guard case .set(let s) = v else { throw typeError("set", v) }
            return .bool(s.isEmpty)
        case .set(let items):
            var s = Set<CedarValue>(minimumCapacity: items.count)
            for item in items { s.insert(try evaluate(item)) }
            return .set(s)
        case .record(let members):
            var r: [String: CedarValue] = [:]
            r.reserveCapacity(members.count)
            for (k, e) in members { r[k] = try evaluate(e) }
            return .record(r)
        case .call(let function, let args):
            var values: [CedarValue] = []
            values.reserveCapacity(args.count)
            for a in args { values.append(try evaluate(a)) }
            guard values.count == function.arity else {
                throw EvaluationError(
                    "wrong number of arguments to \(function.rawValue): expected \(function.arity), got \(values.count)"
                )
            }
            return try Self.call(function, values)
        }
    }

    @inline(__always)
    private func bool(_ v: CedarValue) throws(EvaluationError) -> Bool {
        guard case .bool(let b) = v else { throw typeError("bool", v) }
        return b
    }

    @inline(__always)
    private func long(_ v: CedarValue) throws(EvaluationError) -> Int64 {
        guard case .long(let n) = v else { throw typeError("long", v) }
        return n
    }

    private func typeError(_ expected: String, _ got: CedarValue) -> EvaluationError {
        EvaluationError("type error: expected \(expected), got \(got.typeName)")
    }

    private func binary(_ op: BinaryOperator, _ a: CedarValue, _ b: CedarValue) throws(EvaluationError) -> CedarValue {
        switch op {
        case .equal: return .bool(a == b)
        case .notEqual: return .bool(a != b)
        case .less, .lessEqual, .greater, .greaterEqual:
            let x: Int64
            let y: Int64
            switch (a, b) {
            case (.long(let p), .long(let q)), (.datetime(let p), .datetime(let q)),
                (.duration(let p), .duration(let q)):
                (x, y) = (p, q)
            case (.long, _): throw typeError("long", b)
            case (.datetime, _): throw typeError("datetime", b)
            case (.duration, _): throw typeError("duration", b)
            default: throw typeError("long, datetime or duration", a)
            }
            switch op {
            case .less: return .bool(x < y)
            case .lessEqual: return .bool(x <= y)
            case .greater: return .bool(x > y)
            default: return .bool(x >= y)
            }
        case .add, .subtract, .multiply:
            let x = try long(a)
            let y = try long(b)
            let (r, overflow) =
                op == .add
                ? x.addingReportingOverflow(y)
                : op == .subtract ? x.subtractingReportingOverflow(y) : x.multipliedReportingOverflow(by: y)
            if overflow { throw EvaluationError("integer overflow in arithmetic on \(x) and \(y)") }
            return .long(r)
        case .in:
            guard case .entity(let uid) = a else { throw typeError("entity", a) }
            switch b {
            case .entity(let target): return .bool(entities.isDescendant(uid, of: target))
            case .set(let targets):
                var found = false
                for t in targets {
                    guard case .entity(let target) = t else { throw typeError("entity", t) }
                    if !found, entities.isDescendant(uid, of: target) { found = true }
                }
                return .bool(found)
            default: throw typeError("entity or set of entities", b)
            }
        case .contains:
            guard case .set(let s) = a else { throw typeError("set", a) }
            return .bool(s.contains(b))
        case .containsAll, .containsAny:
            guard case .set(let s) = a else { throw typeError("set", a) }
            guard case .set(let t) = b else { throw typeError("set", b) }
            return .bool(op == .containsAll ? t.isSubset(of: s) : !s.isDisjoint(with: t))
        case .hasTag, .getTag:
            guard case .entity(let uid) = a else { throw typeError("entity", a) }
            guard case .string(let key) = b else { throw typeError("string", b) }
            if op == .hasTag { return .bool(entities[uid]?.tags[key] != nil) }
            guard let entity = entities[uid] else { throw EvaluationError("entity \(uid) does not exist") }
            guard let v = entity.tags[key] else {
                throw EvaluationError("entity \(uid) does not have the tag \(CedarSyntax.quoted(key))")
            }
            return v
        }
    }

    static func construct(_ function: ExtensionFunction, _ arg: CedarValue) throws(EvaluationError) -> CedarValue {
        guard case .string(let s) = arg else {
            throw EvaluationError("type error: \(function.rawValue)() expects a string, got \(arg.typeName)")
        }
        switch function {
        case .ip:
            guard let a = IPAddress.parse(s) else { throw EvaluationError("invalid IP address: \(s)") }
            return .ip(a)
        case .decimal:
            guard let d = CedarDecimal.parse(s) else { throw EvaluationError("invalid decimal value: \(s)") }
            return .decimal(d)
        case .datetime:
            guard let d = CedarTime.parseDatetime(s) else { throw EvaluationError("invalid datetime value: \(s)") }
            return .datetime(d)
        case .duration:
            guard let d = CedarTime.parseDuration(s) else { throw EvaluationError("invalid duration value: \(s)") }
            return .duration(d)
        default:
            throw EvaluationError("\(function.rawValue) is not a constructor")
        }
    }

    static func call(_ function: ExtensionFunction, _ args: [CedarValue]) throws(EvaluationError) -> CedarValue {
        func ip(_ v: CedarValue) throws(EvaluationError) -> IPAddress {
            guard case .ip(let a) = v else { throw EvaluationError("type error: expected ipaddr, got \(v.typeName)") }
            return a
        }
        func decimal(_ v: CedarValue) throws(EvaluationError) -> Int64 {
            guard case .decimal(let d) = v else {
                throw EvaluationError("type error: expected decimal, got \(v.typeName)")
            }
            return d
        }
        func datetime(_ v: CedarValue) throws(EvaluationError) -> Int64 {
            guard case .datetime(let d) = v else {
                throw EvaluationError("type error: expected datetime, got \(v.typeName)")
            }
            return d
        }
        func duration(_ v: CedarValue) throws(EvaluationError) -> Int64 {
            guard case .duration(let d) = v else {
                throw EvaluationError("type error: expected duration, got \(v.typeName)")
            }
            return d
        }
        switch function {
        case .ip, .decimal, .datetime, .duration: return try construct(function, args[0])
        case .isIpv4: return .bool(!(try ip(args[0])).isIPv6)
        case .isIpv6: return .bool(try ip(args[0]).isIPv6)
        case .isLoopback: return .bool(try ip(args[0]).isLoopback)
        case .isMulticast: return .bool(try ip(args[0]).isMulticast)
        case .isInRange: return .bool(try ip(args[0]).isInRange(try ip(args[1])))
        case .lessThan: return .bool(try decimal(args[0]) < decimal(args[1]))
        case .lessThanOrEqual: return .bool(try decimal(args[0]) <= decimal(args[1]))
        case .greaterThan: return .bool(try decimal(args[0]) > decimal(args[1]))
        case .greaterThanOrEqual: return .bool(try decimal(args[0]) >= decimal(args[1]))
        case .offset:
            let (r, o) = try datetime(args[0]).addingReportingOverflow(try duration(args[1]))
            if o { throw EvaluationError("overflow when adding an offset to a datetime") }
            return .datetime(r)
        case .durationSince:
            let (r, o) = try datetime(args[0]).subtractingReportingOverflow(try datetime(args[1]))
            if o { throw EvaluationError("overflow when computing the duration between datetimes") }
            return .duration(r)
        case .toDate:
            let d = try datetime(args[0])
            let day: Int64 = 86_400_000
            let remainder = ((d % day) + day) % day
            let (r, o) = d.subtractingReportingOverflow(remainder)
            if o { throw EvaluationError("overflow when computing the date of a datetime") }
            return .datetime(r)
        case .toTime:
            let d = try datetime(args[0])
            let day: Int64 = 86_400_000
            return .duration(((d % day) + day) % day)
        case .toMilliseconds: return .long(try duration(args[0]))
        case .toSeconds: return .long(try duration(args[0]) / 1000)
        case .toMinutes: return .long(try duration(args[0]) / 60_000)
        case .toHours: return .long(try duration(args[0]) / 3_600_000)
        case .toDays: return .long(try duration(args[0]) / 86_400_000)
        }
    }
}
