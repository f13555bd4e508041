import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Group commit in front of a durable sink, optionally behind a write-ahead journal: a flusher thread
/// commits what callers recorded to the sink in batches, in order, so concurrent callers share one
/// transaction (one fsync) instead of queueing for one each.
///
/// - Without a journal (`decision_records = "commit"`), `record` returns once its batch is committed:
///   the sink's own promise, at the cost of one commit per batch rather than per event.
/// - With a journal (`decision_records = "journal"`), `record` appends the events to a file with one
///   `write(2)` and returns at once, each event carrying its `journal_seq`. An event is then in the
///   kernel before `record` returns, so it survives the death of the process that wrote it (SIGKILL
///   included): ``recover(path:into:run:)``, run by whoever outlives the writer, commits what the
///   flusher had not. It does not survive a host crash in the moment between the write and the batch's
///   commit (about one commit, a millisecond): why the journal is chosen explicitly.
///
/// It fails closed: when the sink refuses a batch, or more than `backlogMax` events wait, `record`
/// throws, and the caller must not act (with a journal, every later `record` throws too: its events
/// wait for recovery). One writer process per journal file.
public final class EventJournal: EventSink, @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `condition`.
    /// The journal file, or nil for group commit alone.
    public let path: String?
    private let sink: any EventSink
    private let backlogMax: Int
    private let fd: Int32
    private let condition = NSCondition()
    /// The next event's number (journal_seq with a journal; internal otherwise).
    private var nextSeq: UInt64
    /// Events up to this number are committed (or their batch failed: see `failedThrough`).
    private var doneThrough: UInt64
    private var failedBatches: [(through: UInt64, from: UInt64, error: String)] = []
    private var pending: [RunEvent] = []
    private var committing = 0
    private var failure: String?
    private var closing = false
    private var flusherDone = false

    /// Group commit alone: `record` returns once its batch is committed.
    public init(groupCommitting sink: any EventSink, backlogMax: Int = 10_000) {
        path = nil
        self.sink = sink
        self.backlogMax = backlogMax
        fd = -1
        nextSeq = 1
        doneThrough = 0
    }

    /// Opens (creating, mode 0600) the journal at `path` and starts its flusher.
    /// - Throws: ``WardenError`` `.systemCall` when the file cannot be opened.
    public init(path: String, sink: any EventSink, backlogMax: Int = 10_000) throws {
        self.path = path
        self.sink = sink
        self.backlogMax = backlogMax
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw WardenError(
                code: .systemCall,
                message: "journal: cannot open \(path): \(String(cString: strerror(errno))); check the run directory")
        }
        // Sequence numbers go on from a journal a dead writer left (recovered by then); a line it tore
        // is ended, so the next one starts whole.
        let previous = FileManager.default.contents(atPath: path) ?? Data()
        if let last = previous.last, last != 0x0A {
            var newline: UInt8 = 0x0A
            _ = write(fd, &newline, 1)
        }
        nextSeq = (Self.decode(previous).last.flatMap { Self.sequence(of: $0) } ?? 0) + 1
        doneThrough = nextSeq - 1
    }

    private var flusherStarted = false

    /// The flusher starts with the first record (the mediator confines itself while it has one thread).
    private func startFlusherIfNeeded() {
        guard !flusherStarted else { return }
        flusherStarted = true
        let thread = Thread { [self] in flushLoop() }
        thread.name = "warden-journal"
        thread.start()
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// With a journal: appends the events (one `write`) and returns; without: returns once committed.
    public func record(contentsOf events: [RunEvent]) throws {
        guard !events.isEmpty else { return }
        condition.lock()
        defer { condition.unlock() }
        if let failure {
            throw WardenError(
                code: .systemCall,
                message: "journal: the audit log refused the journal's records (\(failure)); refusing")
        }
        guard !closing else { throw WardenError(code: .conflict, message: "journal: closed") }
        guard pending.count + committing < backlogMax else {
            throw WardenError(
                code: .systemCall,
                message: "journal: \(backlogMax) events wait for the audit log; refusing until it catches up")
        }
        var numbered = events
        if fd >= 0 {
            var text = ""
            for index in numbered.indices {
                numbered[index].details["journal_seq"] = String(nextSeq + UInt64(index))
                Self.writeLine(numbered[index], to: &text)
            }
            var bytes = Array(text.utf8)
            let written = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else {
                // A short write leaves a torn last line, which recovery skips; nothing is reported as recorded.
                throw WardenError(
                    code: .systemCall,
                    message: "journal: cannot append to \(path ?? ""): \(String(cString: strerror(errno)))")
            }
        }
        nextSeq += UInt64(numbered.count)
        let mine = nextSeq - 1
        pending += numbered
        startFlusherIfNeeded()
        condition.signal()
        guard fd < 0 else { return }
        // Group commit alone: wait for this batch's outcome.
        while doneThrough < mine { condition.wait() }
        if let failed = failedBatches.first(where: { $0.from <= mine && mine <= $0.through }) {
            throw WardenError(code: .systemCall, message: "audit log: \(failed.error)")
        }
    }

    public func events(of run: RunID) throws -> [RunEvent] {
        try flush()
        return try sink.events(of: run)
    }

    /// Waits until everything recorded so far is committed (or the sink refused it).
    public func flush() throws {
        condition.lock()
        defer { condition.unlock() }
        while (!pending.isEmpty || committing > 0) && failure == nil && !flusherDone { condition.wait() }
        if let failure { throw WardenError(code: .systemCall, message: "journal: \(failure)") }
    }

    /// Commits what is left and stops the flusher; later `record`s throw.
    public func close() throws {
        condition.lock()
        guard flusherStarted else {
            closing = true
            flusherDone = true
            condition.unlock()
            return
        }
        closing = true
        condition.broadcast()
        condition.unlock()
        try flush()
    }

    private func flushLoop() {
        condition.lock()
        while true {
            while pending.isEmpty && !closing { condition.wait() }
            if pending.isEmpty && closing { break }
            let batch = pending
            pending.removeAll()
            committing = batch.count
            let through = doneThrough + UInt64(batch.count)
            condition.unlock()
            var error: (any Error)?
            // With a journal a refused batch is tried again (the events are safe in the file); without
            // one its callers are waiting, and are told at once.
            for attempt in 0..<(fd >= 0 ? 50 : 1) {
                do {
                    try sink.record(contentsOf: batch)
                    error = nil
                    break
                } catch let caught {
                    error = caught
                    guard fd >= 0 else { break }
                    condition.lock()
                    failure = "\(caught)"
                    condition.unlock()
                    usleep(UInt32(min(100_000, 1_000 << min(attempt, 7))))
                }
            }
            condition.lock()
            committing = 0
            if let error, fd < 0 {
                failedBatches.append((through, through - UInt64(batch.count) + 1, "\(error)"))
                if failedBatches.count > 64 { failedBatches.removeFirst() }
            }
            doneThrough = through
            condition.broadcast()
            if let error, fd >= 0 {
                // Still in the journal: recovery commits them once the store is back.
                failure = "\(error)"
                break
            }
            failure = nil
        }
        flusherDone = true
        condition.broadcast()
        condition.unlock()
    }

    // MARK: - Recovery

    /// Commits to `sink` the journal's events of `run` that it does not have yet (a writer that died
    /// between its `write` and its batch's commit), marked `recovered`; returns how many.
    ///
    /// Run only when no writer has the journal open (the mediator is gone).
    @discardableResult
    public static func recover(path: String, into sink: any EventSink, run: RunID) throws -> Int {
        let lines = read(path)
        guard !lines.isEmpty else { return 0 }
        let committed =
            try sink.events(of: run).compactMap { $0.details["journal_seq"].flatMap { UInt64($0) } }.max() ?? 0
        let missing = lines.filter { (sequence(of: $0) ?? 0) > committed && $0.run == run }.map { event in
            var event = event
            event.details["recovered"] = "true"
            return event
        }
        guard !missing.isEmpty else { return 0 }
        try sink.record(contentsOf: missing)
        return missing.count
    }

    /// The journal's whole lines, decoded (a torn or foreign line is skipped).
    static func read(_ path: String) -> [RunEvent] {
        decode(FileManager.default.contents(atPath: path) ?? Data())
    }

    static func decode(_ data: Data) -> [RunEvent] {
        let decoder = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(RunEvent.self, from: Data($0)) }
    }

    /// One event as a line of JSON, the form `RunEvent`'s `Codable` reads back (written by hand: the
    /// line is on the connection's path, and JSONEncoder costs more than the rest of the decision).
    static func writeLine(_ event: RunEvent, to out: inout String) {
        out += "{\"time_ns\":\(event.timeNanoseconds),\"run\":"
        JSONValue.writeString(event.run.rawValue, to: &out)
        out += ",\"kind\":"
        JSONValue.writeString(event.kind.rawValue, to: &out)
        out += ",\"actor\":"
        JSONValue.writeString(event.actor.rawValue, to: &out)
        out += ",\"subject\":"
        JSONValue.writeString(event.subject, to: &out)
        out += ",\"details\":{"
        var first = true
        for (key, value) in event.details {
            if !first { out += "," }
            first = false
            JSONValue.writeString(key, to: &out)
            out += ":"
            JSONValue.writeString(value, to: &out)
        }
        out += "}}\n"
    }

    static func sequence(of event: RunEvent) -> UInt64? { event.details["journal_seq"].flatMap { UInt64($0) } }
}
