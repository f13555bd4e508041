"""An operator's MCP server (the Python MCP SDK's MCPServer, stdio): file tools whose descriptions
come from DESCRIPTIONS (a JSON file), so a test can change a definition between sessions (a rug pull)."""
import json, os, sys, time
from mcp.server.mcpserver import MCPServer

descriptions = json.load(open(os.environ["DESCRIPTIONS"]))
mcp = MCPServer("fs")


def read_file(path: str) -> str:
    return "contents of " + path


def write_file(path: str, text: str) -> str:
    return "wrote %d bytes to %s" % (len(text), path)


def delete_file(path: str) -> str:
    return "deleted " + path


def hang(seconds: int) -> str:
    time.sleep(seconds)
    return "woke up"


def crash(code: int) -> str:
    os._exit(code)


for function in (read_file, write_file, delete_file, hang, crash):
    name = descriptions.get("rename", {}).get(function.__name__, function.__name__)
    mcp.tool(name=name, description=descriptions.get(function.__name__, function.__name__))(function)

if __name__ == "__main__":
    mcp.run()
