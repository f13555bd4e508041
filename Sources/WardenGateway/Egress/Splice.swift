import NIOCore
import NIOPosix
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// What the door's handlers share: the decision point and the threads its blocking work runs on
/// (name resolution, records, waiting for a person), so that no event loop ever blocks.
struct DoorServices: Sendable {
    let door: EgressDoor
    let pool: NIOThreadPool

    /// The door's verdict on `request`, on `eventLoop`: decided there at once when nothing in it
    /// blocks, else on the thread pool (names to resolve, durable commits, a person to ask).
    func decide(_ request: ConnectRequest, on eventLoop: any EventLoop) -> EventLoopFuture<Verdict> {
        let door = door
        if door.decidesInline, let verdict = door.authorize(request, inline: true) {
            return eventLoop.makeSucceededFuture(verdict)
        }
        return pool.runIfActive(eventLoop: eventLoop) {
            door.authorize(request) ?? .deny(Denial(reason: "the door could not decide", policies: []))
        }
    }

    /// Records a refusal an entry made itself (fronting, an address the resolver never gave out), off
    /// the event loop; the entry closes the connection without waiting.
    func recordRefusal(host: String, port: Int, reason: String, _ extra: [String: String] = [:]) {
        let details = [
            "door": "egress", "action": "connect", "host": host, "port": String(port), "decision": "deny",
            "reason": reason,
        ].merging(extra) { $1 }
        let door = door
        pool.submit { _ in try? door.record(.decision, subject: "connect \(host):\(port)", details) }
    }
}

/// Frees the run's connection slot when the agent's side of a connection closes.
final class SlotHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    let door: EgressDoor
    init(door: EgressDoor) { self.door = door }

    func channelInactive(context: ChannelHandlerContext) {
        door.closeConnection()
        context.fireChannelInactive()
    }
}

/// One allowed connection's account: bytes each way against the budgets, and its end, recorded once.
/// Confined to the event loop both of its channels run on.
final class ConnectionMeter {
    let services: DoorServices
    let connection: String
    let subject: String
    private let started = NIODeadline.now()
    private(set) var up: UInt64 = 0
    private(set) var down: UInt64 = 0
    /// Who ended it: "agent", "upstream", "budget", "warden", "error".
    var closedBy: String?
    private var finished = false

    init(services: DoorServices, connection: String, subject: String) {
        self.services = services
        self.connection = connection
        self.subject = subject
    }

    /// How many of `count` bytes may go up (the run's upload budget, then this connection's cap).
    func allowUp(_ count: Int) -> Int {
        let settings = services.door.settings
        let connectionAllows =
            settings.connectionBytesMax.map { min(count, Int(clamping: $0 &- min($0, up &+ down))) } ?? count
        let allowed = services.door.takeUpload(connectionAllows)
        up += UInt64(allowed)
        if allowed < connectionAllows, let budget = settings.egressBytesMax {
            self.budget("egress_bytes_max", budget)
        } else if connectionAllows < count, let limit = settings.connectionBytesMax {
            self.budget("connection_bytes_max", limit)
        }
        return allowed
    }

    /// How many of `count` bytes may come down (this connection's cap).
    func allowDown(_ count: Int) -> Int {
        var allowed = count
        if let limit = services.door.settings.connectionBytesMax {
            allowed = min(count, Int(clamping: limit &- min(limit, up &+ down)))
            if allowed < count { budget("connection_bytes_max", limit) }
        }
        down += UInt64(allowed)
        services.door.countDownload(allowed)
        return allowed
    }

    private func budget(_ name: String, _ limit: UInt64) {
        guard closedBy == nil else { return }
        closedBy = "budget"
        let (door, connection, subject) = (services.door, connection, subject)
        services.pool.submit { _ in door.budgetReached(name, limit: limit, connection: connection, subject: subject) }
    }

    /// Names who ended it, unless someone already is.
    func mark(closedBy who: String) {
        if closedBy == nil { closedBy = who }
    }

    /// Records the connection's end (once).
    func finish(closedBy fallback: String) {
        guard !finished else { return }
        finished = true
        let elapsed = (NIODeadline.now() - started).nanoseconds / 1_000_000
        let details = [
            "door": "egress", "connection": connection, "bytes_up": String(up), "bytes_down": String(down),
            "duration_ms": String(elapsed), "closed_by": closedBy ?? fallback,
        ]
        let (door, subject) = (services.door, subject)
        services.pool.submit { _ in try? door.record(.connectionClosed, subject: subject, details) }
    }
}

/// Relays bytes between the agent's connection and the upstream one, with back-pressure, half-close
/// and the byte budgets (a cut leaves exactly the budget delivered). Both channels share an event loop.
final class SpliceHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Side { case agent, upstream }

    let side: Side
    let meter: ConnectionMeter
    private var partner: SpliceHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// A half-close in progress (its pending writes are still being written).
    private var outputClosing: EventLoopFuture<Void>?

    private init(side: Side, meter: ConnectionMeter) {
        self.side = side
        self.meter = meter
    }

    static func pair(meter: ConnectionMeter) -> (agent: SpliceHandler, upstream: SpliceHandler) {
        let agent = SpliceHandler(side: .agent, meter: meter)
        let upstream = SpliceHandler(side: .upstream, meter: meter)
        agent.partner = upstream
        upstream.partner = agent
        return (agent, upstream)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    // MARK: The partner's calls

    private func partnerWrite(_ buffer: ByteBuffer) { context?.write(wrapOutboundOut(buffer), promise: nil) }
    private func partnerFlush() { context?.flush() }

    /// Half-closes this side's output once what is pending has been written.
    private func partnerCloseOutput() {
        guard let context, outputClosing == nil else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: promise)
        outputClosing = promise.futureResult
    }

    private func partnerCloseFull() {
        guard let context else { return }
        if let outputClosing {
            outputClosing.whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let count = buffer.readableBytes
        let allowed = side == .agent ? meter.allowUp(count) : meter.allowDown(count)
        if allowed < count {
            // The budget: deliver exactly what it allows, then end both directions.
            buffer = buffer.getSlice(at: buffer.readerIndex, length: allowed) ?? ByteBuffer()
            if allowed > 0 { partner?.partnerWrite(buffer) }
            partner?.partnerFlush()
            partner?.partnerCloseOutput()
            partner?.partnerCloseFull()
            context.close(promise: nil)
            return
        }
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }

    func channelInactive(context: ChannelHandlerContext) {
        meter.finish(closedBy: side == .agent ? "agent" : "upstream")
        partner?.partnerCloseFull()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            meter.mark(closedBy: side == .agent ? "agent" : "upstream")
            partner?.partnerCloseOutput()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        meter.mark(closedBy: side == .agent ? "agent (error)" : "upstream (error)")
        partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.partnerWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// Resets a connection (RST, not FIN): what a refused transparent connection gets.
func resetConnection(_ channel: any Channel) {
    guard let provider = channel as? any SocketOptionProvider else { return channel.close(promise: nil) }
    provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
}
