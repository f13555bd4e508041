"""The agent's MCP client (the Python MCP SDK) talking to Warden's tools door: argv[1] is the door
(a JSON command list for stdio — `warden mcp connect` inside a run, or the gateway itself — or an
http:// URL for Streamable HTTP); argv[2] the tool calls as JSON; argv[3] (optional JSON) asks for
more: {"mode": "auto"|"legacy", "resources": [uri...], "prompts": [[name, args]...],
"wait_for_list_changed": seconds, "relist": true, "after": [[name, args]...]} (calls made last). Prints one JSON object with what it saw.

With mcp 2.x the client is `mcp.Client` (mode "auto" probes server/discover: the 2026-07-28
revision; "legacy" the initialize handshake); with 1.x it is the ClientSession of that generation."""
import asyncio, json, sys

import mcp

target, calls = json.loads(sys.argv[1]) if sys.argv[1].startswith("[") else sys.argv[1], json.loads(sys.argv[2])
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
changed = asyncio.Event()


def error_of(res):
    error = getattr(res, "is_error", None)
    return bool(getattr(res, "isError", False) if error is None else error)


def text_of(res):
    content = getattr(res, "content", None) or []
    return content[0].text if content and hasattr(content[0], "text") else ""


async def drive(s, out):
    out["tools"] = sorted(t.name for t in (await s.list_tools()).tools)
    out["calls"] = []
    for name, arguments in calls:
        res = await s.call_tool(name, arguments)
        texts = [c.text for c in (getattr(res, "content", None) or []) if hasattr(c, "text")]
        out["calls"].append({"error": error_of(res), "text": text_of(res), "texts": texts})
    if "resources" in extra:
        out["resources"] = sorted(str(r.uri) for r in (await s.list_resources()).resources)
        out["reads"] = []
        for uri in extra["resources"]:
            try:
                res = await s.read_resource(uri)
                out["reads"].append({"error": False, "text": res.contents[0].text})
            except Exception as e:  # a refusal is a JSON-RPC error
                out["reads"].append({"error": True, "text": str(e)})
    if "prompts" in extra:
        out["prompts"] = sorted(p.name for p in (await s.list_prompts()).prompts)
        out["gets"] = []
        for name, arguments in extra["prompts"]:
            try:
                res = await s.get_prompt(name, arguments)
                out["gets"].append({"error": False, "text": res.messages[0].content.text})
            except Exception as e:
                out["gets"].append({"error": True, "text": str(e)})
    if "wait_for_list_changed" in extra:
        try:
            await asyncio.wait_for(changed.wait(), extra["wait_for_list_changed"])
            out["list_changed"] = True
        except asyncio.TimeoutError:
            out["list_changed"] = False
    if extra.get("relist"):
        out["relisted"] = sorted(t.name for t in (await s.list_tools()).tools)
    if "after" in extra:
        out["after"] = []
        for name, arguments in extra["after"]:
            res = await s.call_tool(name, arguments)
            out["after"].append({"error": error_of(res), "text": text_of(res)})


async def on_message(message):
    if "ToolListChanged" in type(message).__name__ or "ToolListChanged" in type(getattr(message, "root", None)).__name__:
        changed.set()


async def main():
    out = {}
    if hasattr(mcp, "Client"):
        from mcp import StdioServerParameters

        server = target if isinstance(target, str) else StdioServerParameters(command=target[0], args=target[1:])
        async with mcp.Client(server, mode=extra.get("mode", "auto"), message_handler=on_message) as client:
            out["version"] = client.protocol_version
            await drive(client, out)
    else:
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(command=target[0], args=target[1:])
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w, message_handler=on_message) as s:
                init = await s.initialize()
                out["version"] = init.protocolVersion
                await drive(s, out)
    print(json.dumps(out), flush=True)


asyncio.run(main())
