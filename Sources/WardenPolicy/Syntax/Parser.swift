/// A recursive-descent parser for Cedar policies (Cedar 4 grammar; templates are not supported).
struct Parser {
    private let tokens: [Token]
    private var position = 0
    /// Nesting depth of expressions; bounded so that hostile input cannot exhaust the stack.
    private var depth = 0
    static let maximumDepth = 128
    /// Height of the expression tree the last parse function returned; bounded so that evaluating or
    /// freeing a policy never recurses without limit (`1 + 1 + … + 1` is deep without any nesting).
    private var height = 0
    static let maximumHeight = 512

    private mutating func built(_ expr: Expr, height h: Int) throws(PolicyParseError) -> Expr {
        if h > Self.maximumHeight {
            throw error("expression more than \(Self.maximumHeight) operations deep; split it into simpler conditions")
        }
        height = h
        return expr
    }

    private init(tokens: [Token]) { self.tokens = tokens }

    /// Parses a policy set. Ids are `policy0`, `policy1`, … in file order, as in Cedar's own tools.
    static func parsePolicies(_ text: String, idPrefix: String = "policy") throws(PolicyParseError) -> [Policy] {
        var parser = Parser(tokens: try Lexer.tokenize(text))
        var policies: [Policy] = []
        while parser.current.kind != .end {
            var policy = try parser.parsePolicy()
            policy.id = "\(idPrefix)\(policies.count)"
            policies.append(policy)
        }
        return policies
    }

    static func parseEntityUID(_ text: String) throws(PolicyParseError) -> EntityUID {
        var parser = Parser(tokens: try Lexer.tokenize(text))
        let uid = try parser.parseEntityReference()
        guard parser.current.kind == .end else { throw parser.error("unexpected text after the entity reference") }
        return uid
    }

    // MARK: - Tokens

    private var current: Token { tokens[position] }
    private var next: Token { tokens[min(position + 1, tokens.count - 1)] }

    private mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    private func error(_ message: String, at location: SourceLocation? = nil) -> PolicyParseError {
        PolicyParseError(location: location ?? current.location, message: message)
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .identifier(let s): "'\(s)'"
        case .string: "a string"
        case .integer(let s): "'\(s)'"
        case .symbol(let s): "'\(s)'"
        case .end: "the end of the input"
        }
    }

    private func isSymbol(_ s: String) -> Bool { current.kind == .symbol(s) }
    private func isKeyword(_ s: String) -> Bool { current.kind == .identifier(s) }

    private mutating func expect(_ s: String, _ context: String) throws(PolicyParseError) {
        guard isSymbol(s) else { throw error("expected '\(s)' \(context), found \(describe(current))") }
        advance()
    }

    private mutating func expectKeyword(_ s: String, _ context: String) throws(PolicyParseError) {
        guard isKeyword(s) else { throw error("expected '\(s)' \(context), found \(describe(current))") }
        advance()
    }

    private static let reserved: Set<String> = [
        "true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar",
    ]

    private mutating func identifier(_ context: String) throws(PolicyParseError) -> String {
        guard case .identifier(let name) = current.kind else {
            throw error("expected an identifier \(context), found \(describe(current))")
        }
        advance()
        return name
    }

    private mutating func stringLiteral(_ context: String) throws(PolicyParseError) -> String {
        guard case .string(let raw) = current.kind else {
            throw error("expected a string \(context), found \(describe(current))")
        }
        let location = current.location
        advance()
        return try Self.unescapeString(raw, at: location)
    }

    static func unescapeString(_ raw: [Unicode.Scalar], at location: SourceLocation) throws(PolicyParseError) -> String
    {
        switch Lexer.unescape(raw, pattern: false) {
        case .success(let elements):
            var s = ""
            for case .literal(let c) in elements { s.unicodeScalars.append(c) }
            return s
        case .failure(let e):
            throw PolicyParseError(location: location, message: e.message)
        }
    }

    // MARK: - Policies

    private mutating func parsePolicy() throws(PolicyParseError) -> Policy {
        let start = current.location
        var annotations: [(key: String, value: String)] = []
        while isSymbol("@") {
            advance()
            let keyLocation = current.location
            let key = try identifier("after '@'")
            if annotations.contains(where: { $0.key == key }) {
                throw error("duplicate annotation @\(key)", at: keyLocation)
            }
            var value = ""
            if isSymbol("(") {
                advance()
                value = try stringLiteral("as the annotation's value")
                try expect(")", "after the annotation's value")
            }
            annotations.append((key, value))
        }
        let effect: Effect
        switch current.kind {
        case .identifier("permit"): effect = .permit
        case .identifier("forbid"): effect = .forbid
        default: throw error("expected 'permit' or 'forbid', found \(describe(current))")
        }
        advance()
        try expect("(", "after '\(effect.rawValue)'")
        try expectKeyword("principal", "as the first element of the scope")
        let principal = try parseScopeConstraint(variable: "principal")
        try expect(",", "after the principal constraint")
        try expectKeyword("action", "as the second element of the scope")
        let action = try parseActionConstraint()
        try expect(",", "after the action constraint")
        try expectKeyword("resource", "as the third element of the scope")
        let resource = try parseScopeConstraint(variable: "resource")
        if isSymbol(",") { throw error("the scope has exactly three elements: principal, action, resource") }
        try expect(")", "to close the scope")
        var conditions: [Condition] = []
        while case .identifier(let word) = current.kind, word == "when" || word == "unless" {
            advance()
            try expect("{", "after '\(word)'")
            if isSymbol("}") { throw error("'\(word)' needs an expression inside the braces") }
            let body = try parseExpr()
            try expect("}", "to close the '\(word)' condition")
            conditions.append(Condition(kind: word == "when" ? .when : .unless, body: body))
        }
        try expect(";", "at the end of the policy")
        return Policy(
            id: "", effect: effect, annotations: annotations, principal: principal, action: action,
            resource: resource, conditions: conditions, location: start)
    }

    private mutating func parseScopeConstraint(variable: String) throws(PolicyParseError) -> ScopeConstraint {
        if isSymbol("==") {
            advance()
            return .equals(try parseScopeEntity())
        }
        if isKeyword("in") {
            advance()
            if isSymbol("[") { throw error("'\(variable) in [...]' is not allowed; only action takes a list") }
            return .in(try parseScopeEntity())
        }
        if isKeyword("is") {
            advance()
            let type = try parsePath("after 'is'")
            if isKeyword("in") {
                advance()
                return .isIn(type, try parseScopeEntity())
            }
            return .is(type)
        }
        return .any
    }

    private mutating func parseScopeEntity() throws(PolicyParseError) -> EntityUID {
        if isSymbol("?") { throw error("policy templates (?principal, ?resource) are not supported") }
        return try parseEntityReference()
    }

    private mutating func parseActionConstraint() throws(PolicyParseError) -> ScopeConstraint {
        if isSymbol("==") {
            advance()
            return .equals(try parseActionEntity())
        }
        if isKeyword("in") {
            advance()
            if isSymbol("[") {
                advance()
                var list: [EntityUID] = []
                if !isSymbol("]") {
                    while true {
                        list.append(try parseActionEntity())
                        if isSymbol(",") {
                            advance()
                            continue
                        }
                        break
                    }
                }
                try expect("]", "to close the action list")
                return .inAny(list)
            }
            return .in(try parseActionEntity())
        }
        if isKeyword("is") { throw error("'action is' is not allowed in a policy scope") }
        return .any
    }

    private mutating func parseActionEntity() throws(PolicyParseError) -> EntityUID {
        let location = current.location
        let uid = try parseScopeEntity()
        if !(uid.type == "Action" || uid.type.hasSuffix("::Action")) {
            throw error("expected an action entity (type Action or NAMESPACE::Action), found \(uid)", at: location)
        }
        return uid
    }

    private mutating func parsePath(_ context: String) throws(PolicyParseError) -> String {
        var path = try pathSegment(context)
        while isSymbol("::"), case .identifier = next.kind {
            advance()
            path += "::" + (try pathSegment(context))
        }
        return path
    }

    private mutating func pathSegment(_ context: String) throws(PolicyParseError) -> String {
        let location = current.location
        let name = try identifier(context)
        if Self.reserved.contains(name) {
            throw error("'\(name)' is a reserved word and cannot name a type", at: location)
        }
        return name
    }

    mutating func parseEntityReference() throws(PolicyParseError) -> EntityUID {
        var segments: [String] = [try pathSegment("in an entity reference")]
        while true {
            try expect("::", "in an entity reference (Type::\"id\")")
            if case .string = current.kind {
                let id = try stringLiteral("as the entity id")
                return EntityUID(type: segments.joined(separator: "::"), id: id)
            }
            segments.append(try pathSegment("in an entity reference"))
        }
    }

    // MARK: - Expressions

    mutating func parseExpr() throws(PolicyParseError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maximumDepth {
            throw error("expression nested more than \(Self.maximumDepth) levels deep; simplify it")
        }
        if isKeyword("if") {
            advance()
            let condition = try parseExpr()
            var h = height
            try expectKeyword("then", "after the 'if' condition")
            let then = try parseExpr()
            h = max(h, height)
            try expectKeyword("else", "after the 'then' branch")
            let otherwise = try parseExpr()
            return try built(.ifThenElse(condition, then, otherwise), height: max(h, height) + 1)
        }
        return try parseOr()
    }

    private mutating func parseOr() throws(PolicyParseError) -> Expr {
        var lhs = try parseAnd()
        while isSymbol("||") {
            advance()
            let h = height
            let rhs = try parseAnd()
            lhs = try built(.or(lhs, rhs), height: max(h, height) + 1)
        }
        return lhs
    }

    private mutating func parseAnd() throws(PolicyParseError) -> Expr {
        var lhs = try parseRelation()
        while isSymbol("&&") {
            advance()
            let h = height
            let rhs = try parseRelation()
            lhs = try built(.and(lhs, rhs), height: max(h, height) + 1)
        }
        return lhs
    }

    private static let relations: [String: BinaryOperator] = [
        "==": .equal, "!=": .notEqual, "<": .less, "<=": .lessEqual, ">": .greater, ">=": .greaterEqual,
    ]

    private mutating func parseRelation() throws(PolicyParseError) -> Expr {
        let lhs = try parseAdd()
        let h = height
        if case .symbol(let s) = current.kind, let op = Self.relations[s] {
            advance()
            let rhs = try parseAdd()
            return try built(.binary(op, lhs, rhs), height: max(h, height) + 1)
        }
        if isSymbol("=") { throw error("'=' is not an operator; use '==' to compare") }
        if isKeyword("in") {
            advance()
            let rhs = try parseAdd()
            return try built(.binary(.in, lhs, rhs), height: max(h, height) + 1)
        }
        if isKeyword("has") {
            advance()
            var attributes: [String] = []
            if case .string = current.kind {
                attributes.append(try stringLiteral("after 'has'"))
            } else {
                attributes.append(try identifier("or string after 'has'"))
                while isSymbol("."), case .identifier = next.kind {
                    advance()
                    attributes.append(try identifier("in the attribute path"))
                }
            }
            // `e has a.b` means `e has a && e.a has b`.
            var access = lhs
            var result: Expr = .hasAttribute(lhs, attributes[0])
            for k in 1..<attributes.count {
                access = .getAttribute(access, attributes[k - 1])
                result = .and(result, .hasAttribute(access, attributes[k]))
            }
            return try built(result, height: h + 2 * attributes.count)
        }
        if isKeyword("like") {
            advance()
            guard case .string(let raw) = current.kind else {
                throw error("expected a string pattern after 'like', found \(describe(current))")
            }
            let location = current.location
            advance()
            switch Lexer.unescape(raw, pattern: true) {
            case .success(let elements): return try built(.like(lhs, LikePattern(elements: elements)), height: h + 1)
            case .failure(let e): throw PolicyParseError(location: location, message: e.message)
            }
        }
        if isKeyword("is") {
            advance()
            let type = try parsePath("after 'is'")
            if isKeyword("in") {
                advance()
                let rhs = try parseAdd()
                return try built(.and(.isType(lhs, type), .binary(.in, lhs, rhs)), height: max(h, height) + 2)
            }
            return try built(.isType(lhs, type), height: h + 1)
        }
        return lhs
    }

    private mutating func parseAdd() throws(PolicyParseError) -> Expr {
        var lhs = try parseMultiply()
        while isSymbol("+") || isSymbol("-") {
            let op: BinaryOperator = isSymbol("+") ? .add : .subtract
            advance()
            let h = height
            let rhs = try parseMultiply()
            lhs = try built(.binary(op, lhs, rhs), height: max(h, height) + 1)
        }
        return lhs
    }

    private mutating func parseMultiply() throws(PolicyParseError) -> Expr {
        var lhs = try parseUnary()
        while true {
            if isSymbol("*") {
                advance()
                let h = height
                let rhs = try parseUnary()
                lhs = try built(.binary(.multiply, lhs, rhs), height: max(h, height) + 1)
            } else if isSymbol("/") || isSymbol("%") {
                throw error("Cedar has no division or remainder operator")
            } else {
                return lhs
            }
        }
    }

    private mutating func parseUnary() throws(PolicyParseError) -> Expr {
        var operators: [String] = []
        let location = current.location
        while isSymbol("!") || isSymbol("-") {
            if case .symbol(let s) = current.kind { operators.append(s) }
            advance()
        }
        if operators.count > 4 {
            throw error("too many occurrences of '\(operators[operators.count - 1])' (at most 4)", at: location)
        }
        var expr: Expr
        // `-` directly before an integer literal is part of the literal, so that i64::MIN is writable.
        if operators.last == "-", case .integer(let digits) = current.kind, !nextIsAccess(after: 1) {
            let digitLocation = current.location
            advance()
            guard let magnitude = UInt64(digits), magnitude <= UInt64(Int64.max) + 1 else {
                throw error("integer literal -\(digits) does not fit in 64 bits", at: digitLocation)
            }
            expr = .literal(.long(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)))
            height = 1
            operators.removeLast()
        } else {
            expr = try parseMember()
        }
        for op in operators.reversed() {
            expr = op == "!" ? .not(expr) : .negate(expr)
        }
        return try built(expr, height: height + operators.count)
    }

    private func nextIsAccess(after offset: Int) -> Bool {
        let token = tokens[min(position + offset, tokens.count - 1)]
        return token.kind == .symbol(".") || token.kind == .symbol("[")
    }

    private static let methods: [String: (BinaryOperator?, Int)] = [
        "contains": (.contains, 1), "containsAll": (.containsAll, 1), "containsAny": (.containsAny, 1),
        "hasTag": (.hasTag, 1), "getTag": (.getTag, 1), "isEmpty": (nil, 0),
    ]

    private mutating func parseMember() throws(PolicyParseError) -> Expr {
        var expr = try parsePrimary()
        while true {
            if isSymbol(".") {
                advance()
                let nameLocation = current.location
                let name = try identifier("after '.'")
                let h = height
                if isSymbol("(") {
                    let args = try parseArguments()
                    let argumentHeight = height
                    if let (op, arity) = Self.methods[name] {
                        guard args.count == arity else {
                            throw error(
                                "method \(name) takes \(arity) argument\(arity == 1 ? "" : "s"), got \(args.count)",
                                at: nameLocation)
                        }
                        expr = try built(
                            op.map { .binary($0, expr, args[0]) } ?? .isEmpty(expr), height: max(h, argumentHeight) + 1)
                    } else if let function = ExtensionFunction(rawValue: name), !function.isConstructor {
                        // A wrong argument count is an evaluation error in Cedar, not a syntax error.
                        expr = try built(.call(function, [expr] + args), height: max(h, argumentHeight) + 1)
                    } else {
                        throw error("unknown method '\(name)'", at: nameLocation)
                    }
                } else {
                    expr = try built(.getAttribute(expr, name), height: h + 1)
                }
            } else if isSymbol("[") {
                advance()
                let key = try stringLiteral("as an attribute name inside '[ ]'")
                try expect("]", "after the attribute name")
                expr = try built(.getAttribute(expr, key), height: height + 1)
            } else {
                return expr
            }
        }
    }

    private mutating func parseArguments() throws(PolicyParseError) -> [Expr] {
        try expect("(", "to start the arguments")
        var args: [Expr] = []
        var h = 0
        defer { height = h }
        if isSymbol(")") {
            advance()
            return args
        }
        while true {
            args.append(try parseExpr())
            h = max(h, height)
            if isSymbol(",") {
                advance()
                continue
            }
            try expect(")", "to close the arguments")
            return args
        }
    }

    private mutating func parsePrimary() throws(PolicyParseError) -> Expr {
        let location = current.location
        switch current.kind {
        case .integer(let digits):
            advance()
            guard let value = Int64(digits) else {
                throw error("integer literal \(digits) does not fit in 64 bits", at: location)
            }
            height = 1
            return .literal(.long(value))
        case .string(let raw):
            advance()
            height = 1
            return .literal(.string(try Self.unescapeString(raw, at: location)))
        case .symbol("("):
            advance()
            let inner = try parseExpr()
            try expect(")", "to close the parenthesis")
            return inner
        case .symbol("["):
            advance()
            var items: [Expr] = []
            var h = 0
            if !isSymbol("]") {
                while true {
                    items.append(try parseExpr())
                    h = max(h, height)
                    if isSymbol(",") {
                        advance()
                        continue
                    }
                    break
                }
            }
            try expect("]", "to close the set")
            return try built(Self.folded(.set(items)), height: h + 1)
        case .symbol("{"):
            advance()
            var members: [(String, Expr)] = []
            var h = 0
            if !isSymbol("}") {
                while true {
                    let keyLocation = current.location
                    let key: String
                    if case .string = current.kind {
                        key = try stringLiteral("as a record key")
                    } else {
                        key = try identifier("or string as a record key")
                    }
                    if members.contains(where: { exactlyEqual($0.0, key) }) {
                        throw error("duplicate key \(CedarSyntax.quoted(key)) in record literal", at: keyLocation)
                    }
                    try expect(":", "after the record key")
                    members.append((key, try parseExpr()))
                    h = max(h, height)
                    if isSymbol(",") {
                        advance()
                        continue
                    }
                    break
                }
            }
            try expect("}", "to close the record")
            return try built(Self.folded(.record(members)), height: h + 1)
        case .symbol("?"):
            throw error("policy templates (?principal, ?resource) are not supported")
        case .identifier(let name):
            switch name {
            case "true":
                advance()
                height = 1
                return .literal(.bool(true))
            case "false":
                advance()
                height = 1
                return .literal(.bool(false))
            case "principal", "action", "resource", "context":
                if next.kind != .symbol("::") {
                    advance()
                    let v: Variable =
                        name == "principal"
                        ? .principal : name == "action" ? .action : name == "resource" ? .resource : .context
                    height = 1
                    return .variable(v)
                }
            default: break
            }
            var segments = [try pathSegment("in an expression")]
            while isSymbol("::") {
                if case .string = next.kind {
                    advance()
                    let id = try stringLiteral("as the entity id")
                    height = 1
                    return .literal(.entity(EntityUID(type: segments.joined(separator: "::"), id: id)))
                }
                advance()
                segments.append(try pathSegment("in an entity type"))
            }
            if isSymbol("(") {
                let function = segments.joined(separator: "::")
                let args = try parseArguments()
                guard let ext = ExtensionFunction(rawValue: function) else {
                    throw error("unknown function '\(function)'", at: location)
                }
                guard ext.isConstructor else { throw error("'\(function)' is a method, not a function", at: location) }
                return try built(Self.folded(.call(ext, args)), height: height + 1)
            }
            throw error(
                "unknown variable '\(segments.joined(separator: "::"))'; expected principal, action, resource or context",
                at: location)
        default:
            throw error("expected an expression, found \(describe(current))")
        }
    }

    /// Constant folding that cannot change a result: literal sets and records, and extension constructors
    /// whose literal argument is valid, become values once at parse time. An invalid literal stays a call,
    /// so its error still happens (and is reported) at evaluation, as in Cedar.
    static func folded(_ expr: Expr) -> Expr {
        switch expr {
        case .set(let items):
            var values = Set<CedarValue>()
            for item in items {
                guard case .literal(let v) = item else { return expr }
                values.insert(v)
            }
            return .literal(.set(values))
        case .record(let members):
            var values: [String: CedarValue] = [:]
            for (key, item) in members {
                guard case .literal(let v) = item else { return expr }
                values[key] = v
            }
            return .literal(.record(values))
        case .call(let function, let args):
            guard function.isConstructor, args.count == 1, case .literal(let arg) = args[0],
                let value = try? Evaluator.construct(function, arg)
            else { return expr }
            return .literal(value)
        default:
            return expr
        }
    }
}
