import Foundation
import WardenCore

/// What the model door understands of the three APIs it serves: where a request's model, stream flag,
/// messages and offered tools are, where an answer's text, tool calls and token counts are (whole or
/// streamed), and each API's own error shape — so a refusal is an error the agent's SDK raises, not a
/// torn connection.
enum ModelEndpoint: String, Sendable {
    /// OpenAI `POST /v1/chat/completions`.
    case chat = "chat.completions"
    /// OpenAI `POST /v1/responses`.
    case responses
    /// Anthropic `POST /v1/messages`.
    case messages
    /// Anthropic `POST /v1/messages/count_tokens` (forwarded, not counted).
    case countTokens = "messages.count_tokens"

    var api: ModelProtocol { self == .chat || self == .responses ? .openai : .anthropic }

    /// The endpoint a path names (after an optional `/v1`), nil for any other.
    static func at(_ path: String) -> ModelEndpoint? {
        let tail = path.hasPrefix("/v1/") ? String(path.dropFirst(3)) : path
        switch tail {
        case "/chat/completions": return .chat
        case "/responses": return .responses
        case "/messages": return .messages
        case "/messages/count_tokens": return .countTokens
        default: return nil
        }
    }

    /// The path on the upstream, given its base URL's path (`/v1` is not doubled).
    func upstreamPath(base: String) -> String {
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        let tail: String
        switch self {
        case .chat: tail = "/chat/completions"
        case .responses: tail = "/responses"
        case .messages: tail = "/messages"
        case .countTokens: tail = "/messages/count_tokens"
        }
        return trimmed.hasSuffix("/v1") ? trimmed + tail : trimmed + "/v1" + tail
    }
}

/// One message of a request, flattened to text for the detectors.
struct PromptMessage: Sendable {
    var role: String
    var text: String
    /// A tool's result (or other content the agent did not write): data, not instructions.
    var untrusted: Bool
    /// SHA-256 of the message's canonical JSON: a message is "new" the first time the door sees it.
    var digest: String
}

/// What the door reads from a request body.
struct PromptSummary: Sendable {
    var model: String
    var stream: Bool
    var messages: [PromptMessage]
    var tools: [String]
    var maxTokens: Int64?
}

/// A tool call the model proposes (its arguments as the JSON text it wrote).
public struct ProposedCall: Sendable, Equatable {
    public var name: String
    public var arguments: String
}

enum ModelAPI {
    /// Reads `body` as a request to `endpoint`; the error names what is missing.
    static func summary(_ body: JSONValue, endpoint: ModelEndpoint) throws(ModelFault) -> PromptSummary {
        guard case .object = body else {
            throw ModelFault(400, "invalid_request_error", "the request body must be a JSON object")
        }
        guard let model = body["model"]?.stringValue, !model.isEmpty else {
            throw ModelFault(400, "invalid_request_error", "the request has no \"model\"; name one the door serves")
        }
        let stream = body["stream"] == .bool(true)
        var messages: [PromptMessage] = []
        func add(_ role: String, _ value: JSONValue, untrusted: Bool) {
            let canonical = (try? value.canonicalized(allowingFractions: true)) ?? value.serialized
            messages.append(
                PromptMessage(
                    role: role, text: text(of: value), untrusted: untrusted,
                    digest: ToolDefinition.sha256(role + "\u{0}" + canonical)))
        }
        switch endpoint {
        case .chat:
            guard case .array(let items)? = body["messages"] else {
                throw ModelFault(400, "invalid_request_error", "\"messages\" must be an array of messages")
            }
            for item in items {
                let role = item["role"]?.stringValue ?? ""
                add(role, item, untrusted: role == "tool" || role == "function")
            }
        case .responses:
            if let text = body["input"]?.stringValue {
                add("user", .string(text), untrusted: false)
            } else if case .array(let items)? = body["input"] {
                for item in items {
                    let type = item["type"]?.stringValue ?? "message"
                    let role = item["role"]?.stringValue ?? type
                    add(role, item, untrusted: type == "function_call_output" || type.hasSuffix("_call_output"))
                }
            }
            if let instructions = body["instructions"]?.stringValue {
                add("system", .string(instructions), untrusted: false)
            }
        case .messages, .countTokens:
            guard case .array(let items)? = body["messages"] else {
                throw ModelFault(400, "invalid_request_error", "\"messages\" must be an array of messages")
            }
            if let system = body["system"] { add("system", system, untrusted: false) }
            for item in items {
                let role = item["role"]?.stringValue ?? ""
                var hasToolResult = false
                if case .array(let blocks)? = item["content"] {
                    hasToolResult = blocks.contains { $0["type"]?.stringValue == "tool_result" }
                }
                add(role, item, untrusted: hasToolResult)
            }
        }
        var tools: [String] = []
        if case .array(let offered)? = body["tools"] {
            for tool in offered {
                if let name = tool["function"]?["name"]?.stringValue ?? tool["name"]?.stringValue { tools.append(name) }
            }
        }
        let maxTokens = (body["max_tokens"] ?? body["max_completion_tokens"] ?? body["max_output_tokens"])?.int64
        return PromptSummary(model: model, stream: stream, messages: messages, tools: tools, maxTokens: maxTokens)
    }

    /// All string leaves of `value` joined by newlines (what the detectors read).
    static func text(of value: JSONValue) -> String {
        var out: [String] = []
        func walk(_ v: JSONValue) {
            switch v {
            case .string(let s): out.append(s)
            case .array(let items): items.forEach(walk)
            case .object(let members):
                for member in members where member.key != "type" && member.key != "role" && member.key != "id" {
                    walk(member.value)
                }
            default: break
            }
        }
        walk(value)
        return out.joined(separator: "\n")
    }

    /// `body` with its `model` replaced (the upstream's own id).
    static func replacingModel(_ body: JSONValue, with model: String) -> JSONValue {
        guard case .object(let members) = body else { return body }
        return .object(members.map { $0.key == "model" ? ("model", .string(model)) : $0 })
    }

    // MARK: - Answers

    /// What a whole (not streamed) answer says.
    static func answer(_ body: JSONValue, endpoint: ModelEndpoint) -> StreamInspector.Delta {
        var delta = StreamInspector.Delta()
        switch endpoint {
        case .chat:
            if case .array(let choices)? = body["choices"] {
                for choice in choices {
                    let message = choice["message"]
                    if let content = message?["content"]?.stringValue { delta.text += content }
                    if case .array(let calls)? = message?["tool_calls"] {
                        for call in calls {
                            delta.calls.append(
                                ProposedCall(
                                    name: call["function"]?["name"]?.stringValue ?? "",
                                    arguments: call["function"]?["arguments"]?.stringValue ?? ""))
                        }
                    }
                }
            }
            delta.tokensIn = body["usage"]?["prompt_tokens"]?.int64
            delta.tokensOut = body["usage"]?["completion_tokens"]?.int64
        case .responses:
            if case .array(let items)? = body["output"] {
                for item in items {
                    if item["type"]?.stringValue == "function_call" {
                        delta.calls.append(
                            ProposedCall(
                                name: item["name"]?.stringValue ?? "", arguments: item["arguments"]?.stringValue ?? ""))
                    } else if case .array(let parts)? = item["content"] {
                        for part in parts { delta.text += part["text"]?.stringValue ?? "" }
                    }
                }
            }
            delta.tokensIn = body["usage"]?["input_tokens"]?.int64
            delta.tokensOut = body["usage"]?["output_tokens"]?.int64
        case .messages:
            if case .array(let blocks)? = body["content"] {
                for block in blocks {
                    if block["type"]?.stringValue == "tool_use" {
                        let input = block["input"].map {
                            (try? $0.canonicalized(allowingFractions: true)) ?? $0.serialized
                        }
                        delta.calls.append(
                            ProposedCall(name: block["name"]?.stringValue ?? "", arguments: input ?? "{}"))
                    } else {
                        delta.text += block["text"]?.stringValue ?? ""
                    }
                }
            }
            delta.tokensIn = body["usage"]?["input_tokens"]?.int64
            delta.tokensOut = body["usage"]?["output_tokens"]?.int64
        case .countTokens:
            break
        }
        return delta
    }

    // MARK: - Errors in each API's shape

    /// A whole error response's body.
    static func errorBody(_ api: ModelProtocol, type: String, code: String, message: String) -> String {
        switch api {
        case .openai:
            return JSONValue.object([
                (
                    "error",
                    .object([
                        ("message", .string(message)), ("type", .string(type)), ("param", .null),
                        ("code", .string(code)),
                    ])
                )
            ]).serialized
        case .anthropic:
            return JSONValue.object([
                ("type", .string("error")),
                ("error", .object([("type", .string(type)), ("message", .string(message))])),
            ]).serialized
        }
    }

    /// The event that ends a stream with an error, in the endpoint's framing: the SDKs raise it.
    static func errorEvent(_ endpoint: ModelEndpoint, type: String, code: String, message: String, sequence: Int)
        -> String
    {
        switch endpoint {
        case .chat:
            return "data: " + errorBody(.openai, type: type, code: code, message: message) + "\n\n"
        case .responses:
            let body = JSONValue.object([
                ("type", .string("error")), ("code", .string(code)), ("message", .string(message)),
                ("param", .null), ("sequence_number", .number(String(sequence))),
            ])
            return "event: error\ndata: " + body.serialized + "\n\n"
        case .messages, .countTokens:
            return "event: error\ndata: " + errorBody(.anthropic, type: type, code: code, message: message) + "\n\n"
        }
    }
}

/// A refusal or failure the door answers itself, in the API's error shape.
struct ModelFault: Error, Sendable {
    var status: Int
    var type: String
    var code: String
    var message: String

    init(_ status: Int, _ type: String, _ message: String, code: String? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.code = code ?? type
    }
}

/// Reads a stream's events as they pass: text, tool calls (their arguments accumulated), token counts,
/// and whether an event is malformed (its data is not the JSON the API sends).
struct StreamInspector {
    struct Delta: Sendable {
        var text = ""
        var calls: [ProposedCall] = []
        var tokensIn: Int64?
        var tokensOut: Int64?
        var malformed = false
        /// The model finished (a finish reason, `message_stop`, `response.completed`, `[DONE]`).
        var finished = false
        /// An upstream error event (relayed, and recorded).
        var upstreamError: String?
    }

    let endpoint: ModelEndpoint
    /// Tool calls being streamed: by index (OpenAI) or content block (Anthropic), name and arguments.
    private(set) var calls: [Int: ProposedCall] = [:]
    private(set) var order: [Int] = []

    init(endpoint: ModelEndpoint) { self.endpoint = endpoint }

    /// The tool calls streamed so far, in order.
    var proposed: [ProposedCall] { order.compactMap { calls[$0] } }

    private mutating func call(_ index: Int, name: String?, arguments: String) {
        if calls[index] == nil {
            calls[index] = ProposedCall(name: "", arguments: "")
            order.append(index)
        }
        if let name, !name.isEmpty { calls[index]?.name = name }
        calls[index]?.arguments += arguments
    }

    mutating func inspect(name: String?, data: [UInt8]) -> Delta {
        var delta = Delta()
        if data.isEmpty { return delta }
        if data == Array("[DONE]".utf8) {
            delta.finished = true
            return delta
        }
        guard let value = try? JSONValue.parse(bytes: data), case .object = value else {
            delta.malformed = true
            return delta
        }
        if let error = value["error"], value["choices"] == nil {
            delta.upstreamError = error["message"]?.stringValue ?? error.serialized
            return delta
        }
        switch endpoint {
        case .chat:
            if case .array(let choices)? = value["choices"] {
                for choice in choices {
                    let d = choice["delta"]
                    if let content = d?["content"]?.stringValue { delta.text += content }
                    if case .array(let toolCalls)? = d?["tool_calls"] {
                        for (position, tc) in toolCalls.enumerated() {
                            let index = tc["index"]?.int64.map(Int.init) ?? position
                            call(
                                index, name: tc["function"]?["name"]?.stringValue,
                                arguments: tc["function"]?["arguments"]?.stringValue ?? "")
                        }
                    }
                    if let reason = choice["finish_reason"], reason != .null { delta.finished = true }
                }
            }
            if let usage = value["usage"], usage != .null {
                delta.tokensIn = usage["prompt_tokens"]?.int64
                delta.tokensOut = usage["completion_tokens"]?.int64
            }
        case .responses:
            let type = value["type"]?.stringValue ?? name ?? ""
            switch type {
            case "response.output_text.delta": delta.text = value["delta"]?.stringValue ?? ""
            case "response.output_item.added":
                if value["item"]?["type"]?.stringValue == "function_call" {
                    call(
                        Int(value["output_index"]?.int64 ?? 0), name: value["item"]?["name"]?.stringValue, arguments: ""
                    )
                }
            case "response.function_call_arguments.delta":
                call(Int(value["output_index"]?.int64 ?? 0), name: nil, arguments: value["delta"]?.stringValue ?? "")
            case "response.completed", "response.incomplete", "response.failed":
                delta.finished = true
                delta.tokensIn = value["response"]?["usage"]?["input_tokens"]?.int64
                delta.tokensOut = value["response"]?["usage"]?["output_tokens"]?.int64
            case "error": delta.upstreamError = value["message"]?.stringValue ?? value.serialized
            default: break
            }
        case .messages, .countTokens:
            let type = value["type"]?.stringValue ?? name ?? ""
            switch type {
            case "message_start":
                delta.tokensIn = value["message"]?["usage"]?["input_tokens"]?.int64
            case "content_block_start":
                if value["content_block"]?["type"]?.stringValue == "tool_use" {
                    call(
                        Int(value["index"]?.int64 ?? 0), name: value["content_block"]?["name"]?.stringValue,
                        arguments: "")
                }
            case "content_block_delta":
                let d = value["delta"]
                switch d?["type"]?.stringValue {
                case "text_delta": delta.text = d?["text"]?.stringValue ?? ""
                case "input_json_delta":
                    call(Int(value["index"]?.int64 ?? 0), name: nil, arguments: d?["partial_json"]?.stringValue ?? "")
                default: break
                }
            case "message_delta":
                delta.tokensOut = value["usage"]?["output_tokens"]?.int64
            case "message_stop": delta.finished = true
            case "error": delta.upstreamError = value["error"]?["message"]?.stringValue ?? value.serialized
            default: break
            }
        }
        return delta
    }
}

/// The `text/event-stream` framing, fed as bytes arrive: each event whole, its raw bytes (to relay
/// unchanged), its `event:` name and its `data` lines joined by newlines.
struct EventFramer {
    struct Event {
        var raw: [UInt8]
        var name: String?
        var data: [UInt8]
        var hasData: Bool
    }

    private var raw: [UInt8] = []
    private var line: [UInt8] = []
    private var name: String?
    private var data: [UInt8] = []
    private var hasData = false
    private var lastWasCR = false

    /// Bytes held for an event not yet complete.
    var pending: Int { raw.count }

    mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            raw.append(byte)
            if byte == 0x0A && lastWasCR {
                lastWasCR = false
                continue
            }
            lastWasCR = byte == 0x0D
            guard byte == 0x0A || byte == 0x0D else {
                line.append(byte)
                continue
            }
            if line.isEmpty {
                if hasData || name != nil {
                    events.append(Event(raw: raw, name: name, data: data, hasData: hasData))
                }
                raw = []
                data = []
                name = nil
                hasData = false
                continue
            }
            if line.starts(with: Array("data".utf8)) && (line.count == 4 || line[4] == 0x3A) {
                var value = line.count > 5 ? Array(line[5...]) : []
                if value.first == 0x20 { value.removeFirst() }
                if hasData { data.append(0x0A) }
                data += value
                hasData = true
            } else if line.starts(with: Array("event:".utf8)) {
                var value = Array(line[6...])
                if value.first == 0x20 { value.removeFirst() }
                name = String(decoding: value, as: UTF8.self)
            }
            line = []
        }
        return events
    }
}
