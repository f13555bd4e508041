import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import UnixSignals
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// How `warden serve` listens.
public struct ServerSettings: Sendable {
    /// The Unix socket (always): access by its mode (0600) and the peer's uid.
    public var socketPath: String
    /// A TCP listener with TLS (`--listen HOST:PORT`), only when asked; port 0 picks a free one.
    public var listen: (host: String, port: Int)?
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Connections each listener keeps open at most (further ones wait in the backlog).
    public var maxConnections: Int
    /// Live event streams at most.
    public var maxStreams: Int
    /// Extra origins a browser may send changes from (behind a reverse proxy).
    public var extraOrigins: [String]

    public init(
        socketPath: String, listen: (host: String, port: Int)?, tlsCertificate: String?, tlsKey: String?,
        maxConnections: Int, maxStreams: Int, extraOrigins: [String]
    ) {
        self.socketPath = socketPath
        self.listen = listen
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
        self.maxConnections = maxConnections
        self.maxStreams = maxStreams
        self.extraOrigins = extraOrigins
    }

    /// `HOST:PORT` (or `[v6]:PORT`), parsed once for the flag.
    public static func parseListen(_ text: String) throws -> (host: String, port: Int) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(after: close)...].dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        } else {
            throw WardenError.invalidInput("--listen \(text): expected HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443")
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else {
            throw WardenError.invalidInput("--listen \(text): expected HOST:PORT with a port from 0 to 65535")
        }
        return (String(host), number)
    }
}

/// `warden serve`: the API on the Unix socket and (when asked) on TCP with TLS, the live feed of the
/// audit log, one `ServiceGroup` with graceful shutdown on SIGTERM and SIGINT.
public struct ControlPlaneServer: Sendable {
    public let plane: ControlPlane
    public let settings: ServerSettings

    public init(plane: ControlPlane, settings: ServerSettings) {
        self.plane = plane
        self.settings = settings
    }

    /// Checks what can be checked before anything listens: the TLS files, the socket's directory.
    /// - Throws: ``WardenError`` naming the flag and the fix.
    public func tlsConfiguration() throws -> TLSConfiguration? {
        guard settings.listen != nil else { return nil }
        guard let certificate = settings.tlsCertificate, let key = settings.tlsKey else {
            throw WardenError.invalidInput(
                "--listen needs --tls-cert and --tls-key: the API is never served over plain TCP (make a pair with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -subj /CN=warden`)"
            )
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw WardenError.invalidInput("no certificate in it") }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            return TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(privateKey))
        } catch {
            throw WardenError.invalidInput(
                "--tls-cert \(certificate) / --tls-key \(key): cannot load a PEM certificate and its private key (\(error))"
            )
        }
    }

    /// Serves until SIGTERM or SIGINT; `onListening` gets each listener's address ("unix:/…", "https://…").
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        let tls = try tlsConfiguration()
        var logger = Logger(label: "warden.serve")
        logger.logLevel = .warning
        try prepareSocket()
        await plane.connectFeed()
        let sessions = BrowserSessions()
        let api = ControlPlaneAPI(
            plane: plane, sessions: sessions, extraOrigins: settings.extraOrigins, maxStreams: settings.maxStreams)
        let http1 = HTTP1Channel.Configuration(idleTimeout: .seconds(75))
        let socketPath = settings.socketPath
        var services: [any Service] = [plane.feed]
        services.append(
            Application(
                router: api.makeRouter(), server: .http1(configuration: http1),
                configuration: ApplicationConfiguration(
                    address: .unixDomainSocket(path: socketPath), serverName: "warden",
                    availableConnectionsDelegate: MaximumAvailableConnections(settings.maxConnections, logger: logger)),
                onServerRunning: { _ in
                    // Only the daemon's user (and root) may connect; the peer's uid is checked too.
                    chmod(socketPath, 0o600)
                    onListening("unix:\(socketPath)")
                },
                logger: logger))
        if let listen = settings.listen, let tls {
            services.append(
                Application(
                    router: api.makeRouter(), server: try .tls(.http1(configuration: http1), tlsConfiguration: tls),
                    configuration: ApplicationConfiguration(
                        address: .hostname(listen.host, port: listen.port), serverName: "warden",
                        availableConnectionsDelegate: MaximumAvailableConnections(
                            settings.maxConnections, logger: logger)),
                    onServerRunning: { channel in
                        let port = channel.localAddress?.port ?? listen.port
                        let host = listen.host.contains(":") ? "[\(listen.host)]" : listen.host
                        onListening("https://\(host):\(port)")
                    },
                    logger: logger))
        }
        try await plane.record(
            ServerEvent.started, actor: "server",
            [
                "pid": String(getpid()), "socket": socketPath,
                "listen": settings.listen.map { "\($0.host):\($0.port) (TLS)" } ?? "none",
            ])
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await plane.record(
                ServerEvent.stopped, actor: "server", ["pid": String(getpid()), "error": "\(error)"])
            unlink(socketPath)
            throw error
        }
        try? await plane.record(ServerEvent.stopped, actor: "server", ["pid": String(getpid())])
        unlink(socketPath)
    }

    /// Removes a stale socket (nothing answers on it), refuses when another daemon does.
    private func prepareSocket() throws {
        let path = settings.socketPath
        guard path.utf8.count < 108 else {
            throw WardenError.invalidInput(
                "--socket \(path): a Unix socket path must be under 108 bytes; choose a shorter --socket or --state-dir"
            )
        }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw WardenError.invalidInput("--socket \(path) exists and is not a socket; remove it or choose another")
        }
        if Self.answers(path) {
            throw WardenError(
                code: .conflict,
                message: "another warden serve is listening on \(path); stop it first (or pass --socket)")
        }
        unlink(path)
    }

    /// Whether something accepts connections on the Unix socket.
    static func answers(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }
}
