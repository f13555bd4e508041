import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WardenCore
import WardenGateway
import WardenSandbox

/// The `/v1` routes, the live streams, `/metrics` and the dashboard's files.
struct ControlPlaneAPI: Sendable {
    let plane: ControlPlane
    let sessions: BrowserSessions
    let authenticator: Authenticator
    /// At most this many live event streams at once (each holds a connection).
    let maxStreams: Int

    init(plane: ControlPlane, sessions: BrowserSessions, extraOrigins: [String], maxStreams: Int) {
        self.plane = plane
        self.sessions = sessions
        self.authenticator = Authenticator(plane: plane, sessions: sessions, extraOrigins: extraOrigins)
        self.maxStreams = maxStreams
    }

    func makeRouter() -> Router<ServerContext> {
        let router = Router(context: ServerContext.self)
        router.add(middleware: SecurityHeaders())
        addDashboard(router)
        let v1 = router.group("v1")
        addSession(v1)
        addRuns(v1)
        addEvents(v1)
        addApprovals(v1)
        addAudit(v1)
        router.get("metrics") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            let summaries = plane.runs(all: true).summaries
            plane.metrics.setGauges(
                runsByState: Dictionary(summaries.map { ($0.state, 1) }, uniquingKeysWith: +),
                approvalsWaiting: (try? plane.approvals.list().count) ?? 0,
                streams: await plane.feed.subscriberCount)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: plane.metrics.render())))
        }
        return router
    }

    // MARK: - Dashboard

    private func addDashboard(_ router: Router<ServerContext>) {
        let files: [(String, [UInt8], String)] = [
            ("index.html", PackageResources.index_html, "text/html; charset=utf-8"),
            ("app.js", PackageResources.app_js, "text/javascript; charset=utf-8"),
            ("style.css", PackageResources.style_css, "text/css; charset=utf-8"),
        ]
        for (name, bytes, type) in files {
            let response = Response(
                status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            router.get(RouterPath(name)) { _, _ in response }
            if name == "index.html" { router.get("/") { _, _ in response } }
        }
    }

    // MARK: - Sessions

    private func addSession(_ v1: RouterGroup<ServerContext>) {
        v1.get("whoami") { request, context in
            let caller = try await authenticator.authenticate(request, context, needs: .viewer)
            return json([
                "name": .string(caller.name), "role": .string(caller.role.rawValue), "via": .string(caller.description),
            ])
        }
        // A browser signs in by presenting a token once; it gets the cookie and its CSRF token.
        v1.post("session") { request, context in
            guard request.headers[.authorization] != nil else {
                throw APIError(
                    .badRequest, "invalid_input",
                    "sign in with `Authorization: Bearer <token>` (from `warden serve token create`)")
            }
            let caller = try await authenticator.authenticate(request, context, needs: .viewer)
            guard case .token(let tokenID, _) = caller.credential else {
                throw APIError(.badRequest, "invalid_input", "a session is opened with a bearer token")
            }
            let (id, csrf) = sessions.open(tokenID: tokenID)
            try await plane.record(
                ServerEvent.sessionOpened, actor: "server", subject: caller.name,
                ["by": caller.description, "remote": context.remote])
            var response = json([
                "name": .string(caller.name), "role": .string(caller.role.rawValue), "csrf": .string(csrf),
                "signed_in": .bool(true),
            ])
            let secure = context.isUnixSocket ? "" : "; Secure"
            response.headers[.setCookie] =
                "\(BrowserSessions.cookieName)=\(id); Path=/; HttpOnly; SameSite=Strict; Max-Age=43200\(secure)"
            return response
        }
        v1.get("session") { request, context in
            // Not signed in is an answer here, not a refusal: the page asks before it shows the sign-in form.
            guard let cookie = Authenticator.cookie(request, BrowserSessions.cookieName),
                let session = sessions.session(cookie)
            else { return json(["signed_in": .bool(false)]) }
            let caller = try await authenticator.authenticate(request, context, needs: .viewer)
            return json([
                "signed_in": .bool(true), "name": .string(caller.name), "role": .string(caller.role.rawValue),
                "csrf": .string(session.csrf),
            ])
        }
        v1.delete("session") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            if let cookie = Authenticator.cookie(request, BrowserSessions.cookieName) { sessions.close(cookie) }
            var response = json(["signed_in": .bool(false)])
            response.headers[.setCookie] =
                "\(BrowserSessions.cookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
            return response
        }
    }

    // MARK: - Runs

    private func addRuns(_ v1: RouterGroup<ServerContext>) {
        v1.get("runs") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            let all = try flag(request, "all")
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: plane.runsJSON(all: all))))
        }
        v1.get("runs/:id") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            let id = try context.parameters.require("id")
            return try encoded(try warden { try plane.run(id) })
        }
        v1.get("runs/:id/events") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            let text = try context.parameters.require("id")
            let id = try warden { try plane.registry.resolve(text) }
            if wantsStream(request) { return try await stream(request, run: id.rawValue) }
            let events = try await Blocking.run { try plane.events(of: id.rawValue) }
            return try encoded(events)
        }
        for (verb, defaultGrace) in [("stop", nil as Duration?), ("kill", Duration.zero)] {
            v1.post(RouterPath("runs/:id/\(verb)")) { request, context in
                let caller = try await authenticator.authenticate(request, context, needs: .operator)
                let body = try await StopBody(request, allowGrace: defaultGrace == nil)
                let id = try warden { try plane.registry.resolve(try context.parameters.require("id")) }
                let outcomes = try await plane.stop(
                    [id], grace: body.grace ?? defaultGrace,
                    reason: body.reason ?? "operator request (\(verb) via the API)",
                    by: caller)
                return try encoded(outcomes.first)
            }
            v1.post(RouterPath("\(verb)-all")) { request, context in
                let caller = try await authenticator.authenticate(request, context, needs: .operator)
                let body = try await StopBody(request, allowGrace: defaultGrace == nil)
                let outcomes = try await plane.stop(
                    plane.activeRuns(), grace: body.grace ?? defaultGrace,
                    reason: body.reason ?? "operator request (\(verb) all via the API)", by: caller)
                return try encoded(StopAllResult(runs: outcomes))
            }
        }
    }

    // MARK: - Events

    private func addEvents(_ v1: RouterGroup<ServerContext>) {
        v1.get("events") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            if wantsStream(request) { return try await stream(request, run: nil) }
            let count = try number(request, "n") ?? 100
            let events = try await plane.tail(count)
            return jsonArray(events.map(\.json))
        }
    }

    /// A Server-Sent Events stream of the log from now on (or from `Last-Event-ID` / `?since=`), one
    /// event per message with its sequence number as the id; a comment every 15 s keeps it open.
    private func stream(_ request: Request, run: String?) async throws -> Response {
        guard await plane.feed.subscriberCount < maxStreams else {
            throw APIError(
                .serviceUnavailable, "too_many_streams",
                "\(maxStreams) event streams are open (the limit, --max-streams); close one and retry")
        }
        let resumeText =
            request.headers[.lastEventID] ?? request.uri.queryParameters["since"].map(String.init)
        let resume = try resumeText.map { text -> Int64 in
            guard let value = Int64(text), value >= 0 else {
                throw APIError(
                    .badRequest, "invalid_input", "since / Last-Event-ID: '\(text)' is not a sequence number")
            }
            return value
        }
        let (events, startsAt, _) = await plane.feed.subscribe()
        let feed = plane.feed
        let body = ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 1000\n: warden event stream from \(startsAt)\n\n"))
            if let resume, resume + 1 < startsAt {
                var from = resume + 1
                while from < startsAt {
                    let page = try await feed.history(from: from, through: startsAt - 1, limit: 5000)
                    guard let last = page.last else { break }
                    let text = page.filter { run == nil || $0.run == run }.map(\.serverSentEvent).joined()
                    if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
                    from = last.sequence + 1
                }
            }
            for await event in events {
                if event.sequence == 0 {
                    try await writer.write(ByteBuffer(string: ": ping\n\n"))
                } else if run == nil || event.run == run {
                    try await writer.write(ByteBuffer(string: event.serverSentEvent))
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream", .cacheControl: "no-store",
                .accelBuffering: "no",
            ],
            body: body)
    }

    // MARK: - Approvals

    private func addApprovals(_ v1: RouterGroup<ServerContext>) {
        v1.get("approvals") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            let run = try request.uri.queryParameters["run"].map { text in
                try warden { try plane.registry.resolve(String(text)) }
            }
            let all = try flag(request, "all")
            return try encoded(try warden { try plane.approvals.list(run: run, includeDecided: all) })
        }
        v1.get("approvals/:id") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            let id = try context.parameters.require("id")
            return try encoded(try warden { try plane.approvals.approval(id) })
        }
        for approve in [true, false] {
            v1.post(RouterPath("approvals/:id/\(approve ? "approve" : "deny")")) { request, context in
                let caller = try await authenticator.authenticate(request, context, needs: .approver)
                let body = try await RequestObject(request, allowed: approve ? ["remember", "note"] : ["note"])
                let remember = try body.bool("remember") ?? false
                let note = try body.string("note", limit: 1000)
                let id = try context.parameters.require("id")
                let approval = try await Blocking.run {
                    try plane.decide(id, approve: approve, remember: remember, note: note, by: caller)
                }
                return try encoded(approval)
            }
        }
    }

    // MARK: - Audit and reports

    private func addAudit(_ v1: RouterGroup<ServerContext>) {
        v1.get("audit/verify") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            return try encoded(try await plane.verify())
        }
        v1.get("audit/tail") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            return jsonArray(try await plane.tail(try number(request, "n") ?? 50).map(\.json))
        }
        v1.get("reports") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            return try encoded(plane.reports())
        }
        v1.get("reports/:name") { request, context in
            _ = try await authenticator.authenticate(request, context, needs: .viewer)
            let (bytes, kind) = try warden { try plane.report(named: try context.parameters.require("name")) }
            var headers: HTTPFields = [
                .contentType: kind == "html" ? "text/html; charset=utf-8" : "application/json"
            ]
            // A report is rendered data: it runs no script and loads nothing (its styles are inline).
            headers[.contentSecurityPolicy] =
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}

// MARK: - Helpers

/// The result of stopping every active run.
struct StopAllResult: Encodable {
    var runs: [StopProtocol.Outcome]
    var stopped: Int { runs.filter(\.stopped).count }
    var remainingProcesses: Int { runs.map(\.remainingProcesses).reduce(0, +) }

    enum CodingKeys: String, CodingKey {
        case runs, stopped
        case remainingProcesses = "remaining_processes"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(runs, forKey: .runs)
        try c.encode(stopped, forKey: .stopped)
        try c.encode(remainingProcesses, forKey: .remainingProcesses)
    }
}

/// A request's JSON object body: at most 64 KiB, an object, only the keys the route knows.
struct RequestObject {
    let members: [String: JSONValue]

    init(_ request: Request, allowed: Set<String>) async throws {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: 64 * 1024)
        } catch {
            throw APIError(.contentTooLarge, "body_too_large", "request bodies are limited to 64 KiB")
        }
        let bytes = Array(buffer.readableBytesView)
        guard !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            members = [:]
            return
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes: bytes)
        } catch {
            throw APIError(.badRequest, "invalid_json", "the body is not valid JSON (\(error)); send a JSON object")
        }
        guard case .object(let pairs) = value else {
            throw APIError(.badRequest, "invalid_input", "the body must be a JSON object, not \(value.kindName)")
        }
        var members: [String: JSONValue] = [:]
        for (key, value) in pairs {
            guard allowed.contains(key) else {
                let known = allowed.sorted().joined(separator: ", ")
                throw APIError(
                    .badRequest, "invalid_input",
                    "unknown field '\(key)'; this endpoint takes \(known.isEmpty ? "no fields" : known)")
            }
            guard members[key] == nil else {
                throw APIError(.badRequest, "invalid_input", "field '\(key)' appears twice")
            }
            members[key] = value
        }
        self.members = members
    }

    func string(_ key: String, limit: Int) throws -> String? {
        guard let value = members[key], value != .null else { return nil }
        guard let text = value.stringValue else {
            throw APIError(.badRequest, "invalid_input", "'\(key)' must be a string, not \(value.kindName)")
        }
        guard text.count <= limit else {
            throw APIError(.badRequest, "invalid_input", "'\(key)' is longer than \(limit) characters")
        }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = members[key], value != .null else { return nil }
        guard case .bool(let flag) = value else {
            throw APIError(.badRequest, "invalid_input", "'\(key)' must be true or false, not \(value.kindName)")
        }
        return flag
    }
}

/// `{"grace": "2s", "reason": "…"}` of a stop (a kill takes no grace).
struct StopBody {
    var grace: Duration?
    var reason: String?

    init(_ request: Request, allowGrace: Bool) async throws {
        let body = try await RequestObject(request, allowed: allowGrace ? ["grace", "reason"] : ["reason"])
        reason = try body.string("reason", limit: 500)
        if let text = try body.string("grace", limit: 32) {
            do {
                grace = try DurationSpec.parse(text, field: "grace")
            } catch let error as WardenError {
                throw APIError(.badRequest, "invalid_input", error.message)
            }
        }
    }
}

/// Turns Warden's errors into the API's.
func warden<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as WardenError {
        throw APIError.from(error)
    }
}

func encoded<T: Encodable>(_ value: T) throws -> Response {
    let data = try JSON.encoder.encode(value)
    return Response(
        status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func json(_ members: KeyValuePairs<String, JSONValue>) -> Response {
    let text = JSONValue.object(members.map { ($0.key, $0.value) }).serialized
    return Response(
        status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
}

func jsonArray(_ items: [String]) -> Response {
    Response(
        status: .ok, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(string: "[" + items.joined(separator: ",") + "]")))
}

func wantsStream(_ request: Request) -> Bool {
    (request.headers[.accept] ?? "").contains("text/event-stream")
}

func flag(_ request: Request, _ name: String) throws -> Bool {
    guard let text = request.uri.queryParameters[Substring(name)] else { return false }
    switch text {
    case "", "1", "true", "yes": return true
    case "0", "false", "no": return false
    default: throw APIError(.badRequest, "invalid_input", "?\(name)=\(text): use true or false")
    }
}

func number(_ request: Request, _ name: String) throws -> Int? {
    guard let text = request.uri.queryParameters[Substring(name)] else { return nil }
    guard let value = Int(text), value > 0, value <= 10_000 else {
        throw APIError(.badRequest, "invalid_input", "?\(name)=\(text): use a whole number from 1 to 10000")
    }
    return value
}

/// Security headers on every response, and every error as the API's JSON error.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    static var contentSecurityPolicy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = try error.response(from: request, context: context)
        } catch let error as WardenError {
            response = try APIError.from(error).response(from: request, context: context)
        } catch let error as HTTPError {
            let code =
                switch error.status {
                case .notFound: "not_found"
                case .contentTooLarge: "body_too_large"
                case .methodNotAllowed: "method_not_allowed"
                default: "http_\(error.status.code)"
                }
            let message =
                error.status == .notFound
                ? "no such endpoint: \(request.method.rawValue) \(request.uri.path) (see the README's API section)"
                : (error.body ?? error.status.reasonPhrase)
            response = try APIError(error.status, code, message).response(from: request, context: context)
        } catch {
            response = try APIError(.internalServerError, "internal", "\(error)").response(
                from: request, context: context)
        }
        if response.headers[.contentSecurityPolicy] == nil {
            response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "no-referrer"
        response.headers[.frameOptions] = "DENY"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}
