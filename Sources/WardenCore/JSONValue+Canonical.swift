/// RFC 8785 (JSON Canonicalization Scheme) for the values Warden records.
///
/// Members are sorted by their names' UTF-16 code units, strings are escaped minimally (`\b \t \n \f \r`,
/// other controls as `\u00xx`), no whitespace is written. Integers must be within ±(2^53 − 1) (beyond,
/// a double would change them: refused, so callers record such values as strings). A fraction or an
/// exponent is refused too unless `allowingFractions` (requests and results Warden digests but does not
/// store as audit details), then written as ECMAScript writes the double it denotes (RFC 8785 §3.2.2.3:
/// `98.7`, `1e-7`, `1e+21`). The audit log's details stay integers-only.
extension JSONValue {
    public struct CanonicalizationError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static let maximumSafeInteger: Int64 = 9_007_199_254_740_991

    /// A double as ECMAScript's Number::toString writes it: the shortest digits that round-trip
    /// (Swift's description has them), placed as ECMAScript places them.
    static func ecmaScript(_ value: Double) -> String {
        if value == 0 { return "0" }
        let negative = value < 0
        let text = String(describing: abs(value))
        let parts = text.lowercased().split(separator: "e")
        var exponent = parts.count == 2 ? Int(parts[1]) ?? 0 : 0
        let mantissa = parts[0]
        let pieces = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        var digits = String(pieces[0]) + (pieces.count > 1 ? String(pieces[1]) : "")
        exponent += pieces[0].count
        // Leading zeros move the point; trailing zeros are not digits.
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            exponent -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        let k = digits.count
        let n = exponent
        var out: String
        if k <= n && n <= 21 {
            out = digits + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            out = String(digits.prefix(n)) + "." + String(digits.dropFirst(n))
        } else if -6 < n && n <= 0 {
            out = "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            out =
                String(digits.prefix(1)) + (k > 1 ? "." + String(digits.dropFirst()) : "") + "e" + (e < 0 ? "-" : "+")
                + String(abs(e))
        }
        return negative ? "-" + out : out
    }

    public func canonicalized(allowingFractions: Bool = false) throws(CanonicalizationError) -> String {
        var out = ""
        try writeCanonical(to: &out, fractions: allowingFractions)
        return out
    }

    private func writeCanonical(to out: inout String, fractions: Bool) throws(CanonicalizationError) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let text):
            if let n = Int64(text), abs(n) <= Self.maximumSafeInteger {
                out += String(n)
            } else if fractions, text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let d = Double(text),
                d.isFinite
            {
                out += Self.ecmaScript(d)
            } else {
                throw CanonicalizationError(
                    description: "the number \(text) is not an integer within ±(2^53 − 1); record it as a string")
            }
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                try item.writeCanonical(to: &out, fractions: fractions)
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
                try member.value.writeCanonical(to: &out, fractions: fractions)
            }
            out += "}"
        }
    }
}
