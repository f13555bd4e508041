import Foundation

/// Credentials in text: private-key blocks, cloud and service keys by their documented shapes, and
/// secrets assigned to a key-like name — with checks that keep look-alikes out: a GitHub token's
/// CRC-32 checksum, the entropy of a generic value, and no pure hex (hashes), UUIDs or long base64
/// runs (images) without a key-like name.
public struct SecretDetector: Detector {
    public let name = "secrets"
    public let version = 1

    public init() {}

    struct Shape {
        var label: String
        var pattern: Regex<AnyRegexOutput>
        var confidence: Double
        /// A further check on the match (nil: none); false drops it.
        var check: (@Sendable (Substring) -> Bool)?
    }

    // nonisolated(unsafe): the compiled patterns are never mutated after they are made; matching
    // does not change them.
    nonisolated(unsafe) static let shapes: [Shape] = [
        shape(
            "a private key", #"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"#, 0.99
        ),
        shape("an AWS access key id", #"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"#, 0.9),
        shape("a GitHub token", #"\bgh[pousr]_[A-Za-z0-9]{36}\b"#, 0.99, check: githubChecksumHolds),
        shape("a GitHub fine-grained token", #"\bgithub_pat_[A-Za-z0-9_]{80,}\b"#, 0.97),
        shape("a Slack token", #"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"#, 0.95),
        shape("a Stripe secret key", #"\b(?:sk|rk)_live_[A-Za-z0-9]{20,}\b"#, 0.97),
        shape("an Anthropic API key", #"\bsk-ant-[A-Za-z0-9_-]{32,}"#, 0.97),
        shape("an OpenAI API key", #"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}"#, 0.9, check: { !$0.hasPrefix("sk-ant-") }),
        shape("a Google API key", #"\bAIza[0-9A-Za-z_-]{35}\b"#, 0.95),
        shape("a JSON web token", #"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"#, 0.8),
    ]

    /// A value assigned to a key-like name: `api_key = "…"`, `"token": "…"`, `PASSWORD=…`.
    nonisolated(unsafe) static let assignment = compile(
        #"(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|token|password|passwd|client[_-]?secret)["']?\s*[:=]\s*["']?([^\s"'`,;]{16,})"#
    )

    static func shape(
        _ label: String, _ pattern: String, _ confidence: Double, check: (@Sendable (Substring) -> Bool)? = nil
    ) -> Shape {
        Shape(label: label, pattern: compile(pattern), confidence: confidence, check: check)
    }

    /// A pattern of this file. They are literals the tests compile and match: one that does not
    /// compile is a programming error, found before release.
    static func compile(_ pattern: String) -> Regex<AnyRegexOutput> {
        do {
            return try Regex(pattern)
        } catch {
            preconditionFailure("secrets: the pattern \(pattern) does not compile: \(error)")
        }
    }

    public func scan(_ text: String) -> [Finding] {
        var findings: [Finding] = []
        var covered: [Range<Int>] = []
        for shape in Self.shapes {
            for match in text.matches(of: shape.pattern) {
                let value = text[match.range]
                if let check = shape.check, !check(value) { continue }
                let span = text.utf8Offset(of: match.range.lowerBound)..<text.utf8Offset(of: match.range.upperBound)
                covered.append(span)
                findings.append(
                    Finding(
                        detector: name, version: version, start: span.lowerBound, end: span.upperBound,
                        confidence: shape.confidence, detail: "\(shape.label) (\(value.count) characters)"))
            }
        }
        for match in text.matches(of: Self.assignment) {
            guard let range = match.output[1].range else { continue }
            let value = text[range]
            let span = text.utf8Offset(of: range.lowerBound)..<text.utf8Offset(of: range.upperBound)
            if covered.contains(where: { $0.overlaps(span) }) { continue }
            guard Self.looksRandom(value) else { continue }
            findings.append(
                Finding(
                    detector: name, version: version, start: span.lowerBound, end: span.upperBound, confidence: 0.75,
                    detail: "a secret assigned to a key-like name (\(value.count) characters)"))
        }
        return findings.sorted { $0.start < $1.start }
    }

    /// Shannon entropy in bits per character.
    static func entropy(_ text: Substring) -> Double {
        var counts: [Character: Int] = [:]
        for c in text { counts[c, default: 0] += 1 }
        let total = Double(text.count)
        return counts.values.reduce(0) { sum, n in
            let p = Double(n) / total
            return sum - p * log2(p)
        }
    }

    /// A value that looks generated: high entropy, mixed character classes, not a placeholder, not a
    /// hash (pure hex) and not a UUID.
    static func looksRandom(_ value: Substring) -> Bool {
        let isHex = value.allSatisfy(\.isHexDigit)
        let isUUID =
            value.wholeMatch(of: /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/) != nil
        guard !isHex, !isUUID else { return false }
        let classes = [
            value.contains(where: \.isLowercase), value.contains(where: \.isUppercase),
            value.contains(where: \.isNumber),
        ].filter { $0 }.count
        let lowered = value.lowercased()
        let placeholder = ["example", "changeme", "xxxx", "your", "placeholder", "redacted", "****"].contains {
            lowered.contains($0)
        }
        return !placeholder && classes >= 2 && entropy(value) >= 3.5
    }

    /// A classic GitHub token's last 6 characters are the base-62 CRC-32 of the 30 before them.
    @Sendable static func githubChecksumHolds(_ token: Substring) -> Bool {
        let body = token.dropFirst(4)
        guard body.count == 36 else { return false }
        let random = Array(body.prefix(30).utf8)
        let given = String(body.suffix(6))
        return base62(crc32(random), width: 6) == given
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
