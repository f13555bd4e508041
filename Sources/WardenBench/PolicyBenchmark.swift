import Foundation
import WardenCore
import WardenPolicy

#if canImport(Glibc)
    import Glibc
#endif

/// `warden bench policy`: Warden's native engine against cedarpy (Rust Cedar via PyPI) on the same
/// requests, in the same run.
public struct PolicyBenchmark: Sendable {
    public struct Row: Sendable, Codable {
        public var workload: String
        public var engine: String
        public var policies: String
        public var requests: Int
        public var decisionsPerSecond: Double
        public var medianMicroseconds: Double
        public var p99Microseconds: Double
        /// Requests on which the two engines agreed (decision and reasons), for the Warden row.
        public var agreement: String?
    }

    public var minimumDecisions: Int
    public var python: String

    public init(minimumDecisions: Int = 200_000, python: String = "python3") {
        self.minimumDecisions = minimumDecisions
        self.python = python
    }

    /// The fuzzer corpus of Cedar's integration tests as one workload (each file its own policies and entities).
    public static func corpus(directory: String) throws(WardenError) -> PolicyWorkload {
        let files = try ConformanceSuite.testFiles(under: [directory])
        var groups: [PolicyWorkload.Group] = []
        var fewest = Int.max
        var most = 0
        for file in files {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8),
                let test = try? JSONValue.parse(text), case .array(let requests)? = test["requests"],
                let policiesPath = test["policies"]?.stringValue, let entitiesPath = test["entities"]?.stringValue,
                let root = ConformanceSuite.root(
                    for: policiesPath, startingAt: (file as NSString).deletingLastPathComponent),
                let policies = try? String(contentsOfFile: root + "/" + policiesPath, encoding: .utf8),
                let entities = try? String(contentsOfFile: root + "/" + entitiesPath, encoding: .utf8)
            else { continue }
            let requestJSON = requests.map { r in
                let members: [(key: String, value: JSONValue)] = ["principal", "action", "resource", "context"]
                    .compactMap { key in
                        r[key].map { (key, $0) }
                    }
                return JSONValue.object(members).serialized
            }
            let count = (try? PolicySet(text: policies).policies.count) ?? 0
            fewest = min(fewest, count)
            most = max(most, count)
            groups.append(PolicyWorkload.Group(policies: policies, entitiesJSON: entities, requestsJSON: requestJSON))
        }
        guard !groups.isEmpty else {
            throw WardenError(code: .notFound, message: "no Cedar test files under \(directory)")
        }
        return PolicyWorkload(
            name: "Cedar corpus (\(groups.count) sets)", groups: groups,
            policyCount: fewest == most ? "\(most)" : "\(fewest)–\(most)")
    }

    @inline(__always)
    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))
        return Double(sorted[index]) / 1000
    }

    struct Prepared {
        var policies: PolicySet
        var entities: Entities
        var requests: [AuthorizationRequest]
    }

    static func prepare(_ workload: PolicyWorkload) throws(WardenError) -> [Prepared] {
        var prepared: [Prepared] = []
        for group in workload.groups {
            do {
                let policies = try PolicySet(text: group.policies)
                let entities = try Entities(json: group.entitiesJSON)
                var requests: [AuthorizationRequest] = []
                for r in group.requestsJSON {
                    requests.append(try ConformanceSuite.request(from: try JSONValue.parse(r), schema: nil))
                }
                prepared.append(Prepared(policies: policies, entities: entities, requests: requests))
            } catch {
                throw WardenError.invalidInput("benchmark workload \(workload.name) does not load: \(error)")
            }
        }
        return prepared
    }

    /// Times every decision (for median and p99) and, separately, an untimed loop (for throughput).
    public func measureWarden(_ workload: PolicyWorkload) throws(WardenError) -> (Row, [AuthorizationResponse]) {
        let prepared = try Self.prepare(workload)
        let total = workload.requestCount
        let rounds = max(1, minimumDecisions / max(total, 1))
        var samples: [UInt64] = []
        samples.reserveCapacity(rounds * total)
        var sink = 0
        // Warm up once, keeping the answers for the agreement check.
        var answers: [AuthorizationResponse] = []
        for p in prepared { for r in p.requests { answers.append(p.policies.isAuthorized(r, entities: p.entities)) } }
        for _ in 0..<rounds {
            for p in prepared {
                for r in p.requests {
                    let t0 = Self.nanoseconds()
                    let response = p.policies.isAuthorized(r, entities: p.entities)
                    let t1 = Self.nanoseconds()
                    sink &+= response.reasons.count
                    samples.append(t1 - t0)
                }
            }
        }
        let start = Self.nanoseconds()
        for _ in 0..<rounds {
            for p in prepared {
                for r in p.requests { sink &+= p.policies.isAuthorized(r, entities: p.entities).reasons.count }
            }
        }
        let elapsed = Double(Self.nanoseconds() - start) / 1e9
        if sink == Int.min { print("") }  // keeps the work observable to the optimizer
        samples.sort()
        let row = Row(
            workload: workload.name, engine: "warden (native Swift)", policies: workload.policyCount, requests: total,
            decisionsPerSecond: Double(rounds * total) / elapsed, medianMicroseconds: Self.percentile(samples, 0.5),
            p99Microseconds: Self.percentile(samples, 0.99), agreement: nil)
        return (row, answers)
    }

    /// Runs the same workload through cedarpy: `is_authorized_batch` with pre-parsed policy and entity
    /// handles for throughput, and single `is_authorized` calls for the latency distribution.
    public func measureCedarpy(_ workload: PolicyWorkload) throws(WardenError) -> (Row, [(String, [String])]) {
        var input = "{\"minimum\": \(minimumDecisions), \"groups\": ["
        for (i, group) in workload.groups.enumerated() {
            if i > 0 { input += ",\n" }
            var policies = ""
            JSONValue.writeString(group.policies, to: &policies)
            var entities = ""
            JSONValue.writeString(group.entitiesJSON, to: &entities)
            input +=
                "{\"policies\": \(policies), \"entities\": \(entities), \"requests\": [\(group.requestsJSON.joined(separator: ","))]}"
        }
        input += "]}"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "warden-bench-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let inputPath = directory.appendingPathComponent("workload.json")
            let scriptPath = directory.appendingPathComponent("cedarpy_bench.py")
            try Data(input.utf8).write(to: inputPath)
            try Data(Self.cedarpyScript.utf8).write(to: scriptPath)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python, scriptPath.path, inputPath.path]
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let output = out.fileHandleForReading.readDataToEndOfFile()
            let errors = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw WardenError(
                    code: .layerUnavailable,
                    message:
                        "cedarpy could not run (install it with `python3 -m pip install cedarpy==4.12.2` or scripts/setup.sh): "
                        + String(decoding: errors, as: UTF8.self).split(separator: "\n").suffix(1).joined())
            }
            let json = try JSONValue.parse(String(decoding: output, as: UTF8.self))
            func number(_ key: String) -> Double {
                Double(json[key].flatMap { if case .number(let n) = $0 { n } else { nil } } ?? "0") ?? 0
            }
            var decisions: [(String, [String])] = []
            if case .array(let items)? = json["decisions"] {
                for item in items {
                    decisions.append((item["decision"]?.stringValue ?? "", ConformanceSuite.strings(item["reasons"])))
                }
            }
            let row = Row(
                workload: workload.name, engine: "cedarpy \(json["version"]?.stringValue ?? "") (Rust)",
                policies: workload.policyCount, requests: workload.requestCount,
                decisionsPerSecond: number("throughput"),
                medianMicroseconds: number("median_us"), p99Microseconds: number("p99_us"), agreement: nil)
            return (row, decisions)
        } catch let error as WardenError {
            throw error
        } catch {
            throw WardenError(code: .systemCall, message: "cedarpy benchmark failed: \(error)")
        }
    }

    static let cedarpyScript = #"""
        import json, sys, time
        from importlib.metadata import version
        import cedarpy

        work = json.load(open(sys.argv[1]))
        groups = []
        for g in work["groups"]:
            groups.append((cedarpy.PolicySet.from_str(g["policies"]), cedarpy.Entities.from_json_str(g["entities"]), g["requests"]))
        total = sum(len(r) for _, _, r in groups)
        rounds = max(1, work["minimum"] // max(total, 1))
        decisions = []
        for ps, es, reqs in groups:
            for res in cedarpy.is_authorized_batch(reqs, ps, es):
                decisions.append({"decision": "allow" if res.decision == cedarpy.Decision.Allow else "deny",
                                  "reasons": sorted(res.diagnostics.reasons)})
        # Whole rounds until the requested number of decisions, or 10 s, whichever comes first.
        start = time.perf_counter_ns()
        done = 0
        while done < rounds and (done == 0 or time.perf_counter_ns() - start < 10e9):
            for ps, es, reqs in groups:
                cedarpy.is_authorized_batch(reqs, ps, es)
            done += 1
        elapsed = (time.perf_counter_ns() - start) / 1e9
        samples = []
        budget = min(total * rounds, 50000)
        t_start = time.perf_counter_ns()
        while len(samples) < budget and (not samples or time.perf_counter_ns() - t_start < 10e9):
            for ps, es, reqs in groups:
                for r in reqs:
                    t0 = time.perf_counter_ns()
                    cedarpy.is_authorized(r, ps, es)
                    samples.append(time.perf_counter_ns() - t0)
        samples.sort()
        pick = lambda p: samples[min(len(samples) - 1, round((len(samples) - 1) * p))] / 1000
        json.dump({"version": version("cedarpy"), "throughput": total * done / elapsed, "samples": len(samples),
                   "median_us": pick(0.5), "p99_us": pick(0.99), "decisions": decisions}, sys.stdout)
        """#
}
