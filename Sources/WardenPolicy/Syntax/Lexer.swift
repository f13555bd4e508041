struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case identifier(String)
        /// The text between the quotes, escapes not yet processed (`like` treats `\*` differently).
        case string([Unicode.Scalar])
        case integer(String)
        case symbol(String)
        case end
    }
    var kind: Kind
    var location: SourceLocation
}

/// Splits Cedar policy text into tokens; `//` comments and Unicode whitespace are skipped.
struct Lexer {
    private let scalars: [Unicode.Scalar]
    private var index = 0
    private var line = 1
    private var column = 1

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    static func tokenize(_ text: String) throws(PolicyParseError) -> [Token] {
        var lexer = Lexer(text)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private mutating func advance() {
        if scalars[index] == "\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        index += 1
    }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        index + offset < scalars.count ? scalars[index + offset] : nil
    }

    private static let twoCharacterSymbols: Set<String> = ["::", "==", "!=", "<=", ">=", "&&", "||"]
    private static let oneCharacterSymbols: Set<Unicode.Scalar> = [
        "(", ")", "[", "]", "{", "}", ",", ";", ":", ".", "@", "<", ">", "!", "-", "+", "*", "?", "=", "&", "|",
        "/", "%",
    ]

    mutating func next() throws(PolicyParseError) -> Token {
        while let c = peek() {
            if c.properties.isWhitespace {
                advance()
            } else if c == "/", peek(1) == "/" {
                while let d = peek(), d != "\n" { advance() }
            } else {
                break
            }
        }
        let location = SourceLocation(line: line, column: column)
        guard let c = peek() else { return Token(kind: .end, location: location) }
        if c == "_" || ("a"..."z").contains(c) || ("A"..."Z").contains(c) {
            var name = ""
            while let d = peek(),
                d == "_" || ("a"..."z").contains(d) || ("A"..."Z").contains(d) || ("0"..."9").contains(d)
            {
                name.unicodeScalars.append(d)
                advance()
            }
            return Token(kind: .identifier(name), location: location)
        }
        if ("0"..."9").contains(c) {
            var digits = ""
            while let d = peek(), ("0"..."9").contains(d) {
                digits.unicodeScalars.append(d)
                advance()
            }
            return Token(kind: .integer(digits), location: location)
        }
        if c == "\"" {
            advance()
            var raw: [Unicode.Scalar] = []
            while true {
                guard let d = peek() else {
                    throw PolicyParseError(location: location, message: "unterminated string literal")
                }
                if d == "\"" {
                    advance()
                    return Token(kind: .string(raw), location: location)
                }
                if d == "\\" {
                    raw.append(d)
                    advance()
                    guard let e = peek() else {
                        throw PolicyParseError(location: location, message: "unterminated string literal")
                    }
                    raw.append(e)
                    advance()
                    continue
                }
                raw.append(d)
                advance()
            }
        }
        if let d = peek(1) {
            var pair = ""
            pair.unicodeScalars.append(c)
            pair.unicodeScalars.append(d)
            if Self.twoCharacterSymbols.contains(pair) {
                advance()
                advance()
                return Token(kind: .symbol(pair), location: location)
            }
        }
        if Self.oneCharacterSymbols.contains(c) {
            advance()
            return Token(kind: .symbol(String(Character(c))), location: location)
        }
        throw PolicyParseError(location: location, message: "unexpected character \(Self.describe(c))")
    }

    static func describe(_ c: Unicode.Scalar) -> String {
        c.value < 0x20 || c.value == 0x7F ? "U+\(String(c.value, radix: 16, uppercase: true))" : "'\(c)'"
    }

    /// Processes Rust-style escapes as Cedar does: `\n \r \t \\ \0 \' \"`, `\xHH` (to 7F), `\u{H…}`.
    /// - Parameter pattern: in a `like` pattern `\*` is a literal star and a bare `*` is a wildcard.
    static func unescape(_ raw: [Unicode.Scalar], pattern: Bool) -> Result<[LikePattern.Element], UnescapeError> {
        var out: [LikePattern.Element] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hexValue(_ c: Unicode.Scalar) -> UInt32? {
            switch c {
            case "0"..."9": c.value - 48
            case "a"..."f": c.value - 87
            case "A"..."F": c.value - 55
            default: nil
            }
        }
        while i < raw.count {
            let c = raw[i]
            if c == "*", pattern {
                out.append(.wildcard)
                i += 1
                continue
            }
            guard c == "\\" else {
                out.append(.literal(c))
                i += 1
                continue
            }
            guard i + 1 < raw.count else { return .failure(UnescapeError(message: "trailing backslash")) }
            let e = raw[i + 1]
            i += 2
            switch e {
            case "n": out.append(.literal("\n"))
            case "r": out.append(.literal("\r"))
            case "t": out.append(.literal("\t"))
            case "\\": out.append(.literal("\\"))
            case "0": out.append(.literal("\0"))
            case "'": out.append(.literal("'"))
            case "\"": out.append(.literal("\""))
            case "*" where pattern: out.append(.literal("*"))
            case "x":
                guard i + 1 < raw.count, let hi = hexValue(raw[i]), let lo = hexValue(raw[i + 1]) else {
                    return .failure(UnescapeError(message: "invalid \\x escape: expected two hex digits"))
                }
                let v = hi * 16 + lo
                guard v <= 0x7F, let s = Unicode.Scalar(v) else {
                    return .failure(UnescapeError(message: "\\x escape out of range: must be at most \\x7F"))
                }
                out.append(.literal(s))
                i += 2
            case "u":
                guard i < raw.count, raw[i] == "{" else {
                    return .failure(UnescapeError(message: "invalid unicode escape: expected \\u{…}"))
                }
                i += 1
                var value: UInt32 = 0
                var count = 0
                var sawDigit = false
                while i < raw.count, raw[i] != "}" {
                    if raw[i] == "_", sawDigit {
                        i += 1
                        continue
                    }
                    guard let h = hexValue(raw[i]) else {
                        return .failure(UnescapeError(message: "invalid character in unicode escape"))
                    }
                    sawDigit = true
                    count += 1
                    if count > 6 { return .failure(UnescapeError(message: "unicode escape has more than 6 digits")) }
                    value = value * 16 + h
                    i += 1
                }
                guard i < raw.count, sawDigit else {
                    return .failure(UnescapeError(message: "invalid unicode escape: expected \\u{…}"))
                }
                i += 1
                guard let s = Unicode.Scalar(value) else {
                    return .failure(UnescapeError(message: "invalid unicode escape: not a Unicode scalar value"))
                }
                out.append(.literal(s))
            default:
                return .failure(UnescapeError(message: "invalid escape sequence \\\(e)"))
            }
        }
        return .success(out)
    }

    struct UnescapeError: Error {
        var message: String
    }
}
