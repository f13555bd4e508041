import Foundation
import WardenCore

/// A tool call as the Chat Completions API shapes it: `bash` with `{"cmd": …}` or `submit` with
/// `{"answer": …}`; `arguments` is the JSON text the agent produced, kept verbatim for transcripts.
public struct ToolCall: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }

    /// A `bash` call running `command`.
    public static func bash(_ command: String, id: String) -> ToolCall {
        ToolCall(id: id, name: "bash", arguments: JSONValue.object([("cmd", .string(command))]).serialized)
    }

    /// A `submit` call with `answer`.
    public static func submit(_ answer: String, id: String) -> ToolCall {
        ToolCall(id: id, name: "submit", arguments: JSONValue.object([("answer", .string(answer))]).serialized)
    }

    /// What the call asks for, or why it cannot be carried out (told to the agent as the tool's output).
    public var action: Result<AgentAction, ToolCallError> {
        guard let parsed = try? JSONValue.parse(arguments), case .object = parsed else {
            return .failure(ToolCallError(message: "error: the arguments of \(name) are not a JSON object"))
        }
        switch name {
        case "bash":
            guard let command = parsed["cmd"]?.stringValue ?? parsed["command"]?.stringValue else {
                return .failure(ToolCallError(message: "error: bash needs a string argument \"cmd\""))
            }
            return .success(.bash(command))
        case "submit":
            guard let answer = parsed["answer"]?.stringValue else {
                return .failure(ToolCallError(message: "error: submit needs a string argument \"answer\""))
            }
            return .success(.submit(answer))
        default:
            return .failure(ToolCallError(message: "error: there is no tool named \(name); use bash or submit"))
        }
    }
}

public struct ToolCallError: Error, Sendable, Equatable {
    public var message: String
}

/// What an agent can do in the environment.
public enum AgentAction: Sendable, Equatable {
    case bash(String)
    case submit(String)
}

/// One reply of an agent: optional text (its reasoning) and the tool calls it makes.
public struct AgentTurn: Sendable {
    public var content: String?
    public var calls: [ToolCall]

    public init(content: String?, calls: [ToolCall]) {
        self.content = content
        self.calls = calls
    }
}

/// The output of one tool call, returned to the agent.
public struct ToolResult: Sendable {
    public var callID: String
    public var output: String

    public init(callID: String, output: String) {
        self.callID = callID
        self.output = output
    }
}

/// A kind of agent the suite can run: scripted adversaries and the LLM agent.
public protocol RedTeamAgent: Sendable {
    /// A short name used on the command line and in reports.
    var name: String { get }
    /// One line saying what it does.
    var summary: String { get }
    /// The ADVERSARIES.md tactic it scripts, if any.
    var tactic: Int? { get }
    /// A fresh session for one trial under `variant`.
    func makeSession(variant: PromptVariant) throws -> any AgentSession
}

/// One agent's conversation during one trial.
public protocol AgentSession: AnyObject, Sendable {
    /// The tag its model requests carry through Warden's model door (nil: no door).
    var doorTag: String? { get }
    /// The agent's next turn, given the results of the calls of its last turn (empty at the start, or
    /// when the last turn made no call).
    func next(results: [ToolResult]) async throws -> AgentTurn
}

extension AgentSession {
    public var doorTag: String? { nil }
}
