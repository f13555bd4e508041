import CWardenLinux
import Foundation
import SystemPackage
import WardenCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Small, explicit file helpers over raw syscalls: cgroupfs and the registry need exact semantics
/// (one `write` per value, `O_NOFOLLOW`, no buffering) that Foundation does not promise.
public enum FileIO {
    /// Runs `body` holding an exclusive `flock` on `path` (created 0600 if missing), across processes.
    public static func withExclusiveLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw systemError("open \(path)") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw systemError("lock \(path)") }
        }
        return try body()
    }

    public static func readString(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw systemError("open \(path)") }
        defer { close(fd) }
        return try readAll(fd: fd, path: path)
    }

    public static func readAll(fd: Int32, path: String) throws -> String {
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw systemError("read \(path)")
            }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes `value` with a single `write(2)`, as cgroupfs requires.
    public static func writeValue(_ value: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw systemError("open \(path)") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw systemError("write '\(value)' to \(path)") }
    }

    /// Replaces `path` atomically: write a temporary sibling, optionally fsync, rename.
    ///
    /// Readers see the old or the new content, never a mix. Without `durable` a crash may leave the
    /// old version; callers whose durable record is elsewhere (the registry's state, whose facts are
    /// also in the event log) skip the flush.
    public static func writeAtomically(_ data: Data, to path: String, mode: mode_t = 0o600, durable: Bool = true) throws
    {
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw systemError("create \(temporary)") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = durable ? fsync(fd) : 0
        close(fd)
        guard written == data.count, synced == 0 else {
            unlink(temporary)
            throw systemError("write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw systemError("rename \(temporary) to \(path)")
        }
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func isExecutable(_ path: String) -> Bool {
        access(path, X_OK) == 0 && !isDirectory(path)
    }

    /// Whether `path` is `root` or beneath it (textually: both are absolute and normalised).
    public static func isWithin(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    /// The target of a symbolic link, as written in it.
    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The names in a directory (empty when it cannot be read).
    public static func directoryEntries(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The canonical absolute path, resolving symlinks.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        if mkdir(path, mode) != 0 && errno != EEXIST { throw systemError("create directory \(path)") }
    }

    public static func systemError(_ what: String, errno code: Int32 = errno) -> WardenError {
        WardenError(code: .systemCall, message: "\(what): \(Errno(rawValue: code).description)")
    }
}

/// Looks an executable up on `PATH` the way `execvp` would.
public func findExecutable(_ name: String, path: String?) -> String? {
    if name.contains("/") { return FileIO.isExecutable(name) ? name : nil }
    for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileIO.isExecutable(candidate) { return candidate }
    }
    return nil
}

/// Monotonic nanoseconds, for latencies.
public func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)

}
