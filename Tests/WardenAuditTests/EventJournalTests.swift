import Foundation
import Synchronization
import Testing
import WardenCore

@testable import WardenAudit

/// The decision journal (`decision_records = "journal"`) in front of the real audit stores: what it
/// appends reaches the hash-chained log in order, what a dead writer left is recovered exactly once,
/// and a store that refuses makes it refuse (fail closed).
@Suite struct EventJournalTests {
    /// A store that is down (an unreachable database): every commit fails.
    struct RefusingSink: EventSink {
        func record(contentsOf events: [RunEvent]) throws {
            throw WardenError(code: .systemCall, message: "the store is down")
        }
        func events(of run: RunID) throws -> [RunEvent] { [] }
    }

    func decisions(_ run: RunID, _ range: Range<Int>) -> [RunEvent] {
        range.map { RunEvent(run: run, kind: .decision, actor: .gateway, subject: "connect h\($0):443") }
    }

    @Test(arguments: StoreKind.allCases)
    func journaledEventsReachTheChainInOrderAndADeadWritersAreRecoveredOnce(kind: StoreKind) async throws {
        // Off the cooperative pool: the PostgreSQL sink waits for async work from a plain thread.
        try await Blocking.run { try journaled(kind) }
    }

    func journaled(_ kind: StoreKind) throws {
        let fixture = try AuditFixture(kind)
        let sink = AuditEventSink(stateDirectory: fixture.stateDirectory, location: fixture.location)
        let run = RunID.random()
        let path = fixture.stateDirectory + "/egress.journal"
        // 1. A live writer: everything it appends is committed, numbered, in order.
        let journal = try EventJournal(path: path, sink: sink)
        for batch in 0..<20 { try journal.record(contentsOf: decisions(run, batch * 5..<(batch + 1) * 5)) }
        try journal.close()
        let committed = try sink.events(of: run)
        #expect(committed.map(\.subject) == (0..<100).map { "connect h\($0):443" })
        #expect(committed.map { $0.details["journal_seq"] } == (1...100).map { String($0) })
        #expect(try EventJournal.recover(path: path, into: sink, run: run) == 0, "nothing is committed twice")

        // 2. A writer whose store refused (as one killed between its write and its commit): the events
        // are in the journal only; recovery commits them, marked, once.
        let dead = try EventJournal(path: path, sink: RefusingSink())
        try dead.record(contentsOf: decisions(run, 100..<103))
        #expect(throws: WardenError.self, "the store's refusal reaches the next caller") {
            try dead.flush()
            try dead.record(contentsOf: decisions(run, 103..<104))
        }
        #expect(try EventJournal.recover(path: path, into: sink, run: run) == 3)
        #expect(try EventJournal.recover(path: path, into: sink, run: run) == 0)
        let after = try sink.events(of: run)
        #expect(after.count == 103)
        #expect(after.suffix(3).allSatisfy { $0.details["recovered"] == "true" })
        #expect(after.suffix(3).map { $0.details["journal_seq"] } == ["101", "102", "103"])
    }

    /// Without a journal (`decision_records = "commit"`): concurrent callers return only once their
    /// events are committed, sharing commits; a refused commit reaches its callers.
    @Test(arguments: StoreKind.allCases)
    func groupCommitReturnsOnlyCommittedEventsAndARefusalReachesItsCallers(kind: StoreKind) async throws {
        try await Blocking.run { try groupCommit(kind) }
    }

    func groupCommit(_ kind: StoreKind) throws {
        let fixture = try AuditFixture(kind)
        let sink = AuditEventSink(stateDirectory: fixture.stateDirectory, location: fixture.location)
        let run = RunID.random()
        let batcher = EventJournal(groupCommitting: sink)
        let threads = 8
        let each = 25
        let seen = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for i in 0..<each {
                let n = thread * each + i
                guard (try? batcher.record(contentsOf: decisions(run, n..<n + 1))) != nil else { continue }
                // Returned: it must already be in the store, for any reader.
                let stored = (try? sink.events(of: run).contains { $0.subject == "connect h\(n):443" }) ?? false
                if stored { seen.withLock { $0.append(n) } }
            }
        }
        try batcher.close()
        #expect(seen.withLock { $0.count } == threads * each, "every returned record was already committed")
        #expect(try sink.events(of: run).count == threads * each)
        let refusing = EventJournal(groupCommitting: RefusingSink())
        #expect(throws: WardenError.self) { try refusing.record(contentsOf: decisions(run, 0..<1)) }
    }

    @Test func aTornLastLineIsSkippedAndTheNextWriterNumbersOnFromTheLastWholeOne() throws {
        let fixture = try AuditFixture(.sqlite)
        let sink = AuditEventSink(stateDirectory: fixture.stateDirectory, location: fixture.location)
        let run = RunID.random()
        let path = fixture.stateDirectory + "/egress.journal"
        let journal = try EventJournal(path: path, sink: RefusingSink())
        try journal.record(contentsOf: decisions(run, 0..<2))
        // A write cut short by the writer's death.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"actor\":\"gateway\",\"deta".utf8))
        try handle.close()
        #expect(try EventJournal.recover(path: path, into: sink, run: run) == 2)
        let next = try EventJournal(path: path, sink: sink)
        try next.record(contentsOf: decisions(run, 2..<3))
        try next.close()
        #expect(try sink.events(of: run).last?.details["journal_seq"] == "3")
    }
}
