import WardenCore

/// The broker as a foreground run's terminal answers it (``ApprovalDesk``): only that run's requests,
/// answered by the operator who started the run, recorded as such.
public struct TerminalDesk: ApprovalDesk {
    let broker: ApprovalBroker
    let run: RunID
    let approver: Approver

    public init(broker: ApprovalBroker, run: RunID, approver: Approver) {
        self.broker = broker
        self.run = run
        self.approver = approver
    }

    public func held(_ id: String) throws -> HeldRequest {
        try Self.view(ownApproval(id))
    }

    public func answer(_ id: String, approve: Bool, remember: Bool) throws -> HeldRequest {
        _ = try ownApproval(id)
        // The run is the caller's own and still supervised: it is active.
        return Self.view(
            try broker.decide(
                id, approve: approve, remember: remember, by: approver, note: "answered at the run's terminal",
                runIsActive: { _ in true }))
    }

    private func ownApproval(_ id: String) throws -> Approval {
        let approval = try broker.approval(id)
        guard approval.run == run else {
            throw WardenError(code: .conflict, message: "approval \(id) belongs to run \(approval.run), not \(run)")
        }
        return approval
    }

    static func view(_ approval: Approval) -> HeldRequest {
        HeldRequest(
            id: approval.id, summary: approval.summary, reasons: approval.reasons,
            expiresAtNanoseconds: approval.expiresAtNanoseconds,
            state: HeldRequest.State(rawValue: approval.state.rawValue) ?? .denied, decidedBy: approval.decidedBy)
    }
}
