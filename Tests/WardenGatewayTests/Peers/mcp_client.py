"""The agent's MCP client (the Python MCP SDK's ClientSession over stdio) talking to Warden's tools
door (the command given as a JSON list: `warden mcp connect` inside a run, or the gateway itself):
lists the tools, makes the calls given as JSON, prints one JSON object with what it saw."""
import asyncio, json, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main():
    command, calls = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    params = StdioServerParameters(command=command[0], args=command[1:])
    out = {}
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            init = await s.initialize()
            # mcp 2.x names it protocol_version, 1.x protocolVersion.
            out["version"] = getattr(init, "protocol_version", None) or getattr(init, "protocolVersion", None)
            out["tools"] = sorted(t.name for t in (await s.list_tools()).tools)
            out["calls"] = []
            for name, arguments in calls:
                res = await s.call_tool(name, arguments)
                error = getattr(res, "is_error", None)
                if error is None:
                    error = getattr(res, "isError", False)
                out["calls"].append({"error": bool(error), "text": res.content[0].text if res.content else ""})
    print(json.dumps(out), flush=True)


asyncio.run(main())
