import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A stand-in for a hosted model API on loopback: what a local server does not show (Anthropic's
/// format, rate limits, 5xx, stalls, resets, malformed streams) and a fast upstream for `warden bench
/// model` (pre-generated chunks, so the door is what is measured). The `model` of a request picks the
/// behaviour: `chunks-N` (N chunks), `slow` (a chunk every 50 ms, 400 of them), `stall` (two chunks,
/// then silence), `reset` (two chunks, then the connection is torn), `malformed` (an event that is not
/// JSON), `status-429`, `status-500`, `secret` (an answer carrying a cloud key), `tool` (a tool call
/// named by the request's first tool), `echo-key` (the key it received, in the answer); anything else:
/// 8 chunks. It keeps what each request carried (`seen`).
public final class ModelStandIn: Sendable {
    public struct Seen: Sendable {
        public var path: String
        public var headers: [(String, String)]
        public var body: String
    }

    let channel: any Channel
    let log: SeenLog

    public static let secret = "AKIAIOSFODNN7EXAMPLE"

    /// Starts on 127.0.0.1 at a port of the kernel's choosing.
    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        let log = SeenLog()
        self.log = log
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(StandInHandler(log: log))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    public var port: Int { channel.localAddress?.port ?? 0 }
    public var openAIBase: String { "http://127.0.0.1:\(port)/v1" }
    public var anthropicBase: String { "http://127.0.0.1:\(port)" }
    public var seen: [Seen] { log.entries.withLock { $0 } }

    public func close() { try? channel.close().wait() }
}

final class SeenLog: Sendable {
    let entries = Mutex<[ModelStandIn.Seen]>([])
}

final class StandInHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let log: SeenLog
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(log: SeenLog) { self.log = log }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk): body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            answer(context: context, head: head, body: String(buffer: body))
        }
    }

    private func answer(context: ChannelHandlerContext, head: HTTPRequestHead, body: String) {
        log.entries.withLock {
            if $0.count > 10_000 { $0.removeFirst($0.count - 1000) }
            $0.append(.init(path: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: body))
        }
        let request = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        let model = request["model"] as? String ?? ""
        let stream = request["stream"] as? Bool ?? false
        let anthropic = head.uri.hasSuffix("/messages")
        let key = head.headers.first(name: "x-api-key") ?? head.headers.first(name: "Authorization") ?? ""
        let channel = context.channel
        func write(_ text: String, flush: Bool = true) {
            let part = HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(string: text)))
            if flush { channel.writeAndFlush(part, promise: nil) } else { channel.write(part, promise: nil) }
        }
        func start(_ status: HTTPResponseStatus, _ type: String, length: Int? = nil) {
            var headers = HTTPHeaders([("Content-Type", type)])
            if let length { headers.add(name: "Content-Length", value: String(length)) }
            if status == .tooManyRequests { headers.add(name: "Retry-After", value: "7") }
            channel.write(
                HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)),
                promise: nil)
        }
        func end() { channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil) }
        if model.hasPrefix("status-"), let code = Int(model.dropFirst(7)) {
            let text =
                anthropic
                ? #"{"type":"error","error":{"type":"rate_limit_error","message":"stand-in: status \#(code)"}}"#
                : #"{"error":{"message":"stand-in: status \#(code)","type":"rate_limit_error","code":"\#(code)"}}"#
            start(HTTPResponseStatus(statusCode: code), "application/json", length: text.utf8.count)
            write(text, flush: false)
            return end()
        }
        var pieces: [String]
        switch model {
        case "secret":
            pieces = [
                "Here ", "is the ", "key: ", ModelStandIn.secret.prefix(10).description,
                ModelStandIn.secret.dropFirst(10).description, " done.",
            ]
        case "echo-key": pieces = ["key=", key]
        case let m where m.hasPrefix("chunks-"): pieces = (0..<(Int(m.dropFirst(7)) ?? 8)).map { "t\($0) " }
        case "slow": pieces = (0..<400).map { "s\($0) " }
        default: pieces = (0..<8).map { "w\($0) " }
        }
        var toolName: String?
        if model == "tool", let tools = request["tools"] as? [[String: Any]], let first = tools.first {
            toolName = (first["function"] as? [String: Any])?["name"] as? String ?? first["name"] as? String
        }
        if !stream {
            let text = pieces.joined()
            let answer: String
            if anthropic {
                let content: String =
                    toolName.map {
                        #"[{"type":"tool_use","id":"toolu_1","name":"\#($0)","input":{"path":"notes.txt"}}]"#
                    } ?? #"[{"type":"text","text":\#(Self.quoted(text))}]"#
                answer =
                    #"{"id":"msg_1","type":"message","role":"assistant","model":"\#(model)","content":\#(content),"stop_reason":"\#(toolName == nil ? "end_turn" : "tool_use")","usage":{"input_tokens":11,"output_tokens":\#(pieces.count)}}"#
            } else {
                let message: String =
                    toolName.map {
                        #"{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"\#($0)","arguments":"{\"path\":\"notes.txt\"}"}}]}"#
                    } ?? #"{"role":"assistant","content":\#(Self.quoted(text))}"#
                answer =
                    #"{"id":"chatcmpl-1","object":"chat.completion","model":"\#(model)","choices":[{"index":0,"message":\#(message),"finish_reason":"\#(toolName == nil ? "stop" : "tool_calls")"}],"usage":{"prompt_tokens":11,"completion_tokens":\#(pieces.count),"total_tokens":\#(11 + pieces.count)}}"#
            }
            start(.ok, "application/json", length: answer.utf8.count)
            write(answer, flush: false)
            return end()
        }
        start(.ok, "text/event-stream")
        var events: [String] = []
        if anthropic {
            events.append(
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"\(model)\",\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\n"
            )
            if let toolName {
                events.append(
                    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"\(toolName)\",\"input\":{}}}\n\n"
                )
                events.append(
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"path\\\": \\\"notes.txt\\\"}\"}}\n\n"
                )
            } else {
                events.append(
                    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                )
                for piece in pieces {
                    events.append(
                        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\(Self.quoted(piece))}}\n\n"
                    )
                }
            }
            events.append("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
            events.append(
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"\(toolName == nil ? "end_turn" : "tool_use")\"},\"usage\":{\"output_tokens\":\(pieces.count)}}\n\n"
            )
            events.append("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
        } else {
            let prefix =
                "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"\(model)\",\"choices\":[{\"index\":0,"
            if let toolName {
                events.append(
                    prefix
                        + "\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"\(toolName)\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
                )
                events.append(
                    prefix
                        + "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"path\\\": \\\"notes.txt\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
                )
                events.append(prefix + "\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n")
            } else {
                for piece in pieces {
                    events.append(
                        prefix + "\"delta\":{\"content\":\(Self.quoted(piece))},\"finish_reason\":null}]}\n\n")
                }
                events.append(
                    prefix
                        + "\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":\(pieces.count),\"total_tokens\":\(11 + pieces.count)}}\n\n"
                )
            }
            events.append("data: [DONE]\n\n")
        }
        switch model {
        case "stall", "reset", "malformed":
            write(events[0])
            write(events[1])
            if model == "malformed" {
                write("data: {this is not json\n\n")
            } else if model == "reset" {
                // Torn mid-answer: an abortive close (RST), no terminating chunk.
                if let provider = channel as? any SocketOptionProvider {
                    provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
                        channel.close(promise: nil)
                    }
                } else {
                    channel.close(promise: nil)
                }
            }
        // stall: nothing more, ever (until the client goes).
        case "slow":
            let loop = channel.eventLoop
            func next(_ i: Int) {
                guard i < events.count, channel.isActive else { return }
                write(events[i])
                if i == events.count - 1 { return end() }
                loop.scheduleTask(in: .milliseconds(50)) { next(i + 1) }
            }
            next(0)
        default:
            for event in events { write(event, flush: false) }
            channel.flush()
            end()
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
