import Metrics
import Prometheus
import WardenCore

/// The daemon's metrics (swift-metrics, exported in Prometheus' text format at `/metrics`).
///
/// Counters and the stop-latency histogram are fed from the audit log's live feed, so stops made with the
/// CLI, by a lease or by a tripwire count as much as the API's own; gauges (runs by state, approvals
/// waiting) are read at scrape time from the registry and the broker.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["warden_stop_latency_seconds"] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2),
            .seconds(5), .seconds(10), .seconds(30),
        ]
        self.factory = factory
    }

    /// The swift-metrics backend, for `MetricsSystem.bootstrap` (once per process).
    public var backend: PrometheusMetricsFactory { factory }

    /// Counts what the log recorded: stops and their latency, the doors' decisions by door and outcome,
    /// approvals decided, refused API calls.
    public func observe(_ events: [FeedEvent]) {
        for event in events {
            switch event.kind {
            case EventKind.stopped.rawValue:
                Counter(label: "warden_stops_total", factory: factory).increment()
                if let text = event.details["latency_ms"]?.stringValue, let ms = Double(text) {
                    Metrics.Timer(label: "warden_stop_latency_seconds", factory: factory).recordNanoseconds(
                        Int64(ms * 1e6))
                }
            case EventKind.decision.rawValue:
                let door = Self.door(event.details)
                let outcome = event.details["decision"]?.stringValue ?? "unknown"
                Counter(
                    label: "warden_decisions_total", dimensions: [("door", door), ("outcome", outcome)],
                    factory: factory
                ).increment()
            case EventKind.approvalDecided.rawValue:
                let decision = event.details["decision"]?.stringValue ?? "unknown"
                Counter(label: "warden_approvals_decided_total", dimensions: [("decision", decision)], factory: factory)
                    .increment()
            case ServerEvent.authFailed:
                Counter(label: "warden_api_unauthorized_total", factory: factory).increment()
            default: break
            }
        }
    }

    /// Sets the gauges read at scrape time.
    public func setGauges(runsByState: [String: Int], approvalsWaiting: Int, streams: Int) {
        for state in ["starting", "running", "stopping", "stopped", "exited", "exited?"] {
            Gauge(label: "warden_runs", dimensions: [("state", state)], factory: factory).record(
                runsByState[state] ?? 0)
        }
        Gauge(label: "warden_approvals_waiting", factory: factory).record(approvalsWaiting)
        Gauge(label: "warden_event_streams", factory: factory).record(streams)
    }

    public func render() -> [UInt8] { registry.emitToBuffer() }

    private static func door(_ details: JSONValue) -> String {
        if let door = details["door"]?.stringValue { return door }
        switch details["action"]?.stringValue {
        case "connect": return "egress"
        case "call", "list", "read", "prompt": return "tools"
        case "complete", "respond": return "model"
        default: return "other"
        }
    }
}
