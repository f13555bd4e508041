import Foundation

/// The API an upstream model speaks.
public enum ModelProtocol: String, Codable, Sendable, CaseIterable {
    /// OpenAI's Chat Completions, Responses and `/v1/models` (and every server compatible with them).
    case openai
    /// Anthropic's Messages.
    case anthropic
}

/// One upstream model behind the model door (profile `[models.NAME]`, or `--model NAME=URL`).
public struct ModelUpstreamSettings: Sendable, Equatable, Codable {
    /// The name the agent asks for (`"model": "NAME"`) and the policies see (`Model::"NAME"`).
    public var name: String
    /// The upstream's base URL as its SDK takes it: `https://api.openai.com/v1`, `https://api.anthropic.com`,
    /// `http://127.0.0.1:8080/v1`. The agent's path is appended (its `/v1` once).
    public var url: String
    /// The environment variable (of `warden run`, outside the sandbox) holding the real key.
    public var keyEnvironment: String?
    /// A file (outside the sandbox, hidden from it) holding the real key.
    public var keyFile: String?
    public var api: ModelProtocol
    /// The upstream's own model id, sent in place of `name` (when the agent asked for `name`).
    public var model: String?
    /// Longest silence from the upstream (before its first byte, or between two chunks of a stream).
    public var timeout: Duration

    public init(
        name: String, url: String, api: ModelProtocol = .openai, keyEnvironment: String? = nil,
        keyFile: String? = nil, model: String? = nil, timeout: Duration = .seconds(120)
    ) {
        self.name = name
        self.url = url
        self.api = api
        self.keyEnvironment = keyEnvironment
        self.keyFile = keyFile
        self.model = model
        self.timeout = timeout
    }

    enum CodingKeys: String, CodingKey {
        case name, url, model
        case api = "protocol"
        case keyEnvironment = "key_env"
        case keyFile = "key_file"
        case timeoutMilliseconds = "timeout_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        url = try c.decode(String.self, forKey: .url)
        api = try c.decode(ModelProtocol.self, forKey: .api)
        keyEnvironment = try c.decodeIfPresent(String.self, forKey: .keyEnvironment)
        keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        timeout = .milliseconds(try c.decode(Int64.self, forKey: .timeoutMilliseconds))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(url, forKey: .url)
        try c.encode(api, forKey: .api)
        try c.encodeIfPresent(keyEnvironment, forKey: .keyEnvironment)
        try c.encodeIfPresent(keyFile, forKey: .keyFile)
        try c.encodeIfPresent(model, forKey: .model)
        try c.encode(timeout.nanoseconds / 1_000_000, forKey: .timeoutMilliseconds)
    }

    /// Letters, digits, '-', '_' and '.', starting with a letter or digit (it is a Cedar entity id and a
    /// model name in an API request).
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic || ("0"..."9").contains(first)
        else { return false }
        return name.count <= 64
            && name.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                    || "-_.".unicodeScalars.contains($0)
            }
    }

    /// Checks what can be checked before a run: the name, the URL, one key source.
    public func validate(field: String? = nil) throws {
        let field = field ?? "models.\(name)"
        guard Self.isValidName(name) else {
            throw WardenError.invalidInput(
                "\(field): '\(name)' is not a model name; use letters, digits, '-', '_' and '.' (at most 64)")
        }
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
            scheme == "http" || scheme == "https",
            parsed.host?.isEmpty == false
        else {
            throw WardenError.invalidInput(
                "\(field).url: '\(url)' is not an http(s) URL; give the upstream's base URL, e.g. https://api.openai.com/v1"
            )
        }
        if keyEnvironment != nil && keyFile != nil {
            throw WardenError.invalidInput("\(field): give key_env or key_file, not both")
        }
    }
}

/// The model door's settings for a run: its upstreams, budgets and what it records.
public struct ModelDoorSettings: Sendable, Equatable, Codable {
    public var upstreams: [ModelUpstreamSettings] = []
    /// Most tokens (input and output) the run's model requests may use; nil: no budget.
    public var tokensMax: Int64?
    /// Most model requests of the run; nil: no budget.
    public var requestsMax: Int64?
    /// What a spent budget does: `stop` cuts the model (the request, or the stream, ends with an error,
    /// and so does every later one); `record` only records it.
    public var onBudget: BudgetAction = .stop
    /// Record whole request and response bodies (secrets redacted), not only their digests.
    public var logBodies = false
    /// Run the classifier on untrusted content entering the prompt (fails closed without its weights).
    public var classify = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case upstreams
        case tokensMax = "model_tokens_max"
        case requestsMax = "model_requests_max"
        case onBudget = "on_budget"
        case logBodies = "log_bodies"
        case classify
    }

    /// The dummy key the agent holds: per run, random, worthless outside Warden.
    public static func dummyKey() -> String {
        "warden-dummy-" + (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// The door's port on the sandbox's loopback, and what the agent's SDKs are pointed at.
    public static let portInSandbox: UInt16 = 8932
    public static let openAIBaseInSandbox = "http://127.0.0.1:\(portInSandbox)/v1"
    public static let anthropicBaseInSandbox = "http://127.0.0.1:\(portInSandbox)"
    /// The marker `warden model cut` leaves in the run's directory (the gateway reads it on SIGUSR1).
    public static func cutPath(runDirectory: String) -> String { runDirectory + "/model-cut" }
    /// The gateway's pid, for `warden model cut` (written by the supervisor).
    public static func gatewayPIDPath(runDirectory: String) -> String { runDirectory + "/tools-gateway.pid" }
}
