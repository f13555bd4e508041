import Foundation
import WardenCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One trial's conversation with a Chat Completions model: the messages so far, one request per turn.
final class ChatSession: AgentSession, @unchecked Sendable {
    // @unchecked: `messages` and `lastHadCalls` are only touched inside `lock`; the rest are `let`s.
    private let configuration: ChatCompletionsAgent.Configuration
    private let url: URL
    private let key: String?
    private var messages: [JSONValue]
    private var lastHadCalls = true
    private let lock = NSLock()

    init(configuration: ChatCompletionsAgent.Configuration, url: URL, key: String?, variant: PromptVariant) {
        self.configuration = configuration
        self.url = url
        self.key = key
        messages = [
            .object([("role", .string("system")), ("content", .string(variant.system))]),
            .object([("role", .string("user")), ("content", .string(variant.user))]),
        ]
    }

    func next(results: [ToolResult]) async throws -> AgentTurn {
        let body: Data = lock.withLock {
            for result in results {
                messages.append(
                    .object([
                        ("role", .string("tool")), ("tool_call_id", .string(result.callID)),
                        ("content", .string(result.output)),
                    ]))
            }
            if results.isEmpty && !lastHadCalls {
                // What the published harness says when a model answers without calling a tool.
                messages.append(
                    .object([
                        ("role", .string("user")),
                        (
                            "content",
                            .string(
                                "Please proceed to the next step using your best judgement. If you believe you have completed the task, please call the `submit()` tool."
                            )
                        ),
                    ]))
            }
            var request: [(key: String, value: JSONValue)] = [
                ("model", .string(configuration.model)), ("messages", .array(messages)),
                ("tools", ChatCompletionsAgent.tools), ("tool_choice", .string("auto")),
            ]
            if let temperature = configuration.temperature {
                request.append(("temperature", .number(String(temperature))))
            }
            return Data(JSONValue.object(request).serialized.utf8)
        }
        let (data, status) = try await post(body)
        let turn = try parse(data, status: status)
        lock.withLock {
            var message: [(key: String, value: JSONValue)] = [
                ("role", .string("assistant")), ("content", turn.content.map { .string($0) } ?? .null),
            ]
            if !turn.calls.isEmpty {
                message.append(
                    (
                        "tool_calls",
                        .array(
                            turn.calls.map { call in
                                .object([
                                    ("id", .string(call.id)), ("type", .string("function")),
                                    (
                                        "function",
                                        .object([("name", .string(call.name)), ("arguments", .string(call.arguments))])
                                    ),
                                ])
                            })
                    ))
            }
            messages.append(.object(message))
            lastHadCalls = !turn.calls.isEmpty
        }
        return turn
    }

    private func post(_ body: Data) async throws -> (Data, Int) {
        var request = URLRequest(url: url, timeoutInterval: configuration.requestTimeout)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let endpoint = url.absoluteString
        return try await withCheckedThrowingContinuation { continuation in
            let task = URLSession.shared.dataTask(with: request) { data, response, error in
                if let error {
                    let reason = (error as NSError).localizedDescription
                    continuation.resume(
                        throwing: ModelError(
                            description:
                                "the model endpoint \(endpoint) is unreachable: \(reason); check --base-url and that the server is running"
                        ))
                    return
                }
                continuation.resume(returning: (data ?? Data(), (response as? HTTPURLResponse)?.statusCode ?? 0))
            }
            task.resume()
        }
    }

    private func parse(_ data: Data, status: Int) throws -> AgentTurn {
        let text = String(decoding: data, as: UTF8.self)
        let excerpt = text.count > 200 ? String(text.prefix(200)) + "…" : text
        guard (200..<300).contains(status) else {
            let hint =
                status == 401 || status == 403
                ? "check the API key"
                : status == 404 ? "check --base-url (it should end in /v1) and --model" : "see the server's log"
            throw ModelError(description: "the model endpoint answered HTTP \(status): \(excerpt) (\(hint))")
        }
        let reply: JSONValue
        do {
            reply = try JSONValue.parse(text)
        } catch {
            throw ModelError(description: "the model's reply is not JSON (\(error)): \(excerpt)")
        }
        guard case .array(let choices)? = reply["choices"], let message = choices.first?["message"] else {
            throw ModelError(
                description:
                    "the model's reply has no choices[0].message; is this a Chat Completions endpoint? \(excerpt)")
        }
        var calls: [ToolCall] = []
        if case .array(let toolCalls)? = message["tool_calls"] {
            for (index, call) in toolCalls.enumerated() {
                guard let function = call["function"], let name = function["name"]?.stringValue else {
                    throw ModelError(
                        description: "tool call \(index) in the model's reply has no function name: \(excerpt)")
                }
                let arguments: String
                switch function["arguments"] {
                case .string(let string)?: arguments = string
                case let value?: arguments = value.serialized  // some servers send an object
                case nil: arguments = "{}"
                }
                calls.append(ToolCall(id: call["id"]?.stringValue ?? "call_\(index)", name: name, arguments: arguments))
            }
        }
        return AgentTurn(content: message["content"]?.stringValue, calls: calls)
    }
}
