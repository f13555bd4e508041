/// RFC 8785 (JSON Canonicalization Scheme) for the values Warden records.
///
/// Members are sorted by their names' UTF-16 code units, strings are escaped minimally (`\b \t \n \f \r`,
/// other controls as `\u00xx`), no whitespace is written. Numbers must be integers within ±(2^53 − 1),
/// where RFC 8785's ECMAScript number form is the plain decimal integer; anything else has no exact
/// canonical form and is refused, so callers record such values as strings.
extension JSONValue {
    public struct CanonicalizationError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static let maximumSafeInteger: Int64 = 9_007_199_254_740_991

    public func canonicalized() throws(CanonicalizationError) -> String {
        var out = ""
        try writeCanonical(to: &out)
        return out
    }

    private func writeCanonical(to out: inout String) throws(CanonicalizationError) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let text):
            guard let n = Int64(text), abs(n) <= Self.maximumSafeInteger else {
                throw CanonicalizationError(
                    description: "the number \(text) is not an integer within ±(2^53 − 1); record it as a string")
            }
            out += String(n)
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                try item.writeCanonical(to: &out)
            }
            out += "]"
        case .object(let members):
            var seen = Set<String>()
            for m in members where !seen.insert(m.key).inserted {
                throw CanonicalizationError(description: "duplicate member \"\(m.key)\" has no canonical form")
            }
            let sorted = members.sorted { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }
            out += "{"
            for (i, member) in sorted.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(member.key, to: &out)
                out += ":"
                try member.value.writeCanonical(to: &out)
            }
            out += "}"
        }
    }
}
