import NIOCore
import NIOPosix
import WardenCore

/// SOCKS5 on 127.0.0.1:1080 (RFC 1928): no authentication, CONNECT only; a domain name or an address.
/// The decision and the tunnel's first-bytes check are the proxy's.
final class SOCKSEntry: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let services: DoorServices
    private var buffer = ByteBuffer()
    private var greeted = false
    private var deciding = false

    init(services: DoorServices) { self.services = services }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        guard !deciding else { return }
        let bytes = Array(buffer.readableBytesView)
        if !greeted {
            guard bytes.count >= 2 else { return }
            guard bytes[0] == 5 else { return context.close(promise: nil) }
            let count = Int(bytes[1])
            guard bytes.count >= 2 + count else { return }
            buffer.moveReaderIndex(forwardBy: 2 + count)
            greeted = true
            // "No authentication" if offered, else "no acceptable methods".
            let accept: UInt8 = bytes[2..<2 + count].contains(0) ? 0 : 0xFF
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, accept])), promise: nil)
            if accept == 0xFF { return context.close(promise: nil) }
            return channelRead(context: context, data: NIOAny(ByteBuffer()))
        }
        guard bytes.count >= 4 else { return }
        guard bytes[0] == 5 else { return context.close(promise: nil) }
        var host: String
        var index: Int
        switch bytes[3] {
        case 1:
            guard bytes.count >= 10 else { return }
            host = EgressDoor.text(Array(bytes[4..<8]))
            index = 8
        case 3:
            guard bytes.count >= 5 else { return }
            let length = Int(bytes[4])
            guard bytes.count >= 5 + length + 2 else { return }
            host = String(decoding: bytes[5..<5 + length], as: UTF8.self).lowercased()
            index = 5 + length
        case 4:
            guard bytes.count >= 22 else { return }
            host = EgressDoor.text(Array(bytes[4..<20]))
            index = 20
        default:
            return reply(context: context, code: 8, close: true)  // address type not supported
        }
        let port = Int(bytes[index]) << 8 | Int(bytes[index + 1])
        buffer.moveReaderIndex(forwardBy: index + 2)
        guard bytes[1] == 1 else { return reply(context: context, code: 7, close: true) }  // CONNECT only
        if host.hasSuffix(".") { host.removeLast() }
        deciding = true
        let request = ConnectRequest(host: host, port: port, scheme: port == 443 ? "https" : "tcp", entry: .socks)
        let services = services
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        services.decide(request, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            guard case .success(.allow(let address, let connection)) = result else {
                return handler.reply(context: context, code: 2, close: true)  // not allowed by ruleset
            }
            let meter = ConnectionMeter(services: services, connection: connection, subject: "connect \(host):\(port)")
            connectUpstream(address: address, port: port, on: context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case .success(let upstream):
                    handler.reply(context: context, code: 0, close: false)
                    do {
                        let verifier = TunnelVerifier(
                            services: services, host: host, port: port, upstream: upstream, meter: meter)
                        try context.pipeline.syncOperations.addHandler(verifier, position: .after(handler))
                        let rest = handler.buffer
                        let channel = context.channel
                        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                        if rest.readableBytes > 0 { channel.pipeline.fireChannelRead(rest) }
                    } catch {
                        upstream.close(promise: nil)
                        context.close(promise: nil)
                    }
                case .failure:
                    meter.finish(closedBy: "upstream (unreachable)")
                    handler.reply(context: context, code: 5, close: true)  // connection refused
                }
            }
        }
    }

    private func reply(context: ChannelHandlerContext, code: UInt8, close: Bool) {
        let answer = ByteBuffer(bytes: [5, code, 0, 1, 0, 0, 0, 0, 0, 0])
        context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in
            if close { context.close(promise: nil) }
        }
    }
}
