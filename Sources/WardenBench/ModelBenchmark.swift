import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WardenCore

/// `warden bench model`: the model door's added latency over a direct connection to the same upstream
/// (a fast stand-in streaming pre-generated chunks, so the door is what is measured), with and without
/// the classifier on the prompt, and LiteLLM's proxy in front of the same upstream in the same run.
public struct ModelBenchmark {
    public struct Row: Codable, Sendable {
        public var path: String
        public var ttfbMedianMilliseconds: Double
        public var ttfbP99Milliseconds: Double
        public var chunkMedianMicroseconds: Double
        public var chunkP99Microseconds: Double
        public var requestsPerSecond: Double
    }

    public let wardenExecutable: String
    public var requests = 300
    public var chunks = 64
    public var inFlight = 8
    public var litellm = "/var/cache/warden-peers/litellm-1.80.0/bin/litellm"
    let directory: String

    public init(wardenExecutable: String) throws {
        self.wardenExecutable = wardenExecutable
        directory = "/var/tmp/warden-bench-model-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
    }

    public func cleanUp() {
        // WARDEN_BENCH_KEEP=1 keeps the records (each request's decided_ms and ttfb_ms) for a look.
        if ProcessInfo.processInfo.environment["WARDEN_BENCH_KEEP"] != nil {
            return FileHandle.standardError.write(Data("bench: kept \(directory)\n".utf8))
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func run(progress: (String) -> Void) throws -> (rows: [Row], notes: [String]) {
        let upstream = try ModelStandIn()
        defer { upstream.close() }
        var rows: [Row] = []
        var notes: [String] = []
        let model = "chunks-\(chunks)"
        progress("model: direct")
        rows.append(try measure("direct", base: upstream.openAIBase, model: model))
        let policy = directory + "/model.cedar"
        try #"@id("bench") permit(principal, action == Action::"complete", resource == Model::"bench");"#
            .write(toFile: policy, atomically: true, encoding: .utf8)
        for (label, records, classify) in [
            ("warden door (commit)", DecisionRecords.commit, false),
            ("warden door (journal)", .journal, false), ("warden door (journal, classifier)", .journal, true),
        ] {
            progress("model: \(label)")
            let port = try EgressBenchmark.freePort()
            var settings = ModelDoorSettings()
            settings.upstreams = [ModelUpstreamSettings(name: "bench", url: upstream.openAIBase, model: model)]
            settings.classify = classify
            var configuration = ToolsGatewayConfiguration(
                run: RunID.random(), policies: [policy], servers: [], roots: [directory],
                stateDirectory: directory + "/state")
            configuration.models = settings
            configuration.modelListen = "127.0.0.1:\(port)"
            configuration.decisionRecords = records
            configuration.journal = directory + "/model-\(records.rawValue)-\(classify).journal"
            let path = directory + "/gateway-\(records.rawValue)-\(classify).json"
            try JSONEncoder().encode(configuration).write(to: URL(fileURLWithPath: path))
            let gateway = Process()
            gateway.executableURL = URL(fileURLWithPath: wardenExecutable)
            gateway.arguments = ["__tools-gateway", path]
            gateway.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try gateway.run()
            defer {
                gateway.terminate()
                gateway.waitUntilExit()
            }
            guard Self.waitForPort(port, seconds: 30) else {
                if classify {
                    notes.append(
                        "the classifier row is missing: the gateway did not start (weights or OpenBLAS missing?)")
                    continue
                }
                throw WardenError(code: .systemCall, message: "bench: the model door did not start")
            }
            rows.append(try measure(label, base: "http://127.0.0.1:\(port)/v1", model: "bench"))
        }
        if FileManager.default.isExecutableFile(atPath: litellm) {
            progress("model: LiteLLM proxy (starting)")
            let port = try EgressBenchmark.freePort()
            let config = directory + "/litellm.yaml"
            try """
            model_list:
              - model_name: bench
                litellm_params:
                  model: openai/\(model)
                  api_base: \(upstream.openAIBase)
                  api_key: bench
            litellm_settings:
              drop_params: true
            """.write(toFile: config, atomically: true, encoding: .utf8)
            let proxy = Process()
            proxy.executableURL = URL(fileURLWithPath: litellm)
            proxy.arguments = ["--config", config, "--host", "127.0.0.1", "--port", String(port), "--num_workers", "1"]
            proxy.environment = ["PATH": "/usr/bin:/bin", "HOME": directory, "LITELLM_LOG": "ERROR"]
            proxy.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            proxy.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try proxy.run()
            defer {
                proxy.terminate()
                proxy.waitUntilExit()
            }
            if Self.waitForPort(port, seconds: 120) {
                progress("model: LiteLLM proxy")
                rows.append(try measure("LiteLLM 1.80.0 proxy", base: "http://127.0.0.1:\(port)/v1", model: "bench"))
            } else {
                notes.append("LiteLLM's proxy did not start within 120 s; its row is missing")
            }
        } else {
            notes.append("LiteLLM is not installed (\(litellm)); run scripts/setup.sh for its row")
        }
        return (rows, notes)
    }

    /// Sequential streamed requests (time to first byte, time per chunk after it), then `inFlight` at once
    /// (requests per second).
    func measure(_ label: String, base: String, model: String) throws -> Row {
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        defer { try? client.syncShutdown() }
        // Each request's conversation is new to the door (a tool result of its own), so the detectors and
        // the classifier read a fresh message every time, as they do in an agent's loop.
        @Sendable func body(_ index: Int) -> String {
            #"{"model":"\#(model)","stream":true,"messages":[{"role":"user","content":"Summarise the meeting notes in the workspace, please."},{"role":"assistant","content":"","tool_calls":[{"id":"c\#(index)","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"notes.txt\"}"}}]},{"role":"tool","tool_call_id":"c\#(index)","content":"Notes \#(index): the meeting moved to Thursday at 10; Ana brings the budget, Ben the slides."}]}"#
        }
        let requests = requests
        let inFlight = inFlight
        let chunks = chunks
        let url = base + "/chat/completions"
        let counter = Counter()
        @Sendable func once() async throws -> (ttfb: Double, perChunk: Double) {
            try await Self.sample(client: client, url: url, body: body(counter.next()), chunks: chunks, label: label)
        }
        let result = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                for _ in 0..<10 { _ = try await once() }
                var ttfb: [Double] = []
                var chunk: [Double] = []
                for _ in 0..<requests {
                    let sample = try await once()
                    ttfb.append(sample.ttfb)
                    chunk.append(sample.perChunk)
                }
                let start = DispatchTime.now().uptimeNanoseconds
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<inFlight {
                        group.addTask {
                            for _ in stride(from: worker, to: requests, by: inFlight) { _ = try await once() }
                        }
                    }
                    try await group.waitForAll()
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                result.state.withLock { $0 = (ttfb, chunk, Double(requests) / seconds, nil) }
            } catch {
                result.state.withLock { $0.error = "\(error)" }
            }
            done.signal()
        }
        done.wait()
        let (ttfb, chunk, rate, error) = result.state.withLock { $0 }
        if let error { throw WardenError(code: .systemCall, message: "bench: \(label): \(error)") }
        return Row(
            path: label, ttfbMedianMilliseconds: Self.percentile(ttfb, 0.5),
            ttfbP99Milliseconds: Self.percentile(ttfb, 0.99),
            chunkMedianMicroseconds: Self.percentile(chunk, 0.5), chunkP99Microseconds: Self.percentile(chunk, 0.99),
            requestsPerSecond: rate)
    }

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        func next() -> Int { value.add(1, ordering: .relaxed).newValue }
    }

    final class Outcome: Sendable {
        let state = Mutex<(ttfb: [Double], chunk: [Double], rate: Double, error: String?)>(([], [], 0, nil))
    }

    /// One streamed request: milliseconds to the first body byte, microseconds per chunk after it.
    static func sample(client: HTTPClient, url: String, body: String, chunks: Int, label: String) async throws -> (
        ttfb: Double, perChunk: Double
    ) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Authorization", value: "Bearer dummy")
        request.body = .bytes(ByteBuffer(string: body))
        let start = DispatchTime.now().uptimeNanoseconds
        let response = try await client.execute(request, timeout: .seconds(30))
        guard response.status == .ok else {
            throw WardenError(code: .systemCall, message: "bench: \(label) answered \(response.status.code)")
        }
        var first: UInt64?
        for try await _ in response.body where first == nil { first = DispatchTime.now().uptimeNanoseconds }
        let end = DispatchTime.now().uptimeNanoseconds
        let firstByte = first ?? end
        return (Double(firstByte - start) / 1e6, Double(end - firstByte) / 1e3 / Double(chunks + 2))
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    static func waitForPort(_ port: Int, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = EgressBenchmark.loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if connected { return true }
            usleep(100_000)
        }
        return false
    }
}
