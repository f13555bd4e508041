import Foundation

/// Shapes that carry data out: URLs whose query, path or host name holds an encoded blob or a sentence,
/// and images (markdown `![](…)`, HTML `<img src=…>`) that a renderer fetches without a click — the
/// classic way an injected instruction leaks a conversation. Plain links are not findings.
public struct ExfiltrationDetector: TriggeredDetector {
    public let name = "exfiltration"
    public let version = 1
    /// Hosts whose images are expected (the operator's own); an image elsewhere is a finding.
    public var knownHosts: Set<String>

    public init(knownHosts: Set<String> = []) { self.knownHosts = knownHosts }

    var triggers: [PhraseMatcher.Phrase] {
        [.literal("http://"), .literal("https://"), .literal("!["), .literal("<img")]
    }

    func findings(at hits: [PhraseMatcher.Hit], in bytes: UnsafeBufferPointer<UInt8>) -> [Finding] {
        var findings: [Finding] = []
        var imageOpenings: [Int] = []
        for hit in hits {
            if hit.phrase >= 2 {
                imageOpenings.append(hit.start)
                continue
            }
            let end = Self.urlEnd(bytes, from: hit.start)
            let image =
                imageOpenings.last.map { opening in
                    hit.start - opening <= 300 && Self.isImageSource(bytes, opening: opening, url: hit.start)
                } ?? false
            // Most URLs carry nothing: no query, no long path segment or host label, not an image.
            if !image && !Self.mayCarry(bytes, hit.start..<end) { continue }
            let url = bytes.text(hit.start..<end)
            guard let parts = URLComponents(string: url), let host = parts.host?.lowercased(), !host.isEmpty else {
                continue
            }
            var signs: [String] = []
            for item in parts.queryItems ?? [] {
                guard let value = item.value else { continue }
                if Self.looksEncoded(Array(value.utf8)) {
                    signs.append("an encoded value in its query (\(item.name), \(value.utf8.count) bytes)")
                } else if value.utf8.count >= 40 && value.split(whereSeparator: { $0 == " " || $0 == "+" }).count >= 6 {
                    signs.append("a sentence in its query (\(item.name), \(value.utf8.count) bytes)")
                }
            }
            for segment in parts.path.split(separator: "/") where segment.utf8.count >= 40 {
                if Self.looksEncoded(Array(segment.utf8), threshold: 4.2) {
                    signs.append("an encoded path segment (\(segment.utf8.count) bytes)")
                }
            }
            if let label = host.split(separator: ".").first, label.utf8.count >= 30,
                Self.looksEncoded(Array(label.utf8), threshold: 3.2)
            {
                signs.append("data in its host name (\(label.utf8.count) bytes)")
            }
            let where_ = "\(parts.scheme ?? "http")://\(host)/…"
            if image && (!knownHosts.contains(host) || !signs.isEmpty) {
                findings.append(
                    finding(
                        hit.start, end, signs.isEmpty ? 0.7 : 0.9,
                        "an image loaded from \(where_) (fetched without a click)"
                            + (signs.isEmpty ? "" : ", carrying " + signs.joined(separator: "; "))))
            } else if !signs.isEmpty {
                findings.append(
                    finding(hit.start, end, 0.8, "a URL to \(where_) carrying " + signs.joined(separator: "; ")))
            }
        }
        return findings
    }

    /// Whether a URL could carry data: a query, or a run of 30+ bytes between separators.
    static func mayCarry(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        var run = 0
        for i in range {
            let b = bytes[i]
            if b == 0x3F { return true }
            if b == 0x2F || b == 0x2E { run = 0 } else { run += 1 }
            if run >= 30 { return true }
        }
        return false
    }

    /// Where a URL ends: at white space, a quote, an angle bracket, a backtick, or a closing bracket.
    static func urlEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var i = start
        while i < bytes.count && i - start < 8192 {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D, 0x22, 0x27, 0x3C, 0x3E, 0x60, 0x29, 0x5D, 0x7D, 0x5C: return i
            default: i += 1
            }
        }
        return i
    }

    /// The URL is the source of the image opened at `opening`: `![alt](URL` or `<img … src="URL`.
    static func isImageSource(_ bytes: UnsafeBufferPointer<UInt8>, opening: Int, url: Int) -> Bool {
        let between = bytes.text(opening..<url)
        if between.hasPrefix("![") { return between.hasSuffix("](") && !between.dropFirst(2).contains("\n\n") }
        let compact = between.lowercased().replacingOccurrences(of: " ", with: "")
        return compact.hasSuffix("src=\"") || compact.hasSuffix("src='")
    }

    /// An encoded blob: 24+ bytes of base64/hex/base32 characters, mixed, with high entropy.
    static func looksEncoded(_ value: [UInt8], threshold: Double = 3.5) -> Bool {
        guard value.count >= 24 else { return false }
        // A digest (MD5, SHA-1, SHA-256 in hex) is how signed URLs and content addresses look.
        let hex = value.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        if hex && [32, 40, 64].contains(value.count) { return false }
        let alphabet = value.allSatisfy { b in
            SecretDetector.alnum(b) || b == 0x2B || b == 0x2F || b == 0x3D || b == 0x2D || b == 0x5F || b == 0x25
        }
        return alphabet && SecretDetector.mixed(value) && SecretDetector.entropy(value) >= threshold
    }
}
