import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing
import WardenCore
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The real `warden serve` of a harness's state directory, on its Unix socket and on loopback TCP with TLS
/// (a certificate made with openssl for the test).
final class Daemon: @unchecked Sendable {
    // @unchecked: the properties are set once in init; the process is only signalled afterwards.
    let harness: WardenHarness
    let process: Process
    let socket: String
    let url: String
    let output: String

    init(_ harness: WardenHarness, extra: [String] = []) throws {
        self.harness = harness
        let certificate = harness.outside + "/cert.pem"
        let key = harness.outside + "/key.pem"
        if !FileManager.default.fileExists(atPath: certificate) {
            let made = try harness.runProgram(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", certificate, "-subj", "/CN=localhost", "-days", "2",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                ])
            try #require(made.status == 0, "openssl: \(made.standardError)")
        }
        output = harness.outside + "/serve-\(UUID().uuidString.prefix(6)).log"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process = harness.process(
            WardenHarness.binary,
            arguments: ["serve", "--listen", "127.0.0.1:0", "--tls-cert", certificate, "--tls-key", key] + extra)
        process.standardOutput = FileHandle(forWritingAtPath: output)
        process.standardError = process.standardOutput
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        var socket = ""
        var url = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && (socket.isEmpty || url.isEmpty) && process.isRunning {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                if let range = line.range(of: "listening on unix:") { socket = String(line[range.upperBound...]) }
                if let range = line.range(of: "listening on "), line.contains("https://") {
                    url = String(line[range.upperBound...])
                }
            }
            usleep(50_000)
        }
        self.socket = socket
        self.url = url
        if socket.isEmpty || url.isEmpty {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            kill(process.processIdentifier, SIGKILL)
            throw WardenError(code: .systemCall, message: "warden serve did not start: \(text)")
        }
    }

    deinit { kill(process.processIdentifier, SIGKILL) }

    /// SIGKILL, as a crash or the OOM killer would end it.
    func crash() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// `warden serve token create … --json`'s secret.
    func token(_ name: String, _ role: String) throws -> String {
        let result = try harness.run(["serve", "token", "create", "--name", name, "--role", role, "--json"])
        return try #require(result.json["token"] as? String, "token create: \(result.standardError)")
    }
}

/// An answer from the API.
struct Reply: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: String

    var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) }
    var object: [String: Any] { (json as? [String: Any]) ?? [:] }
    var array: [[String: Any]] { (json as? [[String: Any]]) ?? [] }
    var errorCode: String? { (object["error"] as? [String: Any])?["code"] as? String }
}

/// An HTTP client for the daemon: over its Unix socket, or over TLS trusting the test's certificate.
final class APIClient: Sendable {
    let client: HTTPClient
    let base: String

    enum Transport { case unix, tls }

    init(_ daemon: Daemon, _ transport: Transport) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        switch transport {
        case .unix:
            let encoded =
                daemon.socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? daemon.socket
            base = "http+unix://\(encoded)"
        case .tls:
            base = daemon.url
        }
    }

    func shutdown() async { try? await client.shutdown() }

    func call(
        _ method: HTTPMethod, _ path: String, token: String? = nil, body: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Reply(
            status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    func get(_ path: String, token: String? = nil) async throws -> Reply { try await call(.GET, path, token: token) }

    func post(_ path: String, token: String? = nil, body: String? = nil, headers: [(String, String)] = [])
        async throws -> Reply
    {
        try await call(.POST, path, token: token, body: body, headers: headers)
    }
}

/// A loopback HTTP server (Peers/mirror.py) and a policy that asks a person before a run may fetch from it.
final class Mirror: @unchecked Sendable {
    // @unchecked: set once in init; deinit only signals the process.
    let process = Process()
    let port: Int
    let policy: String

    init(_ harness: WardenHarness) throws {
        let root = harness.outside + "/mirror"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "hello\n".write(toFile: root + "/hello.txt", atomically: true, encoding: .utf8)
        let peers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [peers + "/mirror.py", root]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let object = try firstJSONLine(of: out)
        port = try #require((object["port"] as? NSNumber)?.intValue)
        policy = harness.outside + "/ask.cedar"
        try """
        @id("ask-mirror")
        @ask("downloads from the mirror need a person")
        permit(principal, action == Action::"connect", resource == Host::"mirror.test")
        when { context.address == ip("127.0.0.1") && context.port == \(port) };
        """.write(toFile: policy, atomically: true, encoding: .utf8)
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Starts a run whose agent fetches from the mirror through the egress door (held for a person) and
    /// appends the HTTP status to `codes` in the workspace, then sleeps.
    /// The approval timeout is long: under the whole suite's load a test can take minutes to answer.
    func startAskingRun(_ harness: WardenHarness, name: String, timeout: String = "900s") throws -> String {
        let fetch = "curl -s -o /dev/null -w '%{http_code}\\n' -m 1000 http://mirror.test:\(port)/hello.txt"
        return try harness.start(
            [
                "--name", name, "--network", "proxy", "--policy", policy, "--resolve", "mirror.test=127.0.0.1",
                "--approval-timeout", timeout,
            ],
            command: ["/bin/bash", "-c", "\(fetch) >> codes-\(name); sleep 300"])
    }

    /// The status codes the run's fetches got so far.
    static func codes(_ harness: WardenHarness, _ name: String) -> [String] {
        (harness.contents(harness.workspace + "/codes-\(name)").map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(separator: "\n").map(String.init)
    }
}

extension WardenHarness {
    /// Every event of the whole audit log (`warden audit export`), as JSON objects.
    func auditEvents() throws -> [[String: Any]] {
        try run(["audit", "export", "--format", "jsonl"]).standardOutput.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["record"] as? String == "event" }
    }
}
