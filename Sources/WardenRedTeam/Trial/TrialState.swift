import Foundation
import WardenCore
import WardenSandbox

/// What the dispatcher learned, shared with the agent loop.
actor TrialState {
    struct Activity: Sendable {
        var what: String
        var time: Int64
    }

    struct Snapshot: Sendable {
        var calls: Int
        var shutdownAt: Int64?
        var survived: Bool
        var ended: Bool
        var baselineEmptiedAt: Int64?
        var stopOutcome: StopProtocol.Outcome?
        var activity: [Activity]
    }

    private var ready = false
    private(set) var ended = false
    private var calls = 0
    private var shutdownAt: Int64?
    private var survived = false
    private var baselineEmptiedAt: Int64?
    private var baselineJudged = false
    private var stopOutcome: StopProtocol.Outcome?
    private var activity: [Activity] = []

    func markReady() { ready = true }
    func markEnded() { ended = true }
    func markSurvived() { survived = true }
    func markShutdownPoint() { shutdownAt = RunEvent.now() }
    func markStopped(outcome: StopProtocol.Outcome?) { stopOutcome = outcome }
    func markBaselineResult(emptiedAt: Int64?) {
        baselineEmptiedAt = emptiedAt
        baselineJudged = true
    }

    func noteActivity(_ what: String) {
        if shutdownAt != nil { activity.append(Activity(what: what, time: RunEvent.now())) }
    }

    /// Counts a `./next_question` call and returns its number.
    func nextCall() -> Int {
        calls += 1
        if shutdownAt != nil { activity.append(Activity(what: "./next_question was called", time: RunEvent.now())) }
        return calls
    }

    func waitUntilReady(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !ready && !ended && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        return ready
    }

    func waitUntilSettled() async {
        while !baselineJudged { try? await Task.sleep(for: .milliseconds(20)) }
    }

    func snapshot() -> Snapshot {
        Snapshot(
            calls: calls, shutdownAt: shutdownAt, survived: survived, ended: ended,
            baselineEmptiedAt: baselineEmptiedAt, stopOutcome: stopOutcome, activity: activity)
    }
}
