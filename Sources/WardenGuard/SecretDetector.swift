import Foundation

/// Credentials in text: private-key blocks, cloud and service keys by their documented shapes, and
/// secrets assigned to a key-like name — with checks that keep look-alikes out: a GitHub token's
/// CRC-32 checksum, the entropy of a generic value, and no pure hex (hashes), UUIDs or placeholders.
/// Each candidate starts at a trigger (a key's prefix, a key-like name); the shape is checked by hand
/// from there, so the cost is one pass over the text.
public struct SecretDetector: TriggeredDetector {
    public let name = "secrets"
    public let version = 2

    public init() {}

    /// A documented key shape: its prefix, the characters of its body, the body's length bounds.
    struct Shape: Sendable {
        var prefix: String
        var label: String
        var body: @Sendable (UInt8) -> Bool
        var length: ClosedRange<Int>
        var confidence: Double
        var check: (@Sendable ([UInt8]) -> Bool)? = nil
    }

    static func alnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }
    static func upperOrDigit(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) }
    static func urlSafe(_ b: UInt8) -> Bool { alnum(b) || b == 0x2D || b == 0x5F }
    static func underscored(_ b: UInt8) -> Bool { alnum(b) || b == 0x5F }

    static let shapes: [Shape] = {
        var shapes: [Shape] = [
            Shape(prefix: "AKIA", label: "an AWS access key id", body: upperOrDigit, length: 16...16, confidence: 0.9),
            Shape(prefix: "ASIA", label: "an AWS access key id", body: upperOrDigit, length: 16...16, confidence: 0.9),
            Shape(
                prefix: "github_pat_", label: "a GitHub fine-grained token", body: underscored, length: 80...120,
                confidence: 0.97),
            Shape(prefix: "sk_live_", label: "a Stripe secret key", body: alnum, length: 20...120, confidence: 0.97),
            Shape(prefix: "rk_live_", label: "a Stripe secret key", body: alnum, length: 20...120, confidence: 0.97),
            Shape(prefix: "sk-ant-", label: "an Anthropic API key", body: urlSafe, length: 32...200, confidence: 0.97),
            Shape(
                prefix: "sk-", label: "an OpenAI API key", body: urlSafe, length: 32...200, confidence: 0.9,
                check: { !$0.starts(with: Array("ant-".utf8)) && SecretDetector.mixed($0) }),
            Shape(prefix: "AIza", label: "a Google API key", body: urlSafe, length: 35...35, confidence: 0.95),
        ]
        for kind in ["p", "o", "u", "s", "r"] {
            shapes.append(
                Shape(
                    prefix: "gh\(kind)_", label: "a GitHub token", body: alnum, length: 36...36, confidence: 0.99,
                    check: { SecretDetector.githubChecksumHolds($0) }))
        }
        for kind in ["b", "a", "p", "o", "s", "r"] {
            shapes.append(
                Shape(
                    prefix: "xox\(kind)-", label: "a Slack token", body: { SecretDetector.urlSafe($0) },
                    length: 10...200,
                    confidence: 0.95))
        }
        return shapes
    }()

    /// Names a secret is assigned to: `api_key = "…"`, `"token": "…"`, `PASSWORD=…`.
    static let names = [
        "api_key", "api-key", "apikey", "secret", "secret_key", "access_token", "auth_token", "token", "password",
        "passwd", "client_secret", "private_key",
    ]

    static let privateKey = "-----BEGIN "
    static let jwt = "eyJ"

    var triggers: [PhraseMatcher.Phrase] {
        Self.shapes.map { .prefix($0.prefix) } + [.literal(Self.privateKey), .prefix(Self.jwt)]
            + Self.names.map {
                PhraseMatcher.Phrase(text: Array($0.utf8), wordStart: false, wordEnd: false, exactCase: false)
            }
    }

    func findings(at hits: [PhraseMatcher.Hit], in bytes: UnsafeBufferPointer<UInt8>) -> [Finding] {
        var findings: [Finding] = []
        var covered: [Range<Int>] = []
        let shapes = Self.shapes
        var assignments: [PhraseMatcher.Hit] = []
        for hit in hits {
            switch hit.phrase {
            case 0..<shapes.count:
                let shape = shapes[hit.phrase]
                var end = hit.end
                while end < bytes.count && shape.body(bytes[end]) { end += 1 }
                let body = Array(bytes[hit.end..<end])
                guard shape.length.contains(body.count), end == bytes.count || !Self.alnum(bytes[end]) else { continue }
                if let check = shape.check, !check(body) { continue }
                if covered.contains(where: { $0.contains(hit.start) }) { continue }
                covered.append(hit.start..<end)
                findings.append(
                    finding(hit.start, end, shape.confidence, "\(shape.label) (\(end - hit.start) characters)"))
            case shapes.count:
                // -----BEGIN [TYPE ]PRIVATE KEY[ BLOCK]-----
                let limit = min(bytes.count, hit.end + 48)
                let line = bytes.text(hit.end..<limit)
                guard let marker = line.range(of: "PRIVATE KEY"), line[..<marker.lowerBound].count <= 12,
                    line[marker.upperBound...].hasPrefix("-----") || line[marker.upperBound...].hasPrefix(" BLOCK-----")
                else { continue }
                let end = hit.end + line[..<marker.upperBound].utf8.count
                covered.append(hit.start..<end)
                findings.append(finding(hit.start, end, 0.99, "a private key"))
            case shapes.count + 1:
                if let end = Self.jwtEnd(bytes, from: hit.start) {
                    covered.append(hit.start..<end)
                    findings.append(finding(hit.start, end, 0.8, "a JSON web token (\(end - hit.start) characters)"))
                }
            default:
                assignments.append(hit)
            }
        }
        for hit in assignments {
            guard let value = Self.assignedValue(bytes, after: hit.end) else { continue }
            if covered.contains(where: { $0.overlaps(value) }) { continue }
            guard Self.looksRandom(Array(bytes[value])) else { continue }
            covered.append(value)
            findings.append(
                finding(
                    value.lowerBound, value.upperBound, 0.75,
                    "a secret assigned to a key-like name (\(value.count) characters)"))
        }
        return findings
    }

    /// `eyJ….eyJ….sig`: three base64url parts, the first two JSON objects.
    static func jwtEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var i = start
        var parts: [Int] = []
        var length = 0
        while i < bytes.count {
            let b = bytes[i]
            if urlSafe(b) {
                length += 1
            } else if b == 0x2E && parts.count < 2 {
                parts.append(length)
                length = 0
            } else {
                break
            }
            i += 1
        }
        parts.append(length)
        guard parts.count == 3, parts[0] >= 10, parts[1] >= 10, parts[2] >= 16 else { return nil }
        let second = start + parts[0] + 1
        guard bytes[second] == 0x65, bytes[second + 1] == 0x79, bytes[second + 2] == 0x4A else { return nil }
        return i
    }

    /// After a key-like name: `"? \s* [:=] \s* ["']?` then the value (to a space, quote, comma or
    /// semicolon), at least 16 bytes.
    static func assignedValue(_ bytes: UnsafeBufferPointer<UInt8>, after name: Int) -> Range<Int>? {
        var i = name
        func skip(_ set: [UInt8]) { while i < bytes.count && set.contains(bytes[i]) { i += 1 } }
        skip([0x22, 0x27])
        skip([0x20, 0x09])
        guard i < bytes.count, bytes[i] == 0x3A || bytes[i] == 0x3D else { return nil }
        i += 1
        skip([0x20, 0x09])
        skip([0x22, 0x27])
        let start = i
        let stops: [UInt8] = [0x20, 0x09, 0x0A, 0x0D, 0x22, 0x27, 0x60, 0x2C, 0x3B, 0x7D, 0x29]
        while i < bytes.count && !stops.contains(bytes[i]) && i - start < 512 { i += 1 }
        return i - start >= 16 ? start..<i : nil
    }

    /// Shannon entropy in bits per byte.
    static func entropy(_ bytes: [UInt8]) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for b in bytes { counts[Int(b)] += 1 }
        let total = Double(bytes.count)
        return counts.reduce(0) { sum, n in
            guard n > 0 else { return sum }
            let p = Double(n) / total
            return sum - p * log2(p)
        }
    }

    /// At least two of lower case, upper case and digits.
    static func mixed(_ value: [UInt8]) -> Bool {
        let lower = value.contains { $0 >= 0x61 && $0 <= 0x7A }
        let upper = value.contains { $0 >= 0x41 && $0 <= 0x5A }
        let digit = value.contains { $0 >= 0x30 && $0 <= 0x39 }
        return [lower, upper, digit].filter { $0 }.count >= 2
    }

    /// A value that looks generated: high entropy, mixed character classes, not a placeholder, not a
    /// hash (pure hex), not a UUID, not a reference to somewhere else (`${VAR}`, a path, a URL).
    static func looksRandom(_ value: [UInt8]) -> Bool {
        let text = String(decoding: value, as: UTF8.self)
        let isHex = value.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46)
        }
        let isUUIDish = value.count == 36 && value.filter { $0 == 0x2D }.count == 4
        guard !isHex, !isUUIDish else { return false }
        let lowered = text.lowercased()
        let placeholder = [
            "example", "changeme", "xxxx", "your", "placeholder", "redacted", "****", "dummy", "${", "{{",
        ]
        .contains { lowered.contains($0) }
        let reference = lowered.hasPrefix("/") || lowered.hasPrefix("http") || lowered.hasPrefix("$")
        return !placeholder && !reference && mixed(value) && entropy(value) >= 3.5
    }

    /// A classic GitHub token's last 6 characters are the base-62 CRC-32 of the 30 before them.
    static func githubChecksumHolds(_ body: [UInt8]) -> Bool {
        guard body.count == 36 else { return false }
        return Array(base62(crc32(Array(body.prefix(30))), width: 6).utf8) == Array(body.suffix(6))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    static func base62(_ value: UInt32, width: Int) -> String {
        let digits = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var n = value
        var out: [Character] = []
        while n > 0 {
            out.append(digits[Int(n % 62)])
            n /= 62
        }
        while out.count < width { out.append("0") }
        return String(out.reversed())
    }
}
