import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// One observed change to a tripwire.
public struct TripwireIncident: Sendable, Equatable {
    public var path: String
    public var change: String
    public var detail: String
}

/// Watches tripwire files from outside the sandbox: inotify on each file and its directory for
/// immediate notice, plus a stat-and-hash comparison that catches what inotify cannot see (writes
/// through `mmap`) and changes that were undone.
///
/// When the kernel is short of inotify instances or watches (another user took them all), the watcher
/// does not refuse the run: it falls back to the comparison alone, which the supervisor makes on every
/// tick, and says so in ``degraded``. Without tripwires it holds no inotify instance at all.
///
/// Each kind of change is reported once per path.
public final class TripwireWatcher {
    private let inotifyFD: Int32
    private var fileWatches: [Int32: String] = [:]
    private var directoryWatches: [Int32: [String]] = [:]
    private var lastSeen: [String: TripwireBaseline] = [:]
    private let baselines: [TripwireBaseline]
    private var reported = Set<String>()
    /// Why some or all changes are seen only by polling (nil: inotify watches everything).
    public private(set) var degraded: String?

    /// The descriptor to poll for readability (-1 when there is none: `poll` ignores it).
    public var fileDescriptor: Int32 { inotifyFD }

    public init(baselines: [TripwireBaseline]) {
        self.baselines = baselines
        inotifyFD = baselines.isEmpty ? -1 : inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if !baselines.isEmpty && inotifyFD < 0 {
            degraded = "inotify_init1: \(String(cString: strerror(errno)))"
        }
        for baseline in baselines {
            lastSeen[baseline.path] = baseline
            guard inotifyFD >= 0 else { continue }
            addFileWatch(baseline.path)
            let directory = String(baseline.path[..<(baseline.path.lastIndex(of: "/") ?? baseline.path.startIndex)])
            let wd = inotify_add_watch(
                inotifyFD, directory.isEmpty ? "/" : directory,
                UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR))
            if wd >= 0 { directoryWatches[wd, default: []].append(baseline.path) } else { noteWatchFailure() }
        }
    }

    deinit { if inotifyFD >= 0 { close(inotifyFD) } }

    private func addFileWatch(_ path: String) {
        let mask = UInt32(IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_CLOSE_WRITE | IN_DONT_FOLLOW)
        let wd = inotify_add_watch(inotifyFD, path, mask)
        if wd >= 0 { fileWatches[wd] = path } else { noteWatchFailure() }
    }

    /// Out of inotify watches (ENOSPC): that path is seen by the comparison alone.
    private func noteWatchFailure() {
        if errno == ENOSPC { degraded = degraded ?? "inotify_add_watch: \(String(cString: strerror(ENOSPC)))" }
    }

    private func report(_ path: String, _ change: String, _ detail: String, into incidents: inout [TripwireIncident]) {
        if reported.insert(path + "\u{0}" + change).inserted {
            incidents.append(TripwireIncident(path: path, change: change, detail: detail))
        }
    }

    /// Reads pending inotify events and turns them into incidents.
    public func drainNotifications() -> [TripwireIncident] {
        var incidents: [TripwireIncident] = []
        guard inotifyFD >= 0 else { return compareWithLastSeen() }
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var offset = 0
            while offset + 16 <= n {
                let (wd, mask, length): (Int32, UInt32, Int) = buffer.withUnsafeBytes { raw in
                    (
                        raw.loadUnaligned(fromByteOffset: offset, as: Int32.self),
                        raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                        Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    )
                }
                let nameBytes = buffer[(offset + 16)..<min(n, offset + 16 + length)].prefix { $0 != 0 }
                let name = String(decoding: nameBytes, as: UTF8.self)
                offset += 16 + length
                if let path = fileWatches[wd] {
                    if mask & UInt32(IN_MODIFY) != 0 {
                        report(path, "write", "the file was written", into: &incidents)
                    }
                    if mask & UInt32(IN_ATTRIB) != 0 {
                        let now = TripwireBaseline.capture(path, previous: lastSeen[path])
                        if let before = lastSeen[path], before.exists, now.exists, before.inode == now.inode {
                            if before.mode != now.mode {
                                report(
                                    path, "chmod",
                                    "mode \(String(before.mode & 0o7777, radix: 8)) -> \(String(now.mode & 0o7777, radix: 8))",
                                    into: &incidents)
                            }
                            if before.links != now.links {
                                report(
                                    path, "hard-link", "link count \(before.links) -> \(now.links)", into: &incidents)
                            }
                            lastSeen[path] = now
                        }
                    }
                    if mask & UInt32(IN_MOVE_SELF) != 0 {
                        report(path, "rename", "the file was moved away from its path", into: &incidents)
                    }
                    if mask & UInt32(IN_DELETE_SELF) != 0 {
                        report(path, "delete", "the file was deleted", into: &incidents)
                    }
                    if mask & UInt32(IN_IGNORED) != 0 { fileWatches[wd] = nil }
                } else if let paths = directoryWatches[wd] {
                    for path in paths where path.hasSuffix("/" + name) {
                        if mask & UInt32(IN_MOVED_FROM) != 0 {
                            report(path, "rename", "renamed away from \(name)", into: &incidents)
                        }
                        if mask & UInt32(IN_DELETE) != 0 {
                            report(path, "delete", "\(name) was removed", into: &incidents)
                        }
                        if mask & UInt32(IN_MOVED_TO | IN_CREATE) != 0 {
                            report(path, "replace", "another file was put at \(name)", into: &incidents)
                            addFileWatch(path)
                        }
                    }
                }
            }
        }
        incidents += compareWithLastSeen()
        return incidents
    }

    /// Compares each file with what was last seen; catches `mmap` writes, which inotify does not report.
    public func compareWithLastSeen() -> [TripwireIncident] {
        var incidents: [TripwireIncident] = []
        for baseline in baselines {
            let before = lastSeen[baseline.path] ?? baseline
            let now = TripwireBaseline.capture(baseline.path, previous: before)
            for change in before.changes(to: now) where change != "changed-and-restored" {
                report(baseline.path, change, Self.describe(change), into: &incidents)
            }
            lastSeen[baseline.path] = now
        }
        return incidents
    }

    /// The last word: every difference from the baseline taken at start, including undone changes.
    public func finalCheck() -> [TripwireIncident] {
        var incidents = drainNotifications()
        for baseline in baselines {
            let now = TripwireBaseline.capture(baseline.path, previous: lastSeen[baseline.path])
            for change in baseline.changes(to: now) {
                report(baseline.path, change, Self.describe(change), into: &incidents)
            }
        }
        return incidents
    }

    /// Differences from the baselines without any watcher state (for `warden stop` when the
    /// supervisor is gone).
    public static func compare(baselines: [TripwireBaseline]) -> [TripwireIncident] {
        baselines.flatMap { baseline in
            baseline.changes(to: TripwireBaseline.capture(baseline.path)).map {
                TripwireIncident(path: baseline.path, change: $0, detail: describe($0))
            }
        }
    }

    static func describe(_ change: String) -> String {
        switch change {
        case "delete": "the file is gone"
        case "create": "a file appeared at the path"
        case "replace": "a different file (new inode) is at the path"
        case "write": "the content changed"
        case "chmod": "the permissions changed"
        case "hard-link": "the link count changed"
        case "changed-and-restored": "the inode changed (renamed or modified) and was put back as it was"
        default: change
        }
    }
}
