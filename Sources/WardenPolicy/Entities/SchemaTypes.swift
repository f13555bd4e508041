/// The attribute types of a Cedar schema (human-readable `.cedarschema` format), used only to read JSON
/// the way Cedar's schema-based parsing does: `{"type": "User", "id": "a"}` where the schema expects an
/// entity is an entity reference, and `"10.0.0.1"` where it expects `ipaddr` is an IP address.
///
/// This is not validation: policies are not type-checked against the schema.
public struct SchemaTypes: Sendable {
    indirect enum AttributeType: Sendable {
        case named(String, namespace: String)
        case set(AttributeType)
        case record([String: AttributeType])
    }

    private var entityAttributes: [String: [String: AttributeType]] = [:]
    private var entityTags: [String: AttributeType] = [:]
    private var actionContexts: [EntityUID: AttributeType] = [:]
    private var commonTypes: [String: AttributeType] = [:]

    /// Parses a `.cedarschema` text.
    public init(cedarSchema text: String) throws(PolicyParseError) {
        var parser = SchemaParser(tokens: try Lexer.tokenize(text))
        try parser.parseSchema(into: &self)
    }

    mutating func addEntity(_ name: String, attributes: [String: AttributeType], tags: AttributeType?) {
        entityAttributes[name] = attributes
        if let tags { entityTags[name] = tags }
    }

    mutating func addAction(_ uid: EntityUID, context: AttributeType) { actionContexts[uid] = context }
    mutating func addCommonType(_ name: String, _ type: AttributeType) { commonTypes[name] = type }

    func attributeTypes(of entityType: String) -> [String: AttributeType]? { entityAttributes[entityType] }
    func tagType(of entityType: String) -> AttributeType? { entityTags[entityType] }
    func contextType(of action: EntityUID) -> AttributeType? { actionContexts[action] }

    enum Resolved {
        case primitive
        case extensionType(ExtensionFunction)
        case entity
        case set(AttributeType)
        case record([String: AttributeType])
    }

    /// What a named type means: a common type, a primitive, an extension type, or else an entity type.
    func resolve(_ type: AttributeType, depth: Int = 0) -> Resolved {
        switch type {
        case .set(let element): return .set(element)
        case .record(let fields): return .record(fields)
        case .named(let raw, let namespace):
            let name = raw.hasPrefix("__cedar::") ? String(raw.dropFirst(9)) : raw
            if depth < 16, !raw.hasPrefix("__cedar::") {
                if !namespace.isEmpty, let t = commonTypes["\(namespace)::\(name)"] {
                    return resolve(t, depth: depth + 1)
                }
                if let t = commonTypes[name] { return resolve(t, depth: depth + 1) }
            }
            switch name {
            case "ipaddr": return .extensionType(.ip)
            case "decimal": return .extensionType(.decimal)
            case "datetime": return .extensionType(.datetime)
            case "duration": return .extensionType(.duration)
            default:
                return name == "Long" || name == "String" || name == "Bool" || name == "Boolean" ? .primitive : .entity
            }
        }
    }
}

private struct SchemaParser {
    let tokens: [Token]
    var position = 0

    init(tokens: [Token]) { self.tokens = tokens }

    var current: Token { tokens[position] }
    mutating func advance() { if position < tokens.count - 1 { position += 1 } }
    func error(_ message: String) -> PolicyParseError { PolicyParseError(location: current.location, message: message) }
    func isSymbol(_ s: String) -> Bool { current.kind == .symbol(s) }
    func isWord(_ s: String) -> Bool { current.kind == .identifier(s) }

    mutating func expect(_ s: String) throws(PolicyParseError) {
        guard isSymbol(s) else { throw error("expected '\(s)' in the schema") }
        advance()
    }

    mutating func identifier() throws(PolicyParseError) -> String {
        guard case .identifier(let s) = current.kind else { throw error("expected a name in the schema") }
        advance()
        return s
    }

    mutating func name() throws(PolicyParseError) -> String {
        if case .string(let raw) = current.kind {
            let location = current.location
            advance()
            return try Parser.unescapeString(raw, at: location)
        }
        return try identifier()
    }

    mutating func path() throws(PolicyParseError) -> String {
        var p = try identifier()
        while isSymbol("::") {
            advance()
            p += "::" + (try identifier())
        }
        return p
    }

    mutating func skipAnnotations() throws(PolicyParseError) {
        while isSymbol("@") {
            advance()
            _ = try identifier()
            if isSymbol("(") {
                advance()
                _ = try name()
                try expect(")")
            }
        }
    }

    mutating func parseSchema(into schema: inout SchemaTypes) throws(PolicyParseError) {
        while current.kind != .end {
            try skipAnnotations()
            if isWord("namespace") {
                advance()
                let namespace = try path()
                try expect("{")
                while !isSymbol("}") {
                    if current.kind == .end { throw error("unterminated namespace") }
                    try parseDeclaration(namespace: namespace, into: &schema)
                }
                advance()
            } else {
                try parseDeclaration(namespace: "", into: &schema)
            }
        }
    }

    mutating func parseDeclaration(namespace: String, into schema: inout SchemaTypes) throws(PolicyParseError) {
        try skipAnnotations()
        let qualify: (String) -> String = { namespace.isEmpty ? $0 : "\(namespace)::\($0)" }
        switch current.kind {
        case .identifier("entity"):
            advance()
            var names = [try identifier()]
            while isSymbol(",") {
                advance()
                names.append(try identifier())
            }
            if isWord("enum") {
                advance()
                try skipBalanced()
            }
            if isWord("in") {
                advance()
                if isSymbol("[") { try skipBalanced() } else { _ = try path() }
            }
            var attributes: [String: SchemaTypes.AttributeType] = [:]
            if isSymbol("=") { advance() }
            if isSymbol("{") {
                if case .record(let fields) = try type(namespace) { attributes = fields }
            }
            var tags: SchemaTypes.AttributeType?
            if isWord("tags") {
                advance()
                tags = try type(namespace)
            }
            try expect(";")
            for n in names { schema.addEntity(qualify(n), attributes: attributes, tags: tags) }
        case .identifier("action"):
            advance()
            var names = [try name()]
            while isSymbol(",") {
                advance()
                names.append(try name())
            }
            if isWord("in") {
                advance()
                if isSymbol("[") { try skipBalanced() } else { _ = try name() }
                while isSymbol("::") {
                    advance()
                    _ = try name()
                }
            }
            var context: SchemaTypes.AttributeType = .record([:])
            if isWord("appliesTo") {
                advance()
                try expect("{")
                while !isSymbol("}") {
                    let key = try identifier()
                    try expect(":")
                    if key == "context" {
                        context = try type(namespace)
                    } else if isSymbol("[") {
                        try skipBalanced()
                    } else {
                        _ = try path()
                    }
                    if isSymbol(",") { advance() }
                    if current.kind == .end { throw error("unterminated appliesTo") }
                }
                advance()
            }
            try expect(";")
            for n in names { schema.addAction(EntityUID(type: qualify("Action"), id: n), context: context) }
        case .identifier("type"):
            advance()
            let n = try identifier()
            try expect("=")
            let t = try type(namespace)
            try expect(";")
            schema.addCommonType(qualify(n), t)
        default:
            throw error("expected entity, action, type or namespace in the schema")
        }
    }

    mutating func skipBalanced() throws(PolicyParseError) {
        var depth = 0
        repeat {
            if isSymbol("[") || isSymbol("{") { depth += 1 }
            if isSymbol("]") || isSymbol("}") { depth -= 1 }
            if current.kind == .end { throw error("unbalanced brackets in the schema") }
            advance()
        } while depth > 0
    }

    mutating func type(_ namespace: String) throws(PolicyParseError) -> SchemaTypes.AttributeType {
        if isSymbol("{") {
            advance()
            var fields: [String: SchemaTypes.AttributeType] = [:]
            while !isSymbol("}") {
                try skipAnnotations()
                let key = try name()
                if isSymbol("?") { advance() }
                try expect(":")
                fields[key] = try type(namespace)
                if isSymbol(",") {
                    advance()
                } else if !isSymbol("}") {
                    throw error("expected ',' or '}' in a record type")
                }
            }
            advance()
            return .record(fields)
        }
        let p = try path()
        if p == "Set" {
            try expect("<")
            let element = try type(namespace)
            try expect(">")
            return .set(element)
        }
        if p == "Entity" && isSymbol("<") {
            advance()
            let inner = try path()
            try expect(">")
            return .named(inner, namespace: namespace)
        }
        return .named(p, namespace: namespace)
    }
}
