import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import WardenCore

/// The tools door's Streamable HTTP endpoint (MCP's HTTP transport, server side) on a listening
/// socket the caller made — for a run, on the sandbox's own loopback (`WARDEN_MCP_URL`).
///
/// `POST /mcp` carries one JSON-RPC message: a request is answered with one `application/json`
/// response, a notification or response with 202. An `initialize` opens a session (`Mcp-Session-Id`,
/// minted by Warden, random); the session's later requests must carry it (an unknown one is 404).
/// A request in the stateless revision (its `_meta` names 2026-07-28, or `server/discover`) needs no
/// session. `GET /mcp` with a session is its stream of Warden's own messages (list changes, progress)
/// as server-sent events; `DELETE` ends the session. A request with an `Origin` that is not this
/// loopback endpoint is refused (DNS rebinding), as is a body over 16 MiB.
public final class ToolsHTTPServer: Sendable {
    let gateway: ToolsGateway
    let channel: any Channel
    let registry: HTTPSessions

    private init(gateway: ToolsGateway, channel: any Channel, registry: HTTPSessions) {
        self.gateway = gateway
        self.channel = channel
        self.registry = registry
    }

    /// Serves on `listener` (a bound, listening TCP socket; it is the server's from now on).
    public static func serve(
        _ gateway: ToolsGateway, listener: Int32, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws
        -> ToolsHTTPServer
    {
        let registry = HTTPSessions(gateway: gateway)
        let channel = try bootstrap(registry, group: group).withBoundSocket(listener).wait()
        return ToolsHTTPServer(gateway: gateway, channel: channel, registry: registry)
    }

    /// Serves on a loopback address of the host (a gateway on its own, e.g. in a test).
    public static func serve(
        _ gateway: ToolsGateway, host: String, port: Int,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws
        -> ToolsHTTPServer
    {
        guard host == "127.0.0.1" || host == "::1" || host == "localhost" else {
            throw WardenError.invalidInput(
                "http_listen: \(host) is not loopback; the endpoint listens on loopback only")
        }
        let registry = HTTPSessions(gateway: gateway)
        let channel = try bootstrap(registry, group: group).bind(host: host, port: port).wait()
        return ToolsHTTPServer(gateway: gateway, channel: channel, registry: registry)
    }

    public var port: Int? { channel.localAddress?.port }

    private static func bootstrap(_ registry: HTTPSessions, group: any EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MCPHTTPHandler(registry: registry))
                }
            }
    }

    public func close() {
        try? channel.close().wait()
        registry.closeAll()
    }
}

/// The Streamable HTTP sessions: each a ``ToolsSession`` whose pushed messages go to its GET stream.
final class HTTPSessions: Sendable {
    let gateway: ToolsGateway
    /// One session for the stateless revision's requests (they carry no session).
    let stateless: ToolsSession
    private let sessions = Mutex([String: (session: ToolsSession, stream: EventStream)]())

    /// A session's `GET` stream, once the agent opens it.
    final class EventStream: Sendable {
        private let channel = Mutex<(any Channel)?>(nil)

        func attach(_ channel: any Channel) -> Bool {
            self.channel.withLock { current in
                guard current == nil else { return false }
                current = channel
                return true
            }
        }

        func detach() { channel.withLock { $0 = nil } }

        /// Sends one message as an SSE event; false when no stream is open.
        func push(_ line: String) -> Bool {
            guard let channel = channel.withLock({ $0 }) else { return false }
            var buffer = channel.allocator.buffer(capacity: line.utf8.count + 16)
            buffer.writeString("event: message\ndata: ")
            buffer.writeString(line.hasSuffix("\n") ? String(line.dropLast()) : line)
            buffer.writeString("\n\n")
            channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
            return true
        }

        func end() {
            guard
                let channel = channel.withLock({ current -> (any Channel)? in
                    defer { current = nil }
                    return current
                })
            else { return }
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    init(gateway: ToolsGateway) {
        self.gateway = gateway
        stateless = gateway.openSession(pushes: false) { _ in false }
    }

    /// A new session and its id (128 random bits).
    func open() -> (String, ToolsSession) {
        let id = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let stream = EventStream()
        let session = gateway.openSession(pushes: true) { line in stream.push(line) }
        sessions.withLock { $0[id] = (session, stream) }
        return (id, session)
    }

    func find(_ id: String) -> (session: ToolsSession, stream: EventStream)? { sessions.withLock { $0[id] } }

    func close(_ id: String) -> Bool {
        guard let entry = sessions.withLock({ $0.removeValue(forKey: id) }) else { return false }
        entry.stream.end()
        DispatchQueue.global().async { entry.session.close(cancel: true) }
        return true
    }

    func closeAll() {
        for id in sessions.withLock({ Array($0.keys) }) { _ = close(id) }
    }
}

/// One HTTP connection to the endpoint.
final class MCPHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: HTTPSessions
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooBig = false
    /// The session whose event stream this connection carries, if it does.
    private var streaming: HTTPSessions.EventStream?

    init(registry: HTTPSessions) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = context.channel.allocator.buffer(capacity: 0)
            tooBig = false
        case .body(var chunk):
            guard !tooBig else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > ToolsSession.messageMax {
                tooBig = true
                body = nil
                return
            }
            body?.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            route(context: context, head: head, body: body.map { Array($0.readableBytesView) } ?? [])
            body = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        streaming?.detach()
        streaming = nil
        context.fireChannelInactive()
    }

    private func route(context: ChannelHandlerContext, head: HTTPRequestHead, body: [UInt8]) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard path == "/mcp" else { return respond(context, .notFound, error: "the MCP endpoint is /mcp") }
        if let origin = head.headers.first(name: "Origin"), !Self.isLoopback(origin: origin) {
            return respond(context, .forbidden, error: "Origin \(origin) is not this loopback endpoint")
        }
        if tooBig {
            return respond(
                context, .payloadTooLarge,
                error: "a message longer than \(ToolsSession.messageMax >> 20) MiB is not read; send smaller arguments")
        }
        let sessionID = head.headers.first(name: "Mcp-Session-Id")
        switch head.method {
        case .POST: post(context: context, body: body, sessionID: sessionID)
        case .GET:
            guard let sessionID, let entry = registry.find(sessionID) else {
                return respond(
                    context, .methodNotAllowed, error: "GET /mcp is a session's event stream; give its Mcp-Session-Id")
            }
            guard entry.stream.attach(context.channel) else {
                return respond(context, .conflict, error: "this session's event stream is already open")
            }
            streaming = entry.stream
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/event-stream")
            headers.add(name: "Cache-Control", value: "no-store")
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil
            )
        case .DELETE:
            guard let sessionID, registry.close(sessionID) else {
                return respond(context, .notFound, error: "no such session")
            }
            respond(context, .ok, body: nil)
        default:
            respond(context, .methodNotAllowed, error: "use POST, GET or DELETE on /mcp")
        }
    }

    private func post(context: ChannelHandlerContext, body: [UInt8], sessionID: String?) {
        let parsed = try? JSONValue.parse(bytes: body)
        let method = parsed?["method"]?.stringValue
        let isRequest = method != nil && parsed?["id"] != nil
        let session: ToolsSession
        var minted: String?
        if method == "initialize" && isRequest {
            let (id, opened) = registry.open()
            minted = id
            session = opened
        } else if let sessionID {
            guard let entry = registry.find(sessionID) else {
                return respond(context, .notFound, error: "no session \(sessionID); initialize again")
            }
            session = entry.session
        } else if parsed == nil || method == "server/discover" || MCPRevision.named(in: parsed?["params"]) != nil
            || !isRequest
        {
            session = registry.stateless
        } else {
            return respond(
                context, .badRequest,
                error: "a request of revision 2025-11-25 or older needs the Mcp-Session-Id from initialize")
        }
        guard isRequest || parsed == nil else {
            session.receive(body)
            return respond(context, .accepted, body: nil)
        }
        let channel = context.channel
        let loop = context.eventLoop
        session.receive(body) { line in
            loop.execute {
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                if let minted { headers.add(name: "Mcp-Session-Id", value: minted) }
                let buffer = channel.allocator.buffer(string: line)
                headers.add(name: "Content-Length", value: String(buffer.readableBytes))
                channel.write(
                    HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)),
                    promise: nil)
                channel.write(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
                channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, error: String) {
        let line = RPCMessage.error(id: .null, code: RPCMessage.Code.invalidRequest, message: error).line
        respond(context, status, body: line)
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, body: String?) {
        var headers = HTTPHeaders()
        let buffer = context.channel.allocator.buffer(string: body ?? "")
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if body != nil { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// An `Origin` naming a loopback host (the agent's own client in the sandbox).
    static func isLoopback(origin: String) -> Bool {
        guard let host = URLComponents(string: origin)?.host?.lowercased() else { return false }
        return host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1"
    }
}
