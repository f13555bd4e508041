import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WardenCore

/// One trial's conversation with a Chat Completions model: the messages so far, one request per turn.
final class ChatSession: AgentSession, @unchecked Sendable {
    // @unchecked: `messages` and `lastHadCalls` are only touched inside `lock`; the rest are `let`s.
    private let configuration: ChatCompletionsAgent.Configuration
    private let url: URL
    private let key: String?
    private var messages: [JSONValue]
    private var lastHadCalls = true
    private let lock = NSLock()
    /// Sent as `X-Warden-Trial` when the endpoint is Warden's model door: its records carry it.
    let doorTag: String?

    init(configuration: ChatCompletionsAgent.Configuration, url: URL, key: String?, variant: PromptVariant) {
        self.configuration = configuration
        self.url = url
        self.key = key
        doorTag = configuration.throughDoor ? UUID().uuidString.lowercased() : nil
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

    /// POSTs the request body with AsyncHTTPClient (SwiftNIO; no libcurl, whose 30 shared libraries
    /// every start of the `warden` binary would otherwise load).
    private func post(_ body: Data) async throws -> (Data, Int) {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let doorTag { request.headers.add(name: "X-Warden-Trial", value: doorTag) }
        request.body = .bytes(ByteBuffer(bytes: Array(body)))
        let endpoint = url.absoluteString
        let timeout = TimeAmount.nanoseconds(Int64(configuration.requestTimeout * 1e9))
        do {
            let response = try await Self.client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 64 << 20)
            return (Data(bytes.readableBytesView), Int(response.status.code))
        } catch {
            throw ModelError(
                description:
                    "the model endpoint \(endpoint) is unreachable: \(WardenError.transportReason(error)); check --base-url and that the server is running"
            )
        }
    }

    /// One client for the process (it lives as long as the process, so it is never shut down). A refused
    /// connection fails the request at once instead of being retried until the connect timeout: a model
    /// endpoint that is down is a trial's error to report, not a wait of minutes.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

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
