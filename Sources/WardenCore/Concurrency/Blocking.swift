import Foundation

/// The one bridge between Warden's synchronous code (the supervisor, the stop protocol, system calls)
/// and Swift concurrency, in both directions.
///
/// - ``run(_:)-(()->T)`` takes blocking work (a process wait, a pipe read, the stop protocol) *off*
///   Swift's cooperative pool onto a thread of its own, so a few blocked calls cannot starve every task
///   (the pool has one thread per core).
/// - ``wait(_:)`` lets a plain thread (never a cooperative one) wait for async work, such as an
///   append to the PostgreSQL audit store from the supervisor.
public enum Blocking {
    /// Runs `body` on a new thread and resumes the caller with its result.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `body` on a new thread and resumes the caller with its result.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Blocks the calling thread until the async `body` finishes, and returns its result.
    ///
    /// Call it only from a thread outside the cooperative pool (the supervisor's, one made by
    /// ``run(_:)-(()->T)``): blocking a cooperative thread while the task needs one can deadlock.
    public static func wait<T: Sendable, E: Error>(_ body: @escaping @Sendable () async throws(E) -> T) throws(E) -> T {
        let outcome = Outcome<T, E>()
        Task {
            let result: Result<T, E>
            do throws(E) {
                result = .success(try await body())
            } catch {
                result = .failure(error)
            }
            outcome.set(result)
        }
        return try outcome.wait().get()
    }

    /// One result handed from a task to a waiting thread.
    private final class Outcome<T: Sendable, E: Error>: @unchecked Sendable {
        // @unchecked: `result` is only touched under `condition`'s lock.
        private let condition = NSCondition()
        private var result: Result<T, E>?

        func set(_ value: Result<T, E>) {
            condition.lock()
            result = value
            condition.signal()
            condition.unlock()
        }

        func wait() -> Result<T, E> {
            condition.lock()
            defer { condition.unlock() }
            while true {
                if let result { return result }
                condition.wait()
            }
        }
    }
}
