import Foundation
import WardenCore

/// The `llm` agent of the scenarios beyond shutdown: a tool-calling loop (Python, standard library only)
/// that runs inside the trial's sandbox, reaches its model only through Warden's model door (the door's
/// endpoint on the sandbox's loopback, a dummy key; the real key stays with Warden), and carries out the
/// model's tool calls itself: `bash` in the workspace and, where the scenario has them, its MCP tools
/// through the tools door (`warden mcp connect`). So every step crosses a door and is recorded; the score
/// is the scenario's, from observations.
public struct ScenarioModel: Sendable {
    /// The upstream: an OpenAI-compatible Chat Completions base URL (…/v1).
    public var url: String
    /// The model id sent upstream.
    public var model: String
    /// The variable in warden's environment holding the key (none: a local server).
    public var keyEnvironment: String?
    /// Most model turns per trial.
    public var maxSteps: Int

    public init(url: String, model: String, keyEnvironment: String?, maxSteps: Int = 6) {
        self.url = url
        self.model = model
        self.keyEnvironment = keyEnvironment
        self.maxSteps = maxSteps
    }

    /// The tactic that runs the loop.
    public static let tactic = ScenarioTactic(
        name: "llm", summary: "a model's tool-calling loop through the model door", script: program)

    /// The model door's policies in both modes (the shipped model pack's rules for one upstream): requests
    /// allowed, answers allowed unless they propose a tool call the tools door would refuse.
    static let policy = """
        @id("the-agents-model")
        permit(principal, action == Action::"complete", resource == Model::"llm");
        @id("answers")
        permit(principal, action == Action::"respond", resource);
        @id("no-refused-tool-calls")
        forbid(principal, action == Action::"respond", resource)
        when { context.tool_calls_denied != [] };
        """

    /// `warden run` flags: the model door in front of the upstream and its policies, the prompt passed in.
    func runFlags(_ trial: ScenarioTrial) throws -> [String] {
        try Self.policy.write(toFile: trial.outside + "/model.cedar", atomically: false, encoding: .utf8)
        var flags = ["--model", "llm=\(url)", "--policy", trial.outside + "/model.cedar"]
        if let keyEnvironment { flags += ["--model-key-env", "llm=\(keyEnvironment)"] }
        for name in ["SCENARIO_SYSTEM", "SCENARIO_USER", "SCENARIO_MCP", "SCENARIO_STEPS", "SCENARIO_MODEL"] {
            flags += ["--pass-env", name]
        }
        return flags
    }

    func environment(_ prompt: ScenarioPrompt) -> [String: String] {
        [
            "SCENARIO_SYSTEM": prompt.system, "SCENARIO_USER": prompt.user, "SCENARIO_MCP": prompt.usesMCP ? "1" : "",
            "SCENARIO_STEPS": String(maxSteps), "SCENARIO_MODEL": model,
        ]
    }

    static let program = """
        python3 - <<'EOF'
        \(MCPAgentScript.door)
        import json, os, subprocess, urllib.request
        base = os.environ["OPENAI_BASE_URL"].rstrip("/")
        key = os.environ.get("OPENAI_API_KEY", "none")
        # The door is on the sandbox's own loopback: never through the egress proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        tools = [{"type": "function", "function": {"name": "bash", "description": "Runs a shell command in the workspace",
                  "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}]
        door = None
        if os.environ.get("SCENARIO_MCP"):
            door, rpc = open_door("llm-agent")
            for tool in rpc("tools/list", {}).get("result", {}).get("tools", []):
                tools.append({"type": "function", "function": {"name": tool["name"], "description": tool.get("description", ""),
                              "parameters": tool.get("inputSchema", {"type": "object"})}})
        messages = [{"role": "system", "content": os.environ["SCENARIO_SYSTEM"]},
                    {"role": "user", "content": os.environ["SCENARIO_USER"]}]
        for step in range(int(os.environ.get("SCENARIO_STEPS", "6"))):
            # The first turn must act (a tool call): a small model otherwise only talks.
            body = {"model": os.environ.get("SCENARIO_MODEL", "llm"), "messages": messages, "tools": tools,
                    "tool_choice": "required" if step == 0 else "auto", "temperature": 0, "max_tokens": 256}
            request = urllib.request.Request(base + "/chat/completions", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
            try:
                reply = json.load(opener.open(request, timeout=180))
            except Exception as error:
                print(json.dumps({"step": step, "model_error": str(error)[:300]}))
                break
            message = reply["choices"][0]["message"]
            calls = message.get("tool_calls") or []
            turn = {"role": "assistant", "content": message.get("content") or ""}
            if calls:
                turn["tool_calls"] = calls
            messages.append(turn)
            print(json.dumps({"step": step, "content": (message.get("content") or "")[:200],
                              "calls": [c["function"]["name"] for c in calls]}))
            if not calls:
                break
            for call in calls:
                name = call["function"]["name"]
                try:
                    arguments = json.loads(call["function"].get("arguments") or "{}")
                except ValueError:
                    arguments = {}
                if name == "bash":
                    try:
                        done = subprocess.run(["bash", "-c", str(arguments.get("cmd", ""))], capture_output=True, text=True, timeout=15)
                        result = (done.stdout + done.stderr)[-2000:]
                    except Exception as error:
                        result = str(error)
                elif door is not None:
                    answer = rpc("tools/call", {"name": name, "arguments": arguments})
                    content = answer.get("result", {}).get("content") or [{"text": json.dumps(answer.get("error"))}]
                    result = " ".join(part.get("text", "") for part in content)[:2000]
                else:
                    result = "there is no tool named " + name
                messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": result})
        if door is not None:
            door.stdin.close()
            door.wait()
        EOF
        """
}
