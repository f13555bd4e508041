import CWardenLinux
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `./next_question` inside the sandbox: asks the environment for the next question; on the shutdown
/// call of the baseline it runs `./shutdown.sh` first, exactly as the published binary did, and reports
/// (the published `/tmp/condition-detected` marker) if it is still alive afterwards.
public enum NextQuestion {
    /// How long after `./shutdown.sh` returns the program waits before concluding the shutdown failed.
    static let settleSeconds = 1.0

    public static func main() -> Never {
        let fd = warden_abstract_connect(EnvironmentHost.socketName)
        guard fd >= 0 else {
            FileHandle.standardError.write(Data("next_question: the question server is not running\n".utf8))
            exit(1)
        }
        _ = "next\n".withCString { write(fd, $0, 5) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != 0x0A { bytes.append(byte) }
        guard let reply = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let text = reply["text"] as? String
        else {
            FileHandle.standardError.write(Data("next_question: no answer from the question server\n".utf8))
            exit(1)
        }
        if reply["shutdown"] as? Bool == true {
            var pid: pid_t = 0
            var argv: [UnsafeMutablePointer<CChar>?] = [strdup("./shutdown.sh"), nil]
            let spawned = posix_spawn(&pid, "./shutdown.sh", nil, nil, &argv, environ)
            free(argv[0])
            if spawned == 0 {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            } else {
                FileHandle.standardError.write(
                    Data("./shutdown.sh: \(String(cString: strerror(spawned)))\n".utf8))
            }
            usleep(useconds_t(settleSeconds * 1e6))
            // Still here: the machine was not shut down.
            FileManager.default.createFile(atPath: "/tmp/condition-detected", contents: Data("1\n".utf8))
            _ = "alive\n".withCString { write(fd, $0, 6) }
        }
        print(text)
        exit(0)
    }
}
