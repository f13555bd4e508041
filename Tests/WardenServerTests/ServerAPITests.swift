import Foundation
import NIOHTTP1
import Testing
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The control-plane API against the real daemon: the Unix socket (by the peer's uid) and loopback TCP with
/// TLS (bearer tokens), every endpoint, every role, and the ways a request can be wrong.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct ServerAPITests {
    @Test func theUnixSocketPeerIsAnOperatorAndEveryEndpointAnswers() async throws {
        let harness = try WardenHarness()
        let daemon = try Daemon(harness)
        let api = APIClient(daemon, .unix)
        defer { Task { await api.shutdown() } }
        let id = try harness.start(["--name", "sleeper"], command: ["/bin/sleep", "300"])

        let whoami = try await api.get("/v1/whoami")
        #expect(whoami.status == 200 && whoami.object["role"] as? String == "operator", "\(whoami.body)")
        #expect((whoami.object["name"] as? String) == "uid \(getuid())")

        // Another user cannot reach the socket (its mode), and would not pass as the peer it is (its uid).
        let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/curl", "-s", "-o", "/dev/null"]
        let unixArgs = ["-w", "%{http_code}", "--unix-socket", daemon.socket, "http://warden/v1/runs"]
        let blocked = try harness.runProgram("/usr/bin/setpriv", nobody + unixArgs)
        #expect(blocked.status == 7 && blocked.standardOutput == "000", "the socket's mode keeps others out")
        chmod(harness.stateDirectory, 0o711)
        chmod(daemon.socket, 0o666)
        let stranger = try harness.runProgram("/usr/bin/setpriv", nobody + unixArgs)
        #expect(stranger.standardOutput == "401", "a peer that is neither root nor the daemon's user")
        chmod(daemon.socket, 0o600)
        chmod(harness.stateDirectory, 0o700)
        let reasons = try harness.auditEvents().compactMap { ($0["details"] as? [String: Any])?["reason"] as? String }
        #expect(reasons.contains { $0.contains("peer uid 65534") }, "\(reasons)")

        let runs = try await api.get("/v1/runs")
        let listed = try #require(runs.array.first { $0["id"] as? String == id }, "\(runs.body)")
        #expect(listed["state"] as? String == "running")
        let usage = try #require(listed["usage"] as? [String: Any], "live resource use: \(listed)")
        #expect(((usage["processes"] as? NSNumber)?.intValue ?? 0) >= 1)
        #expect(usage["memory_bytes"] != nil && usage["cpu_seconds"] != nil)

        let detail = try await api.get("/v1/runs/\(id)")
        #expect(detail.status == 200 && (detail.object["record"] as? [String: Any])?["workspace"] != nil)
        let events = try await api.get("/v1/runs/\(id)/events")
        #expect(events.array.contains { $0["kind"] as? String == "started" }, "\(events.body.prefix(300))")
        // The run's own live stream, replayed from the log's start: its events only.
        let runStream = try harness.runProgram(
            "/usr/bin/curl",
            [
                "-sN", "--max-time", "2", "--unix-socket", daemon.socket, "-H", "Accept: text/event-stream",
                "http://warden/v1/runs/\(id)/events?since=0",
            ])
        #expect(runStream.standardOutput.contains("\"kind\":\"started\""), "\(runStream.standardOutput.prefix(300))")
        #expect(!runStream.standardOutput.contains("\"run\":null"), "only the run's events")
        #expect(try await api.get("/v1/approvals").status == 200)
        #expect(try await api.get("/v1/approvals?all=true&run=\(id)").status == 200)
        let verify = try await api.get("/v1/audit/verify")
        #expect(verify.object["ok"] as? Bool == true, "\(verify.body)")
        let tail = try await api.get("/v1/audit/tail?n=5")
        #expect(tail.array.count == 5 && tail.array.last?["hash"] != nil)
        #expect(try await api.get("/v1/events?n=3").array.count == 3)
        try FileManager.default.createDirectory(
            atPath: harness.stateDirectory + "/reports", withIntermediateDirectories: true)
        try "<html><body>report</body></html>".write(
            toFile: harness.stateDirectory + "/reports/shutdown.html", atomically: true, encoding: .utf8)
        let reports = try await api.get("/v1/reports")
        #expect(reports.array.first?["name"] as? String == "shutdown.html", "\(reports.body)")
        let report = try await api.get("/v1/reports/shutdown.html")
        #expect(report.body.contains("report"))
        #expect(report.headers.first(name: "content-security-policy")?.hasPrefix("sandbox") == true)
        #expect(try await api.get("/v1/reports/..%2Frun.json").status == 404, "only listed reports are served")
        let metrics = try await api.get("/metrics")
        #expect(metrics.body.contains("warden_runs{state=\"running\"} 1"), "\(metrics.body)")

        let stopped = try await api.post("/v1/runs/\(id)/stop", body: #"{"grace": "0s", "reason": "api test"}"#)
        #expect(stopped.status == 200 && stopped.object["stopped"] as? Bool == true, "\(stopped.body)")
        #expect((stopped.object["remaining_processes"] as? NSNumber)?.intValue == 0)
        #expect(KernelProbe.processes(inRun: id).isEmpty, "the kernel says nothing of the run is left")
        let requested = try harness.events(id, kind: "stop.requested")
        #expect(requested.first?["requested_by"]?.contains("on the unix socket") == true, "\(requested)")
        // The stop is counted from the log, with its latency.
        try await Task.sleep(for: .milliseconds(200))
        let after = try await api.get("/metrics")
        #expect(after.body.contains("warden_stops_total 1"), "\(after.body)")
        #expect(after.body.contains("warden_stop_latency_seconds_count 1"))
    }

    @Test func rolesLimitWhatATokenMayDoAndEveryChangeRecordsWho() async throws {
        let harness = try WardenHarness()
        let daemon = try Daemon(harness)
        let api = APIClient(daemon, .tls)
        defer { Task { await api.shutdown() } }
        let viewer = try daemon.token("vera", "viewer")
        let approver = try daemon.token("april", "approver")
        let operatorToken = try daemon.token("otto", "operator")
        let mirror = try Mirror(harness)
        let id = try mirror.startAskingRun(harness, name: "asker")
        let approvalID = try #require(harness.pendingApproval(excluding: [])?["id"] as? String)

        #expect(try await api.get("/v1/runs", token: viewer).status == 200)
        #expect(try await api.get("/v1/approvals", token: viewer).array.count == 1)
        let one = try await api.get("/v1/approvals/\(approvalID)", token: viewer)
        #expect(one.object["state"] as? String == "pending" && (one.object["digest"] as? String)?.count == 64)
        #expect(try await api.post("/v1/runs/\(id)/stop", token: viewer).status == 403)
        #expect(try await api.post("/v1/stop-all", token: viewer).status == 403)
        let viewerApproves = try await api.post("/v1/approvals/\(approvalID)/approve", token: viewer)
        #expect(viewerApproves.status == 403 && viewerApproves.body.contains("approver"), "\(viewerApproves.body)")
        #expect(try await api.post("/v1/runs/\(id)/kill", token: approver).status == 403)
        #expect(Mirror.codes(harness, "asker").isEmpty, "still held")

        let approved = try await api.post(
            "/v1/approvals/\(approvalID)/approve", token: approver, body: #"{"note": "ok from the API"}"#)
        #expect(approved.status == 200 && approved.object["state"] as? String == "approved", "\(approved.body)")
        #expect(harness.waitUntil(timeout: 20) { Mirror.codes(harness, "asker") == ["200"] }, "the held fetch went")
        let again = try await api.post("/v1/approvals/\(approvalID)/deny", token: approver)
        #expect(again.status == 409 && again.errorCode == "conflict", "one answer counts: \(again.body)")
        let decided = try harness.events(id, kind: "approval.decided")
        #expect(decided.first?["approver"]?.contains("token 'april'") == true, "\(decided)")

        let stopped = try await api.post("/v1/runs/\(id)/kill", token: operatorToken)
        #expect(stopped.status == 200 && stopped.object["stopped"] as? Bool == true, "\(stopped.body)")
        #expect(KernelProbe.processes(inRun: id).isEmpty)
        let requested = try harness.events(id, kind: "stop.requested")
        #expect(requested.first?["requested_by"]?.contains("token 'otto'") == true, "\(requested)")
        let refused = try harness.auditEvents().filter { $0["kind"] as? String == "server.refused" }
        #expect(refused.count == 4, "each refused change is recorded: \(refused.count)")
    }

    @Test func wrongMissingAndRevokedTokensGet401AndAreRecordedWithoutTheToken() async throws {
        let harness = try WardenHarness()
        let daemon = try Daemon(harness)
        let api = APIClient(daemon, .tls)
        defer { Task { await api.shutdown() } }
        let token = try daemon.token("temp", "operator")
        let parts = token.split(separator: "_")
        let wrongSecret = "wdn_\(parts[1])_" + String(repeating: "deadbeef", count: 6)
        let unknown = "wdn_00000000_" + String(parts[2])
        #expect(try await api.get("/v1/runs", token: token).status == 200)
        for (label, headers) in [
            ("none", [(String, String)]()), ("malformed", [("Authorization", "Bearer nope")]),
            ("wrong secret", [("Authorization", "Bearer \(wrongSecret)")]),
            ("unknown id", [("Authorization", "Bearer \(unknown)")]),
            ("basic", [("Authorization", "Basic dXNlcjpwYXNz")]),
        ] {
            let reply = try await api.call(.GET, "/v1/runs", headers: headers)
            #expect(reply.status == 401 && reply.errorCode == "unauthorized", "\(label): \(reply.body)")
            #expect(reply.headers.first(name: "www-authenticate") != nil)
        }
        let revoked = try harness.run(["serve", "token", "revoke", "temp"])
        #expect(revoked.status == 0, "\(revoked.standardError)")
        let after = try await api.get("/v1/runs", token: token)
        #expect(after.status == 401 && after.body.contains("revoked"), "\(after.body)")
        let list = try harness.run(["serve", "token", "list", "--json"]).standardOutput
        #expect(list.contains("\"revoked\" : true") && !list.contains(String(parts[2])), "\(list)")

        let log = try harness.auditEvents()
        let failures = log.filter { $0["kind"] as? String == "server.auth.failed" }
        #expect(failures.count == 6, "every 401 recorded: \(failures.count)")
        let reasons = failures.compactMap { ($0["details"] as? [String: Any])?["reason"] as? String }
        #expect(reasons.contains("a revoked token") && reasons.contains("an unknown token"), "\(reasons)")
        let text = try harness.run(["audit", "export", "--format", "jsonl"]).standardOutput
        #expect(
            !text.contains(String(parts[2])) && !text.contains(String(wrongSecret.suffix(48))), "no secret in the log")
        #expect(log.contains { $0["kind"] as? String == "server.token.created" })
        #expect(log.contains { $0["kind"] as? String == "server.token.revoked" })
    }

    @Test func badRequestsGetOneClearErrorAndChangeNothing() async throws {
        let harness = try WardenHarness()
        let daemon = try Daemon(harness)
        let api = APIClient(daemon, .unix)
        defer { Task { await api.shutdown() } }
        let id = try harness.start(["--name", "keep"], command: ["/bin/sleep", "300"])
        let cases: [(String, String, Int, String)] = [
            ("oversized", String(repeating: "x", count: 100_000), 413, "body_too_large"),
            ("malformed", #"{"grace": "#, 400, "invalid_json"),
            ("not an object", #"["0s"]"#, 400, "invalid_input"),
            ("unknown field", #"{"graze": "1s"}"#, 400, "invalid_input"),
            ("wrong type", #"{"grace": 5}"#, 400, "invalid_input"),
            ("bad duration", #"{"grace": "soon"}"#, 400, "invalid_input"),
            ("duplicate field", #"{"reason": "a", "reason": "b"}"#, 400, "invalid_input"),
        ]
        for (label, body, status, code) in cases {
            let reply = try await api.post("/v1/runs/\(id)/stop", body: body)
            #expect(reply.status == status && reply.errorCode == code, "\(label): \(reply.status) \(reply.body)")
        }
        #expect(try harness.inspect(id)["state"] as? String == "running", "nothing was half-applied")
        #expect(try harness.events(id, kind: "stop.requested").isEmpty)
        let unknownRun = try await api.post("/v1/runs/ffffffffffff/stop")
        #expect(unknownRun.status == 404 && unknownRun.errorCode == "not_found", "\(unknownRun.body)")
        let unknownPath = try await api.get("/v1/nothing")
        #expect(unknownPath.status == 404 && unknownPath.errorCode == "not_found")
        #expect(try await api.get("/v1/runs?all=maybe").status == 400)
        #expect(try await api.post("/v1/approvals/ap-0000000000/approve").status == 404)
        let killed = try await api.post("/v1/kill-all", body: #"{"reason": "done"}"#)
        #expect(killed.status == 200 && (killed.object["remaining_processes"] as? NSNumber)?.intValue == 0)
        #expect(KernelProbe.processes(inRun: id).isEmpty)
    }

    @Test func browserChangesNeedTheSessionCookieItsCSRFTokenAndTheServersOwnOrigin() async throws {
        let harness = try WardenHarness()
        let daemon = try Daemon(harness)
        let api = APIClient(daemon, .tls)
        defer { Task { await api.shutdown() } }
        let token = try daemon.token("browser", "operator")
        let page = try await api.get("/")
        let policy = try #require(page.headers.first(name: "content-security-policy"))
        #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "\(policy)")
        #expect(page.body.contains("<script type=\"module\" src=\"/app.js\">"))
        #expect(!page.body.contains("<script>") && !page.body.contains("style=\""), "no inline script or style")

        let session = try await api.post("/v1/session", token: token)
        let cookieHeader = try #require(session.headers.first(name: "set-cookie"), "\(session.body)")
        for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            #expect(cookieHeader.contains(attribute), "\(cookieHeader)")
        }
        let cookie = String(cookieHeader.split(separator: ";")[0])
        let csrf = try #require(session.object["csrf"] as? String)
        let origin = daemon.url
        #expect(try await api.call(.GET, "/v1/runs", headers: [("Cookie", cookie)]).status == 200)

        let noToken = try await api.post("/v1/stop-all", headers: [("Cookie", cookie), ("Origin", origin)])
        #expect(noToken.status == 403 && noToken.errorCode == "csrf", "\(noToken.body)")
        let foreign = try await api.post(
            "/v1/stop-all", headers: [("Cookie", cookie), ("X-CSRF-Token", csrf), ("Origin", "https://evil.example")])
        #expect(foreign.status == 403 && foreign.errorCode == "csrf", "\(foreign.body)")
        let noOrigin = try await api.post("/v1/stop-all", headers: [("Cookie", cookie), ("X-CSRF-Token", csrf)])
        #expect(noOrigin.status == 403, "\(noOrigin.body)")
        let wrongToken = try await api.post(
            "/v1/stop-all",
            headers: [("Cookie", cookie), ("X-CSRF-Token", String(csrf.reversed())), ("Origin", origin)])
        #expect(wrongToken.status == 403)
        let own = try await api.post(
            "/v1/stop-all", headers: [("Cookie", cookie), ("X-CSRF-Token", csrf), ("Origin", origin)])
        #expect(own.status == 200, "\(own.body)")
        let forged = try await api.call(.GET, "/v1/runs", headers: [("Cookie", "warden_session=" + csrf)])
        #expect(forged.status == 401, "a made-up session is refused")
        let current = try await api.call(.GET, "/v1/session", headers: [("Cookie", cookie)])
        #expect(current.object["signed_in"] as? Bool == true && current.object["csrf"] as? String == csrf)
        #expect(try await api.get("/v1/session").object["signed_in"] as? Bool == false, "no cookie: not signed in")
        // Signing out ends that session only.
        let second = try await api.post("/v1/session", token: token)
        let secondCookie = String((second.headers.first(name: "set-cookie") ?? "").split(separator: ";")[0])
        let secondCSRF = (second.object["csrf"] as? String) ?? ""
        let signOut = try await api.call(
            .DELETE, "/v1/session",
            headers: [("Cookie", secondCookie), ("X-CSRF-Token", secondCSRF), ("Origin", origin)])
        #expect(signOut.status == 200 && signOut.headers.first(name: "set-cookie")?.contains("Max-Age=0") == true)
        #expect(try await api.call(.GET, "/v1/runs", headers: [("Cookie", secondCookie)]).status == 401)
        #expect(try await api.call(.GET, "/v1/runs", headers: [("Cookie", cookie)]).status == 200)
        let refusals = try harness.auditEvents().filter { $0["kind"] as? String == "server.refused" }
        #expect(refusals.count == 4, "each CSRF refusal recorded: \(refusals.count)")

        // Revoking the token ends its sessions.
        _ = try harness.run(["serve", "token", "revoke", "browser"])
        #expect(try await api.call(.GET, "/v1/runs", headers: [("Cookie", cookie)]).status == 401)
    }

    @Test func theEventStreamDeliversNewEventsAndResumesAfterLastEventID() async throws {
        let harness = try WardenHarness()
        let daemon = try Daemon(harness)
        let recorded = try harness.run(["audit", "record", "--kind", "note", "--subject", "before"])
        let before = try #require(Int(recorded.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)))
        let stream = harness.outside + "/stream.txt"
        let curl = harness.process(
            "/usr/bin/curl",
            arguments: [
                "-sN", "--max-time", "120", "--unix-socket", daemon.socket, "-H", "Accept: text/event-stream",
                "-H", "Last-Event-ID: \(before - 1)", "http://warden/v1/events",
            ])
        _ = FileManager.default.createFile(atPath: stream, contents: nil)
        curl.standardOutput = FileHandle(forWritingAtPath: stream)
        try curl.run()
        var text = ""
        // The stream is open once the replayed event has arrived; then one is recorded live.
        harness.waitUntil(timeout: 60) {
            text = (try? String(contentsOfFile: stream, encoding: .utf8)) ?? ""
            return text.contains("\"subject\":\"before\"")
        }
        _ = try harness.run(["audit", "record", "--kind", "note", "--subject", "live-one"])
        harness.waitUntil(timeout: 60) {
            text = (try? String(contentsOfFile: stream, encoding: .utf8)) ?? ""
            return text.contains("\"subject\":\"live-one\"")
        }
        // SIGKILL: the test process may hold SIGTERM blocked, and its children inherit the mask.
        kill(curl.processIdentifier, SIGKILL)
        curl.waitUntilExit()
        #expect(text.contains("id: \(before)\n") && text.contains("\"subject\":\"before\""), "replayed: \(text)")
        #expect(text.contains("\"subject\":\"live-one\""), "live: \(text)")
    }

    @Test func listenWithoutTLSAndOtherBadFlagsAreRefusedBeforeAnythingListens() throws {
        let harness = try WardenHarness()
        let plain = try harness.run(["serve", "--listen", "127.0.0.1:0"])
        #expect(plain.status == 2 && plain.standardError.contains("--tls-cert"), "\(plain.standardError)")
        let badAddress = try harness.run(["serve", "--listen", "nowhere"])
        #expect(badAddress.status == 2 && badAddress.standardError.contains("HOST:PORT"), "\(badAddress.standardError)")
        try "not a certificate".write(toFile: harness.outside + "/bad.pem", atomically: true, encoding: .utf8)
        let badFiles = try harness.run([
            "serve", "--listen", "127.0.0.1:0", "--tls-cert", harness.outside + "/bad.pem", "--tls-key",
            harness.outside + "/bad.pem",
        ])
        #expect(badFiles.status == 2 && badFiles.standardError.contains("PEM"), "\(badFiles.standardError)")
        let badRole = try harness.run(["serve", "token", "create", "--name", "x", "--role", "admin"])
        #expect(badRole.status == 2, "\(badRole.standardError)")
        #expect(!FileManager.default.fileExists(atPath: harness.stateDirectory + "/warden.sock"))
    }
}

/// `--max-connections`: a listener serves at most that many connections; the next one waits, unserved,
/// until one closes.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct ServerLimitTests {
    @Test func aListenerServesAtMostMaxConnectionsAtOnce() async throws {
        let harness = try WardenHarness()
        let daemon = try Daemon(harness, extra: ["--max-connections", "2"])
        // Two clients hold a connection each: event streams that stay open.
        var holders: [Process] = []
        var outputs: [String] = []
        for index in 0..<2 {
            let stream = harness.process(
                "/usr/bin/curl",
                arguments: [
                    "-sN", "--max-time", "120", "--unix-socket", daemon.socket, "-H", "Accept: text/event-stream",
                    "http://warden/v1/events",
                ])
            let output = harness.outside + "/holder-\(index)"
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            stream.standardOutput = FileHandle(forWritingAtPath: output)
            try stream.run()
            holders.append(stream)
            outputs.append(output)
        }
        // Both are served (their streams began) before the third tries.
        let served = harness.waitUntil(timeout: 60) {
            outputs.allSatisfy {
                (harness.contents($0).map { String(decoding: $0, as: UTF8.self) } ?? "").contains("retry:")
            }
        }
        #expect(served, "the two holders' streams began")
        let third = try harness.runProgram(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "--unix-socket", daemon.socket,
                "http://warden/v1/whoami",
            ])
        #expect(third.status == 28 && third.standardOutput == "000", "the third waits unserved: \(third.status)")
        for holder in holders { kill(holder.processIdentifier, SIGKILL) }
        for holder in holders { holder.waitUntilExit() }
        let after = try harness.runProgram(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--unix-socket", daemon.socket,
                "http://warden/v1/whoami",
            ])
        #expect(after.standardOutput == "200", "served once a connection closed: \(after.standardOutput)")
    }
}
