/// A process identified by pid and start time, immune to pid reuse.
public enum ProcessIdentity {
    /// The start time (field 22 of `/proc/PID/stat`, clock ticks since boot), or nil if gone.
    public static func startTime(of pid: Int32) -> UInt64? {
        guard let stat = try? FileIO.readString("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); starttime is field 22.
        guard fields.count > 19, fields[0] != "Z" else { return nil }
        return UInt64(fields[19])
    }

    /// Whether `pid` is alive and, when `startTime` is known, the same process.
    public static func isAlive(pid: Int32, startTime: UInt64?) -> Bool {
        guard let actual = self.startTime(of: pid) else { return false }
        return startTime == nil || startTime == actual
    }
}
