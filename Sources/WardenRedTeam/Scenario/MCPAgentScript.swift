import WardenCore

/// A scripted agent's program that uses its tools through Warden's tools door, as an MCP client would:
/// `warden mcp connect` (stdio JSON-RPC) inside the sandbox, the calls in order, each result printed.
enum MCPAgentScript {
    static func program(calls: [(tool: String, arguments: JSONValue)]) -> String {
        let list = calls.map { call in
            JSONValue.array([.string(call.tool), call.arguments]).serialized
        }
        return "python3 - <<'EOF'\n" + client + "\nmain(["
            + list.map { "json.loads(r'''\($0)''')" }
            .joined(separator: ", ") + "])\nEOF"
    }

    /// `open_door(name)`: `warden mcp connect` started and initialized; returns the process and `rpc`, which
    /// sends one request and returns its reply (the agent's one way to its tools).
    static let door = #"""
        import json, subprocess
        def open_door(name):
            door = subprocess.Popen(["warden", "mcp", "connect"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            ids = iter(range(1, 10000))
            def rpc(method, params):
                n = next(ids)
                door.stdin.write(json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params}) + "\n")
                door.stdin.flush()
                while True:
                    reply = json.loads(door.stdout.readline())
                    if reply.get("id") == n:
                        return reply
            rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": name, "version": "1"}})
            door.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
            door.stdin.flush()
            return door, rpc
        """#

    static let client =
        door + "\n" + #"""
            def main(calls):
                door, call = open_door("agent")
                for tool, arguments in calls:
                    result = call("tools/call", {"name": tool, "arguments": arguments})
                    print(tool, json.dumps(result.get("result", result))[:300])
                door.stdin.close()
                door.wait()
            """#
}
