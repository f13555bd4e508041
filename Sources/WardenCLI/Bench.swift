import ArgumentParser
import Foundation
import WardenAudit
import WardenBench
import WardenCore
import WardenPolicy
import WardenSandbox

extension Warden {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks that print tables (median, p99, and a baseline in the same run).",
            subcommands: [
                BenchStop.self, BenchPolicy.self, BenchAudit.self, BenchEgress.self, BenchMCP.self, BenchModel.self,
                BenchGuard.self, BenchServe.self,
            ])
    }

    struct BenchGuard: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "guard",
            abstract:
                "The validation layer: detector MB/s, classifier latency next to ONNX Runtime, precision and recall.",
            discussion: """
                Detectors: one pass of all of them, and each alone, over generated tool outputs (JSON, logs, \
                prose, code) in 64 KB pieces, next to a plain read of the same bytes. Classifier: 128-token \
                windows, one thread, next to ONNX Runtime (Python, one thread) running the same weights. \
                Quality: each detector on the labelled corpus; the classifier and the injection detector on \
                AgentDojo's held-out suite (slack); the AgentDojo replay (scripts/agentdojo) per suite, without \
                Warden's policy and under the default and provenance packs. Run it from the repository (it reads the corpus and the \
                reference scripts there) in a release build.

                Example: warden bench guard --megabytes 64 --windows 200
                """)
        @Option(help: "Megabytes of tool outputs for the detectors (at least 1).")
        var megabytes = 64
        @Option(help: "Windows for the classifier (at least 20).")
        var windows = 200
        @Option(help: "The repository (default: the current directory).")
        var repository = FileManager.default.currentDirectoryPath
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if megabytes < 1 { throw ValidationError("--megabytes must be at least 1") }
            if windows < 20 { throw ValidationError("--windows must be at least 20") }
        }

        func run() throws {
            let host = HostConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, stateDirectory: nil)
            var bench = GuardBenchmark(repository: repository, wardenExecutable: host.wardenExecutable)
            bench.megabytes = megabytes
            bench.windows = windows
            let report = try bench.run { line in FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8)) }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if json { return print(try Output.json(report)) }
            print("detectors | MB/s | vs a plain read")
            print("--- | --- | ---")
            for row in report.throughput {
                print(
                    "\(row.path) | \(String(format: "%.0f", row.megabytesPerSecond)) | \(String(format: "%.2fx", row.ratio))"
                )
            }
            print("")
            print("classifier (128-token window) | p50 ms | p99 ms | windows/s | vs Warden")
            print("--- | --- | --- | --- | ---")
            for row in report.latency {
                print(
                    "\(row.path) | \(String(format: "%.2f", row.medianMilliseconds)) | \(String(format: "%.2f", row.p99Milliseconds)) | \(String(format: "%.1f", row.windowsPerSecond)) | \(row.ratio.map { String(format: "%.2fx", $0) } ?? "-")"
                )
            }
            print("")
            print("check | set | texts | precision | recall | F1")
            print("--- | --- | --- | --- | --- | ---")
            for row in report.quality {
                print(
                    "\(row.check) | \(row.set) | \(row.texts) | \(String(format: "%.3f", row.precision)) | \(String(format: "%.3f", row.recall)) | \(String(format: "%.3f", row.f1))"
                )
            }
            print("")
            print("AgentDojo v1.2.2 replay | policy | user tasks kept | quiet | injection tasks stopped (with calls)")
            print("--- | --- | --- | --- | ---")
            for row in report.replay {
                print(
                    "\(row.suite) | \(row.policy) | \(row.kept)/\(row.userTasks) | \(row.quiet)/\(row.userTasks) | \(row.stopped)/\(row.injectionTasks - row.withoutCalls) (\(row.withoutCalls) without)"
                )
            }
            for note in report.notes { print("note: \(note)") }
        }
    }

    struct BenchMCP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mcp",
            abstract: "The tools door: added latency per tools/call over a direct stdio connection, and calls/s.",
            discussion: """
                The same client makes the same sequential tools/call requests to a minimal stdio MCP \
                server (no SDK, so the gateway is what is measured): directly, and through \
                warden __tools-gateway with a 10- and a 1,000-policy set. Through the door each call is a \
                Cedar decision recorded durably (an fsync) before it goes, and its result is recorded after. \
                Peers (ContextForge, mcp-proxy) are not measured yet.

                Example: warden bench mcp --calls 2000
                """)
        @Option(help: "Calls per path (at least 100).")
        var calls = 2000
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if calls < 100 { throw ValidationError("--calls must be at least 100") }
        }

        func run() throws {
            let host = HostConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, stateDirectory: nil)
            var bench = try MCPBenchmark(wardenExecutable: host.wardenExecutable)
            defer { bench.cleanUp() }
            bench.calls = calls
            let rows = try bench.run { line in FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8)) }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if json { return print(try Output.json(rows)) }
            let direct = rows.first { $0.path == "direct" }
            print("path | call p50 µs | p99 µs | added p50 / p99 vs direct (ms) | calls/s")
            print("--- | --- | --- | --- | ---")
            for row in rows {
                let added =
                    row.path == "direct"
                    ? "-"
                    : String(
                        format: "%.3f / %.3f", (row.medianMicroseconds - (direct?.medianMicroseconds ?? 0)) / 1000,
                        (row.p99Microseconds - (direct?.p99Microseconds ?? 0)) / 1000)
                let ratio = direct.map { String(format: " (%.2fx)", row.callsPerSecond / $0.callsPerSecond) } ?? ""
                print(
                    "\(row.path) | \(String(format: "%.0f", row.medianMicroseconds)) | \(String(format: "%.0f", row.p99Microseconds)) | \(added) | \(String(format: "%.0f", row.callsPerSecond))\(ratio)"
                )
            }
            print("(calls/s ratios against direct)")
        }
    }

    struct BenchModel: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "model",
            abstract: "The model door: added time to first byte and per chunk over a direct connection, requests/s.",
            discussion: """
                The same streaming client sends the same Chat Completions requests to a fast stand-in \
                upstream on loopback (it streams pre-generated chunks, so the door is what is measured): \
                directly, through warden's model door (each request a Cedar decision recorded before it goes, \
                the stream checked event by event; commit and journal records; with the classifier on the \
                prompt) and through LiteLLM's proxy (PyPI litellm[proxy], installed by setup) in front of \
                the same upstream. Requests/s with --in-flight requests at once.

                Example: warden bench model --requests 300 --chunks 64
                """)
        @Option(help: "Sequential requests per path (at least 50).")
        var requests = 300
        @Option(help: "Chunks per streamed answer.")
        var chunks = 64
        @Option(name: .customLong("in-flight"), help: "Requests at once for the requests/s column.")
        var inFlight = 8
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if requests < 50 { throw ValidationError("--requests must be at least 50") }
            if !(1...10_000).contains(chunks) { throw ValidationError("--chunks must be from 1 to 10000") }
            if !(1...256).contains(inFlight) { throw ValidationError("--in-flight must be from 1 to 256") }
        }

        func run() throws {
            let host = HostConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, stateDirectory: nil)
            var bench = try ModelBenchmark(wardenExecutable: host.wardenExecutable)
            defer { bench.cleanUp() }
            bench.requests = requests
            bench.chunks = chunks
            bench.inFlight = inFlight
            let (rows, notes) = try bench.run { line in FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8)) }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if json { return print(try Output.json(rows)) }
            let direct = rows.first { $0.path == "direct" }
            let litellm = rows.first { $0.path.hasPrefix("LiteLLM") }
            print(
                "path | TTFB p50 ms | TTFB p99 ms | added TTFB p50 ms | per chunk p50 µs | p99 µs | added per chunk p99 µs | requests/s | vs LiteLLM"
            )
            print("--- | --- | --- | --- | --- | --- | --- | --- | ---")
            for row in rows {
                let addedTTFB =
                    row.path == "direct"
                    ? "-" : String(format: "%.3f", row.ttfbMedianMilliseconds - (direct?.ttfbMedianMilliseconds ?? 0))
                let addedChunk =
                    row.path == "direct"
                    ? "-" : String(format: "%.1f", row.chunkP99Microseconds - (direct?.chunkP99Microseconds ?? 0))
                let ratio = litellm.map { String(format: "%.2fx", row.requestsPerSecond / $0.requestsPerSecond) } ?? "-"
                print(
                    "\(row.path) | \(String(format: "%.3f", row.ttfbMedianMilliseconds)) | \(String(format: "%.3f", row.ttfbP99Milliseconds)) | \(addedTTFB) | \(String(format: "%.1f", row.chunkMedianMicroseconds)) | \(String(format: "%.1f", row.chunkP99Microseconds)) | \(addedChunk) | \(String(format: "%.0f", row.requestsPerSecond)) | \(ratio)"
                )
            }
            print(
                "(\(chunks) chunks an answer; per chunk = time after the first byte / chunks; requests/s with \(inFlight) in flight)"
            )
            for note in notes { print("note: \(note)") }
        }
    }

    struct BenchServe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract:
                "warden serve: the runs listing and an approval's round trip next to the CLI; the live stream's delay.",
            discussion: """
                Starts --runs real sandboxed runs and the real daemon (TLS on loopback and its Unix socket) in a \
                scratch state directory, then measures GET /v1/runs with wrk (Debian; --connections over TLS) \
                and with one client on the Unix socket, next to `warden ps --all --json`; an approval held by \
                the broker (as a door holds it) approved through the API and through `warden approve`; and the \
                delay from an event's record to an SSE client of GET /v1/events. Everything it started is \
                stopped and removed at the end.

                Example: warden bench serve --runs 100 --requests 300
                """)
        @Option(help: "Real runs registered while the listing is measured.")
        var runs = 100
        @Option(help: "Requests per sequential path (the CLI paths take a tenth, at least 20).")
        var requests = 300
        @Option(help: "Seconds of wrk load.")
        var seconds = 5
        @Option(help: "wrk's connections.")
        var connections = 16
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if !(1...1000).contains(runs) { throw ValidationError("--runs must be from 1 to 1000") }
            if requests < 50 { throw ValidationError("--requests must be at least 50") }
            if !(1...120).contains(seconds) { throw ValidationError("--seconds must be from 1 to 120") }
            if !(1...1000).contains(connections) { throw ValidationError("--connections must be from 1 to 1000") }
        }

        func run() async throws {
            let host = HostConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, stateDirectory: nil)
            var bench = try ServeBenchmark(wardenExecutable: host.wardenExecutable)
            defer { bench.cleanUp() }
            bench.runs = runs
            bench.requests = requests
            bench.seconds = seconds
            bench.connections = connections
            let (rows, notes) = try await bench.run { line in
                FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
            }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if json { return print(try Output.json(rows)) }
            let cliList = rows.first { $0.path.hasPrefix("warden ps") }
            let cliApprove = rows.first { $0.path.hasPrefix("warden approve") }
            print("path | requests | p50 ms | p99 ms | per second | vs the CLI")
            print("--- | --- | --- | --- | --- | ---")
            for row in rows {
                let baseline = row.path.contains("approv") ? cliApprove : (row.path.contains("runs") ? cliList : nil)
                let ratio =
                    row.perSecond.flatMap { rate in baseline?.perSecond.map { String(format: "%.1fx", rate / $0) } }
                    ?? "-"
                print(
                    "\(row.path) | \(row.requests) | \(String(format: "%.3f", row.medianMilliseconds)) | \(String(format: "%.3f", row.p99Milliseconds)) | \(row.perSecond.map { String(format: "%.0f", $0) } ?? "-") | \(ratio)"
                )
            }
            for note in notes { print("note: \(note)") }
        }
    }

    struct BenchEgress: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "egress",
            abstract: "The egress door against a direct connection, tinyproxy and squid (same allowlist), on loopback.",
            discussion: """
                One client program on every path: connection set-up (connect, CONNECT, one echoed byte; \
                p50 and p99), download and upload throughput over one connection, and connections per \
                second from 4 threads. The door is measured from inside a real --network proxy sandbox with \
                a 10- and a 1,000-policy set; every one of its connections is a Cedar decision recorded \
                durably before it is made. tinyproxy and squid are Debian packages (scripts/setup.sh \
                installs them); a missing one is left out. Needs root.

                Example: warden bench egress --repetitions 300 --transfer 1G
                """)
        @Option(help: "Set-up samples per path (at least 10).")
        var repetitions = 300
        @Option(help: "Bytes each way for the throughput rows, e.g. 1G or 256M.")
        var transfer = "1G"
        @Option(help: "Seconds of the connections-per-second measurement.")
        var seconds = 3.0
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if repetitions < 10 { throw ValidationError("--repetitions must be at least 10") }
            if seconds <= 0 { throw ValidationError("--seconds must be positive") }
        }

        func run() throws {
            let host = HostConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, stateDirectory: nil)
            var bench = try EgressBenchmark(wardenExecutable: host.wardenExecutable)
            defer { bench.cleanUp() }
            bench.repetitions = repetitions
            guard let bytes = try ByteSize(parsing: transfer, field: "--transfer").bytes, bytes > 0 else {
                throw ValidationError("--transfer must be a size, e.g. 1G")
            }
            bench.transferBytes = bytes
            bench.rateSeconds = seconds
            let rows = try bench.run { line in FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8)) }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if json { return print(try Output.json(rows)) }
            let direct = rows.first { $0.path == "direct" }
            let tiny = rows.first { $0.path == "tinyproxy" }
            func f(_ v: Double?, _ digits: Int = 0) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "-" }
            func ratio(_ v: Double?, _ base: Double?) -> String {
                guard let v, let base, base > 0 else { return "" }
                return String(format: " (%.2fx)", v / base)
            }
            print(
                "path | set-up p50 µs | p99 µs | added p50 / p99 vs direct (ms) | download MB/s | upload MB/s | connections/s"
            )
            print("--- | --- | --- | --- | --- | --- | ---")
            for row in rows {
                let added =
                    row.path == "direct"
                    ? "-"
                    : String(
                        format: "%.3f / %.3f",
                        (row.setupMedianMicroseconds - (direct?.setupMedianMicroseconds ?? 0)) / 1000,
                        (row.setupP99Microseconds - (direct?.setupP99Microseconds ?? 0)) / 1000)
                print(
                    "\(row.path) | \(f(row.setupMedianMicroseconds)) | \(f(row.setupP99Microseconds)) | \(added) | "
                        + f(row.downloadMegabytesPerSecond)
                        + ratio(row.downloadMegabytesPerSecond, direct?.downloadMegabytesPerSecond)
                        + " | " + f(row.uploadMegabytesPerSecond)
                        + ratio(row.uploadMegabytesPerSecond, direct?.uploadMegabytesPerSecond)
                        + " | " + f(row.connectionsPerSecond)
                        + ratio(row.connectionsPerSecond, tiny?.connectionsPerSecond))
            }
            print("(throughput ratios against direct; connections/s against tinyproxy)")
        }
    }

    struct BenchStop: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stop",
            abstract: "Stop latency for process trees, against killing the process group and the PID-namespace init.",
            discussion: """
                Trees: 1 process; 200 setsid double-forked daemons; 1000 processes; a fork bomb under \
                pids.max=4096. Latency is request until the cgroup is empty (for the process-group baseline: \
                until the group is gone). "left alive" counts processes a method missed. Also times \
                `warden run -- true` against bare `true`. Needs root (it creates cgroups).

                Example: warden bench stop --repetitions 20
                """)
        @Option(help: "Repetitions per scenario and method (at least 1).")
        var repetitions = 20
        @Option(help: "Only scenarios whose name contains this text.")
        var only: String?
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if repetitions < 1 { throw ValidationError("--repetitions must be at least 1") }
        }

        func run() throws {
            let host = HostConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, stateDirectory: nil)
            let bench = try StopBenchmark(
                wardenExecutable: host.wardenExecutable, repetitions: repetitions, cgroupRoot: host.cgroupRoot)
            defer { bench.cleanUp() }
            let progress: (String) -> Void = { line in
                FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
            }
            let startup = try bench.measureStartup(progress: progress)
            var rows: [StopBenchmark.Row] = []
            for scenario in StopBenchmark.Scenario.standard where only.map({ scenario.name.contains($0) }) ?? true {
                rows += bench.measure(scenario, progress: progress)
            }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if json {
                struct Report: Encodable {
                    var rows: [StopBenchmark.Row]
                    var startup: [StopBenchmark.Startup]
                }
                return print(try Output.json(Report(rows: rows, startup: startup)))
            }
            let format: (Double) -> String = { String(format: "%.2f", $0) }
            var table = [["scenario", "method", "reps", "median ms", "p99 ms", "left alive", "p99 vs warden"]]
            for row in rows {
                let warden = rows.first { $0.scenario == row.scenario && $0.method == .warden }
                let ratio = warden.map { String(format: "%.2fx", row.p99Milliseconds / $0.p99Milliseconds) } ?? "-"
                table.append([
                    row.scenario, row.method.rawValue,
                    "\(row.repetitions)\(row.failures > 0 ? " (\(row.failures) failed)" : "")",
                    format(row.medianMilliseconds), format(row.p99Milliseconds), String(row.maxLeftAlive),
                    row.method == .warden ? "1.00x" : ratio,
                ])
            }
            print(Table.markdown(table))
            print()
            let bare = startup.first { $0.command == "true" }?.medianMilliseconds ?? 0
            let defaultRun = startup.first { $0.command == "warden run -- true" }?.medianMilliseconds ?? 0
            var startupTable = [
                ["command", "reps", "median ms", "p99 ms", "added (median)", "default minus this (median)"]
            ]
            for row in startup {
                let signed = { (value: Double) in (value >= 0 ? "+" : "") + format(value) + " ms" }
                startupTable.append([
                    row.command, "\(row.repetitions)", format(row.medianMilliseconds), format(row.p99Milliseconds),
                    row.command == "true" ? "-" : signed(row.medianMilliseconds - bare),
                    row.command == "true" || row.command == "warden run -- true"
                        ? "-" : signed(defaultRun - row.medianMilliseconds),
                ])
            }
            print(Table.markdown(startupTable))
        }
    }
}

extension Table {
    /// A Markdown table (pastes into the README as is).
    static func markdown(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            "| "
                + row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(
                    separator: " | ") + " |"
        }
        let separator = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(header), separator] + rows.dropFirst().map(line)).joined(separator: "\n")
    }
}

extension Warden {
    struct BenchPolicy: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "policy",
            abstract: "Cedar decision speed: Warden's native engine against cedarpy (Rust Cedar) on the same requests.",
            discussion: """
                Workloads: (a) the requests of Cedar's fuzzer corpus, each file with its own policies and \
                entities; (b) a 10-policy agent policy set; (c) 1,000 generated policies over 100 entities in \
                5-level hierarchies. Warden is timed per decision (median, p99) and in an untimed loop \
                (decisions/s). cedarpy runs is_authorized_batch with pre-parsed PolicySet and Entities \
                handles for throughput and is_authorized per request for latency. Both engines' decisions \
                are compared ("agree"). Use a release build for meaningful numbers.

                Example: swift build -c release && .build/release/warden bench policy
                """)
        @Option(
            help: "Cedar corpus tests: a directory or corpus-tests.tar.gz (default: the shared fixtures, if present).")
        var corpus: String?
        @Option(help: "Decisions per workload and engine (at least 1000).")
        var decisions = 200_000
        @Option(help: "The Python interpreter that has cedarpy.")
        var python = "python3"
        @Option(help: "Only workloads whose name contains this text (corpus, 10, 1,000).")
        var only: String?
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if decisions < 1000 { throw ValidationError("--decisions must be at least 1000") }
        }

        func corpusDirectory(scratch: String) throws -> String? {
            var candidates: [String] = []
            if let corpus {
                candidates = [corpus]
            } else {
                let environment = ProcessInfo.processInfo.environment
                if let shared = environment["WARDEN_SHARED_DIR"] {
                    candidates.append(shared + "/conformance/cedar/corpus-tests.tar.gz")
                }
                candidates += [
                    "../shared/conformance/cedar/corpus-tests.tar.gz",
                    "/work/shared/conformance/cedar/corpus-tests.tar.gz",
                ]
            }
            guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                if corpus != nil {
                    throw WardenError(code: .notFound, message: "--corpus \(corpus ?? ""): no such file or directory")
                }
                return nil
            }
            guard path.hasSuffix(".tar.gz") else { return path }
            let tar = Process()
            tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            tar.arguments = ["tar", "-xzf", path, "-C", scratch]
            try tar.run()
            tar.waitUntilExit()
            guard tar.terminationStatus == 0 else { throw WardenError.invalidInput("\(path): tar could not unpack it") }
            return scratch + "/corpus-tests"
        }

        func run() throws {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
                "warden-bench-corpus-\(getpid())"
            ).path
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            var workloads: [PolicyWorkload] = []
            let wanted: (String) -> Bool = { name in only.map { name.contains($0) } ?? true }
            if !wanted("Cedar corpus") {
                // Not requested.
            } else if let directory = try corpusDirectory(scratch: scratch) {
                workloads.append(try PolicyBenchmark.corpus(directory: directory))
            } else {
                Output.error("the Cedar corpus was not found; skipping workload (a) (pass --corpus)")
            }
            workloads += [PolicyWorkload.tenPolicies(), PolicyWorkload.thousandPolicies()].filter { wanted($0.name) }
            let bench = PolicyBenchmark(minimumDecisions: decisions, python: python)
            var rows: [PolicyBenchmark.Row] = []
            for workload in workloads {
                FileHandle.standardError.write(Data("\r\u{1B}[K\(workload.name): warden…".utf8))
                var (warden, ours) = try bench.measureWarden(workload)
                FileHandle.standardError.write(Data("\r\u{1B}[K\(workload.name): cedarpy…".utf8))
                let (cedarpy, theirs) = try bench.measureCedarpy(workload)
                let agree = zip(ours, theirs).filter { $0.decision.rawValue == $1.0 && $0.reasons.sorted() == $1.1 }
                    .count
                warden.agreement = "\(agree)/\(ours.count)"
                rows += [warden, cedarpy]
            }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if json { return print(try Output.json(rows)) }
            let format: (Double) -> String = { String(format: "%.2f", $0) }
            var table = [
                [
                    "workload", "engine", "policies", "requests", "decisions/s", "median µs", "p99 µs",
                    "throughput vs cedarpy", "agree",
                ]
            ]
            for row in rows {
                let peer = rows.first { $0.workload == row.workload && $0.engine.hasPrefix("cedarpy") }
                let ratio = peer.map { String(format: "%.1fx", row.decisionsPerSecond / $0.decisionsPerSecond) } ?? "-"
                table.append([
                    row.workload, row.engine, row.policies, "\(row.requests)",
                    String(format: "%.0f", row.decisionsPerSecond),
                    format(row.medianMicroseconds), format(row.p99Microseconds), ratio, row.agreement ?? "-",
                ])
            }
            print(Table.markdown(table))
        }
    }
}

extension Warden {
    struct BenchAudit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit",
            abstract:
                "Audit log speed: durable appends (1 writer, and group commit) and verification, against plain inserts.",
            discussion: """
                For each store: appends with one event per durable commit, appends from --writers concurrent \
                writers (group commit), and verifying everything written — each next to the same rows written \
                or read without hashing or signing, in the same run, so the chain's cost is a ratio. SQLite \
                runs in a scratch directory. PostgreSQL runs only with --postgres, whose audit tables are \
                DROPPED: give it a scratch database.

                Example: warden bench audit --postgres postgres://warden@127.0.0.1:55432/bench
                """)
        @Option(help: "Events appended one per commit.")
        var single = 2000
        @Option(help: "Events appended under group commit.")
        var events = 100_000
        @Option(help: "Concurrent writers for group commit.")
        var writers = 16
        @Option(help: "A scratch PostgreSQL database to benchmark too (its audit tables are dropped).")
        var postgres: String?
        @Flag(help: "Print the results as JSON.")
        var json = false

        func validate() throws {
            if single < 10 || events < 100 || writers < 1 {
                throw ValidationError("--single ≥ 10, --events ≥ 100, --writers ≥ 1")
            }
        }

        func run() async throws {
            let scratch = "/var/tmp/warden-bench-audit-\(getpid())"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let bench = AuditBenchmark(singleEvents: single, groupEvents: events, writers: writers)
            let progress: @Sendable (String) -> Void = { line in
                FileHandle.standardError.write(Data("\r\u{1B}[K\(line)…".utf8))
            }
            let postgres = postgres
            let rows = try await auditCall {
                let counter = Counter()
                var rows = try await bench.measure(
                    name: "SQLite (WAL, synchronous=FULL)", stateDirectory: scratch,
                    open: {
                        let n = await counter.next()
                        return try SQLiteAuditStore(path: "\(scratch)/db\(n)/audit.sqlite")
                    }, progress: progress)
                if let postgres {
                    rows += try await bench.measure(
                        name: "PostgreSQL 15 (loopback)", stateDirectory: scratch,
                        open: {
                            let store = try await PostgresAuditStore.connect(url: postgres)
                            try await store.resetForBenchmark()
                            return store
                        }, progress: progress)
                }
                return rows
            }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            if postgres == nil { Output.error("PostgreSQL not measured: pass --postgres URL (a scratch database)") }
            if json { return print(try Output.json(rows)) }
            var table = [
                ["store", "measurement", "method", "events", "events/s", "median µs", "p99 µs", "chain vs plain"]
            ]
            for row in rows {
                let plain = rows.first {
                    $0.store == row.store && $0.measurement == row.measurement && $0.method != row.method
                }
                let isChain = !(row.method.hasPrefix("plain") || row.method.hasPrefix("read only"))
                let ratio =
                    isChain
                    ? plain.map { String(format: "%.2fx slower", $0.eventsPerSecond / row.eventsPerSecond) } ?? "-"
                    : "-"
                table.append([
                    row.store, row.measurement, row.method, "\(row.events)",
                    String(format: "%.0f", row.eventsPerSecond),
                    row.medianMicroseconds.map { String(format: "%.1f", $0) } ?? "-",
                    row.p99Microseconds.map { String(format: "%.1f", $0) } ?? "-", ratio,
                ])
            }
            print(Table.markdown(table))
        }
    }
}

actor Counter {
    var value = 0
    func next() -> Int {
        value += 1
        return value
    }
}
