import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import WardenCore

/// The HTTP side of the door: the proxy on 127.0.0.1:3128 (CONNECT and absolute-URI requests) and plain
/// HTTP reaching a transparent listener. Every request is its own decision (method and path in the
/// context); a keep-alive connection reuses its upstream only for the same host and port.
final class HTTPForwarder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    enum Mode {
        /// The proxy port: absolute URIs or CONNECT.
        case proxy
        /// A transparent listener: the host and port the synthetic address stands for.
        case transparent(host: String, port: Int)

        var entry: ConnectRequest.Entry {
            if case .proxy = self { return .proxy }
            return .transparent
        }
    }

    private enum State {
        case idle
        case deciding
        /// The upstream is ready: body parts go straight to it.
        case sending
        case awaitingResponse
        /// Refused or broken: the connection closes once the answer is written.
        case closing
    }

    let services: DoorServices
    let mode: Mode
    private var state = State.idle
    private var queue: [HTTPServerRequestPart] = []
    private var upstream: (key: String, channel: any Channel, meter: ConnectionMeter)?
    private var keepAlive = true
    private var headTimeout: Scheduled<Void>?

    init(services: DoorServices, mode: Mode) {
        self.services = services
        self.mode = mode
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A connection that never sends a request does not hold its slot for long.
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        headTimeout = context.eventLoop.scheduleTask(in: .seconds(30)) {
            let (handler, context) = bound.value
            if case .idle = handler.state, handler.upstream == nil { context.close(promise: nil) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.append(unwrapInboundIn(data))
        pump(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        headTimeout?.cancel()
        if let upstream {
            upstream.meter.mark(closedBy: "agent")
            upstream.channel.close(promise: nil)
        }
        upstream = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .idle = state, error is HTTPParserError {
            respond(context: context, status: .badRequest, reason: "not an HTTP/1.1 request: \(error)")
            return
        }
        context.close(promise: nil)
    }

    /// Takes queued parts as far as the state allows.
    private func pump(context: ChannelHandlerContext) {
        while let part = queue.first {
            switch (state, part) {
            case (.idle, .head(let head)):
                queue.removeFirst()
                headTimeout?.cancel()
                begin(context: context, head: head)
            case (.sending, .body(let body)):
                queue.removeFirst()
                guard let upstream else { return }
                let allowed = upstream.meter.allowUp(body.readableBytes)
                if allowed < body.readableBytes {
                    let slice = body.getSlice(at: body.readerIndex, length: allowed) ?? ByteBuffer()
                    upstream.channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(slice))).whenComplete { _ in
                        upstream.channel.close(promise: nil)
                    }
                    state = .closing
                    context.close(promise: nil)
                    return
                }
                upstream.channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
            case (.sending, .end(let trailers)):
                queue.removeFirst()
                upstream?.channel.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
                state = .awaitingResponse
            case (.closing, _):
                queue.removeFirst()
            case (.idle, _):
                // A body without a head: the refused request's rest.
                queue.removeFirst()
            default:
                return
            }
        }
    }

    private func begin(context: ChannelHandlerContext, head: HTTPRequestHead) {
        keepAlive = head.isKeepAlive
        if head.method == .CONNECT {
            guard case .proxy = mode else {
                return respond(context: context, status: .badRequest, reason: "CONNECT is only for the proxy port")
            }
            return connect(context: context, head: head)
        }
        // The target: an absolute http:// URI on the proxy port, the listener's host on a transparent one.
        let host: String
        let port: Int
        let path: String
        switch mode {
        case .proxy:
            guard let target = Self.absoluteTarget(head.uri) else {
                let hint =
                    head.uri.lowercased().hasPrefix("https://")
                    ? "https:// goes through CONNECT (set HTTPS_PROXY)"
                    : "send an absolute URI (http://host/path) or CONNECT host:port"
                return respond(context: context, status: .badRequest, reason: "this is Warden's egress proxy; \(hint)")
            }
            (host, port, path) = target
        case .transparent(let fixedHost, let fixedPort):
            (host, port, path) = (fixedHost, fixedPort, head.uri)
        }
        // Host must name the same host (fronting): on the proxy the URI's, on a listener the dialled one.
        let first = FirstBytes.http(method: head.method.rawValue, target: head.uri, host: head.headers["host"].first)
        if head.headers["host"].first != nil || mode.entry == .transparent,
            let mismatch = Fronting.check(first, host: host, port: port)
        {
            services.recordRefusal(
                host: host, port: port, reason: mismatch,
                ["method": head.method.rawValue, "path": path, "scheme": "http"])
            return respond(context: context, status: .forbidden, reason: mismatch, host: host, port: port)
        }
        state = .deciding
        let request = ConnectRequest(
            host: host, port: port, scheme: "http", method: head.method.rawValue, path: path, entry: mode.entry)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        services.decide(request, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(.allow(let address, let connection)):
                handler.forward(
                    context: context, head: head, host: host, port: port, path: path, address: address,
                    connection: connection)
            case .success(.deny(let denial)):
                handler.respond(
                    context: context, status: .forbidden, reason: denial.reason, denial: denial, host: host, port: port)
            case .failure(let error):
                handler.respond(context: context, status: .serviceUnavailable, reason: "the door is closing (\(error))")
            }
        }
    }

    private func forward(
        context: ChannelHandlerContext, head: HTTPRequestHead, host: String, port: Int, path: String,
        address: [UInt8], connection: String
    ) {
        var outgoing = HTTPRequestHead(version: .http1_1, method: head.method, uri: path, headers: head.headers)
        for name in ["proxy-connection", "proxy-authorization", "proxy-authenticate"] {
            outgoing.headers.remove(name: name)
        }
        if outgoing.headers["host"].isEmpty {
            outgoing.headers.add(name: "Host", value: port == 80 ? host : "\(host):\(port)")
        }
        let key = "\(EgressDoor.text(address)):\(port)"
        if let upstream, upstream.key == key, upstream.channel.isActive {
            send(context: context, head: outgoing)
            return
        }
        if let previous = upstream {
            previous.meter.closedBy = "agent (next host)"
            previous.channel.close(promise: nil)
            upstream = nil
        }
        let meter = ConnectionMeter(services: services, connection: connection, subject: "connect \(host):\(port)")
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        connectUpstream(address: address, port: port, on: context.eventLoop).flatMap { channel in
            channel.pipeline.addHTTPClientHandlers().flatMap {
                channel.pipeline.addHandler(ResponseRelay(forwarder: bound, meter: meter))
            }.map { channel }
        }.whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let channel):
                _ = channel.setOption(.autoRead, value: true)
                channel.read()
                handler.upstream = (key, channel, meter)
                handler.send(context: context, head: outgoing)
            case .failure(let error):
                meter.finish(closedBy: "upstream (unreachable)")
                handler.respond(
                    context: context, status: .badGateway, reason: "\(host):\(port) could not be reached: \(error)")
            }
        }
    }

    private func send(context: ChannelHandlerContext, head: HTTPRequestHead) {
        guard let upstream else { return }
        upstream.channel.write(HTTPClientRequestPart.head(head), promise: nil)
        state = .sending
        pump(context: context)
        upstream.channel.flush()
    }

    /// The upstream's response ended: the next request may go.
    fileprivate func responseEnded(context: ChannelHandlerContext, upstreamKeepsAlive: Bool) {
        if !upstreamKeepsAlive, let upstream {
            upstream.channel.close(promise: nil)
            self.upstream = nil
        }
        guard keepAlive else {
            state = .closing
            context.close(promise: nil)
            return
        }
        state = .idle
        pump(context: context)
    }

    fileprivate func upstreamClosed(context: ChannelHandlerContext, channel: any Channel) {
        guard let upstream, upstream.channel === channel else { return }
        self.upstream = nil
        if case .awaitingResponse = state {
            state = .closing
            context.close(promise: nil)
        } else if case .sending = state {
            state = .closing
            context.close(promise: nil)
        }
    }

    // MARK: CONNECT

    private func connect(context: ChannelHandlerContext, head: HTTPRequestHead) {
        guard let target = splitHostPort(head.uri), let port = target.port else {
            return respond(context: context, status: .badRequest, reason: "CONNECT needs host:port, not '\(head.uri)'")
        }
        state = .deciding
        let host = target.host
        let request = ConnectRequest(
            host: host, port: port, scheme: port == 443 ? "https" : "tcp", method: "CONNECT", entry: .proxy)
        let services = services
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        services.decide(request, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(.allow(let address, let connection)):
                let meter = ConnectionMeter(
                    services: services, connection: connection, subject: "connect \(host):\(port)")
                connectUpstream(address: address, port: port, on: context.eventLoop).whenComplete { result in
                    let (handler, context) = bound.value
                    switch result {
                    case .success(let upstream):
                        handler.tunnel(context: context, upstream: upstream, meter: meter, host: host, port: port)
                    case .failure(let error):
                        meter.finish(closedBy: "upstream (unreachable)")
                        handler.respond(
                            context: context, status: .badGateway,
                            reason: "\(host):\(port) could not be reached: \(error)")
                    }
                }
            case .success(.deny(let denial)):
                handler.respond(
                    context: context, status: .forbidden, reason: denial.reason, denial: denial, host: host, port: port)
            case .failure(let error):
                handler.respond(context: context, status: .serviceUnavailable, reason: "the door is closing (\(error))")
            }
        }
    }

    /// 200, then the HTTP codec leaves and the tunnel's first bytes are checked against the name.
    private func tunnel(
        context: ChannelHandlerContext, upstream: any Channel, meter: ConnectionMeter, host: String, port: Int
    ) {
        let channel = context.channel
        do {
            let pipeline = channel.pipeline.syncOperations
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            let forwarder = try pipeline.handler(type: HTTPForwarder.self)
            // The 200 is written as bytes, not through the encoder: a 2xx answer to CONNECT carries no
            // Transfer-Encoding or Content-Length and no body (RFC 9110 §9.3.6); the encoder would have
            // made it chunked and sent a last chunk into the tunnel.
            pipeline.removeHandler(encoder, promise: nil)
            var head = channel.allocator.buffer(capacity: 96)
            head.writeString(
                "HTTP/1.1 200 Connection established\r\nX-Warden-Decision: allow; connection=\(meter.connection)\r\n\r\n"
            )
            channel.writeAndFlush(head, promise: nil)
            try pipeline.addHandler(
                TunnelVerifier(services: services, host: host, port: port, upstream: upstream, meter: meter),
                position: .after(forwarder))
            pipeline.removeHandler(forwarder, promise: nil)
            // The decoder hands on whatever it had already read (the start of the ClientHello).
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            upstream.close(promise: nil)
            channel.close(promise: nil)
        }
    }

    // MARK: Answers

    /// An error answer with a JSON body; the connection closes after it.
    private func respond(
        context: ChannelHandlerContext, status: HTTPResponseStatus, reason: String, denial: Denial? = nil,
        host: String? = nil, port: Int? = nil
    ) {
        state = .closing
        var fields: [String: String] = [
            "error": status == .forbidden ? "denied by Warden's egress policy" : status.reasonPhrase, "reason": reason,
        ]
        if let host { fields["host"] = host }
        if let port { fields["port"] = String(port) }
        if let denial, !denial.policies.isEmpty { fields["policies"] = denial.policies.joined(separator: ",") }
        let body = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
        var headers: HTTPHeaders = [
            "Content-Type": "application/json", "Content-Length": String(body.count + 1), "Connection": "close",
        ]
        headers.add(
            name: "X-Warden-Decision",
            value: denial?.header ?? (status == .forbidden ? Denial(reason: reason, policies: []).header : "error"))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.count + 1)
        buffer.writeBytes(body)
        buffer.writeString("\n")
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        if let upstream {
            upstream.channel.close(promise: nil)
            self.upstream = nil
        }
    }

    /// `http://host[:port]/path` → host, port, origin-form path; nil for anything else.
    static func absoluteTarget(_ uri: String) -> (String, Int, String)? {
        guard uri.lowercased().hasPrefix("http://") else { return nil }
        let rest = uri.dropFirst(7)
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = String(rest[..<end])
        guard !authority.contains("@"), let parsed = splitHostPort(authority), !parsed.host.isEmpty else { return nil }
        var path = String(rest[end...])
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        return (parsed.host, parsed.port ?? 80, path)
    }
}

/// Relays an upstream HTTP response to the agent, counting its bytes.
private final class ResponseRelay: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    let forwarder: NIOLoopBound<(HTTPForwarder, ChannelHandlerContext)>
    let meter: ConnectionMeter
    private var keepAlive = true

    init(forwarder: NIOLoopBound<(HTTPForwarder, ChannelHandlerContext)>, meter: ConnectionMeter) {
        self.forwarder = forwarder
        self.meter = meter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (handler, agent) = forwarder.value
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            agent.write(handler.wrapOutboundOut(.head(head)), promise: nil)
        case .body(let body):
            let allowed = meter.allowDown(body.readableBytes)
            if allowed < body.readableBytes {
                let slice = body.getSlice(at: body.readerIndex, length: allowed) ?? ByteBuffer()
                agent.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(slice)))).whenComplete { _ in
                    agent.close(promise: nil)
                }
                context.close(promise: nil)
                return
            }
            agent.write(handler.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case .end(let trailers):
            agent.writeAndFlush(handler.wrapOutboundOut(.end(trailers)), promise: nil)
            handler.responseEnded(context: agent, upstreamKeepsAlive: keepAlive)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { forwarder.value.1.flush() }

    func channelInactive(context: ChannelHandlerContext) {
        meter.finish(closedBy: "upstream")
        let (handler, agent) = forwarder.value
        handler.upstreamClosed(context: agent, channel: context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
