import Foundation
import Testing
import WardenCore

@testable import WardenPolicy

/// Random policy sets, entities and requests, decided by Warden and by cedarpy (Rust Cedar via PyPI).
/// Any difference in decision, reasons or erroring policies fails, with the input to reproduce it.
struct DifferentialTests {
    struct Case {
        var policies: String
        var entities: String
        var requests: [String]
    }

    static let peerScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Peers/cedarpy_peer.py").path

    static func runPeer(_ cases: [Case]) throws -> JSONValue {
        let input =
            "{\"sets\": ["
            + cases.map { c in
                var policies = ""
                JSONValue.writeString(c.policies, to: &policies)
                return
                    "{\"policies\": \(policies), \"entities\": \(c.entities), \"requests\": [\(c.requests.joined(separator: ","))]}"
            }.joined(separator: ",\n") + "]}"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", peerScript]
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Write from another thread: the peer's output can fill the pipe before we finish writing.
        let writer = Thread {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WardenError(
                code: .systemCall,
                message: "the cedarpy peer failed (run scripts/setup.sh to install cedarpy): "
                    + String(decoding: errors, as: UTF8.self))
        }
        return try JSONValue.parse(String(decoding: output, as: UTF8.self))
    }

    @Test(arguments: [1 as UInt64, 2, 3, 4])
    func decisionsMatchCedarpy(seed: UInt64) throws {
        var generator = RandomPolicies(seed: seed)
        var cases: [Case] = []
        for _ in 0..<400 {
            cases.append(
                Case(
                    policies: generator.policySet(), entities: generator.entitiesJSON(),
                    requests: (0..<4).map { _ in generator.requestJSON() }))
        }
        guard case .array(let answers) = try Self.runPeer(cases) else {
            Issue.record("the peer did not answer with a JSON array")
            return
        }
        #expect(answers.count == cases.count)
        var compared = 0
        var bothRejected = 0
        var allowed = 0
        var withErrors = 0
        for (c, answer) in zip(cases, answers) {
            let reproduce = "policies:\n\(c.policies)\nentities: \(c.entities)"
            let ours: (PolicySet, Entities)?
            do {
                ours = (try PolicySet(text: c.policies), try Entities(json: c.entities))
            } catch {
                ours = nil
                if answer["error"] == nil {
                    Issue.record("Warden rejected input that cedarpy accepted: \(error)\n\(reproduce)")
                }
            }
            guard let (policies, entities) = ours else {
                bothRejected += 1
                continue
            }
            guard case .array(let results)? = answer["results"] else {
                Issue.record(
                    "cedarpy rejected input that Warden accepted: \(answer["error"]?.stringValue ?? "?")\n\(reproduce)")
                continue
            }
            for (requestText, expected) in zip(c.requests, results) {
                let request = try ConformanceSuite.request(from: try JSONValue.parse(requestText), schema: nil)
                let response = policies.isAuthorized(request, entities: entities)
                let want = (
                    expected["decision"]?.stringValue ?? "", ConformanceSuite.strings(expected["reasons"]),
                    ConformanceSuite.strings(expected["errors"])
                )
                let got = (
                    response.decision.rawValue, response.reasons.sorted(), response.errors.map(\.policyID).sorted()
                )
                if want != got {
                    Issue.record(
                        "cedarpy says \(want), Warden says \(got) (\(response.errors.map(\.message)))\nrequest: \(requestText)\n\(reproduce)"
                    )
                }
                compared += 1
                if got.0 == "allow" { allowed += 1 }
                if !got.2.isEmpty { withErrors += 1 }
            }
        }
        print(
            "differential seed \(seed): \(compared) requests compared (\(allowed) allowed, \(withErrors) with errors), "
                + "\(bothRejected) sets rejected by both")
        // The generator must mostly produce valid input, or the comparison proves little.
        #expect(compared >= 1300)
        #expect(bothRejected < 80)
        // …and must reach both decisions and evaluation errors often.
        #expect(allowed * 20 >= compared)
        #expect(withErrors * 20 >= compared)
    }
}

extension DifferentialTests {
    /// Hand-picked corners of the extension types, literals and operators, each decided by both engines.
    static let edgeExpressions: [String] = [
        // ipaddr
        #"ip("1.2.3.4").isIpv4()"#, #"ip("01.2.3.4").isIpv4()"#, #"ip("1.2.3.4/08").isIpv4()"#,
        #"ip("1.2.3.4/+8").isIpv4()"#, #"ip("1.2.3.4/33").isIpv4()"#, #"ip("256.1.1.1").isIpv4()"#,
        #"ip("::ffff:1.2.3.4").isIpv6()"#, #"ip("::").isIpv6()"#, #"ip("1::2::3").isIpv6()"#,
        #"ip("1:2:3:4:5:6:7:8").isIpv6()"#, #"ip("1:2:3:4:5:6:7:8:9").isIpv6()"#, #"ip("::1/128").isLoopback()"#,
        #"ip("::1/127").isLoopback()"#, #"ip("127.0.0.2/4").isLoopback()"#, #"ip("127.255.0.1").isLoopback()"#,
        #"ip("224.0.0.1/3").isMulticast()"#, #"ip("ff00::1").isMulticast()"#, #"ip("10.0.0.1/8") == ip("10.0.0.0/8")"#,
        #"ip("::1") == ip("0:0::1")"#, #"ip("10.1.2.3").isInRange(ip("10.0.0.0/8"))"#,
        #"ip("10.0.0.0/7").isInRange(ip("10.0.0.0/8"))"#, #"ip("::1").isInRange(ip("0.0.0.0/0"))"#,
        #"ip("1.2.3.4 ").isIpv4()"#, #"ip("").isIpv4()"#, #"ip("ABCD::").isIpv6()"#, #"ip("12345::").isIpv6()"#,
        // decimal
        #"decimal("-0.5").lessThan(decimal("0.0"))"#, #"decimal("1.0") == decimal("1.00")"#,
        #"decimal("1.").lessThan(decimal("2.0"))"#, #"decimal(".5").lessThan(decimal("2.0"))"#,
        #"decimal("1.23456").lessThan(decimal("2.0"))"#,
        #"decimal("922337203685477.5807").greaterThan(decimal("0.0"))"#,
        #"decimal("922337203685477.5808").greaterThan(decimal("0.0"))"#,
        #"decimal("-922337203685477.5808").lessThan(decimal("0.0"))"#, #"decimal("+1.0").lessThan(decimal("2.0"))"#,
        #"decimal("-0.0") == decimal("0.0")"#, #"decimal("1.0") < decimal("2.0")"#,
        // datetime and duration
        #"datetime("2024-02-29") < datetime("2024-03-01")"#, #"datetime("2023-02-29") < datetime("2024-03-01")"#,
        #"datetime("2024-01-01T23:59:59Z") < datetime("2024-01-02")"#,
        #"datetime("2024-01-01T24:00:00Z") == datetime("2024-01-02")"#,
        #"datetime("2024-01-01T10:00:00+0100") == datetime("2024-01-01T09:00:00Z")"#,
        #"datetime("2024-01-01T10:00:00+2400") == datetime("2024-01-01T09:00:00Z")"#,
        #"datetime("2024-01-01T10:00:00.123Z").toTime() == duration("10h123ms")"#,
        #"datetime("2024-01-01T10:00:00.12Z") < datetime("2025-01-01")"#,
        #"datetime("0000-01-01") < datetime("1970-01-01")"#,
        #"datetime("1969-12-31T12:00:00Z").toDate() == datetime("1969-12-31")"#,
        #"datetime("1969-12-31T12:00:00Z").toTime() == duration("12h")"#,
        #"datetime("2024-01-01T10:00:00") < datetime("2025-01-01")"#,
        #"datetime("2024-1-01") < datetime("2025-01-01")"#,
        #"datetime("2024-01-01").durationSince(datetime("2023-01-01")) == duration("365d")"#,
        #"datetime("2024-01-01").offset(duration("-1ms")) < datetime("2024-01-01")"#,
        #"duration("1ms") < duration("1s")"#, #"duration("1m1ms").toMilliseconds() == 60001"#,
        #"duration("1s1m") < duration("1h")"#,
        #"duration("-1d").toDays() == -1"#, #"duration("-90m").toHours() == -1"#, #"duration("").toDays() == 0"#,
        #"duration("-").toDays() == 0"#, #"duration("1d-1h").toDays() == 0"#,
        #"duration("106751991167d").toDays() > 0"#,
        #"duration("106751992d").toDays() > 0"#, #"duration("9223372036854775807ms").toSeconds() > 0"#,
        #"duration("-9223372036854775808ms").toSeconds() < 0"#, #"duration("1D").toDays() == 1"#,
        #"datetime("2024-01-01") < duration("1d")"#, #"1 < datetime("2024-01-01")"#,
        // literals, strings, operators
        #""\x41\u{42}\t" == "AB\t""#, #""\u{10FFFF}" like "*""#, #""a*b" like "a\*b""#, #""a\*b" like "a\\*""#,
        #""aaa" like "a*a*a""#, #""" like "*""#, #""abc" like "*b""#, #"-9223372036854775808 < 0"#,
        #"--9223372036854775808 < 0"#, #"-(9223372036854775807) - 1 < 0"#, #"9223372036854775807 * 2 > 0"#,
        #"!!!!true"#, #"[1, 2] == [2, 1, 1]"#, #"{a: 1, "b": [true]} == {b: [true], a: 1}"#,
        #"[1, "1"].contains(1)"#, #"[[1], {a: 1}].contains({a: 1})"#, #"[].containsAll([])"#, #"[1].containsAny([])"#,
        #"[decimal("1.0")].contains(decimal("1.00"))"#, #"principal in []"#, #"principal in [principal, 1]"#,
        #"principal.nested has n.x"#, #"{a: {b: 1}} has a.b"#, #"{a: 1} has a.b"#, #"context has x.y"#,
        #"if true then 1 else "a" == 1"#, #"(if false then 1 else "a") == "a""#, #"principal is User in Group::"g1""#,
        #"User::"u0".hasTag("k1")"#, #"User::"nobody".hasTag("k1")"#, #"User::"nobody".getTag("k1") == 1"#,
        #"principal.getTag("k2") == 5"#, #"principal["nested"]["n"] == 1"#, #"action in Action::"readish""#,
    ]

    @Test func edgeCasesMatchCedarpy() throws {
        let entities = """
            [{"uid": {"type": "User", "id": "u0"}, "attrs": {"nested": {"n": 1, "s": "x"}},
              "parents": [{"type": "Group", "id": "g0"}], "tags": {"k1": "v", "k2": 5}},
             {"uid": {"type": "Group", "id": "g0"}, "attrs": {}, "parents": [{"type": "Group", "id": "g1"}]},
             {"uid": {"type": "Action", "id": "read"}, "attrs": {}, "parents": [{"type": "Action", "id": "readish"}]}]
            """
        let request = """
            {"principal": {"type": "User", "id": "u0"}, "action": {"type": "Action", "id": "read"},
             "resource": {"type": "Doc", "id": "d"}, "context": {"n": 3}}
            """
        let cases = Self.edgeExpressions.map {
            Case(
                policies: "permit(principal, action, resource) when { \($0) };", entities: entities, requests: [request]
            )
        }
        guard case .array(let answers) = try Self.runPeer(cases) else {
            Issue.record("the peer did not answer with a JSON array")
            return
        }
        let store = try Entities(json: entities)
        for (expression, answer) in zip(Self.edgeExpressions, answers) {
            let policies: PolicySet
            do {
                policies = try PolicySet(text: "permit(principal, action, resource) when { \(expression) };")
            } catch {
                #expect(answer["error"] != nil, "Warden rejected `\(expression)` (\(error)), cedarpy accepted it")
                continue
            }
            guard case .array(let results)? = answer["results"], let expected = results.first else {
                Issue.record("cedarpy rejected `\(expression)`, Warden accepted it")
                continue
            }
            let response = policies.isAuthorized(
                try ConformanceSuite.request(from: try JSONValue.parse(request), schema: nil), entities: store)
            let want =
                "\(expected["decision"]?.stringValue ?? "") errors \(ConformanceSuite.strings(expected["errors"]))"
            let got = "\(response.decision.rawValue) errors \(response.errors.map(\.policyID))"
            #expect(want == got, "`\(expression)`: cedarpy \(want), Warden \(got) \(response.errors.map(\.message))")
        }
    }
}
