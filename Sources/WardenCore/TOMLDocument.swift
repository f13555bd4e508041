/// A value in the subset of TOML that Warden's profiles use.
public enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([TOMLValue])

    public var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .bool: "a boolean"
        case .array: "an array"
        }
    }
}

/// A parsed TOML file: dotted keys (`table.key`) to values with the line they came from.
///
/// Supports comments, bare and quoted keys, `[table]` headers, basic and literal strings, integers,
/// floats, booleans and (multi-line) arrays — what a run profile needs. Anything else is a positioned
/// error rather than a guess.
public struct TOMLDocument: Sendable {
    public struct Entry: Sendable {
        public var value: TOMLValue
        public var line: Int
    }

    public private(set) var entries: [String: Entry] = [:]
    /// Keys in file order, for stable error reporting.
    public private(set) var keys: [String] = []

    /// Parses `text`; `file` is used in error messages.
    ///
    /// - Throws: ``WardenError`` as `file:line:column: message`.
    public init(parsing text: String, file: String) throws {
        var scanner = Scanner(chars: Array(text.unicodeScalars), file: file)
        var table = ""
        while true {
            scanner.skipBlankLinesAndComments()
            guard let char = scanner.peek() else { break }
            if char == "[" {
                scanner.advance()
                if scanner.peek() == "[" { throw scanner.error("arrays of tables are not supported in profiles") }
                scanner.skipSpaces()
                table = try scanner.parseKey()
                scanner.skipSpaces()
                guard scanner.peek() == "]" else { throw scanner.error("expected ']' to close the table header") }
                scanner.advance()
                try scanner.expectEndOfLine()
                continue
            }
            let line = scanner.line
            let key = try scanner.parseKey()
            let fullKey = table.isEmpty ? key : "\(table).\(key)"
            scanner.skipSpaces()
            guard scanner.peek() == "=" else { throw scanner.error("expected '=' after key '\(key)'") }
            scanner.advance()
            scanner.skipSpaces()
            let value = try scanner.parseValue()
            try scanner.expectEndOfLine()
            if entries[fullKey] != nil {
                throw WardenError.invalidInput("\(file):\(line): key '\(fullKey)' is defined twice")
            }
            entries[fullKey] = Entry(value: value, line: line)
            keys.append(fullKey)
        }
    }
}

private struct Scanner {
    let chars: [Unicode.Scalar]
    let file: String
    var index = 0
    var line = 1
    var lineStart = 0

    init(chars: [Unicode.Scalar], file: String) {
        self.chars = chars
        self.file = file
    }

    func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        index + offset < chars.count ? chars[index + offset] : nil
    }

    mutating func advance() {
        if chars[index] == "\n" {
            line += 1
            lineStart = index + 1
        }
        index += 1
    }

    func error(_ message: String) -> WardenError {
        WardenError.invalidInput("\(file):\(line):\(index - lineStart + 1): \(message)")
    }

    mutating func skipSpaces() {
        while let c = peek(), c == " " || c == "\t" { advance() }
    }

    mutating func skipComment() {
        if peek() == "#" { while let c = peek(), c != "\n" { advance() } }
    }

    mutating func skipBlankLinesAndComments() {
        while true {
            skipSpaces()
            skipComment()
            if peek() == "\n" || peek() == "\r" { advance() } else { return }
        }
    }

    mutating func expectEndOfLine() throws {
        skipSpaces()
        skipComment()
        if peek() == "\r" { advance() }
        guard let c = peek() else { return }
        guard c == "\n" else { throw error("unexpected '\(c)' after the value; put one key = value per line") }
        advance()
    }

    mutating func parseKey() throws -> String {
        var parts: [String] = []
        repeat {
            skipSpaces()
            if peek() == "." { advance() }
            skipSpaces()
            if peek() == "\"" || peek() == "'" {
                guard case .string(let s) = try parseValue() else { throw error("bad key") }
                parts.append(s)
            } else {
                var key = ""
                while let c = peek(), c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" {
                    key.unicodeScalars.append(c)
                    advance()
                }
                guard !key.isEmpty else { throw error("expected a key") }
                parts.append(key)
            }
            skipSpaces()
        } while peek() == "."
        return parts.joined(separator: ".")
    }

    mutating func parseValue() throws -> TOMLValue {
        guard let c = peek() else { throw error("expected a value") }
        switch c {
        case "\"": return .string(try parseBasicString())
        case "'": return .string(try parseLiteralString())
        case "[": return try parseArray()
        case "t", "f":
            var word = ""
            while let c = peek(), c.properties.isAlphabetic {
                word.unicodeScalars.append(c)
                advance()
            }
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            throw error("'\(word)' is not a value; strings need quotes")
        default:
            var text = ""
            while let c = peek(), ("0"..."9").contains(c) || "+-._eE".unicodeScalars.contains(c) {
                if c != "_" { text.unicodeScalars.append(c) }
                advance()
            }
            if let int = Int(text) { return .integer(int) }
            if let double = Double(text), !text.isEmpty { return .float(double) }
            throw error("expected a value (a \"string\", number, true/false or [array])")
        }
    }

    mutating func parseBasicString() throws -> String {
        advance()
        var result = ""
        while let c = peek() {
            if c == "\n" { throw error("a string must end on the line it starts; add the closing quote") }
            advance()
            switch c {
            case "\"": return result
            case "\\":
                guard let e = peek() else { break }
                advance()
                switch e {
                case "n": result += "\n"
                case "t": result += "\t"
                case "\\": result += "\\"
                case "\"": result += "\""
                default: throw error("unsupported escape '\\\(e)'")
                }
            default: result.unicodeScalars.append(c)
            }
        }
        throw error("unterminated string")
    }

    mutating func parseLiteralString() throws -> String {
        advance()
        var result = ""
        while let c = peek() {
            if c == "\n" { throw error("a string must end on the line it starts; add the closing quote") }
            advance()
            if c == "'" { return result }
            result.unicodeScalars.append(c)
        }
        throw error("unterminated string")
    }

    mutating func parseArray() throws -> TOMLValue {
        advance()
        var items: [TOMLValue] = []
        while true {
            skipBlankLinesAndComments()
            if peek() == "]" {
                advance()
                return .array(items)
            }
            items.append(try parseValue())
            skipBlankLinesAndComments()
            if peek() == "," {
                advance()
            } else if peek() != "]" {
                throw error("expected ',' or ']' in the array")
            }
        }
    }
}
