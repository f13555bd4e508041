import Foundation
import Synchronization
import WardenAudit

/// Browser sessions: a token presented once is exchanged for an HttpOnly, SameSite=Strict cookie and a
/// CSRF token the page keeps in memory and sends as `X-CSRF-Token` with every change.
///
/// Kept in the daemon's memory only: a restart asks the person to sign in again. A session dies with its
/// token (checked on every request) and after `lifetime`.
public final class BrowserSessions: Sendable {
    public static let cookieName = "warden_session"
    let lifetime: Duration

    public struct Session: Sendable {
        public var tokenID: String
        public var csrf: String
        public var expiresAtUptimeNanoseconds: UInt64
    }

    private let sessions = Mutex<[String: Session]>([:])

    public init(lifetime: Duration = .seconds(12 * 3600)) {
        self.lifetime = lifetime
    }

    /// Opens a session for a token: the cookie's value and the CSRF token.
    public func open(tokenID: String) -> (id: String, csrf: String) {
        let id = TokenStore.randomHex(32)
        let csrf = TokenStore.randomHex(32)
        let expires = DispatchTime.now().uptimeNanoseconds + UInt64(lifetime.components.seconds) * 1_000_000_000
        sessions.withLock { all in
            let now = DispatchTime.now().uptimeNanoseconds
            all = all.filter { $0.value.expiresAtUptimeNanoseconds > now }
            all[id] = Session(tokenID: tokenID, csrf: csrf, expiresAtUptimeNanoseconds: expires)
        }
        return (id, csrf)
    }

    /// The live session a cookie names (compared in constant time against each, so its time tells nothing).
    public func session(_ cookie: String) -> Session? {
        let now = DispatchTime.now().uptimeNanoseconds
        let presented = Array(cookie.utf8)
        return sessions.withLock { all in
            var found: Session?
            for (id, session) in all where TokenStore.constantTimeEqual(Array(id.utf8), presented) {
                found = session
            }
            guard let session = found, session.expiresAtUptimeNanoseconds > now else { return nil }
            return session
        }
    }

    public func close(_ cookie: String) {
        _ = sessions.withLock { $0.removeValue(forKey: cookie) }
    }
}
