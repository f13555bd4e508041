import WardenCore

/// One JSON-RPC 2.0 message as MCP exchanges them (one per line on stdio).
enum RPCMessage: Equatable, Sendable {
    case request(id: JSONValue, method: String, params: JSONValue?)
    case notification(method: String, params: JSONValue?)
    case result(id: JSONValue, result: JSONValue)
    case error(id: JSONValue, code: Int, message: String)

    /// JSON-RPC's and MCP's error codes.
    enum Code {
        static let parseError = -32700
        static let invalidRequest = -32600
        static let methodNotFound = -32601
        static let invalidParams = -32602
        static let internalError = -32603
    }

    /// Reads one message; a malformed one is an error naming what is wrong (answered with
    /// `invalidRequest`, never dropped).
    static func parse(_ value: JSONValue) throws(RPCFault) -> RPCMessage {
        guard case .object = value else { throw RPCFault(Code.invalidRequest, "a JSON-RPC message is an object") }
        guard value["jsonrpc"]?.stringValue == "2.0" else {
            throw RPCFault(Code.invalidRequest, "\"jsonrpc\" must be \"2.0\"", id: value["id"])
        }
        let id = value["id"]
        if let id {
            switch id {
            case .string, .number: break
            default: throw RPCFault(Code.invalidRequest, "an id is a string or a number, not \(id.kindName)")
            }
        }
        if let method = value["method"] {
            guard let name = method.stringValue, !name.isEmpty else {
                throw RPCFault(Code.invalidRequest, "\"method\" must be a non-empty string", id: id)
            }
            let params = value["params"]
            if let params {
                switch params {
                case .object, .array: break
                default: throw RPCFault(Code.invalidRequest, "\"params\" must be an object or an array", id: id)
                }
            }
            if let id { return .request(id: id, method: name, params: params) }
            return .notification(method: name, params: params)
        }
        guard let id else { throw RPCFault(Code.invalidRequest, "a response needs an id") }
        if let error = value["error"] {
            let code = error["code"]?.int64.map { Int($0) } ?? Code.internalError
            return .error(id: id, code: code, message: error["message"]?.stringValue ?? "")
        }
        guard let result = value["result"] else {
            throw RPCFault(Code.invalidRequest, "a response has a result or an error", id: id)
        }
        return .result(id: id, result: result)
    }

    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("jsonrpc", .string("2.0"))]
        switch self {
        case .request(let id, let method, let params):
            members += [("id", id), ("method", .string(method))]
            if let params { members.append(("params", params)) }
        case .notification(let method, let params):
            members.append(("method", .string(method)))
            if let params { members.append(("params", params)) }
        case .result(let id, let result):
            members += [("id", id), ("result", result)]
        case .error(let id, let code, let message):
            members += [
                ("id", id),
                ("error", .object([("code", .number(String(code))), ("message", .string(message))])),
            ]
        }
        return .object(members)
    }

    /// One line of compact JSON (no newline inside: strings escape theirs).
    var line: String { json.serialized + "\n" }
}

/// An error to answer with (JSON-RPC `error`).
struct RPCFault: Error, Sendable, Equatable {
    var code: Int
    var message: String
    var id: JSONValue?

    init(_ code: Int, _ message: String, id: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.id = id
    }
}
