import NIOCore
import NIOHTTP1
import NIOPosix
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Reads of up to 256 KiB when a transfer keeps the socket full (SwiftNIO's default stops at 64 KiB).
let relayAllocator = AdaptiveRecvByteBufferAllocator(minimum: 2048, initial: 16384, maximum: 262_144)

/// Connects to the address the door checked, on the agent channel's event loop. Reading starts only
/// once the connection is spliced, so nothing the far side says first is lost.
func connectUpstream(address: [UInt8], port: Int, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
    do {
        let target = try SocketAddress(ipAddress: EgressDoor.text(address), port: port)
        return ClientBootstrap(group: eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: false)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: relayAllocator)
            .connectTimeout(.seconds(15))
            .connect(to: target)
    } catch {
        return eventLoop.makeFailedFuture(error)
    }
}

/// Replaces `context`'s handler on the agent's channel with the splice to `upstream`, then replays
/// what the agent already sent. Runs in one event-loop tick, so no byte slips between.
func splice(
    context: ChannelHandlerContext, upstream: any Channel, meter: ConnectionMeter, replay: ByteBuffer?
) {
    let (agentSide, upstreamSide) = SpliceHandler.pair(meter: meter)
    do {
        try upstream.pipeline.syncOperations.addHandler(upstreamSide)
        try context.pipeline.syncOperations.addHandler(agentSide)
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        _ = channel.setOption(.allowRemoteHalfClosure, value: true)
        if let replay, replay.readableBytes > 0 { channel.pipeline.fireChannelRead(replay) }
        channel.pipeline.fireChannelReadComplete()
        _ = upstream.setOption(.autoRead, value: true)
        upstream.read()
        channel.read()
    } catch {
        meter.finish(closedBy: "warden")
        upstream.close(promise: nil)
        context.close(promise: nil)
    }
}

/// A handler that gathers a connection's first bytes until they tell what the connection speaks.
private protocol FirstBytesReader: AnyObject {
    var buffer: ByteBuffer { get set }
    func conclude(context: ChannelHandlerContext, with first: FirstBytes)
}

extension FirstBytesReader {
    /// Adds `incoming`; what the bytes so far are, or nil while more are needed.
    func gather(_ incoming: ByteBuffer) -> FirstBytes? {
        var incoming = incoming
        buffer.writeBuffer(&incoming)
        let first = FirstBytes.classify(Array(buffer.readableBytesView))
        return first == .incomplete ? nil : first
    }

    /// A protocol whose server speaks first (SSH, SMTP) sends nothing: after a short wait it is `.other`.
    func concludeAfterSilence(context: ChannelHandlerContext) -> Scheduled<Void> {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        return context.eventLoop.scheduleTask(in: .seconds(3)) {
            let (handler, context) = bound.value
            handler.conclude(context: context, with: .other)
        }
    }
}

/// Checks the first bytes of a tunnel (after CONNECT's 200 or SOCKS5's success) against the name it was
/// opened for: a TLS ClientHello must carry that SNI, a plain HTTP request that `Host`. Only then is a
/// byte sent upstream; a mismatch (domain fronting) closes both sides and is recorded.
final class TunnelVerifier: ChannelInboundHandler, RemovableChannelHandler, FirstBytesReader {
    typealias InboundIn = ByteBuffer

    let services: DoorServices
    let host: String
    let port: Int
    let upstream: any Channel
    let meter: ConnectionMeter
    fileprivate var buffer = ByteBuffer()
    private var done = false
    private var timeout: Scheduled<Void>?

    init(services: DoorServices, host: String, port: Int, upstream: any Channel, meter: ConnectionMeter) {
        self.services = services
        self.host = host
        self.port = port
        self.upstream = upstream
        self.meter = meter
    }

    func handlerAdded(context: ChannelHandlerContext) { timeout = concludeAfterSilence(context: context) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let first = gather(unwrapInboundIn(data)) { conclude(context: context, with: first) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if !done {
            done = true
            meter.finish(closedBy: "agent")
            upstream.close(promise: nil)
        }
        context.fireChannelInactive()
    }

    fileprivate func conclude(context: ChannelHandlerContext, with first: FirstBytes) {
        guard !done else { return }
        done = true
        timeout?.cancel()
        if let mismatch = Fronting.check(first, host: host, port: port) {
            meter.finish(closedBy: "warden")
            services.recordRefusal(host: host, port: port, reason: mismatch, ["connection": meter.connection])
            upstream.close(promise: nil)
            context.close(promise: nil)
            return
        }
        splice(context: context, upstream: upstream, meter: meter, replay: buffer)
    }
}

/// The fronting checks: the name inside a connection must be the name the door decided on.
enum Fronting {
    /// Why `first` does not match `host`, or nil when it does.
    static func check(_ first: FirstBytes, host: String, port: Int) -> String? {
        switch first {
        case .tls(let sni):
            guard let sni else {
                return IPLiteral.isValid(host)
                    ? nil : "fronting: the TLS ClientHello names no server (SNI) for \(host); refused"
            }
            return sni == host ? nil : "fronting: the TLS ClientHello asks for \(sni), not \(host); refused"
        case .http(_, _, let headerHost):
            guard let headerHost, let parsed = splitHostPort(headerHost) else {
                return "fronting: the HTTP request has no usable Host header for \(host); refused"
            }
            return parsed.host == host && (parsed.port ?? port) == port
                ? nil : "fronting: the HTTP request's Host is \(headerHost), not \(host):\(port); refused"
        case .other, .incomplete:
            return nil
        }
    }
}

/// A connection to a transparent listener (a program that ignored the proxy variables and dialled the
/// synthetic address the resolver gave it): the address names the host, the first bytes name the
/// protocol. Plain HTTP goes to the HTTP forwarder (decided per request); anything else is decided once
/// and spliced, or reset.
final class TransparentEntry: ChannelInboundHandler, RemovableChannelHandler, FirstBytesReader {
    typealias InboundIn = ByteBuffer

    let services: DoorServices
    private var host: String?
    private var port = 0
    fileprivate var buffer = ByteBuffer()
    private var deciding = false
    private var timeout: Scheduled<Void>?

    init(services: DoorServices) { self.services = services }

    func channelActive(context: ChannelHandlerContext) {
        identify(context: context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { identify(context: context) }
    }

    private func identify(context: ChannelHandlerContext) {
        guard host == nil, !deciding else { return }
        guard let local = context.channel.localAddress, let localPort = local.port else {
            return resetConnection(context.channel)
        }
        port = localPort
        let bytes = local.ipAddress.flatMap(IPLiteral.bytes) ?? []
        guard let name = services.door.names.name(for: bytes) else {
            deciding = true
            let address = local.ipAddress ?? "?"
            services.recordRefusal(
                host: address, port: localPort,
                reason: "a connection to \(address):\(localPort), an address the resolver never gave out; refused",
                ["entry": "transparent"])
            return resetConnection(context.channel)
        }
        host = name
        timeout = concludeAfterSilence(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let first = gather(unwrapInboundIn(data))
        guard !deciding, host != nil, let first else { return }
        conclude(context: context, with: first)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        context.fireChannelInactive()
    }

    fileprivate func conclude(context: ChannelHandlerContext, with first: FirstBytes) {
        guard !deciding, let host else { return }
        deciding = true
        timeout?.cancel()
        if case .http = first {
            // Plain HTTP: every request is decided with its method and path, and its Host checked.
            do {
                let channel = context.channel
                try context.pipeline.syncOperations.addHandler(HTTPResponseEncoder(), position: .after(self))
                try channel.pipeline.syncOperations.addHandler(
                    ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                    position: .last)
                try channel.pipeline.syncOperations.addHandler(
                    HTTPForwarder(services: services, mode: .transparent(host: host, port: port)), position: .last)
                let replay = buffer
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                channel.pipeline.fireChannelRead(replay)
                channel.pipeline.fireChannelReadComplete()
            } catch {
                resetConnection(context.channel)
            }
            return
        }
        var scheme = "tcp"
        var sni: String?
        if case .tls(let name) = first {
            scheme = "https"
            sni = name
        }
        if let mismatch = Fronting.check(first, host: host, port: port) {
            services.recordRefusal(host: host, port: port, reason: mismatch, ["entry": "transparent"])
            return resetConnection(context.channel)
        }
        let request = ConnectRequest(host: host, port: port, scheme: scheme, sni: sni, entry: .transparent)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        services.decide(request, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            guard case .success(.allow(let address, let connection)) = result else {
                return resetConnection(context.channel)
            }
            handler.open(context: context, address: address, connection: connection)
        }
    }

    private func open(context: ChannelHandlerContext, address: [UInt8], connection: String) {
        guard let host else { return }
        let meter = ConnectionMeter(services: services, connection: connection, subject: "connect \(host):\(port)")
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        connectUpstream(address: address, port: port, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let upstream):
                splice(context: context, upstream: upstream, meter: meter, replay: handler.buffer)
            case .failure:
                meter.finish(closedBy: "upstream (unreachable)")
                resetConnection(context.channel)
            }
        }
    }
}
