import Foundation
import HTTPTypes
import Hummingbird
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Decides who a request comes from, and whether they may do what it asks.
///
/// - A bearer token (`Authorization: Bearer wdn_…`) on either listener.
/// - A browser session cookie (HttpOnly, SameSite=Strict); a change (any method but GET/HEAD) must also
///   carry the session's CSRF token in `X-CSRF-Token` and an `Origin` that is this server's own.
/// - On the Unix socket with neither: the peer's uid from the kernel; root or the daemon's own uid is an
///   operator (the socket's mode already keeps everyone else out).
/// Anything else is 401, and every refusal is recorded (never the presented token).
struct Authenticator: Sendable {
    let plane: ControlPlane
    let sessions: BrowserSessions
    /// Origins a browser may send changes from besides the request's own `Host` (`--origin`).
    let extraOrigins: [String]

    func authenticate(_ request: Request, _ context: ServerContext, needs role: Role) async throws -> Caller {
        let caller = try await identify(request, context)
        guard caller.may(role) else {
            await refuse(
                request, context, kind: ServerEvent.refused,
                reason: "\(caller.description) lacks the \(role.rawValue) role")
            throw APIError(
                .forbidden, "forbidden",
                "this needs the \(role.rawValue) role; \(caller.name) is a \(caller.role.rawValue) (create a token with `warden serve token create --role \(role.rawValue)`)"
            )
        }
        return caller
    }

    /// Who the request comes from, without a role check.
    func identify(_ request: Request, _ context: ServerContext) async throws -> Caller {
        if let header = request.headers[.authorization] {
            guard header.hasPrefix("Bearer ") else {
                throw await unauthorized(request, context, "an Authorization header that is not a bearer token")
            }
            switch plane.tokens.authenticate(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)) {
            case .success(let token):
                return Caller(credential: .token(id: token.id, name: token.name), role: token.role)
            case .failure(let refusal): throw await unauthorized(request, context, refusal.rawValue)
            }
        }
        if let cookie = Self.cookie(request, BrowserSessions.cookieName) {
            guard let session = sessions.session(cookie) else {
                throw await unauthorized(request, context, "an unknown or expired session cookie")
            }
            guard let token = plane.tokens.token(id: session.tokenID), !token.isRevoked else {
                sessions.close(cookie)
                throw await unauthorized(request, context, "a session whose token was revoked")
            }
            if !Self.isSafe(request.method) { try await checkCSRF(request, context, session: session) }
            return Caller(credential: .session(tokenID: token.id, name: token.name), role: token.role)
        }
        if let uid = await context.peerUID() {
            if uid == 0 || uid == getuid() { return Caller(credential: .peer(uid: uid), role: .operator) }
            throw await unauthorized(request, context, "a peer uid \(uid) that is neither root nor the daemon's user")
        }
        throw await unauthorized(request, context, "no credentials")
    }

    /// A browser change must prove it comes from the dashboard's own page: its Origin, and the CSRF token
    /// only that page was given.
    private func checkCSRF(_ request: Request, _ context: ServerContext, session: BrowserSessions.Session) async throws
    {
        let origin = request.headers[.origin]
        let host = request.head.authority
        let own = host.map { ["https://\($0)", "http://\($0)"] } ?? []
        guard let origin, own.contains(origin) || extraOrigins.contains(origin) else {
            await refuse(
                request, context, kind: ServerEvent.refused,
                reason: origin.map { "a change from the foreign origin \($0)" } ?? "a browser change without an Origin")
            throw APIError(
                .forbidden, "csrf",
                "refused: a browser change must come from this server's own page (Origin \(origin ?? "missing"))")
        }
        let presented = Array((request.headers[.csrfToken] ?? "").utf8)
        guard TokenStore.constantTimeEqual(presented, Array(session.csrf.utf8)) else {
            await refuse(request, context, kind: ServerEvent.refused, reason: "a browser change without its CSRF token")
            throw APIError(.forbidden, "csrf", "refused: the X-CSRF-Token header is missing or wrong; reload the page")
        }
    }

    private func unauthorized(_ request: Request, _ context: ServerContext, _ reason: String) async -> APIError {
        await refuse(request, context, kind: ServerEvent.authFailed, reason: reason)
        var error = APIError(
            .unauthorized, "unauthorized",
            "authentication required: send `Authorization: Bearer <token>` (make one with `warden serve token create`); refused \(reason)"
        )
        error.headers[.wwwAuthenticate] = "Bearer realm=\"warden\""
        return error
    }

    /// Records a refusal (who, from where, what was asked, why), never the credential itself.
    func refuse(_ request: Request, _ context: ServerContext, kind: String, reason: String) async {
        try? await plane.record(
            kind, actor: "server", subject: "\(request.method.rawValue) \(request.uri.path)",
            ["remote": context.remote, "reason": reason])
    }

    static func isSafe(_ method: HTTPRequest.Method) -> Bool { method == .get || method == .head }

    static func cookie(_ request: Request, _ name: String) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}
