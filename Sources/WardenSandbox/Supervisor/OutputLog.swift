import CWardenLinux
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// A detached run's output, relayed by the supervisor into `output.log` in the run's directory and
/// bounded: the state directory (beside the audit log) cannot be flooded by an agent that prints.
///
/// The agent writes into a pipe; the supervisor copies what it reads into `output.log`. With a cap, the
/// log is kept as two segments of half the cap each: when `output.log` is full it becomes
/// `output.log.1` (replacing the older one) and a new `output.log` begins, so at most the cap is kept
/// and it is always the latest output.
final class OutputLog {
    let directory: String
    /// Bytes kept at most (nil: no cap).
    let maximum: UInt64?
    /// The agent's end (its stdout and stderr); the caller closes it once the agent has it.
    let writeFD: Int32
    let readFD: Int32
    private var fileFD: Int32
    private var segmentBytes: UInt64 = 0
    /// How often the log was rotated because the cap was reached.
    private(set) var rotations = 0
    /// Bytes the agent wrote in all.
    private(set) var totalBytes: UInt64 = 0

    var path: String { directory + "/output.log" }

    init(directory: String, maximum: UInt64?) throws {
        self.directory = directory
        self.maximum = maximum
        var fds: [Int32] = [0, 0]
        guard warden_pipe_cloexec(&fds) == 0 else { throw FileIO.systemError("pipe2 for the output log") }
        readFD = fds[0]
        writeFD = fds[1]
        _ = fcntl(readFD, F_SETFL, fcntl(readFD, F_GETFL) | O_NONBLOCK)
        fileFD = -1
        fileFD = try Self.openLog(directory + "/output.log")
    }

    deinit {
        close(readFD)
        if fileFD >= 0 { close(fileFD) }
    }

    private static func openLog(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileIO.systemError("open the run's output log \(path)") }
        return fd
    }

    /// Copies everything the pipe holds now into the log.
    ///
    /// - Returns: true when this call reached the cap for the first time (the caller records it).
    @discardableResult
    func drain() -> Bool {
        let rotatedBefore = rotations
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            totalBytes += UInt64(n)
            write(buffer[0..<n])
        }
        return rotatedBefore == 0 && rotations > 0
    }

    private func write(_ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while !rest.isEmpty {
            if let maximum {
                let segment = max(maximum / 2, 1)
                if segmentBytes >= segment { rotate() }
                let room = Int(min(UInt64(rest.count), segment - segmentBytes))
                let chunk = rest.prefix(room)
                writeAll(chunk)
                segmentBytes += UInt64(chunk.count)
                rest = rest.dropFirst(room)
            } else {
                writeAll(rest)
                rest = []
            }
        }
    }

    private func writeAll(_ chunk: ArraySlice<UInt8>) {
        guard fileFD >= 0 else { return }
        chunk.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fileFD, base + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                // A full disk loses output, never the run or its record.
                if n <= 0 { return }
                offset += n
            }
        }
    }

    private func rotate() {
        close(fileFD)
        rename(path, path + ".1")
        fileFD = (try? Self.openLog(path)) ?? -1
        segmentBytes = 0
        rotations += 1
    }
}
