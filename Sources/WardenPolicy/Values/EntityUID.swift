/// A Cedar entity reference: a type path (`Namespace::Type`) and an id.
///
/// Equality compares the exact UTF-8 bytes, as Cedar does; Swift's `String ==` would treat canonically
/// equivalent but differently encoded ids as equal.
public struct EntityUID: Hashable, Sendable, CustomStringConvertible {
    public let type: String
    public let id: String
    /// Computed once: entity references are hashed on every hierarchy and index lookup, and hashing two
    /// strings each time dominated the cost of a decision.
    private let fingerprint: Int

    public init(type: String, id: String) {
        self.type = type
        self.id = id
        var hasher = Hasher()
        hasher.combine(type)
        hasher.combine(id)
        fingerprint = hasher.finalize()
    }

    public static func == (lhs: EntityUID, rhs: EntityUID) -> Bool {
        lhs.fingerprint == rhs.fingerprint && exactlyEqual(lhs.id, rhs.id) && exactlyEqual(lhs.type, rhs.type)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(fingerprint)
    }

    /// Cedar syntax: `Type::"id"`, with the id escaped.
    public var description: String { "\(type)::\(CedarSyntax.quoted(id))" }

    /// Parses `Type::"id"` as written on a command line or in a test file.
    public static func parse(_ text: String) throws(PolicyParseError) -> EntityUID {
        try Parser.parseEntityUID(text)
    }
}

/// Byte-exact string equality (Cedar compares strings as sequences of Unicode scalar values).
@inline(__always)
func exactlyEqual(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    return a.withUTF8 { x in b.withUTF8 { y in x.count == y.count && (x.count == 0 || memcmpBytes(x, y)) } }
}

@inline(__always)
private func memcmpBytes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    for i in 0..<x.count where x[i] != y[i] { return false }
    return true
}

enum CedarSyntax {
    /// A Cedar string literal for `s`, escaping what the parser would otherwise misread.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// Splits on every `::` (a Foundation-free `components(separatedBy: "::")`).
func splitOnDoubleColon(_ s: Substring) -> [Substring] {
    var parts: [Substring] = []
    var start = s.startIndex
    var i = s.startIndex
    while i < s.endIndex {
        let next = s.index(after: i)
        if s[i] == ":", next < s.endIndex, s[next] == ":" {
            parts.append(s[start..<i])
            i = s.index(after: next)
            start = i
        } else {
            i = next
        }
    }
    parts.append(s[start..<s.endIndex])
    return parts
}
