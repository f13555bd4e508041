/// Characters a person does not see but a model reads: Unicode tag characters (U+E0000–E007F, which
/// spell ASCII invisibly), zero-width characters, and bidirectional overrides and isolates (which
/// reorder what is shown). One finding per run of them; hidden tag text is decoded into the detail.
public struct HiddenUnicodeDetector: Detector {
    public let name = "hidden-unicode"
    public let version = 1

    public init() {}

    enum Kind: String {
        case tag = "tag characters"
        case zeroWidth = "zero-width characters"
        case bidi = "bidirectional controls"
    }

    static func kind(_ scalar: Unicode.Scalar) -> Kind? {
        switch scalar.value {
        case 0xE0000...0xE007F: return .tag
        case 0x200B, 0x200C, 0x200D, 0x2060, 0x180E, 0xFEFF: return .zeroWidth
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: return .bidi
        default: return nil
        }
    }

    public func scan(_ text: String) -> [Finding] {
        var findings: [Finding] = []
        var run: (start: Int, kinds: Set<String>, decoded: String, count: Int)?
        var offset = 0
        func close(at end: Int) {
            guard let current = run else { return }
            run = nil
            // A lone zero-width joiner or a byte-order mark at the very start is ordinary text (emoji,
            // files); anything else hidden is worth a look.
            if current.count == 1 && current.kinds == [Kind.zeroWidth.rawValue] && current.decoded.isEmpty { return }
            let hidden = current.decoded.isEmpty ? "" : ", spelling \"\(current.decoded.prefix(80))\""
            let sure = current.kinds.contains(Kind.tag.rawValue) || current.kinds.contains(Kind.bidi.rawValue)
            findings.append(
                Finding(
                    detector: name, version: version, start: current.start, end: end,
                    confidence: sure ? 0.95 : 0.7,
                    detail: "\(current.count) hidden \(current.kinds.sorted().joined(separator: " and "))\(hidden)"))
        }
        for scalar in text.unicodeScalars {
            let width = UTF8.width(scalar)
            if let kind = Self.kind(scalar) {
                if run == nil { run = (offset, [], "", 0) }
                run?.kinds.insert(kind.rawValue)
                run?.count += 1
                if kind == .tag, (0xE0020...0xE007E).contains(scalar.value),
                    let ascii = Unicode.Scalar(scalar.value - 0xE0000)
                {
                    run?.decoded.unicodeScalars.append(ascii)
                }
            } else {
                close(at: offset)
            }
            offset += width
        }
        close(at: offset)
        return findings
    }
}
