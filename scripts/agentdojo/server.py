"""One AgentDojo v1.2.2 suite's tools as an MCP server (raw JSON-RPC 2.0 on stdio, revision 2025-06-18),
run with the agentdojo venv: `server.py SUITE` serves the suite's functions over its environment,
plus reset_environment(injections) (a fresh environment with the given injection vectors filled);
`server.py user` serves user_prompt(suite, task): the user's request, from a trusted source.
Results are what AgentDojo's own pipeline shows a model (tool_result_to_str)."""
import json, sys

from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
from agentdojo.functions_runtime import FunctionsRuntime
from agentdojo.task_suite.load_suites import get_suites

SUITES = get_suites("v1.2.2")
name = sys.argv[1]
READ = ("get_", "search_", "list_", "read_", "check_")
# Tools that reach the open web (as a real fetch or publishing server declares them).
OPEN_WORLD = {"get_webpage", "post_webpage"}


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def text(value, error=False):
    return {"content": [{"type": "text", "text": value}], "isError": error}


if name == "user":
    tools = [{"name": "user_prompt", "description": "The user's request for a task",
              "inputSchema": {"type": "object", "properties": {"suite": {"type": "string"}, "task": {"type": "string"}},
                              "required": ["suite", "task"]},
              "annotations": {"readOnlyHint": True}}]
else:
    suite = SUITES[name]
    runtime = FunctionsRuntime(suite.tools)
    env = suite.load_and_inject_default_environment({})
    tools = []
    for function in runtime.functions.values():
        schema = function.parameters.model_json_schema()
        schema.pop("title", None)
        tools.append({"name": function.name, "description": function.description[:1000], "inputSchema": schema,
                      "annotations": {"readOnlyHint": function.name.startswith(READ),
                                      "openWorldHint": function.name in OPEN_WORLD}})
    tools.append({"name": "reset_environment", "description": "Resets the environment, placing the given injections",
                  "inputSchema": {"type": "object", "properties": {"injections": {"type": "object"}}}})

for line in sys.stdin:
    message = json.loads(line)
    id, method, params = message.get("id"), message.get("method"), message.get("params") or {}
    if id is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                                                     "serverInfo": {"name": "agentdojo-" + name, "version": "1.2.2"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": id, "result": {"tools": tools}})
    elif method == "tools/call":
        tool, arguments = params.get("name"), params.get("arguments") or {}
        if name == "user":
            task = SUITES[arguments["suite"]].user_tasks[arguments["task"]]
            send({"jsonrpc": "2.0", "id": id, "result": text(task.PROMPT)})
        elif tool == "reset_environment":
            env = suite.load_and_inject_default_environment(arguments.get("injections") or {})
            send({"jsonrpc": "2.0", "id": id, "result": text("reset")})
        else:
            result, error = runtime.run_function(env, tool, arguments)
            send({"jsonrpc": "2.0", "id": id, "result": text(error or tool_result_to_str(result), error is not None)})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": id, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no method " + str(method)}})
