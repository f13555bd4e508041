import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WardenCore

/// The request context of the daemon's routes: the connection (for the Unix socket's peer credentials and
/// the listener it arrived on).
public struct ServerContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Bodies larger than this are refused with 413 before they are read in full.
    public var maxUploadSize: Int { 64 * 1024 }

    /// Whether the request came over the Unix socket.
    var isUnixSocket: Bool {
        if case .unixDomainSocket = channel.localAddress { return true }
        return false
    }

    /// The peer's uid on the Unix socket, from the kernel (SO_PEERCRED), not from anything it sent.
    func peerUID() async -> UInt32? {
        guard isUnixSocket, let provider = channel as? any SocketOptionProvider else { return nil }
        let credentials: PeerCredentials? = try? await provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)
        ).get()
        return credentials.map { $0.uid }
    }

    /// The remote address for records ("unix" or "ip:port").
    var remote: String {
        switch channel.remoteAddress {
        case .unixDomainSocket: "unix socket"
        case .some(let address): address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "\(address)"
        case nil: "unknown"
        }
    }
}

/// `struct ucred` (pid, uid, gid) as the kernel writes it for SO_PEERCRED (Glibc's module hides the C one).
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// An API error: a status, an opaque code and one message that says what to do, as JSON.
public struct APIError: HTTPResponseError {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = JSONValue.object([
            ("error", .object([("code", .string(code)), ("message", .string(message))]))
        ]).serialized
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
    }

    /// The API form of Warden's own errors.
    static func from(_ error: WardenError) -> APIError {
        switch error.code {
        case .notFound: APIError(.notFound, "not_found", error.message)
        case .conflict: APIError(.conflict, "conflict", error.message)
        case .invalidInput: APIError(.badRequest, "invalid_input", error.message)
        case .stopIncomplete: APIError(.internalServerError, "stop_incomplete", error.message)
        default: APIError(.internalServerError, "internal", error.message)
        }
    }
}

extension HTTPField.Name {
    // Literal, valid header names: the initializer fails only for characters a token may not hold.
    // swift-format-ignore: NeverForceUnwrap
    static let csrfToken = HTTPField.Name("X-CSRF-Token")!
    // swift-format-ignore: NeverForceUnwrap
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
    // swift-format-ignore: NeverForceUnwrap
    static let accelBuffering = HTTPField.Name("X-Accel-Buffering")!
    // swift-format-ignore: NeverForceUnwrap
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    // swift-format-ignore: NeverForceUnwrap
    static let frameOptions = HTTPField.Name("X-Frame-Options")!
}
