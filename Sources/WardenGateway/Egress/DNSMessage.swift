import Foundation

/// The few DNS messages the door's resolver reads and writes (RFC 1035): one question in, an answer
/// with a synthetic address or a refusal out.
struct DNSQuery: Sendable, Equatable {
    var id: UInt16
    var flags: UInt16
    /// The name as asked (labels joined by dots, no trailing dot), and its wire form for the answer.
    var name: String
    var labels: [[UInt8]]
    var type: UInt16
    var qclass: UInt16
    /// The question section's bytes, echoed in the response.
    var question: [UInt8]

    static let typeA: UInt16 = 1
    static let typeAAAA: UInt16 = 28

    /// Parses a query; nil when it is not one well-formed query with exactly one question.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 12 else { return nil }
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) }
        id = u16(0)
        flags = u16(2)
        guard flags & 0x8000 == 0, (flags >> 11) & 0xF == 0, u16(4) == 1 else { return nil }
        var i = 12
        var labels: [[UInt8]] = []
        var total = 0
        while true {
            guard i < bytes.count else { return nil }
            let length = Int(bytes[i])
            i += 1
            if length == 0 { break }
            // Compression pointers and extended label types are not valid in a question we accept.
            guard length <= 63, i + length <= bytes.count else { return nil }
            labels.append(Array(bytes[i..<i + length]))
            total += length + 1
            guard total <= 255 else { return nil }
            i += length
        }
        guard i + 4 <= bytes.count else { return nil }
        type = u16(i)
        qclass = u16(i + 2)
        question = Array(bytes[12..<i + 4])
        self.labels = labels
        name = labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".").lowercased()
    }

    enum ResponseCode: UInt16 {
        case noError = 0
        case formatError = 1
        case nameError = 3
        case notImplemented = 4
        case refused = 5
    }

    /// A response with the given code and, for an A query, `address` as its one answer (TTL 60 s).
    func response(_ code: ResponseCode, address: [UInt8]? = nil) -> [UInt8] {
        var out: [UInt8] = []
        func put16(_ v: UInt16) { out += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        put16(id)
        // QR, the opcode and RD echoed, RA set, the code.
        put16(0x8000 | (flags & 0x7900) | 0x0080 | code.rawValue)
        put16(1)
        put16(address == nil ? 0 : 1)
        put16(0)
        put16(0)
        out += question
        if let address {
            put16(0xC00C)  // the name: a pointer to the question's
            put16(address.count == 4 ? Self.typeA : Self.typeAAAA)
            put16(1)
            out += [0, 0, 0, 60]
            put16(UInt16(address.count))
            out += address
        }
        return out
    }

    /// Why this query looks like data smuggled in a name (DNS tunnelling), or nil.
    var tunnellingReason: String? { Self.tunnellingReason(labels: labels) }

    static func tunnellingReason(labels: [[UInt8]]) -> String? {
        let length = labels.reduce(0) { $0 + $1.count + 1 }
        if length > 180 { return "name of \(length) bytes (more than 180)" }
        for label in labels {
            if label.count > 52 { return "label of \(label.count) bytes (more than 52)" }
            if label.count >= 24 {
                let entropy = Self.entropy(label)
                if entropy >= 3.7 {
                    return
                        "high-entropy label of \(label.count) bytes (\(String(format: "%.1f", entropy)) bits per character)"
                }
            }
        }
        return nil
    }

    /// Shannon entropy in bits per byte.
    static func entropy(_ bytes: [UInt8]) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for b in bytes { counts[Int(b | 0x20)] += 1 }
        let n = Double(bytes.count)
        return counts.reduce(0.0) { sum, c in
            guard c > 0 else { return sum }
            let p = Double(c) / n
            return sum - p * log2(p)
        }
    }

    /// A query type's name for records.
    static func typeName(_ type: UInt16) -> String {
        switch type {
        case 1: "A"
        case 2: "NS"
        case 5: "CNAME"
        case 6: "SOA"
        case 10: "NULL"
        case 12: "PTR"
        case 15: "MX"
        case 16: "TXT"
        case 28: "AAAA"
        case 33: "SRV"
        case 64: "SVCB"
        case 65: "HTTPS"
        case 255: "ANY"
        default: "TYPE\(type)"
        }
    }
}
