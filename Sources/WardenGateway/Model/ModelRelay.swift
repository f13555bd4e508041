import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WardenCore
import WardenGuard
import WardenPolicy

/// One allowed request's way back: the upstream's answer relayed to the agent (whole, or event by
/// event), checked as it passes, counted, and recorded afterwards as `model.response`.
final class Exchange: @unchecked Sendable {
    // @unchecked: used by one task at a time (the relay); the watchdog reads only the atomics.
    let door: ModelDoor
    let endpoint: ModelEndpoint
    let upstream: ModelDoor.Upstream
    let responder: any ModelResponder
    let subject: String
    let started: Int64
    let estimatedIn: Int64
    let tokensBefore: Int64
    var outcome: [String: String]

    // What the answer said so far.
    var inspector: StreamInspector
    /// The output's detectors, fed event by event (a short overlap: a delta is a few bytes, and each
    /// feed rescans the overlap).
    var scanner = GuardStream(overlap: 512)
    var findings: [Finding] = []
    var decidedDetectors: Set<String> = []
    var callsChecked = false
    var text = ""
    var reportedIn: Int64?
    var reportedOut: Int64?
    var estimatedOut: Int64 = 0
    var chunks = 0
    var hasher = SHA256()
    var finished = false

    /// Nanoseconds of the last byte from the upstream (the watchdog's clock), and whether a decision
    /// is holding the stream (the upstream's silence is then not its fault).
    let lastActivity = Atomic<Int64>(0)
    let pausedForDecision = Atomic<Bool>(false)
    let stalled = Atomic<Bool>(false)

    init(
        door: ModelDoor, endpoint: ModelEndpoint, upstream: ModelDoor.Upstream, responder: any ModelResponder,
        subject: String, started: Int64, estimatedIn: Int64, tokensBefore: Int64
    ) {
        self.door = door
        self.endpoint = endpoint
        self.upstream = upstream
        self.responder = responder
        self.subject = subject
        self.started = started
        self.estimatedIn = estimatedIn
        self.tokensBefore = tokensBefore
        self.inspector = StreamInspector(endpoint: endpoint)
        outcome = ["door": "model", "model": upstream.settings.name, "endpoint": endpoint.rawValue]
    }

    var timeoutNanoseconds: Int64 { upstream.settings.timeout.nanoseconds }

    func fail(_ status: Int, _ type: String, _ code: String, _ message: String) {
        outcome["error"] = message
        outcome["status"] = String(status)
        ModelDoor.respond(
            responder, status: status,
            body: ModelAPI.errorBody(upstream.settings.api, type: type, code: code, message: message))
    }

    func run(_ request: HTTPClientRequest, stream: Bool) async {
        defer { recordOutcome() }
        let response: HTTPClientResponse
        do {
            response = try await ModelDoor.client.execute(
                request, deadline: .now() + .nanoseconds(timeoutNanoseconds))
        } catch {
            let reason = WardenError.transportReason(error)
            let timedOut = "\(error)".contains("deadlineExceeded") || "\(error)".lowercased().contains("timeout")
            return fail(
                timedOut ? 504 : 502, "api_error", timedOut ? "upstream_timeout" : "upstream_unreachable",
                timedOut
                    ? "the upstream \(upstream.settings.name) did not answer within \(upstream.settings.timeout.seconds) s"
                    : "the upstream \(upstream.settings.name) is unreachable from Warden's model door: \(reason)")
        }
        outcome["ttfb_ms"] = Self.milliseconds(RunEvent.now() - started)
        let status = Int(response.status.code)
        let type = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        guard (200..<300).contains(status) else {
            // The upstream's own error (a rate limit, an overload), relayed with its status; the key scrubbed.
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Array($0.readableBytesView) } ?? []
            let scrubbed = door.scrubbed(body)
            outcome["status"] = String(status)
            outcome["error"] =
                "upstream status \(status): " + door.redacted(String(decoding: scrubbed.prefix(300), as: UTF8.self))
            var headers: [(String, String)] = [
                ("Content-Type", type.isEmpty ? "application/json" : type), ("Content-Length", String(scrubbed.count)),
            ]
            if let retry = response.headers.first(name: "Retry-After") { headers.append(("Retry-After", retry)) }
            responder.head(status: status, headers: headers)
            _ = responder.send(scrubbed)
            responder.finish()
            return
        }
        outcome["status"] = String(status)
        if type.hasPrefix("text/event-stream") {
            await relayStream(response)
        } else {
            await relayWhole(response)
        }
    }

    // MARK: - A whole answer

    func relayWhole(_ response: HTTPClientResponse) async {
        let body: [UInt8]
        do {
            body = try await withTimeout(timeoutNanoseconds) {
                Array(try await response.body.collect(upTo: ModelDoor.bodyMax).readableBytesView)
            }
        } catch {
            return fail(
                502, "api_error", "upstream_error",
                stalled.load(ordering: .relaxed)
                    ? "the upstream \(upstream.settings.name) stalled for \(upstream.settings.timeout.seconds) s mid-answer"
                    : "the upstream's answer broke off: \(WardenError.transportReason(error))")
        }
        guard let value = try? JSONValue.parse(bytes: body) else {
            return fail(
                502, "api_error", "upstream_malformed",
                "the upstream \(upstream.settings.name) answered with a body that is not JSON")
        }
        let delta = ModelAPI.answer(value, endpoint: endpoint)
        absorb(delta)
        findings += scanner.finish()
        finished = true
        if let refusal = await check(final: true) {
            outcome["ended_by"] = "policy"
            return fail(403, "permission_error", "warden_denied", refusal)
        }
        let scrubbed = door.scrubbed(body)
        hasher.update(data: scrubbed)
        responder.head(
            status: 200, headers: [("Content-Type", "application/json"), ("Content-Length", String(scrubbed.count))])
        _ = responder.send(scrubbed)
        responder.finish()
    }

    // MARK: - A stream

    func relayStream(_ response: HTTPClientResponse) async {
        let open = OpenStream(endpoint: endpoint, responder: responder)
        guard let id = door.register(open) else {
            return fail(403, "permission_error", "warden_cut", "Warden cut this run's model")
        }
        defer { door.unregister(id) }
        responder.head(status: 200, headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])
        lastActivity.store(RunEvent.now(), ordering: .relaxed)
        let relay = Task { await self.pump(response, into: open) }
        open.cancel.withLock { $0 = { relay.cancel() } }
        let watchdog = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                if self.pausedForDecision.load(ordering: .relaxed) { continue }
                if RunEvent.now() - self.lastActivity.load(ordering: .relaxed) > self.timeoutNanoseconds {
                    self.stalled.store(true, ordering: .relaxed)
                    relay.cancel()
                    return
                }
            }
        }
        await relay.value
        watchdog.cancel()
        if stalled.load(ordering: .relaxed) {
            open.end(
                code: "upstream_timeout",
                message:
                    "the upstream \(upstream.settings.name) sent nothing for \(upstream.settings.timeout.seconds) s; the stream is ended",
                type: "api_error")
            outcome["error"] = "stalled"
        }
        if let by = open.endedBy, outcome["ended_by"] == nil { outcome["ended_by"] = by }
    }

    private func pump(_ response: HTTPClientResponse, into open: OpenStream) async {
        var framer = EventFramer()
        do {
            for try await chunk in response.body {
                lastActivity.store(RunEvent.now(), ordering: .relaxed)
                for event in framer.feed(chunk.readableBytesView) {
                    if !(try await relay(event, into: open)) { return }
                }
            }
        } catch {
            if open.isEnded || stalled.load(ordering: .relaxed) { return }
            outcome["error"] = "stream broke: \(WardenError.transportReason(error))"
            open.end(
                code: "upstream_error",
                message: "the upstream's stream broke off: \(WardenError.transportReason(error))", type: "api_error")
            return
        }
        findings += scanner.finish()
        if !finished {
            // The upstream closed without ending its answer: the agent gets an error, not a silent cut.
            outcome["error"] = "the upstream ended the stream before its answer was complete"
            open.end(
                code: "upstream_error", message: "the upstream ended the stream before its answer was complete",
                type: "api_error")
            return
        }
        if let refusal = await check(final: true) {
            outcome["ended_by"] = "policy"
            open.end(code: "warden_denied", message: refusal)
            return
        }
        if let held, !(await send(held, into: open, last: true)) { return }
        open.finish()
    }

    /// Inspects one event and relays it; false when the stream has ended.
    private func relay(_ event: EventFramer.Event, into open: OpenStream) async throws -> Bool {
        chunks += 1
        if event.hasData {
            let delta = inspector.inspect(name: event.name, data: event.data)
            if delta.malformed {
                outcome["error"] = "malformed event from the upstream"
                open.end(
                    code: "upstream_malformed",
                    message:
                        "the upstream \(upstream.settings.name) sent an event that is not JSON; the stream is ended",
                    type: "api_error")
                return false
            }
            if let error = delta.upstreamError { outcome["upstream_error"] = door.redacted(String(error.prefix(300))) }
            absorb(delta)
            if delta.finished { finished = true }
            if let refusal = overBudget() {
                outcome["ended_by"] = "budget"
                door.recordNow(.budgetHit, subject: "model", ["door": "model", "budget": refusal, "action": "stop"])
                open.end(code: "warden_budget", message: "Warden's model budget: \(refusal)")
                return false
            }
            if let refusal = await check(final: delta.finished) {
                outcome["ended_by"] = "policy"
                open.end(code: "warden_denied", message: refusal)
                return false
            }
        }
        // One event is held back: a finding the next event completes (a secret's last characters, a
        // boundary a detector waits for) stops the stream before the event that finished it is relayed.
        let previous = held
        held = door.scrubbed(event.raw)
        guard let previous else { return true }
        return await send(previous, into: open)
    }

    /// The event held back, relayed once the next has been checked (or the answer is complete).
    var held: [UInt8]?

    /// Events written since the last wait for the agent to take them (backpressure every 32 events).
    var unacknowledged = 0

    func send(_ bytes: [UInt8], into open: OpenStream, last: Bool = false) async -> Bool {
        hasher.update(data: bytes)
        guard let written = open.write(bytes) else { return false }
        unacknowledged += 1
        guard unacknowledged >= 32 || last else { return true }
        unacknowledged = 0
        do {
            try await written.get()
        } catch {
            outcome["error"] = "the agent went away mid-stream"
            open.finish()
            return false
        }
        return true
    }

    private func absorb(_ delta: StreamInspector.Delta) {
        if !delta.text.isEmpty {
            if text.utf8.count < 65536 { text += delta.text }
            estimatedOut += Int64(max(1, delta.text.utf8.count / 4))
            findings += scanner.feed(Array(delta.text.utf8))
        }
        for call in delta.calls {
            // A whole answer's calls (a stream's are in the inspector).
            inspectorCalls.append(call)
        }
        if let t = delta.tokensIn { reportedIn = t }
        if let t = delta.tokensOut { reportedOut = t }
    }

    var inspectorCalls: [ProposedCall] = []
    var proposed: [ProposedCall] { inspectorCalls + inspector.proposed }

    /// The budget a stream has just spent (only with `on_budget = "stop"`).
    private func overBudget() -> String? {
        guard let max = door.settings.tokensMax, door.settings.onBudget == .stop else { return nil }
        let used = tokensBefore + (reportedIn ?? estimatedIn) + Swift.max(reportedOut ?? 0, estimatedOut)
        return used > max ? "this answer took the run to \(used) of its \(max) model tokens (model_tokens_max)" : nil
    }

    /// Decides `respond` when the output has new findings, or (once the answer is complete) when a
    /// proposed tool call is one the tools door would refuse or hold; the refusal's message, or nil.
    private func check(final: Bool) async -> String? {
        let detectors = Set(findings.map(\.detector))
        let fresh = detectors.subtracting(decidedDetectors)
        var verdicts: [ToolCallVerdict] = []
        if final && !callsChecked {
            callsChecked = true
            let calls = proposed
            if !calls.isEmpty {
                outcome["tool_calls"] = calls.map(\.name).joined(separator: ",")
                if let toolCheck = door.toolCheck { verdicts = calls.map(toolCheck) }
            }
        }
        let denied = verdicts.filter { $0.decision == "deny" }.map(\.tool)
        let held = verdicts.filter { $0.decision == "ask" }.map(\.tool)
        if !denied.isEmpty { outcome["tool_calls_denied"] = denied.joined(separator: ",") }
        if !held.isEmpty { outcome["tool_calls_held"] = held.joined(separator: ",") }
        guard !fresh.isEmpty || !denied.isEmpty || !held.isEmpty else { return nil }
        decidedDetectors.formUnion(detectors)
        var details: [String: String] = [
            "door": "model", "model": upstream.settings.name, "endpoint": endpoint.rawValue,
            "findings": ToolsGateway.summary(findings), "phase": final ? "answer" : "stream",
        ]
        if let trial = outcome["trial"] { details["trial"] = trial }
        if !proposed.isEmpty { details["tool_calls"] = proposed.map(\.name).joined(separator: ",") }
        if !denied.isEmpty { details["tool_calls_denied"] = denied.joined(separator: ",") }
        if !held.isEmpty { details["tool_calls_held"] = held.joined(separator: ",") }
        let used = tokensBefore + (reportedIn ?? estimatedIn) + Swift.max(reportedOut ?? 0, estimatedOut)
        let context: [String: CedarValue] = [
            "findings": ModelDoor.cedar(findings),
            "tool_calls": .set(Set(proposed.map { CedarValue.string($0.name) })),
            "tool_calls_denied": .set(Set(denied.map(CedarValue.string))),
            "tool_calls_held": .set(Set(held.map(CedarValue.string))),
            "tokens": .record(["total": .long(used)]), "endpoint": .string(endpoint.rawValue),
            "final": .bool(final),
        ]
        pausedForDecision.store(true, ordering: .relaxed)
        defer {
            lastActivity.store(RunEvent.now(), ordering: .relaxed)
            pausedForDecision.store(false, ordering: .relaxed)
        }
        do {
            try await door.decide(
                action: "respond", upstream: upstream, context: context, subject: "respond \(upstream.settings.name)",
                details: &details,
                summary: "respond \(upstream.settings.name): \(ToolsGateway.summary(findings).prefix(160))",
                request: .object([
                    ("door", .string("model")), ("model", .string(upstream.settings.name)),
                    ("action", .string("respond")), ("findings", .string(ToolsGateway.summary(findings))),
                    ("tool_calls", .array(proposed.map { .string($0.name + " " + $0.arguments) })),
                ]))
            return nil
        } catch {
            return error.message
        }
    }

    /// Counts the answer's tokens (reported, else estimated) and records it (off the path).
    private func recordOutcome() {
        let tokensIn = reportedIn ?? estimatedIn
        let tokensOut = reportedOut ?? estimatedOut
        if outcome["status"].flatMap(Int.init).map({ (200..<300).contains($0) }) ?? false {
            let total = door.count(tokensIn: tokensIn, tokensOut: tokensOut)
            outcome["tokens_in"] = String(tokensIn)
            outcome["tokens_out"] = String(tokensOut)
            outcome["tokens_total"] = String(total)
            if reportedIn == nil || reportedOut == nil { outcome["tokens_estimated"] = "true" }
        }
        outcome["duration_ms"] = Self.milliseconds(RunEvent.now() - started)
        outcome["chunks"] = String(chunks)
        outcome["response_digest"] = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        if !findings.isEmpty { outcome["findings"] = ToolsGateway.summary(findings) }
        if let calls = outcome["tool_calls"] ?? (proposed.isEmpty ? nil : proposed.map(\.name).joined(separator: ",")) {
            outcome["tool_calls"] = calls
        }
        if door.settings.logBodies {
            let calls = proposed.map { $0.name + "(" + $0.arguments + ")" }.joined(separator: "\n")
            outcome["response_body"] = door.redacted(String((text + (calls.isEmpty ? "" : "\n" + calls)).prefix(65536)))
        }
        door.recordAfterwards(.modelResponse, subject: "response \(upstream.settings.name)", outcome)
    }

    static func milliseconds(_ nanoseconds: Int64) -> String { String(format: "%.3f", Double(nanoseconds) / 1e6) }

    /// Runs `work`, cancelled (and marked stalled) after `nanoseconds`.
    private func withTimeout<T: Sendable>(_ nanoseconds: Int64, _ work: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Task.sleep(for: .nanoseconds(nanoseconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                stalled.store(true, ordering: .relaxed)
                throw CancellationError()
            }
            return value
        }
    }
}
