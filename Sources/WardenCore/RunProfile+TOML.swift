extension RunProfileOverrides {
    /// Every key a profile may set, for the "did you mean" list in errors.
    public static let profileKeys = [
        "name", "workspace", "network", "pids_max", "memory_max", "cpu_max", "protect", "hide", "tripwire",
        "on_tamper", "grace", "lease", "allow_degraded", "pass_env", "command", "audit_store",
        "user", "read", "view", "output_max", "policies", "entities", "resolve.NAME", "egress_bytes_max",
        "connection_bytes_max", "connections_max", "on_budget", "on_mediator_loss", "approval_timeout",
        "decision_records", "mcp.servers.NAME.command", "mcp.servers.NAME.trust", "mcp.servers.NAME.labels",
        "mcp.servers.NAME.timeout", "mcp.servers.NAME.read", "mcp.servers.NAME.url", "mcp.servers.NAME.headers.HEADER",
        "mcp.servers.NAME.bearer_token_env", "mcp.servers.NAME.redact", "mcp.servers.NAME.network",
        "mcp.servers.NAME.policies", "mcp.servers.NAME.hide", "mcp.servers.NAME.spotlight",
        "mcp.servers.NAME.tools.TOOL.labels", "mcp.servers.NAME.on_poisoned",
        "mcp.servers.NAME.classify", "models.NAME.url", "models.NAME.key_env", "models.NAME.key_file",
        "models.NAME.protocol", "models.NAME.model", "models.NAME.timeout", "model_tokens_max",
        "model_requests_max", "log_bodies", "model_classify",
    ]

    /// Reads a run profile; relative `workspace` paths are resolved against `baseDirectory`.
    ///
    /// - Throws: ``WardenError`` naming the file, line and key, and what would be accepted.
    public init(toml text: String, file: String, baseDirectory: String) throws {
        self.init()
        let document = try TOMLDocument(parsing: text, file: file)
        for key in document.keys {
            guard let entry = document.entries[key] else { continue }
            let field = "\(file):\(entry.line): \(key)"
            func string() throws -> String {
                guard case .string(let s) = entry.value else {
                    throw WardenError.invalidInput("\(field): expected a string, found \(entry.value.typeName)")
                }
                return s
            }
            func bool() throws -> Bool {
                guard case .bool(let b) = entry.value else {
                    throw WardenError.invalidInput("\(field): expected true or false, found \(entry.value.typeName)")
                }
                return b
            }
            func strings() throws -> [String] {
                guard case .array(let items) = entry.value else {
                    throw WardenError.invalidInput("\(field): expected an array of strings, e.g. [\"a\", \"b\"]")
                }
                return try items.map {
                    guard case .string(let s) = $0 else {
                        throw WardenError.invalidInput("\(field): expected strings in the array, found \($0.typeName)")
                    }
                    return s
                }
            }
            switch key {
            case "name": name = try string()
            case "workspace":
                let path = try string()
                workspace = path.hasPrefix("/") ? path : baseDirectory + "/" + path
            case "network":
                let text = try string()
                guard let mode = NetworkMode(rawValue: text) else {
                    throw WardenError.invalidInput(
                        "\(field): '\(text)' is not a network mode; use \"none\", \"proxy\" or \"host\"")
                }
                network = mode
            case "pids_max":
                switch entry.value {
                case .integer(let n): pidsMax = try Self.parsePidsMax(String(n), field: field)
                case .string(let text): pidsMax = try Self.parsePidsMax(text, field: field)
                default: throw WardenError.invalidInput("\(field): expected an integer number of processes or \"max\"")
                }
            case "memory_max":
                switch entry.value {
                case .integer(let n): memoryMax = try ByteSize(parsing: String(n), field: field)
                default: memoryMax = try ByteSize(parsing: try string(), field: field)
                }
            case "cpu_max":
                switch entry.value {
                case .integer(let n): cpuMax = try Self.parseCPU(String(n), field: field)
                case .float(let d): cpuMax = try Self.parseCPU(String(d), field: field)
                default: cpuMax = try Self.parseCPU(try string(), field: field)
                }
            case "protect": protect = try strings()
            case "hide": hide = try strings()
            case "tripwire": tripwires = try strings()
            case "on_tamper":
                let text = try string()
                guard let action = TamperAction(rawValue: text) else {
                    throw WardenError.invalidInput("\(field): '\(text)' is not an action; use \"record\" or \"stop\"")
                }
                onTamper = action
            case "grace": grace = try DurationSpec.parse(try string(), field: field)
            case "lease": lease = try DurationSpec.parse(try string(), field: field)
            case "allow_degraded": allowDegraded = Set(try strings().map { try Layer(degradable: $0, field: field) })
            case "pass_env": passEnvironment = try strings()
            case "command": command = try strings()
            case "audit_store":
                auditStore = try AuditStoreLocation(
                    parsing: try string(), field: field, workingDirectory: baseDirectory)
            case "user":
                switch entry.value {
                case .integer(let n): user = try AgentUser(parsing: String(n), field: field)
                default: user = try AgentUser(parsing: try string(), field: field)
                }
            case "read":
                read = try strings().map { $0.hasPrefix("/") ? $0 : baseDirectory + "/" + $0 }
            case "output_max":
                switch entry.value {
                case .integer(let n): outputMax = try ByteSize(parsing: String(n), field: field)
                default: outputMax = try ByteSize(parsing: try string(), field: field)
                }
            case "view":
                let text = try string()
                guard let mode = ReadView(rawValue: text) else {
                    throw WardenError.invalidInput("\(field): '\(text)' is not a view; use \"minimal\" or \"host\"")
                }
                view = mode
            case "policies":
                policies = try strings().map { $0.hasPrefix("/") ? $0 : baseDirectory + "/" + $0 }
            case "entities":
                let path = try string()
                entities = path.hasPrefix("/") ? path : baseDirectory + "/" + path
            case "egress_bytes_max", "connection_bytes_max":
                let size: ByteSize
                switch entry.value {
                case .integer(let n): size = try ByteSize(parsing: String(n), field: field)
                default: size = try ByteSize(parsing: try string(), field: field)
                }
                if key == "egress_bytes_max" { egressBytesMax = size } else { connectionBytesMax = size }
            case "connections_max":
                guard case .integer(let n) = entry.value, n >= 1, n <= 65536 else {
                    throw WardenError.invalidInput("\(field): expected a number of connections from 1 to 65536")
                }
                connectionsMax = Int(n)
            case "on_budget":
                let text = try string()
                guard let action = BudgetAction(rawValue: text) else {
                    throw WardenError.invalidInput("\(field): '\(text)' is not an action; use \"record\" or \"stop\"")
                }
                onBudget = action
            case "on_mediator_loss":
                let text = try string()
                guard let action = MediatorLossAction(rawValue: text) else {
                    throw WardenError.invalidInput("\(field): '\(text)' is not an action; use \"stop\" or \"record\"")
                }
                onMediatorLoss = action
            case "decision_records":
                let text = try string()
                guard let mode = DecisionRecords(rawValue: text) else {
                    throw WardenError.invalidInput(
                        "\(field): '\(text)' is not a record mode; use \"commit\" (durable before each connection) or \"journal\""
                    )
                }
                decisionRecords = mode
            case "approval_timeout": approvalTimeout = try DurationSpec.parse(try string(), field: field)
            case "model_tokens_max", "model_requests_max":
                guard case .integer(let n) = entry.value, n >= 1 else {
                    throw WardenError.invalidInput("\(field): expected a positive integer, e.g. \(key) = 100000")
                }
                if key == "model_tokens_max" { modelTokensMax = Int64(n) } else { modelRequestsMax = Int64(n) }
            case "log_bodies": logBodies = try bool()
            case "model_classify": modelClassify = try bool()
            case _ where key.hasPrefix("models."):
                let rest = key.dropFirst("models.".count)
                guard let dot = rest.lastIndex(of: ".") else {
                    throw WardenError.invalidInput(
                        "\(field): a model is a table: [models.NAME] with url = \"https://…/v1\"")
                }
                let name = String(rest[..<dot])
                guard ModelUpstreamSettings.isValidName(name) else {
                    throw WardenError.invalidInput(
                        "\(field): '\(name)' is not a model name; use letters, digits, '-', '_' and '.'")
                }
                var upstream = models[name] ?? ModelUpstreamSettings(name: name, url: "")
                switch rest[rest.index(after: dot)...] {
                case "url": upstream.url = try string()
                case "key_env": upstream.keyEnvironment = try string()
                case "key_file":
                    let path = try string()
                    upstream.keyFile = path.hasPrefix("/") ? path : baseDirectory + "/" + path
                case "protocol":
                    let text = try string()
                    guard let api = ModelProtocol(rawValue: text) else {
                        throw WardenError.invalidInput(
                            "\(field): '\(text)' is not a model protocol; use \"openai\" or \"anthropic\"")
                    }
                    upstream.api = api
                case "model": upstream.model = try string()
                case "timeout": upstream.timeout = try DurationSpec.parse(try string(), field: field)
                default:
                    throw WardenError.invalidInput(
                        "\(field): unknown model key; use url, key_env, key_file, protocol, model or timeout")
                }
                models[name] = upstream
            case _ where key.hasPrefix("mcp.servers."):
                let rest = key.dropFirst("mcp.servers.".count)
                guard let dot = rest.firstIndex(of: ".") else {
                    throw WardenError.invalidInput(
                        "\(field): a server is a table: [mcp.servers.NAME] with command = [...]")
                }
                let server = String(rest[..<dot])
                guard ToolServerSettings.isValidName(server) else {
                    throw WardenError.invalidInput(
                        "\(field): '\(server)' is not a server name; use letters, digits and '-' (it prefixes tool names)"
                    )
                }
                var settings = toolServers[server] ?? ToolServerSettings(name: server, command: [])
                switch rest[rest.index(after: dot)...] {
                case "command":
                    settings.command = try strings()
                    guard !settings.command.isEmpty else {
                        throw WardenError.invalidInput(
                            "\(field): give the server's command line, e.g. [\"python3\", \"server.py\"]")
                    }
                case "trust":
                    let text = try string()
                    guard let trust = ToolTrust(rawValue: text) else {
                        throw WardenError.invalidInput(
                            "\(field): '\(text)' is not a trust; use \"trusted\" or \"untrusted\"")
                    }
                    settings.trust = trust
                case "labels": settings.labels = try strings()
                case "timeout": settings.timeout = try DurationSpec.parse(try string(), field: field)
                case "read":
                    settings.read = try strings().map { $0.hasPrefix("/") ? $0 : baseDirectory + "/" + $0 }
                case "url": settings.url = try string()
                case "bearer_token_env": settings.bearerTokenEnvironment = try string()
                case "redact": settings.redact = try bool()
                case "network":
                    let text = try string()
                    guard let mode = NetworkMode(rawValue: text), mode != .host else {
                        throw WardenError.invalidInput(
                            "\(field): '\(text)' is not a tool server's network; use \"none\" or \"proxy\"")
                    }
                    settings.network = mode
                case "policies":
                    settings.policies = try strings().map { $0.hasPrefix("/") ? $0 : baseDirectory + "/" + $0 }
                case "hide": settings.hide = try strings()
                case "spotlight": settings.spotlight = try bool()
                case "classify": settings.classify = try bool()
                case "on_poisoned":
                    let text = try string()
                    guard let action = PoisonedToolAction(rawValue: text) else {
                        throw WardenError.invalidInput(
                            "\(field): '\(text)' is not an action; use \"quarantine\" (the default) or \"record\"")
                    }
                    settings.onPoisoned = action
                case let tool where tool.hasPrefix("tools.") && tool.hasSuffix(".labels"):
                    let name = String(tool.dropFirst("tools.".count).dropLast(".labels".count))
                    guard !name.isEmpty, !name.contains(".") else {
                        throw WardenError.invalidInput(
                            "\(field): per-tool labels are [mcp.servers.\(server).tools.TOOL] labels = [\"external_sink\"]"
                        )
                    }
                    settings.toolLabels[name] = try strings()
                case let header where header.hasPrefix("headers.") && header.count > "headers.".count:
                    settings.headers[String(header.dropFirst("headers.".count))] = try string()
                default:
                    throw WardenError.invalidInput(
                        "\(field): unknown server key; use command, url, headers.NAME, bearer_token_env, trust, labels, tools.TOOL.labels, spotlight, classify, on_poisoned, timeout, read, redact, network, policies or hide"
                    )
                }
                toolServers[server] = settings
            case _ where key.hasPrefix("resolve."):
                let pin = try EgressSettings.parseResolve(
                    String(key.dropFirst("resolve.".count)) + "=" + (try string()), field: field)
                resolve[pin.name] = pin.address
            default:
                throw WardenError.invalidInput(
                    "\(file):\(entry.line): unknown key '\(key)'; a profile may set: \(Self.profileKeys.joined(separator: ", "))"
                )
            }
        }
    }
}
