import Foundation
import Synchronization
import WardenCore
import WardenPolicy

#if canImport(Glibc)
    import Glibc
#endif

/// One connection the agent asks for, as the door learned it (from a CONNECT line, an absolute URI, a
/// SOCKS5 request, or a transparent connection's synthetic address and first bytes).
struct ConnectRequest: Sendable {
    enum Entry: String, Sendable {
        case proxy, socks, transparent, tools
    }

    /// The lower-case host name or IP literal (IPv6 without brackets).
    var host: String
    var port: Int
    /// `https` (TLS seen or expected), `http` (plain HTTP, decided per request), or `tcp`.
    var scheme: String
    var sni: String?
    var method: String?
    var path: String?
    var entry: Entry
}

/// What the door decided.
enum Verdict: Sendable {
    /// Connect to exactly this address (the one that was checked); `connection` names it in the log.
    case allow(address: [UInt8], connection: String)
    case deny(Denial)
}

/// A refusal as the agent is told it (403 body and `X-Warden-Decision`) and as it is recorded.
struct Denial: Sendable, Error {
    var reason: String
    var policies: [String]

    var header: String {
        "deny; " + (policies.isEmpty ? "" : "policy=\(policies.joined(separator: ",")); ")
            + "reason=\"\(reason.replacingOccurrences(of: "\"", with: "'"))\""
    }
}

/// The egress door's policy decision point: resolves the name itself, classifies the address it will
/// connect to, asks Cedar (and, for an `ask`, a person), records the decision before anyone acts on
/// it, and keeps the run's byte and connection budgets. One per mediator; thread-safe.
final class EgressDoor: Sendable {
    let run: RunID
    let settings: EgressSettings
    let engine: PolicyEngine
    let runEntity: Entity
    let names = SyntheticNames()
    /// Thread-safe; the mediator gives a group-committing one (``EventJournal``), so concurrent
    /// decisions share a commit.
    private let sink: any EventSink
    private let broker: ApprovalBroker?
    /// Called (once) when a budget is reached and the profile says `on_budget = "stop"`.
    private let onBudgetStop: @Sendable (String) -> Void
    /// Called when a request is held for a person (the foreground terminal's prompt learns of it).
    private let onHeld: @Sendable (Approval) -> Void

    struct Totals {
        var bytesUp: UInt64 = 0
        var bytesDown: UInt64 = 0
        var open = 0
        var nextConnection = 1
        var refusedOverCap = 0
        var lastCapRecord: Int64 = 0
        var budgetReported = false
    }

    private let totals = Mutex(Totals())

    init(
        run: RunID, runEntity: Entity, settings: EgressSettings, engine: PolicyEngine, sink: any EventSink,
        broker: ApprovalBroker?, onBudgetStop: @escaping @Sendable (String) -> Void,
        onHeld: @escaping @Sendable (Approval) -> Void = { _ in }
    ) {
        self.run = run
        self.runEntity = runEntity
        self.settings = settings
        self.engine = engine
        self.sink = sink
        self.broker = broker
        self.onBudgetStop = onBudgetStop
        self.onHeld = onHeld
    }

    // MARK: - Records

    /// Records events durably; the caller acts only if this returns.
    func record(_ events: [RunEvent]) throws {
        try sink.record(contentsOf: events)
    }

    func record(_ kind: EventKind, subject: String, _ details: [String: String]) throws {
        try record([RunEvent(run: run, kind: kind, actor: .gateway, subject: subject, details: details)])
    }

    // MARK: - Connections and budgets

    /// Takes a connection slot; false (recorded at most once a second) when the cap is reached.
    func openConnection() -> Bool {
        let (admitted, report) = totals.withLock { t -> (Bool, Int?) in
            if t.open < settings.connectionsMax {
                t.open += 1
                return (true, nil)
            }
            t.refusedOverCap += 1
            let now = RunEvent.now()
            guard now - t.lastCapRecord >= 1_000_000_000 else { return (false, nil) }
            t.lastCapRecord = now
            defer { t.refusedOverCap = 0 }
            return (false, t.refusedOverCap)
        }
        if let report {
            try? record(
                .budgetHit, subject: "connections",
                [
                    "door": "egress", "budget": "connections_max", "limit": String(settings.connectionsMax),
                    "refused": String(report),
                ])
        }
        return admitted
    }

    func closeConnection() { totals.withLock { $0.open -= 1 } }

    var openConnections: Int { totals.withLock { $0.open } }

    /// How many of `count` bytes may go out now (the run's upload budget), counted as sent.
    func takeUpload(_ count: Int) -> Int {
        totals.withLock { t in
            var allowed = UInt64(count)
            if let budget = settings.egressBytesMax { allowed = min(allowed, budget &- min(t.bytesUp, budget)) }
            t.bytesUp += allowed
            return Int(allowed)
        }
    }

    func countDownload(_ count: Int) { totals.withLock { $0.bytesDown += UInt64(count) } }

    /// Records a budget that was reached and, under `on_budget = "stop"`, asks for the run's stop.
    func budgetReached(_ budget: String, limit: UInt64, connection: String, subject: String) {
        let first = totals.withLock { t in
            defer { t.budgetReported = true }
            return !t.budgetReported || budget == "connection_bytes_max"
        }
        guard first else { return }
        try? record(
            .budgetHit, subject: subject,
            [
                "door": "egress", "budget": budget, "limit": String(limit), "connection": connection,
                "action": settings.onBudget.rawValue,
            ])
        if settings.onBudget == .stop { onBudgetStop("\(budget) (\(limit) bytes) reached on \(subject)") }
    }

    // MARK: - Decisions

    /// Whether a decision can be made on an event loop: its records never wait for a disk
    /// (`decision_records = "journal"`), so only a name to resolve or an `ask` would block.
    var decidesInline: Bool { settings.decisionRecords == .journal }

    /// Decides a connection; blocking (resolves names, records, may wait for a person).
    ///
    /// - Parameter inline: on an event loop: returns nil, having recorded nothing, where the decision
    ///   would block (a name to resolve, a person to ask); the caller decides again off the loop.
    func authorize(_ request: ConnectRequest, inline: Bool = false) -> Verdict? {
        let subject = "connect \(request.host):\(request.port)"
        var details: [String: String] = [
            "door": "egress", "action": "connect", "host": request.host, "port": String(request.port),
            "scheme": request.scheme, "entry": request.entry.rawValue,
        ]
        if let sni = request.sni { details["sni"] = sni }
        if let method = request.method { details["method"] = method }
        if let path = request.path { details["path"] = path }
        func deny(_ reason: String, policies: [String] = []) -> Verdict {
            details["decision"] = "deny"
            details["reason"] = reason
            if !policies.isEmpty { details["policies"] = policies.joined(separator: ",") }
            try? record(.decision, subject: subject, details)
            return .deny(Denial(reason: reason, policies: policies))
        }

        // A name no policy could permit is refused before it is resolved: resolving it would already
        // send it (and whatever it encodes) to the host's DNS servers.
        // One generation of policies decides the whole request, even across a reload.
        let snapshot = engine.snapshot
        if IPLiteral.bytes(request.host) == nil {
            if let tunnel = DNSQuery.tunnellingReason(labels: request.host.split(separator: ".").map { Array($0.utf8) })
            {
                return deny("DNS tunnelling: \(tunnel); refused before resolving")
            }
            let early = PolicyEngine.decide(
                AuthorizationRequest(
                    principal: runEntity.uid, action: EntityUID(type: "Action", id: "connect"),
                    resource: EntityUID(type: "Host", id: request.host),
                    context: ["port": .long(Int64(request.port)), "scheme": .string(request.scheme)]),
                in: snapshot)
            if early.kind == .deny && early.errors.isEmpty {
                return deny(
                    early.explanation + " (decided before resolving the name)", policies: early.reasons.map(\.policyID))
            }
        }
        // The address Warden will connect to: the pin, the literal, or its own resolution.
        let address: [UInt8]
        if let literal = IPLiteral.bytes(request.host) {
            address = literal
        } else if !HostName.isValid(request.host) {
            return deny("'\(request.host)' is not a host name")
        } else if let pinned = settings.resolve[request.host], let bytes = IPLiteral.bytes(pinned) {
            address = bytes
            details["pinned"] = "true"
        } else if inline {
            return nil
        } else {
            switch Self.resolve(request.host) {
            case .success(let bytes): address = bytes
            case .failure(let reason): return deny("cannot resolve \(request.host): \(reason)")
            }
        }
        let addressText = Self.text(address)
        let addressClass = AddressClass.of(address)
        details["address"] = addressText
        details["address_class"] = addressClass.rawValue

        let (bytesUp, bytesDown) = totals.withLock { ($0.bytesUp, $0.bytesDown) }
        var context: [String: CedarValue] = [
            "port": .long(Int64(request.port)), "scheme": .string(request.scheme),
            "address_class": .string(addressClass.rawValue), "entry": .string(request.entry.rawValue),
            "bytes_up": .long(Int64(clamping: bytesUp)), "bytes_down": .long(Int64(clamping: bytesDown)),
        ]
        if let ip = IPAddress.parse(addressText) { context["address"] = .ip(ip) }
        if let sni = request.sni { context["sni"] = .string(sni) }
        if let method = request.method { context["method"] = .string(method) }
        if let path = request.path { context["path"] = .string(path) }
        let decision = PolicyEngine.decide(
            AuthorizationRequest(
                principal: runEntity.uid, action: EntityUID(type: "Action", id: "connect"),
                resource: EntityUID(type: "Host", id: request.host), context: context),
            in: snapshot)
        let ids = decision.reasons.map(\.policyID)
        details["policies"] = ids.joined(separator: ",")
        if !decision.errors.isEmpty {
            details["policy_errors"] = decision.errors.map { "\($0.policyID): \($0.message)" }.joined(separator: "; ")
        }
        if decision.kind == .deny { return deny(decision.explanation, policies: ids) }
        if addressClass != .public, !Self.namesAddress(decision, addressText, in: snapshot) {
            return deny(
                "\(request.host) resolves to \(addressText), a \(addressClass.rawValue) address: denied unless a policy names it (resource == Host::\"\(addressText)\" or a condition on context.address)",
                policies: ids)
        }
        if decision.kind == .ask {
            if inline { return nil }
            if let refusal = askPerson(request, subject: subject, address: addressText, decision: decision) {
                return deny(refusal, policies: ids)
            }
        }
        let connection = totals.withLock { t in
            defer { t.nextConnection += 1 }
            return "c\(t.nextConnection)"
        }
        details["decision"] = "allow"
        details["connection"] = connection
        details["reason"] = decision.kind == .ask ? "approved by a person" : decision.explanation
        do {
            try record(.decision, subject: subject, details)
        } catch {
            // Not recorded, not done: the door fails closed.
            return .deny(Denial(reason: "the decision could not be recorded (\(error)); refused", policies: ids))
        }
        return .allow(address: address, connection: connection)
    }

    /// Holds an `ask` for a person; nil when approved (and used), else why not.
    private func askPerson(_ request: ConnectRequest, subject: String, address: String, decision: PolicyDecision)
        -> String?
    {
        guard let broker else { return "a person must approve this, and no approvals broker is available" }
        var fields: [String: JSONValue] = [
            "door": .string("egress"), "action": .string("connect"), "host": .string(request.host),
            "port": .number(String(request.port)), "address": .string(address), "scheme": .string(request.scheme),
        ]
        if let sni = request.sni { fields["sni"] = .string(sni) }
        if let method = request.method { fields["method"] = .string(method) }
        if let path = request.path { fields["path"] = .string(path) }
        return broker.hold(
            run: run, door: .egress,
            request: .object(fields.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }),
            summary: Self.summary(request, address: address),
            reasons: decision.reasons.map { "\($0.policyID): \($0.ask ?? "")" }, timeout: settings.approvalTimeout,
            what: subject, onHeld: onHeld)
    }

    /// One line for the person asked: the request line for plain HTTP, else host and port.
    static func summary(_ request: ConnectRequest, address: String) -> String {
        if let method = request.method, let path = request.path {
            return "\(method) http://\(request.host):\(request.port)\(path) (\(address))"
        }
        return "connect \(request.host):\(request.port) (\(address))"
    }

    /// Whether a permitting policy is explicit about `address`: its resource scope names the literal,
    /// or a condition reads `context.address`.
    private static func namesAddress(_ decision: PolicyDecision, _ address: String, in snapshot: PolicyEngine.Snapshot)
        -> Bool
    {
        let ids = Set(decision.reasons.map(\.policyID))
        let literal = EntityUID(type: "Host", id: address)
        return snapshot.policies.policies.contains { policy in
            ids.contains(policy.id) && policy.effect == .permit
                && (policy.resourceEntities.contains(literal) || policy.refersToContext("address"))
        }
    }

    /// A DNS decision: `Action::"resolve"` on `Host::"name"`.
    func authorizeResolve(_ name: String, type: String) -> (allowed: Bool, reason: String, policies: [String]) {
        let decision = engine.decide(
            AuthorizationRequest(
                principal: runEntity.uid, action: EntityUID(type: "Action", id: "resolve"),
                resource: EntityUID(type: "Host", id: name), context: ["type": .string(type)]))
        return (decision.kind == .allow, decision.explanation, decision.reasons.map(\.policyID))
    }

    enum Resolution {
        case success([UInt8])
        case failure(String)
    }

    /// The host's resolver (getaddrinfo), first address; run outside the sandbox, in the host's netns.
    static func resolve(_ name: String) -> Resolution {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, nil, &hints, &result)
        guard status == 0, let first = result else {
            return .failure(String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(result) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let e = entry {
            if let sa = e.pointee.ai_addr {
                if e.pointee.ai_family == AF_INET {
                    let bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                        withUnsafeBytes(of: p.pointee.sin_addr) { Array($0) }
                    }
                    return .success(bytes)
                }
                if e.pointee.ai_family == AF_INET6 {
                    let bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                        withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) }
                    }
                    return .success(bytes)
                }
            }
            entry = e.pointee.ai_next
        }
        return .failure("no IPv4 or IPv6 address")
    }

    static func text(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(cString: buffer)
    }
}
