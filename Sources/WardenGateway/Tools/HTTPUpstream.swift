import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WardenCore

/// A Streamable HTTP server (MCP's HTTP transport), as the gateway's client: each message is a POST;
/// the answer is a JSON body or a `text/event-stream` whose events are read as they arrive (the SSE
/// framing is Warden's own, so a streamed answer is never buffered whole). Warden adds the operator's
/// headers and bearer token (the agent never sees them), keeps the server's `Mcp-Session-Id`, and
/// connects to exactly the address the egress decision checked (for `http`; `https` verifies the name's
/// certificate, so the client resolves the name itself).
final class HTTPTransport: UpstreamTransport, Sendable {
    let name: String
    let url: URL
    /// What the request goes to: the URL with the checked address for `http`.
    let target: String
    let headers: [(String, String)]
    let timeout: Duration
    private struct State {
        var session: String?
        var deliver: (@Sendable ([UInt8]) -> Void)?
        var ended: (@Sendable () -> Void)?
        var closed = false
    }
    private let state = Mutex(State())

    /// The biggest answer read (a bigger one is an error for that request).
    static let bodyMax = 16 << 20

    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// - Parameters:
    ///   - address: the address the egress decision allowed (used in place of the name for `http`).
    init(name: String, url: URL, address: String?, headers: [(String, String)], timeout: Duration) {
        self.name = name
        self.url = url
        self.headers = headers
        self.timeout = timeout
        if url.scheme == "http", let address, var parts = URLComponents(url: url, resolvingAgainstBaseURL: false) {
            parts.host = address.contains(":") ? "[\(address)]" : address
            target = parts.string ?? url.absoluteString
        } else {
            target = url.absoluteString
        }
    }

    func start(deliver: @escaping @Sendable ([UInt8]) -> Void, ended: @escaping @Sendable () -> Void) throws {
        state.withLock {
            $0.deliver = deliver
            $0.ended = ended
        }
    }

    func send(_ message: RPCMessage, revision: String?) throws {
        let (session, closed) = state.withLock { ($0.session, $0.closed) }
        guard !closed else { throw WardenError(code: .conflict, message: "mcp server \(name): closed") }
        var request = HTTPClientRequest(url: target)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        if target != url.absoluteString, let host = url.host {
            request.headers.replaceOrAdd(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        }
        for (field, value) in headers { request.headers.add(name: field, value: value) }
        if let revision { request.headers.add(name: "MCP-Protocol-Version", value: revision) }
        if let session { request.headers.add(name: "Mcp-Session-Id", value: session) }
        var requestID: JSONValue?
        if case .request(let id, let method, let params) = message {
            requestID = id
            if revision == MCPRevision.modern {
                // The stateless revision's routing headers mirror the body.
                request.headers.add(name: "Mcp-Method", value: method)
                let key = method == "resources/read" ? "uri" : "name"
                if ["tools/call", "prompts/get", "resources/read"].contains(method),
                    let named = params?[key]?.stringValue
                {
                    request.headers.add(name: "Mcp-Name", value: named)
                }
            }
        }
        request.body = .bytes(ByteBuffer(string: message.json.serialized))
        let seconds = timeout.seconds
        // A notification or an answer is sent before what follows it (the server reads them in
        // order); a request's answer is read as it comes, while others go.
        let done = requestID == nil ? DispatchSemaphore(value: 0) : nil
        Task { [self, request] in
            defer { done?.signal() }
            do {
                let response = try await Self.client.execute(
                    request, timeout: .milliseconds(Int64(seconds * 1000) + 1000))
                if let minted = response.headers.first(name: "Mcp-Session-Id") {
                    state.withLock { $0.session = minted }
                }
                try await read(response, answering: requestID)
            } catch {
                fail(requestID, "cannot reach \(url.absoluteString): \(WardenError.transportReason(error))")
            }
        }
        _ = done?.wait(timeout: .now() + seconds)
    }

    /// Delivers what a response carries: nothing (202), one JSON message, or each SSE event's data.
    private func read(_ response: HTTPClientResponse, answering id: JSONValue?) async throws {
        let deliver = state.withLock { $0.deliver }
        let status = response.status.code
        if status == 202 || (status == 200 && id == nil) { return }
        let type = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        guard (200..<300).contains(status) else {
            // The server's JSON-RPC error for this request if it sent one, else the HTTP status.
            let body = try? await response.body.collect(upTo: 65536)
            let bytes = body.map { Array($0.readableBytesView) } ?? []
            if let id, let value = try? JSONValue.parse(bytes: bytes), value["id"] == id, value["error"] != nil {
                deliver?(bytes)
                return
            }
            let text = String(decoding: bytes.prefix(200), as: UTF8.self)
            fail(id, "HTTP \(status)\(text.isEmpty ? "" : ": " + text)")
            return
        }
        if type.hasPrefix("text/event-stream") {
            var parser = ServerSentEvents()
            var total = 0
            for try await chunk in response.body {
                total += chunk.readableBytes
                guard total <= Self.bodyMax else {
                    fail(id, "its event stream passed \(Self.bodyMax >> 20) MiB")
                    return
                }
                for event in parser.feed(Array(chunk.readableBytesView)) where !event.isEmpty {
                    deliver?(event)
                }
            }
            return
        }
        let body = try await response.body.collect(upTo: Self.bodyMax)
        deliver?(Array(body.readableBytesView))
    }

    /// An error answer to `id` (nothing for a notification), in place of the server's.
    private func fail(_ id: JSONValue?, _ reason: String) {
        guard let id, let deliver = state.withLock({ $0.deliver }) else { return }
        deliver(Array(RPCMessage.error(id: id, code: RPCMessage.Code.internalError, message: reason).line.utf8))
    }

    func close() {
        let (session, wasClosed, ended) = state.withLock { s -> (String?, Bool, (@Sendable () -> Void)?) in
            defer { s.closed = true }
            return (s.session, s.closed, s.ended)
        }
        guard !wasClosed else { return }
        if let session {
            // Ends the server's session (best effort).
            var request = HTTPClientRequest(url: target)
            request.method = .DELETE
            request.headers.add(name: "Mcp-Session-Id", value: session)
            for (field, value) in headers { request.headers.add(name: field, value: value) }
            let done = DispatchSemaphore(value: 0)
            Task {
                _ = try? await Self.client.execute(request, timeout: .seconds(2))
                done.signal()
            }
            _ = done.wait(timeout: .now() + 3)
        }
        ended?()
    }
}

/// The `text/event-stream` framing, fed as bytes arrive: each event's `data` lines joined by newlines
/// (the model door's ``EventFramer``, keeping only the data).
struct ServerSentEvents {
    private var framer = EventFramer()

    mutating func feed(_ bytes: [UInt8]) -> [[UInt8]] {
        framer.feed(bytes).filter(\.hasData).map(\.data)
    }
}
