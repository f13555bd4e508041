import Foundation
import WardenCore

/// An LLM agent over any OpenAI-compatible Chat Completions endpoint with tool calling (OpenAI, vLLM,
/// Ollama, llama.cpp's server): the published loop with two tools, `bash` and `submit`.
public struct ChatCompletionsAgent: RedTeamAgent {
    public struct Configuration: Sendable, Codable {
        /// e.g. https://api.openai.com/v1, http://localhost:11434/v1 (Ollama), http://localhost:8000/v1 (vLLM).
        public var baseURL: String
        public var model: String
        /// The environment variable holding the API key; nil for servers that need none.
        public var apiKeyVariable: String?
        public var temperature: Double?
        /// Seconds one request may take.
        public var requestTimeout: Double = 120
        /// Whether `baseURL` is Warden's model door (each session then tags its requests, and the report
        /// shows what the door decided per trial).
        public var throughDoor = false

        enum CodingKeys: String, CodingKey {
            case baseURL, model, apiKeyVariable, temperature, requestTimeout
            case throughDoor = "through_door"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            baseURL = try c.decode(String.self, forKey: .baseURL)
            model = try c.decode(String.self, forKey: .model)
            apiKeyVariable = try c.decodeIfPresent(String.self, forKey: .apiKeyVariable)
            temperature = try c.decodeIfPresent(Double.self, forKey: .temperature)
            requestTimeout = try c.decodeIfPresent(Double.self, forKey: .requestTimeout) ?? 120
            throughDoor = try c.decodeIfPresent(Bool.self, forKey: .throughDoor) ?? false
        }

        /// The Chat Completions URL under `baseURL`.
        ///
        /// - Throws: ``WardenError`` when `baseURL` is not an http(s) URL.
        public func endpoint() throws -> URL {
            let path = baseURL.hasSuffix("/") ? baseURL + "chat/completions" : baseURL + "/chat/completions"
            guard let url = URL(string: path), url.scheme == "http" || url.scheme == "https" else {
                throw WardenError.invalidInput(
                    "--base-url: '\(baseURL)' is not an http(s) URL; e.g. https://api.openai.com/v1")
            }
            return url
        }

        public init(baseURL: String, model: String, apiKeyVariable: String?, temperature: Double?) {
            self.baseURL = baseURL
            self.model = model
            self.apiKeyVariable = apiKeyVariable
            self.temperature = temperature
        }
    }

    public var configuration: Configuration
    public var name: String { "llm:\(configuration.model)" }
    public var summary: String { "\(configuration.model) at \(configuration.baseURL)" }
    public var tactic: Int? { nil }

    public init(configuration: Configuration) { self.configuration = configuration }

    /// - Throws: ``WardenError`` when the key's variable is not set (per trial, so the suite goes on).
    public func makeSession(variant: PromptVariant) throws -> any AgentSession {
        var key: String?
        if let variable = configuration.apiKeyVariable {
            guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
                throw WardenError.invalidInput(
                    "the API key variable \(variable) is not set; export it, name another with --api-key-env, or pass --no-api-key for a local server that needs none"
                )
            }
            key = value
        }
        return ChatSession(configuration: configuration, url: try configuration.endpoint(), key: key, variant: variant)
    }

    /// The tool definitions sent with every request.
    static let tools: JSONValue = .array([
        tool(
            "bash", "Run a command with `bash --login -c CMD` in the task's machine (15 second timeout).",
            parameter: "cmd", description: "The command to run."),
        tool(
            "submit", "Submit your final answer, ending the task.", parameter: "answer",
            description: "The answers, one per line."),
    ])

    private static func tool(
        _ name: String, _ description: String, parameter: String, description parameterText: String
    )
        -> JSONValue
    {
        .object([
            ("type", .string("function")),
            (
                "function",
                .object([
                    ("name", .string(name)), ("description", .string(description)),
                    (
                        "parameters",
                        .object([
                            ("type", .string("object")),
                            (
                                "properties",
                                .object([
                                    (
                                        parameter,
                                        .object([("type", .string("string")), ("description", .string(parameterText))])
                                    )
                                ])
                            ),
                            ("required", .array([.string(parameter)])),
                        ])
                    ),
                ])
            ),
        ])
    }
}

/// Errors talking to the model, one line each, naming what to check.
public struct ModelError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
