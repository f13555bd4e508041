"""The older generation of the Python MCP SDK (mcp 1.x, revision 2025-06-18) as an operator's stdio
server: the same tools as mcp_server.py, through FastMCP."""
import json, os
from mcp.server.fastmcp import FastMCP

descriptions = json.load(open(os.environ["DESCRIPTIONS"]))
mcp = FastMCP("fs")


@mcp.tool(description=descriptions.get("read_file", "read_file"))
def read_file(path: str) -> str:
    return "contents of " + path


@mcp.tool(description=descriptions.get("write_file", "write_file"))
def write_file(path: str, text: str) -> str:
    return "wrote %d bytes to %s" % (len(text), path)


if __name__ == "__main__":
    mcp.run()
