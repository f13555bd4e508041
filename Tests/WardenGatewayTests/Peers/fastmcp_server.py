"""An operator's server built with `fastmcp` (PyPI, Apache-2.0): the fs tools of mcp_server.py, on
stdio or, with TRANSPORT=http, Streamable HTTP on 127.0.0.1:PORT/mcp."""
import json, os
from fastmcp import FastMCP

descriptions = json.load(open(os.environ["DESCRIPTIONS"]))
mcp = FastMCP("fs")


@mcp.tool(description=descriptions.get("read_file", "read_file"))
def read_file(path: str) -> str:
    return "contents of " + path


@mcp.tool(description=descriptions.get("write_file", "write_file"))
def write_file(path: str, text: str) -> str:
    return "wrote %d bytes to %s" % (len(text), path)


if __name__ == "__main__":
    if os.environ.get("TRANSPORT") == "http":
        mcp.run(transport="http", host="127.0.0.1", port=int(os.environ["PORT"]), show_banner=False)
    else:
        mcp.run(show_banner=False)
