import WardenCore

/// The inline approval prompt of a foreground run on a terminal: when a door holds a request, the
/// operator is asked in place — allow once, always for this run, or deny — with a countdown to the
/// expiry (silence is a denial). One request at a time, in the order they were held.
///
/// The answer goes through the ``ApprovalDesk`` (the broker's rules: digest-bound, one answer counts);
/// an answer from another terminal (`warden approve`) or the expiry ends the prompt with what happened.
/// While it is up the agent's output waits in its pty and the keys are Warden's (``TerminalRelay``).
final class InlineApprovals {
    static let keys = "[y] allow once  [a] always for this run  [n] deny"

    private let desk: any ApprovalDesk
    private var queue: [String] = []
    private var current: HeldRequest?
    private var shownSeconds: Int64 = -1
    private var lastChecked: Int64 = 0
    private let clock: () -> Int64

    init(desk: any ApprovalDesk, clock: @escaping () -> Int64 = { RunEvent.now() }) {
        self.desk = desk
        self.clock = clock
    }

    /// A request the door now holds.
    func enqueue(_ id: String) {
        guard current?.id != id, !queue.contains(id) else { return }
        queue.append(id)
    }

    /// Moves the prompt on: shows the next request, reads keys, redraws the countdown, notices an
    /// answer given elsewhere or the expiry. Called from the supervisor's loop (at least every 200 ms).
    func service(_ terminal: TerminalRelay) {
        if current == nil { showNext(terminal) }
        guard let request = current else { return }
        let now = clock()
        for key in terminal.takePromptKeys() {
            let answer: (approve: Bool, remember: Bool)
            switch key {
            case UInt8(ascii: "y"), UInt8(ascii: "Y"): answer = (true, false)
            case UInt8(ascii: "a"), UInt8(ascii: "A"): answer = (true, true)
            // n, d, or Ctrl-C at the prompt: deny.
            case UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "d"), UInt8(ascii: "D"), 0x03:
                answer = (false, false)
            default: continue
            }
            do {
                let answered = try desk.answer(request.id, approve: answer.approve, remember: answer.remember)
                end(terminal, Self.outcome(answered, mine: true, remembered: answer.remember))
            } catch {
                end(terminal, "not taken: \(error)")
            }
            return
        }
        let remaining = max(0, (request.expiresAtNanoseconds - now) / 1_000_000_000)
        if now >= request.expiresAtNanoseconds {
            end(terminal, "nobody answered in time: denied")
            return
        }
        // Answered from another terminal (or expired there): the door has its answer already.
        if now - lastChecked >= 500_000_000 {
            lastChecked = now
            if let seen = try? desk.held(request.id), seen.state != .pending {
                end(terminal, Self.outcome(seen, mine: false, remembered: false))
                return
            }
        }
        if remaining != shownSeconds {
            shownSeconds = remaining
            terminal.showPrompt("\r\u{1B}[K  \(Self.keys)   denied in \(Self.clockText(remaining)) ")
        }
    }

    /// The run has ended: a question still up ends with what became of it.
    func conclude(_ terminal: TerminalRelay) {
        guard let request = current else { return }
        if let seen = try? desk.held(request.id), seen.state != .pending {
            end(terminal, Self.outcome(seen, mine: false, remembered: false))
        } else {
            end(terminal, "the run ended; not answered")
        }
        queue.removeAll()
    }

    private func showNext(_ terminal: TerminalRelay) {
        while !queue.isEmpty {
            let id = queue.removeFirst()
            guard let request = try? desk.held(id), request.state == .pending else { continue }
            current = request
            shownSeconds = -1
            lastChecked = clock()
            var text = "\r\n\u{1B}[1mwarden: approval \(request.id)\u{1B}[0m — \(request.summary)\r\n"
            for reason in request.reasons { text += "  \(reason)\r\n" }
            terminal.beginPrompt(text)
            return
        }
    }

    private func end(_ terminal: TerminalRelay, _ outcome: String) {
        terminal.endPrompt("\r\u{1B}[K  → \(outcome)\r\n")
        current = nil
    }

    static func outcome(_ request: HeldRequest, mine: Bool, remembered: Bool) -> String {
        let by = mine ? "" : " by \(request.decidedBy ?? "someone else")"
        switch request.state {
        case .approved, .used: return remembered ? "allowed for the rest of this run" : "allowed once" + by
        case .denied: return "denied" + by
        case .expired: return "nobody answered in time: denied"
        case .pending: return "still pending"
        }
    }

    static func clockText(_ seconds: Int64) -> String {
        "\(seconds / 60):" + (seconds % 60 < 10 ? "0" : "") + "\(seconds % 60)"
    }
}
