import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// `warden bench egress`: the egress door against a direct connection, tinyproxy and squid (each given
/// the same one-host allowlist), in one run on loopback, with the same client program on every path.
///
/// The door is measured as an agent sees it: the client runs inside a real `--network proxy` sandbox;
/// the direct path and the other proxies are measured from the host. Every door connection is a Cedar
/// decision recorded durably before it is made.
public struct EgressBenchmark {
    public struct Row: Codable, Sendable {
        public var path: String
        /// Connection set-up (connect, CONNECT, one echoed byte), microseconds.
        public var setupMedianMicroseconds: Double
        public var setupP99Microseconds: Double
        public var downloadMegabytesPerSecond: Double?
        public var uploadMegabytesPerSecond: Double?
        public var connectionsPerSecond: Double

        enum CodingKeys: String, CodingKey {
            case path
            case setupMedianMicroseconds = "setup_p50_us"
            case setupP99Microseconds = "setup_p99_us"
            case downloadMegabytesPerSecond = "download_mb_s"
            case uploadMegabytesPerSecond = "upload_mb_s"
            case connectionsPerSecond = "connections_per_s"
        }
    }

    public let wardenExecutable: String
    public var repetitions = 300
    public var transferBytes: UInt64 = 1 << 30
    public var rateSeconds = 3.0
    let directory: String

    public init(wardenExecutable: String) throws {
        self.wardenExecutable = wardenExecutable
        directory = "/var/tmp/warden-bench-egress-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory + "/ws", withIntermediateDirectories: true)
        try Self.peer.write(toFile: directory + "/peer.py", atomically: true, encoding: .utf8)
        try Self.client.write(toFile: directory + "/ws/client.py", atomically: true, encoding: .utf8)
    }

    public func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }

    public func run(progress: (String) -> Void) throws -> [Row] {
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        let peer = Process()
        peer.executableURL = URL(fileURLWithPath: python)
        peer.arguments = [directory + "/peer.py"]
        let peerOut = Pipe()
        peer.standardOutput = peerOut
        try peer.run()
        defer {
            kill(peer.processIdentifier, SIGKILL)
            peer.waitUntilExit()
        }
        let portsLine = String(decoding: peerOut.fileHandleForReading.availableData, as: UTF8.self)
        let portsJSON = portsLine.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let ports = try JSONSerialization.jsonObject(with: Data(portsJSON.utf8)) as? [String: Any],
            ports["echo"] is NSNumber
        else { throw WardenError(code: .systemCall, message: "bench egress: the loopback servers did not start") }
        let allPorts = ["echo", "source", "sink"].compactMap { (ports[$0] as? NSNumber)?.intValue }
        var rows: [Row] = []
        func client(_ label: String, proxy: String, runner: [String] = [], extra: [String] = []) throws -> Row {
            progress("egress: \(label)")
            let process = Process()
            let argv =
                runner + [python, runner.isEmpty ? directory + "/ws/client.py" : "client.py", proxy, portsJSON]
                + [String(repetitions), String(transferBytes), String(rateSeconds)] + extra
            process.executableURL = URL(fileURLWithPath: argv[0])
            process.arguments = Array(argv.dropFirst())
            var environment = ProcessInfo.processInfo.environment
            environment["WARDEN_STATE_DIR"] = directory + "/state"
            process.environment = environment
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let text = String(decoding: data, as: UTF8.self)
            guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else {
                throw WardenError(
                    code: .systemCall, message: "bench egress: \(label): the client failed: \(text.suffix(300))")
            }
            func number(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
            return Row(
                path: label, setupMedianMicroseconds: number("setup_p50_us") ?? 0,
                setupP99Microseconds: number("setup_p99_us") ?? 0, downloadMegabytesPerSecond: number("download_mb_s"),
                uploadMegabytesPerSecond: number("upload_mb_s"), connectionsPerSecond: number("connections_per_s") ?? 0)
        }
        rows.append(try client("direct", proxy: "direct"))

        // tinyproxy: filter on the host name, CONNECT to the servers' ports only.
        let tinyPort = try Self.freePort()
        let filter = directory + "/tinyproxy.filter"
        try "^localhost$\n".write(toFile: filter, atomically: true, encoding: .utf8)
        try
            ([
                "Port \(tinyPort)", "Listen 127.0.0.1", "Timeout 600", "MaxClients 512", "LogLevel Critical",
                "Filter \"\(filter)\"", "FilterExtended Yes", "FilterDefaultDeny Yes", "FilterURLs No",
            ] + allPorts.map { "ConnectPort \($0)" }).joined(separator: "\n")
            .write(toFile: directory + "/tinyproxy.conf", atomically: true, encoding: .utf8)
        if let tinyproxy = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"].first(
            where: FileManager.default.isExecutableFile)
        {
            let server = try Self.startServer(tinyproxy, ["-d", "-c", directory + "/tinyproxy.conf"], port: tinyPort)
            defer { Self.stop(server) }
            rows.append(try client("tinyproxy", proxy: "127.0.0.1:\(tinyPort)"))
        }

        // squid: dstdomain allowlist, no cache, its own hosts file (IPv4 only, as the others connect).
        let squidPort = try Self.freePort()
        try "127.0.0.1 localhost\n".write(toFile: directory + "/hosts", atomically: true, encoding: .utf8)
        try [
            "http_port 127.0.0.1:\(squidPort)", "acl allowed dstdomain localhost", "http_access allow allowed",
            "http_access deny all", "cache deny all", "cache_mem 8 MB", "access_log none",
            "cache_log \(directory)/squid.log", "pid_filename \(directory)/squid.pid", "hosts_file \(directory)/hosts",
            "visible_hostname warden-bench", "shutdown_lifetime 0 seconds", "coredump_dir \(directory)",
            "max_filedescriptors 4096",
        ].joined(separator: "\n").write(toFile: directory + "/squid.conf", atomically: true, encoding: .utf8)
        if FileManager.default.isExecutableFile(atPath: "/usr/sbin/squid") {
            let server = try Self.startServer(
                "/usr/sbin/squid", ["-N", "-f", directory + "/squid.conf"], port: squidPort)
            defer { Self.stop(server) }
            rows.append(try client("squid", proxy: "127.0.0.1:\(squidPort)"))
        }

        // The door, from inside a sandbox, with a 10- and a 1,000-policy set, each decision committed
        // before its connection (the default), and with the 10-policy set under the decision journal.
        for (count, records) in [(10, "commit"), (10, "journal"), (1000, "commit")] {
            var policies = [
                """
                @id("bench")
                permit(principal, action == Action::"connect", resource == Host::"localhost")
                when { context.address == ip("127.0.0.1") };
                """
            ]
            for i in 1..<count {
                policies.append(
                    "@id(\"other\(i)\")\npermit(principal, action == Action::\"connect\", resource == Host::\"h\(i).example\") when { context.port == 443 };"
                )
            }
            let file = directory + "/egress-\(count).cedar"
            try policies.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let runner = [
                wardenExecutable, "run", "--workspace", directory + "/ws", "--network", "proxy", "--policy", file,
                "--resolve", "localhost=127.0.0.1", "--connections-max", "4096", "--decision-records", records, "--",
            ]
            rows.append(
                try client(
                    "warden door (\(count) policies, \(records))", proxy: "127.0.0.1:3128", runner: runner,
                    extra: count == 10 && records == "commit" ? [] : ["no-transfer"]))
        }
        return rows
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw WardenError(code: .systemCall, message: "bench egress: no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    static func startServer(_ executable: String, _ arguments: [String], port: Int) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if connected { return process }
            usleep(50_000)
        }
        stop(process)
        throw WardenError(code: .systemCall, message: "bench egress: \(executable) did not listen on \(port)")
    }

    static func stop(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Loopback servers: echo (one byte back per byte), source (sends N bytes, N as 8 bytes first), sink
    /// (reads to EOF, answers the count).
    static let peer = #"""
        import json, socket, struct, threading

        def serve(handler):
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0)); s.listen(1024)
            def loop():
                while True:
                    c, _ = s.accept()
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    threading.Thread(target=handler, args=(c,), daemon=True).start()
            threading.Thread(target=loop, daemon=True).start()
            return s.getsockname()[1]

        def echo(c):
            try:
                while True:
                    d = c.recv(65536)
                    if not d: break
                    c.sendall(d)
            except OSError: pass
            c.close()

        def source(c):
            try:
                n = struct.unpack(">Q", c.recv(8))[0]
                block = b"z" * (1 << 20)
                while n > 0:
                    k = min(n, len(block)); c.sendall(block[:k]); n -= k
            except OSError: pass
            c.close()

        def sink(c):
            total = 0
            try:
                while True:
                    d = c.recv(1 << 20)
                    if not d: break
                    total += len(d)
                c.sendall(struct.pack(">Q", total))
            except OSError: pass
            c.close()

        print(json.dumps({"echo": serve(echo), "source": serve(source), "sink": serve(sink)}), flush=True)
        threading.Event().wait()
        """#

    /// The same client on every path: `client.py PROXY|direct PORTS REPS BYTES SECONDS [no-transfer]`.
    static let client = #"""
        import json, socket, struct, sys, threading, time

        proxy, ports, reps, nbytes, seconds = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        transfer = "no-transfer" not in sys.argv[6:]

        def open_conn(port):
            if proxy == "direct":
                s = socket.create_connection(("127.0.0.1", port))
            else:
                host, p = proxy.split(":")
                s = socket.create_connection((host, int(p)))
                s.sendall(b"CONNECT localhost:%d HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % (port, port))
                head = b""
                while b"\r\n\r\n" not in head:
                    d = s.recv(4096)
                    if not d: raise OSError("proxy closed")
                    head += d
                if b" 200" not in head.split(b"\r\n")[0]: raise OSError(head.split(b"\r\n")[0].decode())
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s

        def setup_once():
            t0 = time.perf_counter_ns()
            s = open_conn(ports["echo"]); s.sendall(b"x"); s.recv(1)
            t1 = time.perf_counter_ns(); s.close()
            return (t1 - t0) / 1000.0

        for _ in range(10): setup_once()
        samples = sorted(setup_once() for _ in range(reps))
        result = {"setup_p50_us": samples[len(samples) // 2], "setup_p99_us": samples[min(len(samples) - 1, int(len(samples) * 0.99))]}

        if transfer:
            s = open_conn(ports["source"]); t0 = time.perf_counter(); s.sendall(struct.pack(">Q", nbytes)); got = 0
            buf = bytearray(1 << 20)
            while got < nbytes:
                k = s.recv_into(buf)
                if not k: break
                got += k
            result["download_mb_s"] = got / (time.perf_counter() - t0) / 1e6; s.close()
            s = open_conn(ports["sink"]); block = b"u" * (1 << 20); sent = 0; t0 = time.perf_counter()
            while sent < nbytes:
                s.sendall(block); sent += len(block)
            s.shutdown(socket.SHUT_WR); s.recv(8)
            result["upload_mb_s"] = sent / (time.perf_counter() - t0) / 1e6; s.close()

        count = [0]; lock = threading.Lock(); stop = time.perf_counter() + seconds
        def worker():
            while time.perf_counter() < stop:
                try:
                    s = open_conn(ports["echo"]); s.sendall(b"x"); s.recv(1); s.close()
                except OSError:
                    continue
                with lock: count[0] += 1
        threads = [threading.Thread(target=worker) for _ in range(4)]
        t0 = time.perf_counter()
        for t in threads: t.start()
        for t in threads: t.join()
        result["connections_per_s"] = count[0] / (time.perf_counter() - t0)
        print(json.dumps(result), flush=True)
        """#
}
