import Foundation
import ServiceLifecycle
import WardenAudit
import WardenCore

/// One recorded event as the live stream sends it, encoded once for every subscriber.
public struct FeedEvent: Sendable {
    public var sequence: Int64
    public var run: String?
    public var kind: String
    public var details: JSONValue
    /// The event as one line of JSON (the audit export's form: sequence, time, kind, actor, details, hashes).
    public var json: String

    /// A keep-alive for the streams (sequence 0): it lets a stream notice a client that went away.
    static let heartbeat = FeedEvent(sequence: 0, run: nil, kind: "", details: .null, json: "")

    init(sequence: Int64, run: String?, kind: String, details: JSONValue, json: String) {
        self.sequence = sequence
        self.run = run
        self.kind = kind
        self.details = details
        self.json = json
    }

    init(_ event: AuditEvent) {
        sequence = event.sequence
        run = event.draft.run
        kind = event.draft.kind
        details = event.draft.details
        json = event.json.serialized
    }

    /// The event as one Server-Sent Events message: its sequence is the id a reconnecting client resumes after.
    public var serverSentEvent: String { "id: \(sequence)\ndata: \(json)\n\n" }
}

/// The live feed of the audit log: the one reader that follows the log's end and hands every new event
/// to each subscriber (the dashboards' streams, the metrics, the runs listing's cache).
///
/// It polls the store every `interval` (10 ms by default): the supervisor, the doors and the CLI write the
/// log from other processes, and a poll of the highest sequence number is cheap in SQLite and PostgreSQL
/// alike. A subscriber that falls more than 10,000 events behind loses the oldest (and its stream says so).
public actor EventFeed: Service {
    public let store: any AuditStore
    let interval: Duration
    private var next: Int64 = 1
    private var subscribers: [UUID: AsyncStream<FeedEvent>.Continuation] = [:]
    private var observers: [@Sendable ([FeedEvent]) -> Void] = []
    private var isStarted = false
    private var startWaiters: [CheckedContinuation<Void, Never>] = []

    public init(store: any AuditStore, interval: Duration = .milliseconds(10)) {
        self.store = store
        self.interval = interval
    }

    /// Called with each batch of new events, on the feed's task (keep it short).
    public func observe(_ observer: @escaping @Sendable ([FeedEvent]) -> Void) {
        observers.append(observer)
    }

    /// A stream of every event recorded from now on, and the sequence number it starts at (a client
    /// resuming from an earlier one reads the gap from the store first).
    public func subscribe() async -> (stream: AsyncStream<FeedEvent>, startsAt: Int64, id: UUID) {
        await started()
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(
            of: FeedEvent.self, bufferingPolicy: .bufferingNewest(10_000))
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return (stream, next, id)
    }

    public var subscriberCount: Int { subscribers.count }

    private func unsubscribe(_ id: UUID) { subscribers[id] = nil }

    private func started() async {
        if isStarted { return }
        await withCheckedContinuation { startWaiters.append($0) }
    }

    /// Events `from...through` from the store, for a client catching up.
    public func history(from: Int64, through: Int64, limit: Int = 10_000) async throws -> [FeedEvent] {
        guard from <= through else { return [] }
        return try await store.events(from: from, through: through, limit: limit).map { FeedEvent($0.event) }
    }

    public func run() async throws {
        // Start at the log's end: the stream is live; history is read on request.
        next = (try? await store.lastSequence()).map { $0 + 1 } ?? 1
        isStarted = true
        for waiter in startWaiters { waiter.resume() }
        startWaiters.removeAll()
        await cancelWhenGracefulShutdown {
            var lastBeat = ContinuousClock.now
            while !Task.isCancelled {
                await self.poll()
                if ContinuousClock.now - lastBeat > .seconds(15) {
                    lastBeat = .now
                    await self.beat()
                }
                try? await Task.sleep(for: self.interval)
            }
        }
        for continuation in subscribers.values { continuation.finish() }
        subscribers.removeAll()
    }

    private func beat() {
        for continuation in subscribers.values { continuation.yield(.heartbeat) }
    }

    private func poll() async {
        let from = next
        guard let page = try? await store.events(from: from, through: nil, limit: 1000), !page.isEmpty else { return }
        let events = page.map { FeedEvent($0.event) }
        next = (events.last?.sequence ?? from - 1) + 1
        for continuation in subscribers.values {
            for event in events { continuation.yield(event) }
        }
        for observer in observers { observer(events) }
    }
}
