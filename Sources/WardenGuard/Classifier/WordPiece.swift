import Foundation
import WardenCore

/// BERT's uncased WordPiece tokenizer, as Hugging Face `tokenizers` runs it for all-MiniLM-L6-v2
/// (`BertNormalizer` with clean_text, handle_chinese_chars and lowercase — accents stripped with it —,
/// `BertPreTokenizer`, `WordPiece` with `##` continuations and 100 characters per word at most), token
/// for token; the tests hold it to the reference on 1,000 texts.
public struct WordPieceTokenizer: Sendable {
    let vocabulary: [String: Int32]
    /// Special tokens matched in the raw text before anything else (as the reference does): a text
    /// that says "[SEP]" gets that token.
    let added: [(text: [Unicode.Scalar], id: Int32)]
    public let unknown: Int32
    public let classToken: Int32
    public let separator: Int32
    let maxCharactersPerWord = 100

    /// Reads a `tokenizer.json` (Hugging Face's format) whose model is WordPiece.
    /// - Throws: ``WardenError`` naming the file and what is missing.
    public init(tokenizerJSON path: String) throws {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let model = object["model"] as? [String: Any], model["type"] as? String == "WordPiece",
            let vocab = model["vocab"] as? [String: Int]
        else {
            throw WardenError(
                code: .notFound, message: "guard: \(path) is not a WordPiece tokenizer.json (reinstall the model)")
        }
        let added = (object["added_tokens"] as? [[String: Any]] ?? []).compactMap { token -> (String, Int32)? in
            guard let content = token["content"] as? String, let id = token["id"] as? Int else { return nil }
            return (content, Int32(id))
        }
        try self.init(vocabulary: vocab.mapValues(Int32.init), added: added)
    }

    public init(vocabulary: [String: Int32], added: [(String, Int32)] = []) throws {
        self.vocabulary = vocabulary
        self.added = added.map { (Array($0.0.unicodeScalars), $0.1) }.sorted { $0.text.count > $1.text.count }
        guard let unknown = vocabulary["[UNK]"], let cls = vocabulary["[CLS]"], let sep = vocabulary["[SEP]"] else {
            throw WardenError(code: .notFound, message: "guard: the vocabulary lacks [UNK], [CLS] or [SEP]")
        }
        self.unknown = unknown
        self.classToken = cls
        self.separator = sep
    }

    /// The text's token ids, without [CLS] and [SEP] around them.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        let scalars = Array(text.unicodeScalars)
        var segment = String.UnicodeScalarView()
        func flush() {
            for word in Self.preTokenize(Self.normalize(String(segment))) { ids += wordPiece(word) }
            segment = String.UnicodeScalarView()
        }
        var i = 0
        outer: while i < scalars.count {
            if scalars[i] == "[" {
                for token in added where scalars[i...].starts(with: token.text) {
                    flush()
                    ids.append(token.id)
                    i += token.text.count
                    continue outer
                }
            }
            segment.append(scalars[i])
            i += 1
        }
        flush()
        return ids
    }

    // MARK: - Normalizer

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    static func isChinese(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }

    static func normalize(_ text: String) -> String {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) {
                cleaned.append(" ")
            } else if isChinese(s) {
                cleaned.append(" ")
                cleaned.append(s)
                cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
        // Accents stripped (NFD, then no non-spacing marks), then lower case.
        let decomposed = String(cleaned).decomposedStringWithCanonicalMapping
        var stripped = String.UnicodeScalarView()
        for s in decomposed.unicodeScalars where s.properties.generalCategory != .nonspacingMark {
            stripped.append(s)
        }
        var lowered = String.UnicodeScalarView()
        for s in stripped {
            if s.isASCII {
                lowered.append(s.properties.isUppercase ? Unicode.Scalar(s.value + 32) ?? s : s)
            } else {
                lowered.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return String(lowered)
    }

    // MARK: - Pre-tokenizer

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII {
            let v = s.value
            return (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v)
                || (0x7B...0x7E).contains(v)
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    /// Words split at white space (dropped) and at each punctuation character (kept alone).
    static func preTokenize(_ text: String) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for s in text.unicodeScalars {
            if isWhitespace(s) {
                if !current.isEmpty { words.append(current) }
                current = []
            } else if isPunctuation(s) {
                if !current.isEmpty { words.append(current) }
                words.append([s])
                current = []
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    // MARK: - WordPiece

    func wordPiece(_ word: [Unicode.Scalar]) -> [Int32] {
        guard word.count <= maxCharactersPerWord else { return [unknown] }
        var pieces: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                var piece = start > 0 ? "##" : ""
                piece.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocabulary[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else { return [unknown] }
            pieces.append(found)
            start = end
        }
        return pieces
    }
}
