import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import WardenAudit
import WardenCore
import WardenGateway

#if canImport(Glibc)
    import Glibc
#endif

/// `warden bench serve`: the control-plane daemon (the real `warden serve` binary, over TLS on loopback and
/// its Unix socket) against the same answers through the CLI, with `runs` real sandboxed runs registered.
///
/// - the runs listing: wrk (Debian) with many connections over TLS, one sequential client on the Unix
///   socket, and `warden ps --all --json` started per request;
/// - an approval's round trip: a request held by the approvals broker (as a door holds it), approved
///   through `POST /v1/approvals/ID/approve`, and through `warden approve ID`;
/// - the live stream's delay: an event recorded in the audit log (as the doors record) until a client of
///   `GET /v1/events` (Server-Sent Events) has it.
public struct ServeBenchmark {
    public struct Row: Codable, Sendable {
        public var path: String
        public var requests: Int
        public var medianMilliseconds: Double
        public var p99Milliseconds: Double
        public var perSecond: Double?
    }

    public let wardenExecutable: String
    public var runs = 100
    public var requests = 300
    public var seconds = 5
    public var connections = 16
    let directory: String
    var state: String { directory + "/state" }

    public init(wardenExecutable: String) throws {
        self.wardenExecutable = wardenExecutable
        directory = "/var/tmp/warden-bench-serve-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: directory + "/workspace", withIntermediateDirectories: true)
    }

    public func cleanUp() {
        _ = try? warden(["kill", "--all"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func run(progress: @escaping @Sendable (String) -> Void) async throws -> (rows: [Row], notes: [String]) {
        guard access("/usr/bin/wrk", X_OK) == 0 else {
            throw WardenError(
                code: .notFound, message: "wrk is not installed (apt-get install wrk, or scripts/setup.sh)")
        }
        let certificate = directory + "/cert.pem"
        let key = directory + "/key.pem"
        _ = try program(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out",
                certificate, "-subj", "/CN=localhost", "-days", "2",
            ])
        var ids: [RunID] = []
        for index in 0..<runs {
            progress("serve: starting run \(index + 1) of \(runs)")
            let out = try warden([
                "run", "--detach", "--json", "--workspace", directory + "/workspace", "--name", "bench-\(index)", "--",
                "/bin/sleep", "3600",
            ])
            guard let data = out.data(using: .utf8),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let id = (object["id"] as? String).flatMap(RunID.init)
            else { throw WardenError(code: .systemCall, message: "warden run failed: \(out)") }
            ids.append(id)
        }
        let daemon = try Daemon(warden: wardenExecutable, state: state, certificate: certificate, key: key)
        defer { daemon.stop() }
        let token = try tokenSecret()
        // The runs listing.
        progress("serve: GET /v1/runs with wrk")
        let loaded = try wrk(url: daemon.url + "/v1/runs", token: token)
        let client = Self.makeClient()
        do {
            let (measured, more) = try await measure(
                client: client, daemon: daemon, token: token, ids: ids, progress: progress)
            try? await client.shutdown()
            return ([loaded] + measured, more)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func measure(
        client: HTTPClient, daemon: Daemon, token: String, ids: [RunID], progress: @escaping @Sendable (String) -> Void
    ) async throws -> ([Row], [String]) {
        var rows: [Row] = []
        var notes: [String] = []
        let unixBase =
            "http+unix://" + (daemon.socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        let sample = try await get(client, unixBase + "/v1/runs", token: nil)
        let listed = (try? JSONSerialization.jsonObject(with: Data(sample.utf8)) as? [Any])?.count ?? 0
        if listed != runs { notes.append("the listing held \(listed) runs, not \(runs)") }
        progress("serve: GET /v1/runs on the Unix socket")
        rows.append(
            try await timed("GET /v1/runs, Unix socket, 1 client (\(runs) runs)", count: requests) {
                _ = try await get(client, unixBase + "/v1/runs", token: nil)
            })
        progress("serve: warden ps")
        rows.append(
            try await timed("warden ps --all --json, the CLI (\(runs) runs)", count: max(20, requests / 10)) {
                _ = try warden(["ps", "--all", "--json"])
            })

        // An approval's round trip.
        let broker = try ApprovalBroker(path: state + "/approvals.db") { [state] _ in
            AuditEventSink(stateDirectory: state)
        }
        let run = ids[0]
        var counter = 0
        func hold() throws -> String {
            counter += 1
            let request = JSONValue.object([("bench", .number(String(counter)))])
            guard
                case .held(let approval) = try broker.ask(
                    run: run, door: .tools, request: request, summary: "bench \(counter)", reasons: ["bench"],
                    timeout: .seconds(600))
            else { throw WardenError(code: .conflict, message: "the broker granted a bench request") }
            return approval.id
        }
        progress("serve: approvals through the API")
        var pending: [String] = []
        for _ in 0..<requests { pending.append(try hold()) }
        let apiPending = Mutex(pending)
        rows.append(
            try await timed("POST /v1/approvals/ID/approve, TLS (decided, recorded)", count: requests) {
                guard let id = apiPending.withLock({ $0.popLast() }) else { return }
                let body = try await post(client, daemon.url + "/v1/approvals/\(id)/approve", token: token)
                guard body.contains("\"approved\"") else {
                    throw WardenError(code: .systemCall, message: "approve failed: \(body)")
                }
            })
        progress("serve: warden approve")
        let cliCount = max(20, requests / 10)
        var cliPending: [String] = []
        for _ in 0..<cliCount { cliPending.append(try hold()) }
        let cliQueue = Mutex(cliPending)
        rows.append(
            try await timed("warden approve ID, the CLI", count: cliCount) {
                guard let id = cliQueue.withLock({ $0.popLast() }) else { return }
                _ = try warden(["approve", id])
            })

        // The live stream's delay.
        progress("serve: the event stream")
        rows.append(try await streamDelay(client: client, base: unixBase, run: run))
        notes.append(
            "the stream's delay is measured by an SSE client on the Unix socket (the dashboard's EventSource reads the same stream)"
        )
        return (rows, notes)
    }

    // MARK: - Measurements

    private func timed(_ path: String, count: Int, _ body: () async throws -> Void) async throws -> Row {
        var samples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<count {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try await body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Row(
            path: path, requests: count, medianMilliseconds: ModelBenchmark.percentile(samples, 0.5),
            p99Milliseconds: ModelBenchmark.percentile(samples, 0.99), perSecond: Double(count) / total)
    }

    /// wrk's own latency distribution and rate, over `connections` keep-alive TLS connections.
    private func wrk(url: String, token: String) throws -> Row {
        let output = try program(
            "/usr/bin/wrk",
            [
                "-t2", "-c\(connections)", "-d\(seconds)s", "--latency", "-H", "Authorization: Bearer \(token)", url,
            ])
        func milliseconds(_ text: Substring) -> Double {
            let units: [(String, Double)] = [("us", 0.001), ("ms", 1), ("s", 1000)]
            for (unit, scale) in units where text.hasSuffix(unit) {
                return (Double(text.dropLast(unit.count)) ?? 0) * scale
            }
            return Double(text) ?? 0
        }
        var p50 = 0.0
        var p99 = 0.0
        var rate = 0.0
        var total = 0
        var errors = ""
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.first == "50%", fields.count == 2 { p50 = milliseconds(fields[1]) }
            if fields.first == "99%", fields.count == 2 { p99 = milliseconds(fields[1]) }
            if fields.first == "Requests/sec:", fields.count == 2 { rate = Double(fields[1]) ?? 0 }
            if fields.count > 2, fields[1] == "requests" { total = Int(fields[0]) ?? 0 }
            if line.contains("Non-2xx") || line.contains("Socket errors") { errors += String(line) }
        }
        guard errors.isEmpty, rate > 0 else {
            throw WardenError(code: .systemCall, message: "wrk reported errors: \(errors.isEmpty ? output : errors)")
        }
        return Row(
            path: "GET /v1/runs, TLS, wrk \(connections) connections (\(runs) runs)", requests: total,
            medianMilliseconds: p50, p99Milliseconds: p99, perSecond: rate)
    }

    /// Records events the way the doors do and times each until an SSE client of /v1/events has it.
    private func streamDelay(client: HTTPClient, base: String, run: RunID) async throws -> Row {
        var request = HTTPClientRequest(url: base + "/v1/events")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await client.execute(request, timeout: .seconds(120))
        let count = requests
        let delays = Mutex<[Double]>([])
        let reader = Task {
            var pendingText = ""
            for try await buffer in response.body {
                let now = RunEvent.now()
                pendingText += String(buffer: buffer)
                while let end = pendingText.range(of: "\n\n") {
                    let message = pendingText[..<end.lowerBound]
                    pendingText = String(pendingText[end.upperBound...])
                    guard message.contains("\"subject\":\"bench-stream\""),
                        let range = message.range(of: "\"time_ns\":\""),
                        let close = message[range.upperBound...].firstIndex(of: "\""),
                        let recorded = Int64(message[range.upperBound..<close])
                    else { continue }
                    let done = delays.withLock { all in
                        all.append(Double(now - recorded) / 1e6)
                        return all.count >= count
                    }
                    if done { return }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let sink = AuditEventSink(stateDirectory: state)
        for index in 0..<count {
            try sink.record(
                RunEvent(
                    run: run, kind: .warning, actor: .warden, subject: "bench-stream", details: ["n": String(index)]))
            try await Task.sleep(for: .milliseconds(5))
        }
        let deadline = Task {
            try await Task.sleep(for: .seconds(10))
            reader.cancel()
        }
        _ = try? await reader.value
        deadline.cancel()
        let samples = delays.withLock { $0 }
        guard samples.count == count else {
            throw WardenError(code: .systemCall, message: "the stream delivered \(samples.count) of \(count) events")
        }
        return Row(
            path: "event recorded → SSE client has it (GET /v1/events)", requests: count,
            medianMilliseconds: ModelBenchmark.percentile(samples, 0.5),
            p99Milliseconds: ModelBenchmark.percentile(samples, 0.99), perSecond: nil)
    }

    // MARK: - Helpers

    static func makeClient() -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    private func get(_ client: HTTPClient, _ url: String, token: String?) async throws -> String {
        var request = HTTPClientRequest(url: url)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await client.execute(request, timeout: .seconds(30))
        return String(buffer: try await response.body.collect(upTo: 64 << 20))
    }

    private func post(_ client: HTTPClient, _ url: String, token: String) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await client.execute(request, timeout: .seconds(30))
        return String(buffer: try await response.body.collect(upTo: 1 << 20))
    }

    private func tokenSecret() throws -> String {
        let out = try warden(["serve", "token", "create", "--name", "bench", "--role", "operator", "--json"])
        guard let object = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
            let token = object["token"] as? String
        else { throw WardenError(code: .systemCall, message: "token create failed: \(out)") }
        return token
    }

    @discardableResult
    func warden(_ arguments: [String]) throws -> String { try program(wardenExecutable, arguments) }

    /// Runs a program with the bench's state directory; its standard output, or an error with its stderr.
    func program(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["WARDEN_STATE_DIR": state]) { $1 }
        let out = directory + "/.out", err = directory + "/.err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: out)
        process.standardError = FileHandle(forWritingAtPath: err)
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            let error = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            throw WardenError(
                code: .systemCall,
                message: "\((executable as NSString).lastPathComponent) \(arguments.first ?? ""): \(error)")
        }
        return text
    }

    /// The real `warden serve` of the bench's state directory.
    // @unchecked: set once in init; afterwards the process is only terminated and waited for.
    final class Daemon: @unchecked Sendable {
        let process: Process
        let socket: String
        let url: String

        init(warden: String, state: String, certificate: String, key: String) throws {
            let log = state + "/serve.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: warden)
            process.arguments = ["serve", "--listen", "127.0.0.1:0", "--tls-cert", certificate, "--tls-key", key]
            process.environment = ProcessInfo.processInfo.environment.merging(["WARDEN_STATE_DIR": state]) { $1 }
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = process.standardOutput
            try process.run()
            var socket = ""
            var url = ""
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline && (socket.isEmpty || url.isEmpty) && process.isRunning {
                for line in ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n") {
                    if let r = line.range(of: "listening on unix:") { socket = String(line[r.upperBound...]) }
                    if let r = line.range(of: "listening on https://") { url = "https://" + line[r.upperBound...] }
                }
                usleep(50_000)
            }
            guard !socket.isEmpty, !url.isEmpty else {
                process.terminate()
                throw WardenError(
                    code: .systemCall,
                    message: "warden serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            self.process = process
            self.socket = socket
            self.url = url
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
