import Foundation
import Testing
import WardenCore
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Servers on the host's loopback (Peers/upstream.py): what the agent may or may not reach.
final class Upstream {
    let process = Process()
    let root: String
    let ports: [String: Int]

    init(harness: WardenHarness) throws {
        root = harness.outside + "/upstream"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "hello from the mirror\n".write(toFile: root + "/hello.txt", atomically: true, encoding: .utf8)
        // A git repository served over "dumb" HTTP.
        let git =
            "cd \(root) && git init -q --bare repo.git && git init -q src && cd src && echo readme > README "
            + "&& git add README && git -c user.name=t -c user.email=t@t commit -qm init && git push -q ../repo.git HEAD:master "
            + "&& cd ../repo.git && git update-server-info"
        let setup = Process()
        setup.executableURL = URL(fileURLWithPath: "/bin/sh")
        setup.arguments = ["-c", git]
        try setup.run()
        setup.waitUntilExit()
        let peers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", peers + "/upstream.py", root]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let object = try firstJSONLine(of: out)
        ports = object.compactMapValues { ($0 as? NSNumber)?.intValue }
        try FileManager.default.copyItem(atPath: peers + "/attacks.py", toPath: harness.workspace + "/attacks.py")
    }

    deinit {
        // SIGKILL: the test process may hold SIGTERM blocked, and its children inherit the mask.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var portsJSON: String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: ports)) ?? Data(), as: UTF8.self)
    }

    /// A policy (written to the harness's outside directory) that asks a person for every connection
    /// to mirror.test's HTTP port.
    func askPolicy(_ harness: WardenHarness) throws -> String {
        let path = harness.outside + "/ask.cedar"
        try """
        @id("ask-mirror")
        @ask("downloads from the mirror need a person")
        permit(principal, action == Action::"connect", resource == Host::"mirror.test")
        when { context.address == ip("127.0.0.1") && context.port == \(ports["http"] ?? 0) };
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Byte counts the sink received, one per closed connection.
    var sinkCounts: [Int] {
        ((try? String(contentsOfFile: root + "/sink.counts", encoding: .utf8)) ?? "").split(separator: "\n").compactMap
        {
            Int($0)
        }
    }
}

/// The egress door against real programs in a real sandbox, with servers only on the host's loopback.
/// Every server here is on 127.0.0.1, which the door refuses unless a policy names the address: the
/// allowing policies name it (`context.address == ip("127.0.0.1")`), which is itself under test.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct EgressDoorTests {
    /// `mirror.test` (pinned to 127.0.0.1) on the upstream's HTTP, TLS and sink ports.
    func mirrorPolicy(_ upstream: Upstream, extra: String = "") -> String {
        let ports = ["http", "tls", "sink", "slow"].compactMap { upstream.ports[$0] }.map(String.init)
        return """
            @id("mirror")
            permit(principal, action == Action::"connect", resource == Host::"mirror.test")
            when { context.address == ip("127.0.0.1") && [\(ports.joined(separator: ", "))].contains(context.port) };
            @id("mirror-names")
            permit(principal, action == Action::"resolve", resource == Host::"mirror.test");
            \(extra)
            """
    }

    func write(_ harness: WardenHarness, policy: String) throws -> String {
        let path = harness.outside + "/egress.cedar"
        try policy.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func proxyFlags(_ harness: WardenHarness, _ policyPath: String, _ extra: [String] = []) -> [String] {
        [
            "run", "--json", "--workspace", harness.workspace, "--network", "proxy", "--policy", policyPath,
            "--resolve", "mirror.test=127.0.0.1",
        ] + extra
    }

    /// The run id in `warden run --json`'s summary (printed after the agent's own output).
    func runID(_ output: String) throws -> String {
        let start = try #require(output.range(of: "{\n", options: .backwards), "\(output)")
        let object = try JSONSerialization.jsonObject(with: Data(output[start.lowerBound...].utf8)) as? [String: Any]
        return try #require(object?["id"] as? String, "\(output)")
    }

    @Test func realProgramsReachAnAllowedHostThroughTheProxyAndTransparentlyAndEachDecisionIsRecorded() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let http = upstream.ports["http"] ?? 0
        let policy = try write(harness, policy: mirrorPolicy(upstream))
        let script = """
            echo proxy=$(curl -sS -m 10 http://mirror.test:\(http)/hello.txt)
            echo transparent=$(env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY curl -sS -m 10 http://mirror.test:\(http)/hello.txt)
            echo socks=$(curl -sS -m 10 --socks5-hostname 127.0.0.1:1080 http://mirror.test:\(http)/hello.txt)
            python3 attacks.py '\(upstream.portsJSON)' urllib sniok connecthead
            echo https=$(curl -sS -k -m 10 https://mirror.test:\(upstream.ports["tls"] ?? 0)/hello.txt)
            git clone -q http://mirror.test:\(http)/repo.git clone 2>&1 && echo git=$(cat clone/README)
            python3 -m pip download -q --no-deps --no-cache-dir --disable-pip-version-check -d dl --trusted-host mirror.test \\
                --index-url http://mirror.test:\(http)/simple/ wardenprobe 2>&1 | tail -3; echo pip=$(ls dl)
            echo other=$(curl -s -o /dev/null -w '%{http_code}' -m 10 http://other.test:\(http)/)
            """
        let result = try harness.run(proxyFlags(harness, policy) + ["--", "/bin/bash", "-c", script])
        #expect(result.status == 0, "\(result.standardError)")
        let seen = result.keyValues
        #expect(seen["proxy"] == "hello from the mirror", "\(result.standardOutput)")
        #expect(seen["transparent"] == "hello from the mirror", "a program that ignores the proxy variables")
        #expect(seen["socks"] == "hello from the mirror")
        #expect(seen["urllib"] == "hello from the mirror")
        #expect(seen["sniok"] == "tls:HTTP/1.0 200 OK" || seen["sniok"] == "tls:HTTP/1.1 200 OK", "\(seen)")
        #expect(seen["git"] == "readme", "\(result.standardOutput)")
        #expect(seen["https"] == "hello from the mirror", "curl over TLS through CONNECT: \(result.standardOutput)")
        // A 2xx answer to CONNECT has no framing headers and no body: the tunnel's first byte is the
        // upstream's (a chunked "0\r\n\r\n" here broke every TLS client that read it).
        #expect(seen["connecthead"] == "HTTP/1.1 200 Connection established/framing0/after0", "\(seen)")
        #expect(seen["pip"] == "wardenprobe-1.0-py3-none-any.whl", "pip download: \(result.standardOutput)")
        #expect(seen["other"] == "403", "a host no policy permits")
        let id = try runID(result.standardOutput)
        let decisions = try harness.events(id, kind: "decision").filter { $0["action"] == "connect" }
        let allowed = decisions.filter { $0["decision"] == "allow" }
        #expect(Set(allowed.compactMap { $0["entry"] }) == ["proxy", "transparent", "socks"], "\(allowed)")
        #expect(allowed.allSatisfy { $0["address"] == "127.0.0.1" && $0["policies"] == "mirror" })
        #expect(decisions.contains { $0["host"] == "other.test" && $0["decision"] == "deny" })
        let closed = try harness.events(id, kind: "connection.closed")
        // A decision per request; a keep-alive connection (git's) carries several and ends once.
        let opened = Set(allowed.compactMap { $0["connection"] })
        let ended = Set(closed.compactMap { $0["connection"] })
        #expect(
            ended.isSubset(of: opened) && ended.count >= allowed.filter { $0["scheme"] != "http" }.count + 1,
            "\(closed)")
        #expect(closed.contains { Int($0["bytes_down"] ?? "0") ?? 0 > 0 })
    }

    @Test func addressesNamesAndTunnelsTheDoorRefuses() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        // rebind.test, metadata.test and intranet.test are permitted by name only: their addresses
        // (loopback, 169.254.169.254, 10/8) must still be refused.
        let policy = try write(
            harness,
            policy: mirrorPolicy(
                upstream,
                extra: """
                    @id("by-name")
                    permit(principal, action in [Action::"connect", Action::"resolve"], resource)
                    when { [Host::"rebind.test", Host::"metadata.test", Host::"intranet.test"].contains(resource) };
                    """))
        let attacks = [
            "literal", "literal6", "rebind", "metadata", "private", "hostmismatch", "sni", "txt", "longlabel", "udp",
            "raw", "service", "direct",
        ]
        let result = try harness.run(
            proxyFlags(
                harness, policy,
                [
                    "--resolve", "rebind.test=127.0.0.1", "--resolve", "metadata.test=169.254.169.254",
                    "--resolve", "intranet.test=10.1.2.3",
                ])
                + ["--", "python3", "attacks.py", upstream.portsJSON] + attacks)
        #expect(result.status == 0, "\(result.standardError)")
        let seen = result.keyValues
        for name in ["literal", "literal6", "rebind", "metadata", "private", "hostmismatch"] {
            #expect(seen[name] == "HTTP/1.1 403 Forbidden", "\(name): \(seen[name] ?? "nothing")")
        }
        #expect(seen["sni"]?.hasPrefix("error:") == true, "SNI other.test through CONNECT mirror.test: \(seen)")
        #expect(seen["txt"] == "rcode5/answers0", "TXT is refused")
        #expect(seen["longlabel"] == "rcode5/answers0", "a tunnel-shaped name is refused")
        #expect(seen["udp"]?.contains("unreachable") == true, "UDP other than the resolver: \(seen["udp"] ?? "")")
        #expect(seen["raw"]?.contains("Operation not permitted") == true, "raw sockets: \(seen["raw"] ?? "")")
        #expect(seen["service"]?.hasPrefix("error:") == true, "the host's loopback service: \(seen["service"] ?? "")")
        #expect(seen["direct"]?.hasPrefix("error:") == true, "127.0.0.1 on a listened port: \(seen["direct"] ?? "")")
        let id = try runID(result.standardOutput)
        let denied = try harness.events(id, kind: "decision").filter { $0["decision"] == "deny" }
        func reason(_ host: String) -> String { denied.first { $0["host"] == host }?["reason"] ?? "" }
        #expect(
            reason("127.0.0.1").hasPrefix("deny: no policy permits"), "a literal is not a permitted name: \(denied)")
        #expect(reason("::1").hasPrefix("deny: no policy permits"))
        #expect(reason("rebind.test").contains("127.0.0.1, a loopback address"))
        #expect(reason("metadata.test").contains("a metadata address"))
        #expect(reason("intranet.test").contains("a private address"))
        #expect(denied.contains { $0["reason"]?.contains("Host is other.test") == true })
        #expect(denied.contains { $0["reason"]?.contains("asks for other.test") == true }, "SNI fronting recorded")
        #expect(denied.contains { $0["type"] == "TXT" })
        #expect(denied.contains { $0["reason"]?.hasPrefix("DNS tunnelling") == true })
        #expect(denied.contains { $0["entry"] == "transparent" && $0["reason"]?.contains("never gave out") == true })
    }

    /// The host's own services: the suite's real PostgreSQL on the host's loopback. Through a name that
    /// resolves to 127.0.0.1, as a literal, or straight to 127.0.0.1 inside the sandbox, the agent does
    /// not reach it — and the control run, whose policy names the address, shows the same attack does
    /// reach it when that rule is missing.
    @Test func theHostsPostgreSQLIsUnreachableUnlessAPolicyNamesItsAddress() throws {
        guard let url = ProcessInfo.processInfo.environment["WARDEN_TEST_POSTGRES_URL"],
            let port = url.firstMatch(of: /@127\.0\.0\.1:([0-9]+)\//).flatMap({ Int($0.1) })
        else {
            try Test.cancel(
                "no PostgreSQL test server: run the suite with scripts/test.sh, which starts one on loopback")
        }
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let byName = """
            @id("by-name")
            permit(principal, action in [Action::"connect", Action::"resolve"], resource == Host::"rebind.test");
            """
        let attacks = ["pgname:\(port)", "pgliteral:\(port)", "pgdirect:\(port)"]
        func attack(_ policy: String) throws -> (seen: [String: String], id: String) {
            let path = try write(harness, policy: policy)
            let result = try harness.run(
                proxyFlags(harness, path, ["--resolve", "rebind.test=127.0.0.1"])
                    + ["--", "python3", "attacks.py", upstream.portsJSON] + attacks)
            #expect(result.status == 0, "\(result.standardError)")
            return (result.keyValues, try runID(result.standardOutput))
        }
        let (seen, id) = try attack(byName)
        #expect(seen["pgname"] == "HTTP/1.1 403 Forbidden", "a name resolving to loopback: \(seen)")
        #expect(seen["pgliteral"] == "HTTP/1.1 403 Forbidden", "the literal: \(seen)")
        #expect(seen["pgdirect"]?.hasPrefix("error:") == true, "the sandbox's own loopback: \(seen)")
        let denied = try harness.events(id, kind: "decision").filter { $0["decision"] == "deny" }
        #expect(
            denied.contains {
                $0["host"] == "rebind.test" && $0["port"] == String(port)
                    && $0["reason"]?.contains("loopback address") == true
            },
            "\(denied)")
        // The control: a policy that names the address lets the same attack through the door.
        let (control, _) = try attack(
            byName + """

                @id("names-the-address")
                permit(principal, action == Action::"connect", resource == Host::"rebind.test")
                when { context.address == ip("127.0.0.1") && context.port == \(port) };
                """)
        #expect(control["pgname"]?.hasPrefix("reached:") == true, "the attack is real: \(control)")
        #expect(control["pgdirect"]?.hasPrefix("error:") == true, "only the door leads out: \(control)")
    }

    @Test func anUploadPastTheByteBudgetIsCutAtTheBudgetAndStopsTheRun() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let sink = upstream.ports["sink"] ?? 0
        let policy = try write(harness, policy: mirrorPolicy(upstream))
        // 1 MiB pushed through CONNECT; the run may send 100 000 bytes in all.
        let script = """
            python3 - <<'PY'
            import socket
            s = socket.create_connection(("127.0.0.1", 3128))
            s.sendall(b"CONNECT mirror.test:\(sink) HTTP/1.1\\r\\nHost: mirror.test\\r\\n\\r\\n")
            print("connect=" + s.recv(4096).split(b"\\r\\n")[0].decode(), flush=True)
            try:
                for _ in range(64):
                    s.sendall(b"y" * 16384)
            except OSError as e:
                print("cut=" + type(e).__name__, flush=True)
            s.close()
            PY
            sleep 5
            """
        let result = try harness.run(
            proxyFlags(harness, policy, ["--egress-bytes-max", "100000", "--on-budget", "stop"])
                + ["--", "/bin/bash", "-c", script])
        let seen = result.keyValues
        #expect(
            seen["connect"] == "HTTP/1.1 200 Connection established", "\(result.standardOutput) \(result.standardError)"
        )
        #expect(harness.waitUntil(timeout: 5) { !upstream.sinkCounts.isEmpty })
        let received = upstream.sinkCounts.reduce(0, +)
        #expect(received <= 100_000 && received > 0, "the far side received \(received) bytes")
        let id = try runID(result.standardOutput)
        let hits = try harness.events(id, kind: "budget.hit")
        #expect(hits.contains { $0["budget"] == "egress_bytes_max" && $0["limit"] == "100000" }, "\(hits)")
        let stop = try harness.events(id, kind: "stop.requested")
        #expect(stop.contains { $0["reason"]?.contains("egress_bytes_max") == true }, "on_budget = stop: \(stop)")
    }

    @Test func idleConnectionsCannotExhaustTheDoorAndTheResolverKeepsAnswering() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let policy = try write(harness, policy: mirrorPolicy(upstream))
        let result = try harness.run(
            proxyFlags(harness, policy, ["--connections-max", "64"])
                + ["--", "python3", "attacks.py", upstream.portsJSON, "idle:2000", "urllib"])
        let seen = result.keyValues
        let idle = try #require(seen["idle"], "\(result.standardOutput) \(result.standardError)")
        let alive = idle.split(separator: "/").first { $0.hasPrefix("alive") }.flatMap { Int($0.dropFirst(5)) }
        #expect(alive == 64, "the cap holds: \(idle)")
        #expect(idle.hasSuffix("dns:rcode0/answers1"), "the resolver answers while the cap is reached: \(idle)")
        #expect(seen["urllib"] == "hello from the mirror", "served again once they are gone")
        let id = try runID(result.standardOutput)
        #expect(try harness.events(id, kind: "budget.hit").contains { $0["budget"] == "connections_max" })
    }

    @Test func policyReloadSwapsARunningRunsPoliciesAndABadSetIsRefusedWithItsPosition() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let http = upstream.ports["http"] ?? 0
        let denyAll = try write(harness, policy: "// nothing permitted yet\n")
        let id = try harness.start(
            ["--network", "proxy", "--policy", denyAll, "--resolve", "mirror.test=127.0.0.1"],
            command: [
                "/bin/bash", "-c",
                "for i in $(seq 1 150); do curl -s -o /dev/null -w '%{http_code}\\n' -m 5 http://mirror.test:\(http)/hello.txt >> codes; sleep 0.1; done",
            ])
        func codes() -> [Substring] {
            (harness.contents(harness.workspace + "/codes").map { String(decoding: $0, as: UTF8.self) } ?? "").split(
                separator: "\n")
        }
        #expect(harness.waitUntil(timeout: 10) { codes().contains("403") })
        // A bad set: refused with its position; the old one stays.
        let bad = harness.outside + "/bad.cedar"
        try "permit(principal, action, resource) when { context.port == };\n".write(
            toFile: bad, atomically: true, encoding: .utf8)
        let refused = try harness.run(["policy", "reload", id, "--policy", bad])
        #expect(refused.status == 2 && refused.standardError.contains("bad.cedar:1:"), "\(refused.standardError)")
        // A good one: in force at once.
        let good = harness.outside + "/good.cedar"
        try mirrorPolicy(upstream).write(toFile: good, atomically: true, encoding: .utf8)
        let reloaded = try harness.run(["policy", "reload", id, "--policy", good])
        #expect(reloaded.status == 0, "\(reloaded.standardError)")
        #expect(harness.waitUntil(timeout: 10) { codes().last == "200" }, "\(codes())")
        let events = try harness.events(id, kind: "policy.reloaded")
        #expect(events.count == 1 && events.first?["policies"] == good, "\(events)")
        _ = try harness.run(["kill", id])
    }

    /// `decision_records = "journal"`: every decision is in the hash-chained log, numbered without a gap,
    /// even when the mediator is SIGKILLed right after the agent's last connection (what it journaled
    /// and had not committed is committed by the supervisor).
    @Test func underTheDecisionJournalEveryDecisionReachesTheAuditLogEvenWhenTheMediatorIsKilled() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let http = upstream.ports["http"] ?? 0
        let policy = try write(harness, policy: mirrorPolicy(upstream))
        let fetch = "curl -s -o /dev/null -w '%{http_code}\\n' -m 10"
        let id = try harness.start(
            [
                "--network", "proxy", "--policy", policy, "--resolve", "mirror.test=127.0.0.1", "--decision-records",
                "journal",
            ],
            command: [
                "/bin/bash", "-c",
                "for i in $(seq 20); do \(fetch) http://mirror.test:\(http)/hello.txt; done > codes; "
                    + "\(fetch) http://other.test:\(http)/ >> codes; touch done; sleep 60",
            ])
        let started = try #require(try harness.events(id, kind: "mediator.started").first)
        #expect(started["decision_records"] == "journal", "\(started)")
        #expect(harness.waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: harness.workspace + "/done") })
        kill(try #require(started["pid"].flatMap { Int32($0) }), SIGKILL)
        #expect(harness.waitUntil(timeout: 15) { (try? harness.inspect(id)["state"] as? String) == "stopped" })
        let codes = harness.contents(harness.workspace + "/codes").map { String(decoding: $0, as: UTF8.self) }
        #expect(codes == String(repeating: "200\n", count: 20) + "403\n", "\(codes ?? "")")
        let decisions = try harness.events(id, kind: "decision").filter { $0["action"] == "connect" }
        #expect(decisions.filter { $0["decision"] == "allow" }.count == 20, "\(decisions.count)")
        #expect(decisions.contains { $0["host"] == "other.test" && $0["decision"] == "deny" })
        let numbers = try harness.events(id).compactMap { ($0["details"] as? [String: String])?["journal_seq"] }
            .compactMap { Int($0) }
        #expect(numbers == Array(1...numbers.count), "journaled events, in order, none lost: \(numbers)")
        #expect(numbers.count >= 21)
        #expect(try harness.run(["audit", "verify"]).status == 0)
    }

    /// The door itself is confined: no capability left (so no setns back into a namespace, no raw
    /// network, no DAC override), no_new_privs, the seccomp deny-list, and Landlock writes only where it
    /// records — while it serves.
    @Test func theMediatorServesWithNoCapabilitiesUnderSeccompAndLandlock() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let policy = try write(harness, policy: mirrorPolicy(upstream))
        let http = upstream.ports["http"] ?? 0
        let id = try harness.start(
            ["--network", "proxy", "--policy", policy, "--resolve", "mirror.test=127.0.0.1"],
            command: ["/bin/bash", "-c", "curl -s -m 10 http://mirror.test:\(http)/hello.txt > got; sleep 60"])
        let started = try #require(try harness.events(id, kind: "mediator.started").first)
        let pid = try #require(started["pid"].flatMap { Int32($0) })
        #expect(
            harness.waitUntil(timeout: 15) {
                harness.contents(harness.workspace + "/got").map { String(decoding: $0, as: UTF8.self) }
                    == "hello from the mirror\n"
            }, "the confined door still serves")
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> String? {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map {
                $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
            }
        }
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(field(set) == "0000000000000000", "\(set): \(field(set) ?? "?")")
        }
        #expect(field("NoNewPrivs") == "1")
        #expect(field("Seccomp") == "2", "seccomp filter mode")
        #expect(started["confinement"]?.contains("landlock ABI") == true, "\(started)")
        _ = try harness.run(["kill", id])
    }

    @Test func theMediatorKilledMidTransferClosesEveryDoorAndStopsTheRun() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let slow = upstream.ports["slow"] ?? 0
        let policy = try write(harness, policy: mirrorPolicy(upstream))
        let id = try harness.start(
            ["--network", "proxy", "--policy", policy, "--resolve", "mirror.test=127.0.0.1"],
            command: [
                "/bin/bash", "-c",
                "curl -sS -m 60 -o /dev/null http://mirror.test:\(slow)/ 2>curl.err; echo $? > curl.rc; sleep 60",
            ])
        let started = try #require(try harness.events(id, kind: "mediator.started").first)
        let pid = try #require(started["pid"].flatMap { Int32($0) })
        #expect(
            harness.waitUntil(timeout: 10) { (try? harness.events(id, kind: "decision").isEmpty == false) ?? false })
        usleep(300_000)
        kill(pid, SIGKILL)
        #expect(harness.waitUntil(timeout: 15) { (try? harness.inspect(id)["state"] as? String) == "stopped" })
        let lost = try harness.events(id, kind: "mediator.lost")
        #expect(lost.first?["how"] == "killed by signal 9", "\(lost)")
        #expect(lost.first?["action"] == "stop")
        let rc = harness.contents(harness.workspace + "/curl.rc").map { String(decoding: $0, as: UTF8.self) }
        #expect(rc != nil && rc != "0\n", "the transfer failed with the door: \(rc ?? "not finished")")
    }
}

/// The first producer of `ask`: a connection the policy asks about waits for a person, and the answer
/// covers exactly that request, once.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct EgressApprovalTests {
    @Test func anAskWaitsForAPersonAndItsApprovalCoversThatRequestOnce() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let http = upstream.ports["http"] ?? 0
        let policyPath = try upstream.askPolicy(harness)
        let fetch = "curl -s -o /dev/null -w '%{http_code}\\n' -m 30 http://mirror.test:\(http)"
        let id = try harness.start(
            [
                "--network", "proxy", "--policy", policyPath, "--resolve", "mirror.test=127.0.0.1",
                "--approval-timeout", "2s",
            ],
            command: [
                "/bin/bash", "-c",
                "\(fetch)/hello.txt >> codes; \(fetch)/hello.txt >> codes; \(fetch)/other >> codes; sleep 30",
            ])
        // 1. Held until approved; then the request goes, once.
        let first = try #require(harness.pendingApproval(excluding: []), "the first request is held")
        let firstID = try #require(first["id"] as? String)
        #expect(
            (first["summary"] as? String)?.hasPrefix("GET http://mirror.test:\(http)/hello.txt") == true, "\(first)")
        let approved = try harness.run(["approve", firstID, "--as", "tester"])
        #expect(approved.status == 0, "\(approved.standardError)")
        // 2. The same request again asks again (not remembered); the used approval cannot be reused.
        let second = try #require(harness.pendingApproval(excluding: [firstID]), "asked again")
        let secondID = try #require(second["id"] as? String)
        let reuse = try harness.run(["approve", firstID])
        #expect(reuse.status != 0 && reuse.standardError.contains("used"), "\(reuse.standardError)")
        #expect(try harness.run(["deny", secondID]).status == 0)
        // 3. Nobody answers: it expires, and expiry is a denial.
        let third = try #require(harness.pendingApproval(excluding: [firstID, secondID]))
        #expect((third["request"] as? String)?.contains("/other") == true, "bound to its path: \(third)")
        #expect(
            harness.waitUntil(timeout: 15) {
                (harness.contents(harness.workspace + "/codes").map { String(decoding: $0, as: UTF8.self) } ?? "")
                    .split(separator: "\n").count == 3
            })
        let codes = harness.contents(harness.workspace + "/codes").map { String(decoding: $0, as: UTF8.self) }
        #expect(codes == "200\n403\n403\n", "approved, denied, expired: \(codes ?? "")")
        #expect(try harness.events(id, kind: "approval.used").count == 1)
        #expect(try harness.events(id, kind: "approval.expired").count == 1)
        let decided = try harness.events(id, kind: "approval.decided")
        #expect(decided.contains { $0["approver"]?.contains("tester") == true }, "\(decided)")
        _ = try harness.run(["kill", id])
    }
}

/// The inline prompt of a foreground run on a terminal: the operator answers held requests in place —
/// allow once, always for this run, deny — and an answer from another terminal ends the prompt.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct InlineApprovalPromptTests {
    @Test func theOperatorAnswersAtTheRunsTerminalOnceAlwaysOrNoAndAnotherTerminalCanAnswerToo() throws {
        let harness = try WardenHarness()
        let upstream = try Upstream(harness: harness)
        let http = upstream.ports["http"] ?? 0
        let policyPath = try upstream.askPolicy(harness)
        let fetch = "curl -s -o /dev/null -w '%{http_code} ' -m 60 http://mirror.test:\(http)"
        let terminal = try TerminalSession(
            harness: harness,
            arguments: [
                "run", "--workspace", harness.workspace, "--network", "proxy", "--policy", policyPath,
                "--resolve", "mirror.test=127.0.0.1", "--approval-timeout", "40s", "--", "/bin/bash", "-c",
                "{ \(fetch)/hello.txt?a; \(fetch)/hello.txt?b; \(fetch)/hello.txt?b; \(fetch)/hello.txt?b; \(fetch)/hello.txt?c; \(fetch)/hello.txt?d; } > codes; echo; echo codes=$(cat codes)",
            ], environment: ["TERM": "xterm-256color"])
        func answer(_ key: String, prompt number: Int) {
            let shown = terminal.read(until: "denied in", timeout: 20)
            #expect(shown, "prompt \(number) shown: \(terminal.text.debugDescription)")
            terminal.type(key)
            #expect(terminal.read(until: "→", timeout: 10), "prompt \(number) answered")
            // The next prompt is told apart by what is on the screen after this answer.
            terminal.clearScreen()
        }
        answer("y", prompt: 1)  // /a: allowed once
        answer("a", prompt: 2)  // /b: allowed for the rest of the run; the next two /b are not asked
        answer("n", prompt: 3)  // /c: denied
        // /d: answered from a second terminal while the prompt is up.
        #expect(terminal.read(until: "denied in", timeout: 20), "prompt 4 shown")
        #expect(
            terminal.text.contains("GET http://mirror.test:\(http)/hello.txt?d"),
            "the prompt names the request: \(terminal.text.debugDescription)")
        let list = try harness.run(["approvals", "--json"]).standardOutput
        let items = (try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]]) ?? []
        let fourth = try #require(items.first?["id"] as? String, "\(list)")
        #expect(try harness.run(["deny", fourth, "--as", "second-terminal"]).status == 0)
        #expect(terminal.read(until: "denied by", timeout: 10), "\(terminal.text.debugDescription)")
        #expect(terminal.waitForExit(timeout: 30) == 0, "\(terminal.text.debugDescription)")
        #expect(terminal.text.contains("codes=200 200 200 200 403 403"), "\(terminal.text.debugDescription)")
        #expect(terminal.isCooked, "the operator's terminal is restored")
        let id = try #require(
            harness.run(["ps", "--all", "--json"]).standardOutput.firstMatch(of: /"id" : "([0-9a-f]+)"/)?.1)
        let decided = try harness.events(String(id), kind: "approval.decided")
        #expect(decided.count == 4, "\(decided)")
        #expect(
            decided.filter { $0["note"] == "answered at the run's terminal" }.count == 3,
            "three answered at the prompt: \(decided)")
        #expect(try harness.events(String(id), kind: "approval.used").count == 4, "once, once, remembered twice")
    }
}
