import NIOCore
import NIOPosix
import WardenCore

/// The resolver on 127.0.0.1:53: answers A for an allowed name with the name's synthetic address; no
/// query leaves the host (the name is resolved only when a connection is decided), so nothing can be
/// smuggled out through DNS. Other types, malformed queries and tunnel-shaped names are refused and
/// recorded.
struct Resolver: Sendable {
    let door: EgressDoor

    /// The answer to one query message (blocking: refusals are recorded first).
    func answer(_ message: [UInt8]) -> [UInt8]? {
        guard let query = DNSQuery(message) else {
            // Not a query we read: FORMERR if there is an id to answer, else silence.
            guard message.count >= 12 else { return nil }
            return [message[0], message[1], 0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]
        }
        let type = DNSQuery.typeName(query.type)
        let subject = "resolve \(query.name)"
        func refuse(_ reason: String, policies: [String] = []) -> [UInt8] {
            var details = [
                "door": "egress", "action": "resolve", "host": query.name, "type": type, "decision": "deny",
                "reason": reason,
            ]
            if !policies.isEmpty { details["policies"] = policies.joined(separator: ",") }
            try? door.record(.decision, subject: subject, details)
            return query.response(.refused)
        }
        if let tunnel = query.tunnellingReason {
            return refuse("DNS tunnelling: \(tunnel); refused")
        }
        guard HostName.isValid(query.name) else { return refuse("'\(query.name)' is not a host name") }
        guard query.qclass == 1 else { return refuse("class \(query.qclass) is not IN") }
        switch query.type {
        case DNSQuery.typeA, DNSQuery.typeAAAA, 64, 65:
            let decision = door.authorizeResolve(query.name, type: type)
            guard decision.allowed else { return refuse(decision.reason, policies: decision.policies) }
            // AAAA, SVCB and HTTPS: no data (IPv6 loopback has one address; programs fall back to A).
            guard query.type == DNSQuery.typeA else { return query.response(.noError) }
            guard let synthetic = door.names.address(for: query.name) else {
                return refuse("the resolver has given out all \(SyntheticNames.capacity) addresses")
            }
            if synthetic.new {
                try? door.record(
                    .decision, subject: subject,
                    [
                        "door": "egress", "action": "resolve", "host": query.name, "type": type, "decision": "allow",
                        "synthetic_address": EgressDoor.text(synthetic.bytes),
                        "policies": decision.policies.joined(separator: ","), "reason": decision.reason,
                    ])
            }
            return query.response(.noError, address: synthetic.bytes)
        default:
            return refuse("query type \(type) is not answered (only A; TXT, NULL, ANY and the like carry tunnels)")
        }
    }
}

/// DNS over UDP.
final class DNSDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let resolver: Resolver
    let pool: NIOThreadPool

    init(resolver: Resolver, pool: NIOThreadPool) {
        self.resolver = resolver
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let message = Array(envelope.data.readableBytesView)
        let resolver = resolver
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pool.runIfActive(eventLoop: context.eventLoop) { resolver.answer(message) }.whenSuccess { answer in
            guard let answer else { return }
            let (handler, context) = bound.value
            let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: answer))
            context.writeAndFlush(handler.wrapOutboundOut(out), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// DNS over TCP: two-byte length, then the message; several per connection.
final class DNSStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let resolver: Resolver
    let pool: NIOThreadPool
    private var buffer = ByteBuffer()

    init(resolver: Resolver, pool: NIOThreadPool) {
        self.resolver = resolver
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        {
            buffer.moveReaderIndex(forwardBy: 2)
            let message = buffer.readBytes(length: Int(length)) ?? []
            let resolver = resolver
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            pool.runIfActive(eventLoop: context.eventLoop) { resolver.answer(message) }.whenSuccess { answer in
                guard let answer else { return }
                let (handler, context) = bound.value
                var out = context.channel.allocator.buffer(capacity: answer.count + 2)
                out.writeInteger(UInt16(answer.count))
                out.writeBytes(answer)
                context.writeAndFlush(handler.wrapOutboundOut(out), promise: nil)
            }
        }
        if buffer.readableBytes > 70000 { context.close(promise: nil) }
    }
}
