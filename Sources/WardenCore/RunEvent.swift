import Foundation

/// What happened, in the vocabulary every sink and reader shares.
public enum EventKind: String, Codable, Sendable, CaseIterable {
    case started
    case layerApplied = "layer.applied"
    case layerDegraded = "layer.degraded"
    case warning
    case stopRequested = "stop.requested"
    case noticeSent = "notice.sent"
    case noticeIgnored = "notice.ignored"
    case killed
    case stopped
    case exited
    case tripwire
    /// The kernel refused the agent an operation (seccomp or Landlock), as its audit log reported.
    case denied
    case limitHit = "limit.hit"
    case leaseRenewed = "lease.renewed"
    case leaseExpired = "lease.expired"
}

/// One recorded fact about a run.
///
/// Events are facts Warden observed itself (the kernel, the filesystem, its own actions), never the
/// agent's account of what it did.
public struct RunEvent: Codable, Sendable, Equatable {
    /// Wall-clock time in nanoseconds since the Unix epoch (UTC).
    public var timeNanoseconds: Int64
    public var run: RunID
    public var kind: EventKind
    /// Who caused it: `supervisor`, `operator`, `kernel`, `tripwire`, `lease`.
    public var actor: String
    /// Kind-specific facts, e.g. `layer`, `path`, `change`, `latency_ms`.
    public var details: [String: String]

    public init(
        run: RunID, kind: EventKind, actor: String, details: [String: String] = [:],
        timeNanoseconds: Int64 = RunEvent.now()
    ) {
        self.timeNanoseconds = timeNanoseconds
        self.run = run
        self.kind = kind
        self.actor = actor
        self.details = details
    }

    enum CodingKeys: String, CodingKey {
        case timeNanoseconds = "time_ns"
        case run, kind, actor, details
    }

    /// The current wall-clock time in nanoseconds since the epoch.
    public static func now() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1e9).rounded())
    }

    /// RFC 3339 UTC with milliseconds, for people.
    public var timestamp: String {
        let date = Date(timeIntervalSince1970: Double(timeNanoseconds) / 1e9)
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
        return date.formatted(style)
    }
}

/// Where run events go. The tamper-evident audit store will implement this too.
///
/// `record` returns only once the event is durable; a sink that cannot make it durable throws, and the
/// caller must not carry out the action the event describes.
public protocol EventSink: Sendable {
    func record(_ event: RunEvent) throws
    /// Records several events as one durable write (all or, on error, the caller must assume none).
    func record(contentsOf events: [RunEvent]) throws
}

extension EventSink {
    public func record(contentsOf events: [RunEvent]) throws {
        for event in events { try record(event) }
    }
}
