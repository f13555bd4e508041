import Crypto
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// A watched file's identity and content at one moment: enough to tell a write, chmod, rename,
/// replacement, deletion or hard link apart, even when the change was undone afterwards (the inode's
/// change time still moves).
public struct TripwireBaseline: Codable, Sendable, Equatable {
    public var path: String
    public var exists: Bool
    public var device: UInt64 = 0
    public var inode: UInt64 = 0
    public var mode: UInt32 = 0
    public var links: UInt64 = 0
    public var size: Int64 = 0
    public var modifiedNanoseconds: Int64 = 0
    public var changedNanoseconds: Int64 = 0
    public var sha256: String = ""

    /// Reads the file's state now, without following a symlink the agent may have put in its place.
    public static func capture(_ path: String, previous: TripwireBaseline? = nil) -> TripwireBaseline {
        var st = stat()
        guard lstat(path, &st) == 0 else { return TripwireBaseline(path: path, exists: false) }
        var result = TripwireBaseline(path: path, exists: true)
        result.device = UInt64(st.st_dev)
        result.inode = UInt64(st.st_ino)
        result.mode = UInt32(st.st_mode)
        result.links = UInt64(st.st_nlink)
        result.size = Int64(st.st_size)
        result.modifiedNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        result.changedNanoseconds = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        if let previous, previous.exists, previous.inode == result.inode, previous.size == result.size,
            previous.modifiedNanoseconds == result.modifiedNanoseconds,
            previous.changedNanoseconds == result.changedNanoseconds
        {
            result.sha256 = previous.sha256
        } else {
            result.sha256 = Self.hashContent(path, mode: st.st_mode)
        }
        return result
    }

    /// SHA-256 of a regular file's content (its first 16 MiB: an agent must not be able to make the
    /// supervisor hash gigabytes every tick; growth beyond that still shows in the size), or a marker for
    /// other file types.
    static func hashContent(_ path: String, mode: mode_t) -> String {
        guard (mode & S_IFMT) == S_IFREG else { return "not-a-regular-file" }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return "unreadable" }
        defer { close(fd) }
        var hasher = Crypto.SHA256()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var total = 0
        while total < 16 << 20 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            total += n
        }
        return hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// The kinds of change between `self` (earlier) and `current` (later), named for the incident.
    public func changes(to current: TripwireBaseline) -> [String] {
        if exists && !current.exists { return ["delete"] }
        if !exists && current.exists { return ["create"] }
        if !exists { return [] }
        var result: [String] = []
        if device != current.device || inode != current.inode { result.append("replace") }
        if sha256 != current.sha256 { result.append("write") }
        if mode != current.mode {
            result.append("chmod")
        }
        if links != current.links { result.append("hard-link") }
        if result.isEmpty && (modifiedNanoseconds != current.modifiedNanoseconds) { result.append("write") }
        if result.isEmpty && changedNanoseconds != current.changedNanoseconds {
            // Same inode, content, mode and links, yet the inode changed: renamed away and back, or
            // modified and restored.
            result.append("changed-and-restored")
        }
        return result
    }
}
