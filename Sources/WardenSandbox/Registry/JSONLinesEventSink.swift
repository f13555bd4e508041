import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// An ``EventSink`` appending one JSON object per line, with `O_APPEND` and `fsync` per event, so
/// several writers (the supervisor, `warden stop`) interleave whole lines and a recorded event survives
/// a crash. The hash-chained audit store replaces it.
public struct JSONLinesEventSink: EventSink {
    public let path: String

    public init(path: String) { self.path = path }

    public func record(_ event: RunEvent) throws {
        try record(contentsOf: [event])
    }

    /// Appends every event with one `write` and one `fsync`.
    public func record(contentsOf events: [RunEvent]) throws {
        guard !events.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var lines = Data()
        for event in events {
            lines.append(try encoder.encode(event))
            lines.append(0x0A)
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileIO.systemError("open event log \(path)") }
        defer { close(fd) }
        let written = lines.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == lines.count, fsync(fd) == 0 else { throw FileIO.systemError("append to event log \(path)") }
    }

    /// Every event recorded so far, in order. A torn last line (a crash mid-write) is skipped.
    public func events() throws -> [RunEvent] {
        guard FileIO.exists(path) else { return [] }
        let text = try FileIO.readString(path)
        let decoder = JSONDecoder()
        return text.split(separator: "\n").compactMap { try? decoder.decode(RunEvent.self, from: Data($0.utf8)) }
    }
}
