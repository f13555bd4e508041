import Foundation
import WardenBench

@testable import WardenPolicy

/// Deterministic random Cedar policy sets, entities and requests for differential testing.
///
/// The generator aims at the corners where implementations disagree: type errors, missing attributes and
/// entities, overflow, extension constructors with bad input, deep hierarchies, `like` with escapes,
/// tags, and short-circuiting that hides (or does not hide) an error.
struct RandomPolicies {
    /// The benchmark workloads' SplitMix64: same seed, same sequence.
    var rng: PolicyWorkload.Random

    init(seed: UInt64) { rng = PolicyWorkload.Random(state: seed) }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    static let groups = (0...5).map { "Group::\"g\($0)\"" }
    static let users = ["User::\"u0\"", "User::\"u1\"", "User::\"u2\"", "User::\"ghost\""]
    static let folders = (0...3).map { "Folder::\"f\($0)\"" }
    static let docs = ["Doc::\"d0\"", "Doc::\"d1\"", "ns::Doc::\"d2\"", "Doc::\"missing\""]
    static let actions = ["Action::\"read\"", "Action::\"write\"", "Action::\"delete\"", "Action::\"readish\""]
    static var allEntities: [String] { groups + users + folders + docs + actions }

    // MARK: - Entities (as Cedar JSON)

    func uidJSON(_ cedar: String) -> String {
        let parts = cedar.components(separatedBy: "::\"")
        return "{\"type\": \"\(parts[0])\", \"id\": \"\(parts[1].dropLast())\"}"
    }

    mutating func attributeJSON(_ name: String) -> String {
        switch name {
        case "n": return pick(["0", "1", "-7", "42", "9223372036854775807", "-9223372036854775808"])
        case "s": return pick(["\"\"", "\"abc\"", "\"a*c\"", "\"hello world\"", "\"ü\""])
        case "b": return pick(["true", "false"])
        case "tags": return pick(["[]", "[\"abc\"]", "[\"abc\", \"x\"]", "[1, \"abc\"]"])
        case "owner": return "{\"__entity\": \(uidJSON(pick(Self.users)))}"
        case "ip":
            return
                "{\"__extn\": {\"fn\": \"ip\", \"arg\": \"\(pick(["10.0.0.1", "127.0.0.1", "::1", "10.0.0.0/8", "ff02::1"]))\"}}"
        case "dec":
            return
                "{\"__extn\": {\"fn\": \"decimal\", \"arg\": \"\(pick(["0.0", "-1.5", "12.3456", "922337203685477.5807"]))\"}}"
        case "when":
            return
                "{\"__extn\": {\"fn\": \"datetime\", \"arg\": \"\(pick(["2024-01-01", "1969-12-31T23:59:59Z", "2024-02-29T12:00:00.123+0130"]))\"}}"
        case "dur": return "{\"__extn\": {\"fn\": \"duration\", \"arg\": \"\(pick(["1h", "-2d3ms", "0ms", "90m"]))\"}}"
        default: return "{\"n\": \(attributeJSON("n")), \"s\": \(attributeJSON("s"))}"
        }
    }

    static let attributeNames = ["n", "s", "b", "tags", "owner", "ip", "dec", "when", "dur", "nested"]

    mutating func recordJSON() -> String {
        var members: [String] = []
        for name in Self.attributeNames where chance(0.6) { members.append("\"\(name)\": \(attributeJSON(name))") }
        return "{" + members.joined(separator: ", ") + "}"
    }

    mutating func entitiesJSON() -> String {
        var entities: [String] = []
        func entity(_ uid: String, parents: [String], _ g: inout RandomPolicies) -> String {
            let tags = g.chance(0.4) ? ", \"tags\": {\"k1\": \"abc\", \"k2\": 5}" : ""
            return "{\"uid\": \(g.uidJSON(uid)), \"attrs\": \(g.recordJSON()), \"parents\": ["
                + parents.map { g.uidJSON($0) }.joined(separator: ", ") + "]\(tags)}"
        }
        // A five-level group chain g0 ⊂ g1 ⊂ … ⊂ g4, and g5 on its own.
        for i in 0...5 { entities.append(entity(Self.groups[i], parents: i < 4 ? [Self.groups[i + 1]] : [], &self)) }
        for u in Self.users.dropLast() {
            var parents: [String] = []
            for _ in 0..<int(0...2) { parents.append(pick(Self.groups)) }
            entities.append(entity(u, parents: Array(Set(parents)), &self))
        }
        for i in 0...3 { entities.append(entity(Self.folders[i], parents: i < 3 ? [Self.folders[i + 1]] : [], &self)) }
        for d in Self.docs.dropLast() {
            entities.append(entity(d, parents: chance(0.7) ? [pick(Self.folders)] : [], &self))
        }
        entities.append(
            "{\"uid\": \(uidJSON("Action::\"read\"")), \"attrs\": {}, \"parents\": [\(uidJSON("Action::\"readish\""))]}"
        )
        return "[" + entities.joined(separator: ",\n") + "]"
    }

    // MARK: - Policies

    mutating func scope(_ variable: String) -> String {
        switch int(0...5) {
        case 0, 1: return variable
        case 2: return "\(variable) == \(pick(Self.allEntities))"
        case 3: return "\(variable) in \(pick(Self.groups + Self.folders))"
        case 4: return "\(variable) is \(pick(["User", "Doc", "Folder", "ns::Doc", "Group"]))"
        default: return "\(variable) is \(pick(["User", "Doc", "Group"])) in \(pick(Self.groups + Self.folders))"
        }
    }

    mutating func actionScope() -> String {
        switch int(0...4) {
        case 0, 1: return "action"
        case 2: return "action == \(pick(Self.actions))"
        case 3: return "action in \(pick(Self.actions))"
        default: return "action in [\(pick(Self.actions)), \(pick(Self.actions))]"
        }
    }

    enum Kind: CaseIterable { case bool, long, string, entity, set, record, ext }

    mutating func anyExpr(_ depth: Int) -> String { expr(pick(Kind.allCases), depth) }

    mutating func variable() -> String { pick(["principal", "resource", "action", "context"]) }

    mutating func attribute() -> String { pick(Self.attributeNames) }

    mutating func expr(_ kind: Kind, _ depth: Int) -> String {
        // Now and then an expression of the wrong type, to exercise type errors.
        if depth > 0, chance(0.06) { return expr(pick(Kind.allCases), depth - 1) }
        let leaf = depth <= 0
        switch kind {
        case .bool:
            if leaf { return pick(["true", "false", "context has b", "principal has n"]) }
            switch int(0...19) {
            case 0: return "(\(expr(.bool, depth - 1)) && \(expr(.bool, depth - 1)))"
            case 1: return "(\(expr(.bool, depth - 1)) || \(expr(.bool, depth - 1)))"
            case 2: return "!\(expr(.bool, depth - 1))"
            case 3: return "(\(expr(.long, depth - 1)) \(pick(["<", "<=", ">", ">="])) \(expr(.long, depth - 1)))"
            case 4: return "(\(anyExpr(depth - 1)) \(pick(["==", "!="])) \(anyExpr(depth - 1)))"
            case 5: return "(\(expr(.record, depth - 1)) has \(attribute()))"
            case 6: return "(\(expr(.entity, depth - 1)) has \(pick(["nested.n", "owner", "s", "\"n\""])))"
            case 7:
                return
                    "(\(expr(.string, depth - 1)) like \(pick(["\"*\"", "\"a*\"", "\"*c\"", "\"a\\*c\"", "\"\"", "\"h*o*d\""])))"
            case 8:
                return
                    "(\(expr(.entity, depth - 1)) in \(pick([expr(.entity, depth - 1), "[\(expr(.entity, depth - 1)), \(pick(Self.groups))]"])))"
            case 9: return "(\(expr(.entity, depth - 1)) is \(pick(["User", "Doc", "ns::Doc", "Group"])))"
            case 10:
                return "(if \(expr(.bool, depth - 1)) then \(expr(.bool, depth - 1)) else \(expr(.bool, depth - 1)))"
            case 11: return "\(expr(.set, depth - 1)).contains(\(anyExpr(depth - 1)))"
            case 12: return "\(expr(.set, depth - 1)).\(pick(["containsAll", "containsAny"]))(\(expr(.set, depth - 1)))"
            case 13: return "\(expr(.set, depth - 1)).isEmpty()"
            case 14: return "\(expr(.entity, depth - 1)).hasTag(\(pick(["\"k1\"", "\"k2\"", "\"nope\""])))"
            case 15:
                return
                    "\(expr(.ext, depth - 1)).\(pick(["isIpv4()", "isIpv6()", "isLoopback()", "isMulticast()", "isInRange(ip(\"10.0.0.0/8\"))"]))"
            case 16:
                return
                    "\(expr(.ext, depth - 1)).\(pick(["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"]))(decimal(\"\(pick(["1.0", "-0.5", "12.34"]))\"))"
            case 17:
                let e = pick([
                    "datetime(\"2024-01-01\")", "context.when", "principal.when",
                    "datetime(\"2024-01-01T00:00:00Z\").offset(duration(\"1d\"))",
                ])
                return "(\(e) \(pick(["<", ">=", "=="])) \(expr(.ext, depth - 1)))"
            case 18: return "(\(expr(.entity, depth - 1)) is \(pick(["User", "Group"])) in \(pick(Self.groups)))"
            default:
                return "(\(variable()) has \(attribute()) && \(variable()).\(attribute()) == \(anyExpr(depth - 1)))"
            }
        case .long:
            if leaf {
                return pick([
                    "0", "1", "-1", "7", "9223372036854775807", "-9223372036854775808", "context.n", "principal.n",
                ])
            }
            switch int(0...6) {
            case 0: return "(\(expr(.long, depth - 1)) \(pick(["+", "-", "*"])) \(expr(.long, depth - 1)))"
            case 1: return "-\(expr(.long, depth - 1))"
            case 2: return "\(pick(["principal", "resource", "context", "principal.nested", "resource.owner"])).n"
            case 3: return "\(expr(.entity, depth - 1)).getTag(\"k2\")"
            case 4: return "\(expr(.ext, depth - 1)).\(pick(["toMilliseconds()", "toSeconds()", "toDays()"]))"
            case 5:
                return "(if \(expr(.bool, depth - 1)) then \(expr(.long, depth - 1)) else \(expr(.long, depth - 1)))"
            default: return pick(["3", "-9223372036854775808", "4611686018427387904", "2"])
            }
        case .string:
            if leaf { return pick(["\"abc\"", "\"\"", "\"a*c\"", "\"hello world\"", "\"\\u{fc}\"", "context.s"]) }
            switch int(0...2) {
            case 0: return "\(pick(["principal", "resource", "context", "context.nested"])).s"
            case 1: return "\(expr(.entity, depth - 1)).getTag(\"k1\")"
            default: return "\(expr(.record, depth - 1))[\"s\"]"
            }
        case .entity:
            if leaf { return pick(Self.allEntities + ["principal", "resource", "action"]) }
            switch int(0...2) {
            case 0: return "\(pick(["principal", "resource", "context"])).owner"
            case 1: return pick(Self.allEntities)
            default: return pick(["principal", "resource", "action"])
            }
        case .set:
            if leaf { return pick(["[]", "[1, 2]", "[\"abc\"]", "context.tags", "principal.tags"]) }
            return "[\(anyExpr(depth - 1)), \(anyExpr(depth - 1))]"
        case .record:
            if leaf { return pick(["context", "{}", "{n: 1, s: \"abc\"}"]) }
            return pick([
                "context", "principal.nested", "{n: \(expr(.long, depth - 1)), \"s\": \(expr(.string, depth - 1))}",
            ])
        case .ext:
            switch int(0...8) {
            case 0:
                return
                    "ip(\"\(pick(["10.1.2.3", "127.0.0.1/8", "::1", "ff00::/8", "1.2.3", "224.0.0.1", "10.0.0.0/33"]))\")"
            case 1: return "decimal(\"\(pick(["1.0", "-0.5", "1.23456", "abc", "922337203685477.5808"]))\")"
            case 2:
                return
                    "datetime(\"\(pick(["2024-01-01", "2024-13-01", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.5Z"]))\")"
            case 3: return "duration(\"\(pick(["1h", "1d2h3m4s5ms", "-1ms", "1m1h", "9223372036854775807ms"]))\")"
            case 4: return "\(pick(["principal", "context", "resource"])).\(pick(["ip", "dec", "when", "dur"]))"
            case 5:
                return
                    "datetime(\"2024-03-01T00:00:00Z\").\(pick(["toDate()", "toTime()", "durationSince(datetime(\"2024-01-01\"))"]))"
            case 6:
                return
                    "\(pick(["context.when", "principal.when"])).offset(\(pick(["duration(\"1d\")", "context.dur"])))"
            case 7: return "ip(\(expr(.string, depth - 1)))"
            default: return "decimal(\(expr(.string, depth - 1)))"
            }
        }
    }

    mutating func policy() -> String {
        var text =
            "\(pick(["permit", "permit", "permit", "forbid"]))(\(scope("principal")), \(actionScope()), \(scope("resource")))"
        for _ in 0..<int(0...2) {
            text += " \(pick(["when", "unless"])) { \(expr(.bool, int(1...3))) }"
        }
        return text + ";"
    }

    mutating func policySet() -> String {
        (0..<int(1...6)).map { _ in policy() }.joined(separator: "\n")
    }

    mutating func requestJSON() -> String {
        let principal = uidJSON(pick(Self.users + [Self.groups[0]]))
        let action = uidJSON(pick(Self.actions))
        let resource = uidJSON(pick(Self.docs + Self.folders))
        return
            "{\"principal\": \(principal), \"action\": \(action), \"resource\": \(resource), \"context\": \(recordJSON())}"
    }
}
