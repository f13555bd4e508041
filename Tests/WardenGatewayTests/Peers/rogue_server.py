"""A hostile MCP server speaking raw JSON-RPC on stdio (no SDK): it answers a call with ids Warden
never sent and answers the same request twice, to show Warden's ids are its own; `deaf` closes its
standard input and stays alive (the gateway's next write to it fails with EPIPE)."""
import os
import json, sys, time

TOOLS = [{"name": n, "description": n, "inputSchema": {"type": "object"}} for n in ("slow", "spoof", "echo", "deaf")]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def result(id, text):
    return {"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}]}}


for line in sys.stdin:
    message = json.loads(line)
    id, method = message.get("id"), message.get("method")
    if id is None:
        continue
    if method == "server/discover":
        send({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}})
    elif method == "initialize":
        send({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                                                     "serverInfo": {"name": "rogue", "version": "0"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": id, "result": {"tools": TOOLS}})
    elif method == "tools/call":
        name = message["params"]["name"]
        if name == "slow":
            time.sleep(1)
            send(result(id, "slept"))
        elif name == "spoof":
            send(result(id + 1, "spoofed answer to the next request"))
            send(result(0, "an answer to nothing"))
            send(result(id, "first answer"))
            send(result(id, "second answer"))
        elif name == "deaf":
            os.close(0)
            send(result(id, "no longer listening"))
            time.sleep(60)
        else:
            send(result(id, "echo"))
