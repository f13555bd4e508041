/// Characters a person does not see but a model reads: Unicode tag characters (U+E0000–E007F, which
/// spell ASCII invisibly), zero-width characters, and bidirectional overrides and isolates (which
/// reorder what is shown). One finding per run of them; hidden tag text is decoded into the detail.
public struct HiddenUnicodeDetector: TriggeredDetector {
    public let name = "hidden_unicode"
    public let version = 2

    public init() {}

    enum Kind: String {
        case tag = "tag characters"
        case zeroWidth = "zero-width characters"
        case bidi = "bidirectional controls"
    }

    static let characters: [(Unicode.Scalar, Kind)] =
        ((0xE0000...0xE007F).map { ($0, Kind.tag) }
        + [0x200B, 0x200C, 0x200D, 0x2060, 0x180E, 0xFEFF].map { ($0, .zeroWidth) }
        + (Array(0x202A...0x202E) + Array(0x2066...0x2069) + [0x200E, 0x200F, 0x061C]).map { ($0, .bidi) })
        .compactMap { value, kind in Unicode.Scalar(UInt32(value)).map { ($0, kind) } }

    var triggers: [PhraseMatcher.Phrase] { Self.characters.map { scalar, _ in .bytes(Array(String(scalar).utf8)) } }

    func findings(at hits: [PhraseMatcher.Hit], in bytes: UnsafeBufferPointer<UInt8>) -> [Finding] {
        var findings: [Finding] = []
        var run: (start: Int, end: Int, kinds: Set<String>, decoded: String, count: Int)?
        func close() {
            guard let current = run else { return }
            run = nil
            // A lone zero-width joiner (emoji) or byte-order mark is ordinary text; anything else
            // hidden is worth a look.
            if current.count == 1 && current.kinds == [Kind.zeroWidth.rawValue] { return }
            let hidden = current.decoded.isEmpty ? "" : ", spelling \"\(current.decoded.prefix(80))\""
            let sure = current.kinds.contains(Kind.tag.rawValue) || current.kinds.contains(Kind.bidi.rawValue)
            findings.append(
                finding(
                    current.start, current.end, sure ? 0.95 : 0.7,
                    "\(current.count) hidden \(current.kinds.sorted().joined(separator: " and "))\(hidden)"))
        }
        for hit in hits {
            let (scalar, kind) = Self.characters[hit.phrase]
            let value = scalar.value
            if let current = run, current.end != hit.start { close() }
            if run == nil { run = (hit.start, hit.end, [], "", 0) }
            run?.end = hit.end
            run?.kinds.insert(kind.rawValue)
            run?.count += 1
            if kind == .tag, (0xE0020...0xE007E).contains(value), let ascii = Unicode.Scalar(value - 0xE0000) {
                run?.decoded.unicodeScalars.append(ascii)
            }
        }
        close()
        return findings
    }
}
