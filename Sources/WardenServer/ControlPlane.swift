import Foundation
import Synchronization
import WardenAudit
import WardenCore
import WardenGateway
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// The kinds of the daemon's own records in the audit log (no run: they are about the API).
public enum ServerEvent {
    public static let started = "server.started"
    public static let stopped = "server.stopped"
    public static let tokenCreated = "server.token.created"
    public static let tokenRevoked = "server.token.revoked"
    public static let sessionOpened = "server.session.opened"
    public static let authFailed = "server.auth.failed"
    public static let refused = "server.refused"
}

/// What the API serves and changes, over the same owners the CLI uses: the run registry (and each run's
/// ledger and stop protocol), the approvals broker, the audit log, the token store. The daemon holds no
/// state of its own that the CLI would not see: kill it and every command still works.
public final class ControlPlane: Sendable {
    public let stateDirectory: String
    public let registry: RunRegistry
    public let approvals: ApprovalBroker
    public let tokens: TokenStore
    public let log: AuditLog
    public let reportsDirectory: String
    public let metrics: ServerMetrics
    public let feed: EventFeed
    private let listing = Mutex<ListingCache>(ListingCache())

    private struct ListingCache {
        var generation = 0
        var entries: [Bool: (generation: Int, at: UInt64, body: [UInt8], summaries: [RunSummary])] = [:]
        /// Listings being rebuilt in the background (an aged one is served meanwhile).
        var refreshing: Set<Bool> = []
    }

    public init(
        stateDirectory: String, registry: RunRegistry, approvals: ApprovalBroker, tokens: TokenStore, log: AuditLog,
        reportsDirectory: String
    ) {
        self.stateDirectory = stateDirectory
        self.registry = registry
        self.approvals = approvals
        self.tokens = tokens
        self.log = log
        self.reportsDirectory = reportsDirectory
        self.metrics = ServerMetrics()
        self.feed = EventFeed(store: log.store)
    }

    /// Hooks the metrics and the listing cache to the live feed (before the feed runs).
    public func connectFeed() async {
        await feed.observe { [weak self] events in
            guard let self else { return }
            self.metrics.observe(events)
            // Any run event may change a run's record (started, stopped, exited): list afresh.
            if events.contains(where: { $0.run != nil }) { self.listing.withLock { $0.generation += 1 } }
        }
    }

    // MARK: - Runs

    /// The runs listing as JSON, active runs unless `all`.
    ///
    /// After a run event in the log (a run started, stopped, exited) the next request rebuilds it, so what
    /// the event announced is in the answer. Without one it is refreshed every 250 ms in the background
    /// (resource use, and a supervisor that died unrecorded, change without an event), the aged listing
    /// served meanwhile, so no request under load waits for a rebuild it did not need.
    public func runsJSON(all: Bool) -> [UInt8] { runs(all: all).body }

    public func runs(all: Bool) -> (body: [UInt8], summaries: [RunSummary]) {
        let now = DispatchTime.now().uptimeNanoseconds
        enum Plan { case serve([UInt8], [RunSummary]), serveAndRefresh([UInt8], [RunSummary]), rebuild }
        let plan = listing.withLock { cache -> Plan in
            guard let entry = cache.entries[all], entry.generation == cache.generation else { return .rebuild }
            if now - entry.at < 250_000_000 || cache.refreshing.contains(all) {
                return .serve(entry.body, entry.summaries)
            }
            cache.refreshing.insert(all)
            return .serveAndRefresh(entry.body, entry.summaries)
        }
        switch plan {
        case .serve(let body, let summaries):
            return (body, summaries)
        case .serveAndRefresh(let body, let summaries):
            DispatchQueue.global().async { [self] in
                _ = rebuild(all: all)
                listing.withLock { _ = $0.refreshing.remove(all) }
            }
            return (body, summaries)
        case .rebuild:
            return rebuild(all: all)
        }
    }

    private func rebuild(all: Bool) -> (body: [UInt8], summaries: [RunSummary]) {
        let generation = listing.withLock { $0.generation }
        let at = DispatchTime.now().uptimeNanoseconds
        let summaries = registry.list().filter { all || $0.state.isActive }.map(RunSummary.init(record:))
        let body = Array((try? JSON.encoder.encode(summaries)) ?? Data("[]".utf8))
        listing.withLock { cache in
            // A newer rebuild (after a later event) may have landed first; keep the newest.
            if let current = cache.entries[all], current.generation > generation { return }
            cache.entries[all] = (generation, at, body, summaries)
        }
        return (body, summaries)
    }

    /// One run: its full record, what it uses now, and its pending approvals.
    public func run(_ text: String) throws -> RunDetail {
        let id = try registry.resolve(text)
        guard let record = try registry.ledger(for: id).reconcile() else {
            throw WardenError(code: .notFound, message: "no run \(id)")
        }
        return RunDetail(
            summary: RunSummary(record: record), record: record,
            approvals: (try? approvals.list(run: id)) ?? [])
    }

    /// Stops runs through the stop protocol (the model door cut first), exactly as `warden stop` does,
    /// recording who asked.
    public func stop(_ targets: [RunID], grace: Duration?, reason: String, by caller: Caller) async throws
        -> [StopProtocol.Outcome]
    {
        let registry = self.registry
        let outcomes = try await withThrowingTaskGroup(of: StopProtocol.Outcome?.self) { group in
            for id in targets {
                group.addTask {
                    try await Blocking.run {
                        let ledger = try registry.ledger(for: id)
                        guard let record = ledger.reconcile() else { return nil }
                        let effective = grace ?? .nanoseconds(record.graceNanoseconds)
                        return try StopProtocol(ledger: ledger, actor: .operator)
                            .runCuttingModel(grace: effective, reason: reason, requestedBy: caller.description)
                    }
                }
            }
            var results: [StopProtocol.Outcome] = []
            for try await outcome in group { if let outcome { results.append(outcome) } }
            return results
        }
        listing.withLock { $0.generation += 1 }
        return outcomes.sorted { $0.id.rawValue < $1.id.rawValue }
    }

    /// Every active run.
    public func activeRuns() -> [RunID] { registry.list().filter { $0.state.isActive }.map(\.id) }

    public func events(of text: String) throws -> [RunEvent] {
        try registry.events(of: try registry.resolve(text))
    }

    // MARK: - Approvals

    public func decide(_ id: String, approve: Bool, remember: Bool, note: String?, by caller: Caller) throws -> Approval
    {
        let registry = self.registry
        return try approvals.decide(
            id, approve: approve, remember: remember, by: Approver(remote: caller.description, uid: getuid()),
            note: note,
            runIsActive: { run in (try? registry.ledger(for: run).reconcile()?.state.isActive) == true })
    }

    // MARK: - Audit

    public func verify() async throws -> AuditVerification {
        let key = try AuditOperations.trustedKey(nil, stateDirectory: stateDirectory)
        let head = AuditStores.readHead(path: log.headPath)
        return try await AuditOperations.verify(store: log.store, publicKey: key, head: head)
    }

    /// The latest `count` events of the whole log, oldest first.
    public func tail(_ count: Int) async throws -> [FeedEvent] {
        let last = try await log.store.lastSequence()
        let from = max(1, last - Int64(max(1, min(count, 10_000))) + 1)
        return try await feed.history(from: from, through: last)
    }

    /// Records one of the daemon's own events (who, what), durably, before the caller answers.
    public func record(
        _ kind: String, actor: String, subject: String = "", run: String? = nil, _ details: [String: String]
    )
        async throws
    {
        let draft = AuditDraft(
            kind: kind, actor: actor, subject: subject, run: run,
            details: .strings(details))
        _ = try await log.record(draft)
    }

    // MARK: - Reports

    /// The red-team reports (HTML and JSON) in the reports directory, newest first.
    public func reports() -> [ReportFile] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: reportsDirectory)) ?? []
        return names.filter { $0.hasSuffix(".html") || $0.hasSuffix(".json") }.compactMap { name in
            let path = reportsDirectory + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular
            else { return nil }
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return ReportFile(
                name: name, kind: name.hasSuffix(".html") ? "html" : "json",
                bytes: (attributes[.size] as? Int) ?? 0, modifiedAtNanoseconds: Int64(modified * 1e9))
        }.sorted { $0.modifiedAtNanoseconds > $1.modifiedAtNanoseconds }
    }

    /// A report's bytes, by its listed name only (no paths).
    public func report(named name: String) throws -> (bytes: Data, kind: String) {
        guard let file = reports().first(where: { $0.name == name }),
            let data = FileManager.default.contents(atPath: reportsDirectory + "/" + file.name)
        else {
            throw WardenError(code: .notFound, message: "no report '\(name)'; GET /v1/reports lists them")
        }
        return (data, file.kind)
    }
}

/// One run in full.
public struct RunDetail: Sendable, Encodable {
    public var summary: RunSummary
    public var record: RunRecord
    public var approvals: [Approval]
}

/// A red-team report file.
public struct ReportFile: Sendable, Codable, Equatable {
    public var name: String
    public var kind: String
    public var bytes: Int
    public var modifiedAtNanoseconds: Int64

    enum CodingKeys: String, CodingKey {
        case name, kind, bytes
        case modifiedAtNanoseconds = "modified_ns"
    }
}

/// The API's one JSON style.
enum JSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}
