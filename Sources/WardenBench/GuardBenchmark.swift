import Foundation
import WardenCore
import WardenGuard

/// `warden bench guard`: the validation layer's speed and quality.
/// - Detector throughput (MB/s) on tool-output-like text (JSON, logs, prose, code), every detector in
///   one pass and each alone, next to a plain read of the same bytes in the same run.
/// - The classifier: per 128-token window p50/p99 and windows/s, one thread, next to ONNX Runtime
///   (Python, one thread) running the same weights (scripts/guard/minilm_reference.py).
/// - Quality: precision/recall/F1 of each detector on the labelled corpus, and of the classifier and
///   the injection detector on AgentDojo's held-out suite (slack), built offline by train-head.py.
public struct GuardBenchmark {
    public var megabytes = 64
    public var windows = 200
    public var repository: String
    public var wardenExecutable: String

    public init(repository: String, wardenExecutable: String) {
        self.repository = repository
        self.wardenExecutable = wardenExecutable
    }

    public struct Throughput: Encodable, Sendable {
        public var path: String
        public var megabytesPerSecond: Double
        public var ratio: Double
    }

    public struct Latency: Encodable, Sendable {
        public var path: String
        public var medianMilliseconds: Double
        public var p99Milliseconds: Double
        public var windowsPerSecond: Double
        public var ratio: Double?
    }

    public struct Quality: Encodable, Sendable {
        public var check: String
        public var set: String
        public var texts: Int
        public var precision: Double
        public var recall: Double
        public var f1: Double
    }

    public struct Replay: Encodable, Sendable {
        public var suite: String
        public var policy: String
        public var userTasks: Int
        public var kept: Int
        public var quiet: Int
        public var injectionTasks: Int
        public var withoutCalls: Int
        public var stopped: Int
    }

    public struct Report: Encodable, Sendable {
        public var throughput: [Throughput]
        public var latency: [Latency]
        public var quality: [Quality]
        public var replay: [Replay]
        public var notes: [String]
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Text like tool outputs: JSON records, log lines, prose and code, with no injected content.
    static func toolOutputs(bytes target: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let prose = [
            "The meeting has been moved to Thursday at 10:00; please update your calendars accordingly.",
            "Customer reported that the invoice total does not match the purchase order (PO-4471).",
            "Hotel review: clean rooms, friendly staff, breakfast could be better. 4/5 stars.",
            "func handle(_ request: Request) throws -> Response { guard let id = request.id else { throw Err.bad } }",
        ]
        var out: [UInt8] = []
        out.reserveCapacity(target + 4096)
        var i = 0
        while out.count < target {
            let id = UInt64.random(in: 0..<UInt64.max, using: &generator)
            let line: String
            switch i % 4 {
            case 0:
                line =
                    #"{"id": "\#(String(id, radix: 16))", "status": "ok", "amount": \#(id % 10_000), "note": "\#(prose[Int(id % 4)])"}"#
            case 1:
                line =
                    "2026-12-01T10:00:\(id % 60)Z INFO request_id=\(String(id, radix: 36)) path=/api/v1/items latency_ms=\(id % 90)"
            case 2: line = prose[Int(id % 4)] + " See https://docs.example.org/guide/\(id % 100) for details."
            default: line = "  let total = items.reduce(0) { $0 + $1.price } // \(id % 1000) items"
            }
            out.append(contentsOf: Array(line.utf8))
            out.append(0x0A)
            i += 1
        }
        return out
    }

    /// One pass of `scan` over `data` in 64 KB pieces (a large tool result each); MB/s.
    static func measure(_ data: [UInt8], _ scan: (UnsafeBufferPointer<UInt8>) -> Int) -> Double {
        let piece = 64 << 10
        var sink = 0
        let start = now()
        data.withUnsafeBufferPointer { all in
            var offset = 0
            while offset < all.count {
                let end = min(all.count, offset + piece)
                sink &+= scan(UnsafeBufferPointer(rebasing: all[offset..<end]))
                offset = end
            }
        }
        let seconds = now() - start
        if sink == Int.min { print("") }
        return Double(data.count) / 1e6 / seconds
    }

    public func run(progress: (String) -> Void) throws -> Report {
        var notes: [String] = []
        progress("guard: building \(megabytes) MB of tool outputs")
        let data = Self.toolOutputs(bytes: megabytes << 20)
        var throughput: [Throughput] = []
        progress("guard: a plain read of the bytes")
        let read = Self.measure(data) { bytes in bytes.reduce(0) { $0 &+ Int($1) } }
        throughput.append(Throughput(path: "plain read (sum of the bytes)", megabytesPerSecond: read, ratio: 1))
        progress("guard: every detector in one pass")
        let all = Self.measure(data) { Guard.standard.scan(bytes: $0).count }
        throughput.append(Throughput(path: "all detectors, one pass", megabytesPerSecond: all, ratio: all / read))
        for detector in Guard.standard.detectorsAlone {
            progress("guard: \(detector.name)")
            let alone = Self.measure(data) { detector.scanner.scan(bytes: $0).count }
            throughput.append(Throughput(path: detector.name, megabytesPerSecond: alone, ratio: alone / read))
        }

        var latency: [Latency] = []
        var quality: [Quality] = []
        do {
            let classifier = try InjectionClassifier()
            progress("guard: the classifier, \(windows) windows")
            var generator = SystemRandomNumberGenerator()
            let inputs = (0..<windows).map { _ in
                [Int32(101)] + (0..<126).map { _ in Int32.random(in: 1000..<30000, using: &generator) } + [102]
            }
            _ = classifier.score(ids: inputs[0])
            var samples: [Double] = []
            let start = Self.now()
            for window in inputs {
                let t = Self.now()
                _ = classifier.score(ids: window)
                samples.append((Self.now() - t) * 1000)
            }
            let total = Self.now() - start
            samples.sort()
            let swift = Latency(
                path: "Warden (Swift, OpenBLAS, 1 thread)", medianMilliseconds: samples[samples.count / 2],
                p99Milliseconds: samples[min(samples.count - 1, samples.count * 99 / 100)],
                windowsPerSecond: Double(windows) / total, ratio: 1)
            latency.append(swift)
            progress("guard: ONNX Runtime, \(windows) windows")
            if let peer = try? python(["bench", String(windows)]),
                let object = try? JSONSerialization.jsonObject(with: Data(peer.utf8)) as? [String: Double],
                let rate = object["texts_per_s"], let p50 = object["p50_ms"], let p99 = object["p99_ms"]
            {
                latency.append(
                    Latency(
                        path: "ONNX Runtime 1.31.1 (Python, fp32, 1 thread)", medianMilliseconds: p50,
                        p99Milliseconds: p99, windowsPerSecond: rate, ratio: rate / swift.windowsPerSecond))
            } else {
                notes.append("ONNX Runtime not measured: the guard-1 venv (scripts/setup.sh) is missing")
            }
            progress("guard: the held-out AgentDojo suite")
            if let rows = heldOut() {
                // Each held-out text scored once by each check; the rows read the verdicts.
                var verdicts: [String: (classifier: Bool, detector: Bool)] = [:]
                for (text, _) in rows {
                    verdicts[text] = (
                        classifier.score(text).score >= 0.5,
                        Guard.standard.scan(text).contains { $0.detector == "injection" }
                    )
                }
                let set = "AgentDojo slack (held out)"
                quality.append(Self.quality("classifier (score ≥ 0.5)", set, rows) { verdicts[$0]?.classifier == true })
                quality.append(Self.quality("injection detector", set, rows) { verdicts[$0]?.detector == true })
                quality.append(
                    Self.quality("detectors or classifier", set, rows) {
                        verdicts[$0].map { $0.classifier || $0.detector } == true
                    })
            } else {
                notes.append("AgentDojo's held-out suite not built: the agentdojo venv (scripts/setup.sh) is missing")
            }
        } catch {
            notes.append("classifier not measured: \((error as? WardenError)?.message ?? "\(error)")")
        }
        if let corpus = try? String(
            contentsOfFile: repository + "/Tests/WardenGuardTests/Corpus/detectors.jsonl", encoding: .utf8)
        {
            let rows = corpus.split(separator: "\n").compactMap { line -> (String, [String])? in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let text = object["text"] as? String, let expect = object["expect"] as? [String]
                else { return nil }
                return (text, expect)
            }
            for (name, _) in Guard.standard.inventory {
                let labelled = rows.map { ($0.0, $0.1.contains(name)) }
                quality.append(
                    Self.quality(name, "detector corpus", labelled) { text in
                        Guard.standard.scan(text).contains { $0.detector == name }
                    })
            }
        }
        var replay: [Replay] = []
        let permissive = NSTemporaryDirectory() + "/warden-bench-permit-\(getpid()).cedar"
        try "permit (principal, action, resource);\n".write(toFile: permissive, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: permissive) }
        for (label, policy) in [
            ("without Warden's policy (permit everything)", permissive),
            ("default pack", repository + "/examples/policies/default/tools.cedar"),
            ("provenance pack", repository + "/examples/policies/provenance/tools.cedar"),
        ] {
            progress("guard: AgentDojo replay, \(label)")
            guard
                let text = try? python(
                    ["--warden", wardenExecutable, "--policy", policy], venv: "mcp-2.3.0",
                    script: "../agentdojo/replay.py"),
                let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            else {
                notes.append("AgentDojo replay (\(label)) not run: the agentdojo or mcp-2.3.0 venv is missing")
                continue
            }
            for suite in ["banking", "slack", "travel", "workspace"] {
                guard let row = object[suite] as? [String: Any] else { continue }
                replay.append(
                    Replay(
                        suite: suite, policy: label, userTasks: row["user_tasks"] as? Int ?? 0,
                        kept: row["kept"] as? Int ?? 0,
                        quiet: row["quiet"] as? Int ?? 0, injectionTasks: row["injection_tasks"] as? Int ?? 0,
                        withoutCalls: row["without_calls"] as? Int ?? 0, stopped: row["stopped"] as? Int ?? 0))
            }
        }
        return Report(throughput: throughput, latency: latency, quality: quality, replay: replay, notes: notes)
    }

    static func quality(_ check: String, _ set: String, _ rows: [(String, Bool)], flags: (String) -> Bool) -> Quality {
        var tp = 0
        var fp = 0
        var fn = 0
        for (text, positive) in rows {
            switch (positive, flags(text)) {
            case (true, true): tp += 1
            case (false, true): fp += 1
            case (true, false): fn += 1
            default: break
            }
        }
        let precision = Double(tp) / Double(max(1, tp + fp))
        let recall = Double(tp) / Double(max(1, tp + fn))
        return Quality(
            check: check, set: set, texts: rows.count, precision: precision, recall: recall,
            f1: 2 * precision * recall / max(1e-9, precision + recall))
    }

    func python(_ arguments: [String], venv: String = "guard-1", script: String = "minilm_reference.py") throws
        -> String
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/var/cache/warden-peers/\(venv)/bin/python")
        process.arguments = [repository + "/scripts/guard/" + script] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WardenError(code: .conflict, message: "\(script) \(arguments.joined(separator: " ")) failed")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// AgentDojo's held-out slack suite (texts and labels), built by train-head.py from the package.
    func heldOut() -> [(String, Bool)]? {
        guard let text = try? python(["data"], venv: "agentdojo-0.1.35", script: "train-head.py"),
            let rows = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]
        else { return nil }
        return rows.filter { $0["suite"] as? String == "slack" }.compactMap { row in
            guard let text = row["text"] as? String, let label = row["label"] as? Int else { return nil }
            return (text, label == 1)
        }
    }
}
