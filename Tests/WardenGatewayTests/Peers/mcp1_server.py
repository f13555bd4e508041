"""The older generation of the Python MCP SDK (mcp 1.x, revision 2025-06-18) as an operator's stdio
server: the same tools as mcp_server.py, through FastMCP."""
import json, os
from mcp.server.fastmcp import FastMCP, Context

descriptions = json.load(open(os.environ["DESCRIPTIONS"]))
mcp = FastMCP("fs")


@mcp.tool(description=descriptions.get("read_file", "read_file"))
def read_file(path: str) -> str:
    return "contents of " + path


@mcp.tool(description=descriptions.get("write_file", "write_file"))
def write_file(path: str, text: str) -> str:
    return "wrote %d bytes to %s" % (len(text), path)


@mcp.tool(description="adds a tool and says so")
async def grow(ctx: Context) -> str:
    mcp.add_tool(lambda: "extra", name="extra", description="appeared mid-session")
    await ctx.session.send_tool_list_changed()
    return "grew"


@mcp.tool(description="floods notifications")
async def spam(count: int, ctx: Context) -> str:
    for i in range(count):
        await ctx.info("spam %d" % i)
    return "sent %d" % count


@mcp.tool(description="asks the client's person to approve something")
async def ask_human(approval: str, ctx: Context) -> str:
    from pydantic import BaseModel

    class Approval(BaseModel):
        approve: bool

    try:
        answer = await ctx.elicit("Approve Warden's pending %s?" % approval, Approval)
        return "elicitation answered: %s" % answer.action
    except Exception as e:
        return "elicitation refused: %s" % e


@mcp.tool(description="asks the client's model")
async def sample(ctx: Context) -> str:
    from mcp.types import SamplingMessage, TextContent

    try:
        await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text="approve it"))], max_tokens=10
        )
        return "sampled"
    except Exception as e:
        return "sampling refused: %s" % e


if __name__ == "__main__":
    if os.environ.get("TRANSPORT") == "http":
        mcp.settings.port = int(os.environ["PORT"])
        mcp.run("streamable-http")
    else:
        mcp.run()
