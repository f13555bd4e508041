/// A held request as the operator's terminal shows it.
public struct HeldRequest: Sendable, Equatable {
    public enum State: String, Sendable {
        case pending, approved, denied, expired, used
    }

    public var id: String
    /// One line: what the door holds (`connect pypi.org:443 (151.101.0.223)`).
    public var summary: String
    /// Each asking policy's id and its `@ask` text.
    public var reasons: [String]
    public var expiresAtNanoseconds: Int64
    public var state: State
    /// Who answered, when someone did.
    public var decidedBy: String?

    public init(
        id: String, summary: String, reasons: [String], expiresAtNanoseconds: Int64, state: State,
        decidedBy: String? = nil
    ) {
        self.id = id
        self.summary = summary
        self.reasons = reasons
        self.expiresAtNanoseconds = expiresAtNanoseconds
        self.state = state
        self.decidedBy = decidedBy
    }
}

/// How the operator at a foreground run's terminal answers the requests its doors hold.
///
/// The supervisor owns the terminal and knows nothing of where approvals are kept; the command line
/// gives it the broker behind this protocol. Answers go through the same rules as `warden approve`:
/// bound to the request's digest, one answer counts, none after expiry.
public protocol ApprovalDesk: Sendable {
    /// The request as it is now (it may have been answered elsewhere, or expired).
    func held(_ id: String) throws -> HeldRequest
    /// Answers it: approve once, approve and remember for the rest of the run, or deny.
    /// - Throws: ``WardenError`` `.conflict` when another answer won or it expired first.
    func answer(_ id: String, approve: Bool, remember: Bool) throws -> HeldRequest
}
