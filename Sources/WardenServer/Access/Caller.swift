import WardenCore

/// What a caller of the control-plane API may do; each role includes the one before it.
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
    /// Reads: runs, events, approvals, the audit log, reports, metrics.
    case viewer
    /// Also approves and denies held requests.
    case approver
    /// Also stops and kills runs.
    case `operator`

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .approver: 1
        case .operator: 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    /// Parses a role the way every flag and request body names it.
    public static func parse(_ text: String, field: String) throws -> Role {
        guard let role = Role(rawValue: text.lowercased()) else {
            throw WardenError.invalidInput("\(field): '\(text)' is not a role; use viewer, approver or operator")
        }
        return role
    }
}

/// Who is calling the API, as authenticated, and how: recorded with every change they make.
public struct Caller: Sendable, Equatable, CustomStringConvertible {
    public enum Credential: Sendable, Equatable {
        /// A local process on the Unix socket, by its kernel-reported uid (SO_PEERCRED).
        case peer(uid: UInt32)
        /// A bearer token (by its id and name; never its secret).
        case token(id: String, name: String)
        /// A browser session opened with a token.
        case session(tokenID: String, name: String)
    }

    public var credential: Credential
    public var role: Role

    public init(credential: Credential, role: Role) {
        self.credential = credential
        self.role = role
    }

    /// The name recorded as the decider or requester.
    public var name: String {
        switch credential {
        case .peer(let uid): "uid \(uid)"
        case .token(_, let name), .session(_, let name): name
        }
    }

    /// "token 'alice' (operator) via warden serve": what the log says of who made a change.
    public var description: String {
        switch credential {
        case .peer(let uid): "uid \(uid) on the unix socket (\(role.rawValue)) via warden serve"
        case .token(let id, let name): "token '\(name)' [\(id)] (\(role.rawValue)) via warden serve"
        case .session(let id, let name): "token '\(name)' [\(id)] (\(role.rawValue)) in the dashboard via warden serve"
        }
    }

    /// Whether this caller's requests come from a browser (cookie), so CSRF rules apply.
    public var isBrowser: Bool {
        if case .session = credential { return true }
        return false
    }

    public func may(_ needed: Role) -> Bool { role >= needed }
}
