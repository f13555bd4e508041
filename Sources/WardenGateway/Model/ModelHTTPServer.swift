import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import WardenCore

/// The model door's HTTP endpoint on a listening socket the caller made — for a run, on the sandbox's
/// own loopback (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`). Each request's body is read whole (up to
/// ``ModelDoor/bodyMax``; a longer one is answered 413 without being kept) and handed to the door; the
/// answer is written as the door produces it (a stream chunk by chunk, with backpressure).
public final class ModelHTTPServer: Sendable {
    let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    /// Serves on `listener` (a bound, listening TCP socket; it is the server's from now on).
    public static func serve(
        _ door: ModelDoor, listener: Int32, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws -> ModelHTTPServer {
        ModelHTTPServer(channel: try bootstrap(door, group: group).withBoundSocket(listener).wait())
    }

    /// Serves on a loopback address of the host (a door on its own: a test, the benchmark).
    public static func serve(
        _ door: ModelDoor, host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws -> ModelHTTPServer {
        guard host == "127.0.0.1" || host == "::1" || host == "localhost" else {
            throw WardenError.invalidInput("model_listen: \(host) is not loopback; the door listens on loopback only")
        }
        return ModelHTTPServer(channel: try bootstrap(door, group: group).bind(host: host, port: port).wait())
    }

    public var port: Int? { channel.localAddress?.port }

    private static func bootstrap(_ door: ModelDoor, group: any EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ModelHTTPHandler(door: door))
                }
            }
    }

    public func close() { try? channel.close().wait() }
}

/// One HTTP connection to the door.
final class ModelHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let door: ModelDoor
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooBig = false

    init(door: ModelDoor) { self.door = door }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = context.channel.allocator.buffer(capacity: 0)
            tooBig = false
        case .body(var chunk):
            guard !tooBig else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > ModelDoor.bodyMax {
                tooBig = true
                body = nil
                return
            }
            body?.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            let bytes = body.map { Array($0.readableBytesView) } ?? []
            body = nil
            let responder = ChannelResponder(channel: context.channel, keepAlive: head.isKeepAlive)
            let door = door
            let headers = head.headers.map { ($0.name, $0.value) }
            let tooBig = tooBig
            Task {
                await door.handle(
                    method: head.method.rawValue, path: head.uri, headers: headers, body: bytes, tooBig: tooBig,
                    responder: responder)
            }
        }
    }
}

/// Writes one response on a connection (thread-safe: NIO orders the writes on the channel's loop).
struct ChannelResponder: ModelResponder {
    let channel: any Channel
    let keepAlive: Bool

    func head(status: Int, headers: [(String, String)]) {
        var fields = HTTPHeaders(headers)
        if !keepAlive { fields.replaceOrAdd(name: "Connection", value: "close") }
        channel.write(
            HTTPServerResponsePart.head(
                HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: fields)),
            promise: nil)
    }

    func send(_ bytes: [UInt8]) -> EventLoopFuture<Void> {
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: bytes))))
    }

    func finish() {
        let channel = channel
        let keepAlive = keepAlive
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}
