/// A Cedar value: the result of evaluating an expression, an attribute of an entity, or part of a context.
public enum CedarValue: Sendable, Hashable, CustomStringConvertible {
    case bool(Bool)
    case long(Int64)
    case string(String)
    case entity(EntityUID)
    case set(Set<CedarValue>)
    case record([String: CedarValue])
    /// `decimal`: the value times 10^4.
    case decimal(Int64)
    case ip(IPAddress)
    /// `datetime`: milliseconds since the Unix epoch.
    case datetime(Int64)
    /// `duration`: milliseconds.
    case duration(Int64)

    public static func == (lhs: CedarValue, rhs: CedarValue) -> Bool {
        switch (lhs, rhs) {
        case (.bool(let a), .bool(let b)): return a == b
        case (.long(let a), .long(let b)): return a == b
        case (.string(let a), .string(let b)): return exactlyEqual(a, b)
        case (.entity(let a), .entity(let b)): return a == b
        case (.set(let a), .set(let b)): return a == b
        case (.record(let a), .record(let b)): return a == b
        case (.decimal(let a), .decimal(let b)): return a == b
        case (.ip(let a), .ip(let b)): return a == b
        case (.datetime(let a), .datetime(let b)): return a == b
        case (.duration(let a), .duration(let b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .bool(let b): hasher.combine(0); hasher.combine(b)
        case .long(let n): hasher.combine(1); hasher.combine(n)
        case .string(let s): hasher.combine(2); hasher.combine(s)
        case .entity(let e): hasher.combine(3); hasher.combine(e)
        case .set(let s): hasher.combine(4); hasher.combine(s)
        case .record(let r): hasher.combine(5); hasher.combine(r)
        case .decimal(let d): hasher.combine(6); hasher.combine(d)
        case .ip(let a): hasher.combine(7); hasher.combine(a)
        case .datetime(let d): hasher.combine(8); hasher.combine(d)
        case .duration(let d): hasher.combine(9); hasher.combine(d)
        }
    }

    /// The type's name as Cedar's error messages spell it.
    public var typeName: String {
        switch self {
        case .bool: "bool"
        case .long: "long"
        case .string: "string"
        case .entity: "entity"
        case .set: "set"
        case .record: "record"
        case .decimal: "decimal"
        case .ip: "ipaddr"
        case .datetime: "datetime"
        case .duration: "duration"
        }
    }

    /// The value in Cedar syntax (records with sorted keys).
    public var description: String {
        switch self {
        case .bool(let b): return b ? "true" : "false"
        case .long(let n): return String(n)
        case .string(let s): return CedarSyntax.quoted(s)
        case .entity(let e): return e.description
        case .set(let s): return "[" + s.map(\.description).sorted().joined(separator: ", ") + "]"
        case .record(let r):
            return "{"
                + r.sorted { $0.key < $1.key }.map { "\(CedarSyntax.quoted($0.key)): \($0.value)" }
                .joined(separator: ", ") + "}"
        case .decimal(let d): return "decimal(\"\(CedarDecimal.format(d))\")"
        case .ip(let a): return "ip(\"\(a)\")"
        case .datetime(let ms): return "datetime(\"1970-01-01\").offset(duration(\"\(ms)ms\"))"
        case .duration(let ms): return "duration(\"\(ms)ms\")"
        }
    }
}

/// An IPv4 or IPv6 address with a prefix length, as Cedar's `ipaddr` keeps it (host bits included).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public var isIPv6: Bool
    public var bits: UInt128
    public var prefix: UInt8

    var width: UInt8 { isIPv6 ? 128 : 32 }

    public var description: String {
        if isIPv6 {
            var groups: [String] = []
            for i in stride(from: 112, through: 0, by: -16) {
                groups.append(String(UInt16(truncatingIfNeeded: bits >> i), radix: 16))
            }
            return groups.joined(separator: ":") + "/\(prefix)"
        }
        let v = UInt32(truncatingIfNeeded: bits)
        return "\(v >> 24).\((v >> 16) & 255).\((v >> 8) & 255).\(v & 255)/\(prefix)"
    }

    func network() -> UInt128 {
        let hostBits = Int(width - prefix)
        let mask: UInt128 = hostBits >= 128 ? 0 : ~((UInt128(1) << hostBits) - 1)
        let full: UInt128 = isIPv6 ? ~0 : UInt128(UInt32.max)
        return bits & mask & full
    }

    func broadcast() -> UInt128 {
        let hostBits = Int(width - prefix)
        let host: UInt128 = hostBits >= 128 ? ~0 : (UInt128(1) << hostBits) - 1
        let full: UInt128 = isIPv6 ? ~0 : UInt128(UInt32.max)
        return (bits | host) & full
    }

    func isInRange(_ other: IPAddress) -> Bool {
        guard isIPv6 == other.isIPv6 else { return false }
        return other.network() <= network() && broadcast() <= other.broadcast()
    }

    var isLoopback: Bool {
        if isIPv6 { return bits == 1 && prefix == 128 }
        return isInRange(IPAddress(isIPv6: false, bits: 0x7F00_0000, prefix: 8))
    }

    var isMulticast: Bool {
        if isIPv6 { return isInRange(IPAddress(isIPv6: true, bits: UInt128(0xFF) << 120, prefix: 8)) }
        return isInRange(IPAddress(isIPv6: false, bits: 0xE000_0000, prefix: 4))
    }

    /// Parses Cedar's accepted forms: dotted IPv4 or RFC 4291 IPv6, each with an optional `/prefix`.
    public static func parse(_ text: String) -> IPAddress? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let address = parts[0]
        var result: IPAddress
        if address.contains(":") {
            guard let v6 = parseIPv6(Substring(address)) else { return nil }
            result = IPAddress(isIPv6: true, bits: v6, prefix: 128)
        } else {
            guard let v4 = parseIPv4(Substring(address)) else { return nil }
            result = IPAddress(isIPv6: false, bits: UInt128(v4), prefix: 32)
        }
        if parts.count == 2 {
            let p = parts[1]
            guard !p.isEmpty, p.count <= 3, p.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                p == "0" || !p.hasPrefix("0"), let n = UInt8(p), n <= result.width
            else { return nil }
            result.prefix = n
        }
        return result
    }

    private static func parseIPv4(_ s: Substring) -> UInt32? {
        let octets = s.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard !octet.isEmpty, octet.count <= 3, octet.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                octet == "0" || !octet.hasPrefix("0"), let n = UInt32(octet), n <= 255
            else { return nil }
            value = value << 8 | n
        }
        return value
    }

    private static func parseIPv6(_ s: Substring) -> UInt128? {
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for g in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let n = UInt16(g, radix: 16), g.utf8.allSatisfy({ isHex($0) })
                else { return nil }
                out.append(n)
            }
            return out
        }
        let halves = splitOnDoubleColon(s)
        var all: [UInt16]
        if halves.count == 1 {
            guard let g = groups(s), g.count == 8 else { return nil }
            all = g
        } else if halves.count == 2 {
            guard let head = groups(halves[0]), let tail = groups(halves[1]),
                head.count + tail.count <= 7
            else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            return nil
        }
        return all.reduce(UInt128(0)) { $0 << 16 | UInt128($1) }
    }

    private static func isHex(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (65...70).contains(b) || (97...102).contains(b)
    }
}

/// Cedar's `decimal`: four fractional digits in an `Int64`.
enum CedarDecimal {
    static func parse(_ s: String) -> Int64? {
        let bytes = Array(s.utf8)
        var i = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { i = 1 }
        guard let dot = bytes.firstIndex(of: UInt8(ascii: ".")), dot > i, dot < bytes.count - 1 else { return nil }
        let whole = bytes[i..<dot]
        let fraction = bytes[(dot + 1)...]
        guard whole.allSatisfy({ $0 >= 48 && $0 <= 57 }), fraction.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            fraction.count <= 4
        else { return nil }
        // Accumulate with the sign applied so that the most negative decimal is representable.
        var value: Int64 = 0
        let digits = Array(whole) + Array(fraction) + Array(repeating: UInt8(ascii: "0"), count: 4 - fraction.count)
        for d in digits {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let digit = Int64(d - 48)
            let (a, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
            if o1 || o2 { return nil }
            value = a
        }
        return value
    }

    static func format(_ v: Int64) -> String {
        let sign = v < 0 ? "-" : ""
        let magnitude = v.magnitude
        let fraction = String(magnitude % 10_000)
        return "\(sign)\(magnitude / 10_000).\(String(repeating: "0", count: 4 - fraction.count))\(fraction)"
    }
}
