import CWardenLinux
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// One operation the kernel refused a process of the run, as its audit log reported it.
public struct Denial: Sendable, Equatable {
    /// `seccomp` or `landlock`.
    public var mechanism: String
    public var pid: Int32
    /// The syscall (seccomp) or the blocked rights and object (Landlock).
    public var what: String
    public var command: String
    /// The audit session (`ses=`), if the record had one.
    public var session: UInt32?
}

/// Reads the kernel's audit records and keeps the denials of one run's processes.
///
/// The records come from the audit netlink multicast group when Warden may join it (root:
/// CAP_AUDIT_READ), which receives every record; otherwise from `/dev/kmsg`, where the kernel
/// rate-limits audit records (printk's 10 per 5 s, shared by the whole machine) and drops the rest.
///
/// The shim installs the seccomp deny-list with `SECCOMP_FILTER_FLAG_LOG` and asks Landlock (ABI 7) to
/// log the agent's denials, so every refused `ptrace`, `mount`, `unshare`, or write outside the
/// workspace becomes an audit record naming the host pid. A record is attributed to the run when that
/// pid is (still) in the run's cgroup; a process that has already been reaped cannot be attributed.
public final class DenialWatcher {
    private let fd: Int32
    /// Whether `fd` is the audit multicast socket (one record per datagram) rather than `/dev/kmsg`.
    public let isNetlink: Bool
    private let runID: RunID
    /// How often each kind (mechanism and what was attempted) was denied, in first-seen order.
    private var counts: [String: Int] = [:]
    private var kinds: [String] = []
    /// The run's audit session (set on the agent's first ancestor before it execs): records carrying
    /// it are the run's even after the process is gone. Without one, the pid's cgroup decides.
    public var session: UInt32?
    /// Records the kernel overwrote or dropped before Warden read them (kmsg overrun, netlink overflow).
    public private(set) var lost = 0

    /// Joins the audit multicast group, or opens `/dev/kmsg` positioned at its end; nil when neither
    /// can be read (not root, or a kernel without them): denials are then enforced but not recorded.
    public init?(runID: RunID, preferNetlink: Bool = true) {
        let multicast = preferNetlink ? warden_audit_multicast_open() : -1
        if multicast >= 0 {
            fd = multicast
            isNetlink = true
        } else {
            fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            lseek(fd, 0, SEEK_END)
            isNetlink = false
        }
        self.runID = runID
    }

    deinit { close(fd) }

    public var fileDescriptor: Int32 { fd }

    /// Reads every pending record and returns the new denials of this run (each kind once).
    public func drain() -> [Denial] {
        var denials: [Denial] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            // kmsg: overwritten records; netlink: the receive buffer overflowed. Keep reading either way.
            if n < 0 && (errno == EPIPE || errno == ENOBUFS) {
                lost += 1
                continue
            }
            if n <= 0 { break }
            let line =
                isNetlink ? Self.netlinkRecord(buffer, length: n) : String(decoding: buffer[0..<n], as: UTF8.self)
            guard let denial = Self.parse(line), belongsToRun(denial) else { continue }
            // One event per kind: the mechanism and what was attempted (a syscall name from a fixed table),
            // never the command name, which is the agent's to choose (PR_SET_NAME) and could otherwise
            // fill any cap with junk; every later denial of a kind is counted, none is dropped.
            let kind = denial.mechanism + " " + denial.what
            if let count = counts[kind] {
                counts[kind] = count + 1
            } else {
                counts[kind] = 1
                kinds.append(kind)
                denials.append(denial)
            }
        }
        return denials
    }

    /// Every kind denied so far with its count, e.g. `seccomp ptrace=30, seccomp mount=1`.
    public var summary: String {
        kinds.map { "\($0)=\(counts[$0] ?? 0)" }.joined(separator: ", ")
    }

    /// One audit netlink message as the `/dev/kmsg` line the kernel would have printed for it.
    static func netlinkRecord(_ bytes: [UInt8], length: Int) -> String {
        guard length >= 16 else { return "" }
        let messageLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        let type = Int(bytes[4]) | Int(bytes[5]) << 8
        let end = min(max(messageLength, 16), length)
        let payload = String(decoding: bytes[16..<end].prefix { $0 != 0 }, as: UTF8.self)
        return "6,0,0,-;audit: type=\(type) \(payload)"
    }

    private func belongsToRun(_ denial: Denial) -> Bool {
        if let session { return denial.session == session }
        guard let text = try? FileIO.readString("/proc/\(denial.pid)/cgroup") else { return false }
        return text.split(separator: "\n").contains { $0.hasSuffix("/warden/" + runID.rawValue) }
    }

    /// Parses one `/dev/kmsg` record; nil unless it is a seccomp (1326) or Landlock (1423) audit record.
    static func parse(_ record: String) -> Denial? {
        guard let message = record.split(separator: ";", maxSplits: 1).last.map(String.init),
            message.hasPrefix("audit: type=")
        else { return nil }
        let fields = auditFields(message)
        guard let pid = fields["pid"].flatMap({ Int32($0) }) else { return nil }
        let command = fields["comm"] ?? fields["exe"] ?? "?"
        if message.hasPrefix("audit: type=1326 ") {
            let number = fields["syscall"].flatMap { UInt32($0) } ?? 0
            let name = SeccompFilter.name(ofX86_64: number)
            return Denial(
                mechanism: "seccomp", pid: pid, what: name, command: command,
                session: fields["ses"].flatMap { UInt32($0) })
        }
        if message.hasPrefix("audit: type=1423 ") {
            let object = fields["path"] ?? fields["opid"].map { "pid \($0)" } ?? fields["name"] ?? ""
            let what = [fields["blockers"] ?? "access", object].filter { !$0.isEmpty }.joined(separator: " ")
            return Denial(
                mechanism: "landlock", pid: pid, what: what, command: command,
                session: fields["ses"].flatMap { UInt32($0) })
        }
        return nil
    }

    /// `key=value` and `key="quoted value"` pairs of an audit message.
    static func auditFields(_ message: String) -> [String: String] {
        var fields: [String: String] = [:]
        var rest = Substring(message)
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].split(separator: " ").last.map(String.init) ?? ""
            var value = rest[rest.index(after: equals)...]
            if value.first == "\"" {
                value = value.dropFirst()
                let end = value.firstIndex(of: "\"") ?? value.endIndex
                fields[key] = String(value[..<end])
                rest = value[end...].dropFirst()
            } else {
                let end = value.firstIndex(of: " ") ?? value.endIndex
                fields[key] = String(value[..<end])
                rest = value[end...]
            }
        }
        return fields
    }
}
