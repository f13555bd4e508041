import CWardenLinux
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import WardenCore
import WardenPolicy

#if canImport(Glibc)
    import Glibc
#endif

/// The process behind a run's doors (`warden __mediator`): outside the sandbox and the agent's cgroup,
/// with its listeners created inside the run's network namespace, so the sandbox still has nothing but
/// loopback. It dies with its supervisor; when it dies, every door is closed with it.
///
/// Its conversation with the supervisor is one line of JSON per message on the control descriptor:
/// `{"ready":…}` once listening (or `{"error":…}`), later `{"stop":…}` when a budget says so and
/// `{"ask":"ID"}` when a request is held for a person (the foreground terminal prompts for it).
public enum Mediator {
    /// Serves until SIGTERM or SIGINT (SIGHUP reloads the policies from `configurationPath`).
    ///
    /// - Parameters:
    ///   - configuration: what `configurationPath` holds (read again on SIGHUP).
    ///   - netns: a descriptor of the run's network namespace (`/proc/<init>/ns/net`).
    ///   - control: the write end of the supervisor's control pipe.
    /// - Returns: the process's exit status.
    public static func serve(
        configuration: MediatorConfiguration, configurationPath: String, netns: Int32, control: Int32, parent: pid_t,
        sink: any EventSink,
        broker: ApprovalBroker?,
        confine: () throws -> [String]
    ) -> Int32 {
        @Sendable func tell(_ object: [String: Any]) {
            guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
            data.append(0x0A)
            _ = data.withUnsafeBytes { write(control, $0.baseAddress, $0.count) }
        }
        guard warden_die_with_parent(parent) == 0 else { return 1 }
        let signals = [SIGTERM, SIGINT, SIGHUP]
        let signalFD = signals.withUnsafeBufferPointer { warden_signal_pipe($0.baseAddress, Int32($0.count)) }
        let engine: PolicyEngine
        let runEntity: Entity
        do {
            runEntity = Entity(
                uid: EntityUID(type: "Run", id: configuration.run.rawValue),
                attributes: [
                    "name": .string(configuration.name), "profile": .string(configuration.profile),
                    "command": .string(configuration.command.joined(separator: " ")),
                ])
            engine = try loadEngine(configuration, runEntity: runEntity)
        } catch {
            tell(["error": "egress: \(error)"])
            return 1
        }
        let ports = transparentPorts(engine.snapshot)
        // The listeners, inside the sandbox's network namespace.
        var sockets: [(Int32, Listener)] = []
        func listen(_ type: Int32, _ address: UInt32, _ port: Int, _ role: Listener) throws {
            let fd = warden_netns_listen(netns, type, address.bigEndian, UInt16(port), 4096)
            guard fd >= 0 else {
                throw WardenError(
                    code: .systemCall,
                    message:
                        "egress: cannot listen on port \(port) inside the run's network namespace: \(String(cString: strerror(errno)))"
                )
            }
            sockets.append((fd, role))
        }
        let loopback: UInt32 = 0x7F00_0001
        do {
            try listen(Int32(SOCK_STREAM.rawValue), loopback, MediatorConfiguration.httpProxyPort, .httpProxy)
            try listen(Int32(SOCK_STREAM.rawValue), loopback, MediatorConfiguration.socksPort, .socks)
            try listen(Int32(SOCK_DGRAM.rawValue), loopback, MediatorConfiguration.dnsPort, .dnsUDP)
            try listen(Int32(SOCK_STREAM.rawValue), loopback, MediatorConfiguration.dnsPort, .dnsTCP)
            for port in ports { try listen(Int32(SOCK_STREAM.rawValue), 0, port, .transparent) }
        } catch {
            tell(["error": "\(error)"])
            return 1
        }
        close(netns)
        // Confined before any thread starts (every thread inherits it); failing that, no door opens.
        let confinement: [String]
        do {
            confinement = try confine()
        } catch {
            tell(["error": "\(error)"])
            return 1
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: min(2, System.coreCount))
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        let door = EgressDoor(
            run: configuration.run, runEntity: runEntity, settings: configuration.egress, engine: engine, sink: sink,
            broker: broker,
            onBudgetStop: { reason in tell(["stop": "budget: \(reason)"]) },
            onHeld: { approval in tell(["ask": approval.id]) })
        let services = DoorServices(door: door, pool: pool)
        var channels: [any Channel] = []
        do {
            for (fd, role) in sockets {
                channels.append(try bind(fd, role: role, services: services, group: group).wait())
            }
        } catch {
            tell(["error": "egress: the listeners could not start: \(error)"])
            return 1
        }
        tell([
            "ready": true, "pid": Int(getpid()), "http_proxy": MediatorConfiguration.httpProxyPort,
            "socks": MediatorConfiguration.socksPort, "dns": MediatorConfiguration.dnsPort,
            "transparent": ports, "policies": engine.snapshot.policies.policies.count,
            "confinement": confinement,
        ])

        // Wait for the end; SIGHUP swaps the policies.
        var status: Int32 = 0
        loop: while true {
            var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, -1) >= 0 || errno == EINTR else { break }
            var byte: UInt8 = 0
            while read(signalFD, &byte, 1) == 1 {
                if Int32(byte) == SIGHUP {
                    reload(configurationPath: configurationPath, engine: engine, runEntity: runEntity, door: door)
                } else {
                    break loop
                }
            }
        }
        for channel in channels { try? channel.close().wait() }
        do {
            try group.syncShutdownGracefully()
            try pool.syncShutdownGracefully()
        } catch {
            status = 1
        }
        return status
    }

    enum Listener {
        case httpProxy, socks, dnsUDP, dnsTCP, transparent
    }

    static func loadEngine(_ configuration: MediatorConfiguration, runEntity: Entity) throws -> PolicyEngine {
        if configuration.egress.policies.isEmpty {
            // No policy: nothing is permitted (deny by default).
            return try PolicyEngine(policies: "", source: "<no policies>", entities: try Entities([runEntity]))
        }
        return try PolicyEngine(
            policyFiles: configuration.egress.policies, entitiesFile: configuration.egress.entities,
            extraEntities: [runEntity])
    }

    /// 80, 443 and every port number a policy mentions (the ports a policy can permit), except the
    /// door's own.
    static func transparentPorts(_ snapshot: PolicyEngine.Snapshot) -> [Int] {
        var ports = Set(MediatorConfiguration.transparentPorts)
        for policy in snapshot.policies.policies where policy.effect == .permit {
            for n in policy.integerLiterals where (1...65535).contains(n) { ports.insert(Int(n)) }
        }
        ports.subtract([
            MediatorConfiguration.httpProxyPort, MediatorConfiguration.socksPort, MediatorConfiguration.dnsPort,
        ])
        return ports.sorted().prefix(256).map { $0 }
    }

    private static func reload(configurationPath: String, engine: PolicyEngine, runEntity: Entity, door: EgressDoor) {
        do {
            let configuration = try MediatorConfiguration.load(configurationPath)
            let next = try loadEngine(configuration, runEntity: runEntity).snapshot
            try door.record(
                .policyReloaded, subject: "egress",
                [
                    "door": "egress", "policies": configuration.egress.policies.joined(separator: ","),
                    "count": String(next.policies.policies.count),
                ])
            engine.replace(with: next)
        } catch {
            try? door.record(.warning, subject: "egress", ["warning": "policy reload refused: \(error)"])
        }
    }

    private static func bind(_ fd: Int32, role: Listener, services: DoorServices, group: any EventLoopGroup)
        -> EventLoopFuture<any Channel>
    {
        let door = services.door
        switch role {
        case .dnsUDP:
            return DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            DNSDatagramHandler(resolver: Resolver(door: door), pool: services.pool))
                    }
                }
                .withBoundSocket(fd)
        default:
            return ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 4096)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.recvAllocator, value: relayAllocator)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        if case .dnsTCP = role {
                            try pipeline.addHandler(
                                DNSStreamHandler(resolver: Resolver(door: door), pool: services.pool))
                            return
                        }
                        guard door.openConnection() else {
                            channel.close(promise: nil)
                            return
                        }
                        try pipeline.addHandler(SlotHandler(door: door))
                        switch role {
                        case .httpProxy:
                            try pipeline.addHandler(HTTPResponseEncoder())
                            try pipeline.addHandler(
                                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
                            try pipeline.addHandler(HTTPForwarder(services: services, mode: .proxy))
                        case .socks:
                            try pipeline.addHandler(SOCKSEntry(services: services))
                        default:
                            try pipeline.addHandler(TransparentEntry(services: services))
                        }
                    }
                }
                .withBoundSocket(fd)
        }
    }
}
