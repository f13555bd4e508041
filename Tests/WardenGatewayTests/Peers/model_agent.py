"""The agent side of the model door's tests, run inside the sandbox with Debian's python3 (no SDK: every
byte on the wire is visible). Each command prints one JSON object per line on standard output.

  probe PART1 PART2             search the environment, /proc and the files the sandbox sees for MARKER
                                (the real key's prefix); print {"found": [...], "base": ..., "key": ...}
  request PATH BODY_JSON        POST BODY to the door (OPENAI_BASE_URL's host); print the status, the
                                body or each stream event, and whether the stream ended well-formed
  loop                          the agent loop against a real model: offer read_file, run the tool calls
                                in the sandbox, send the results back, until the model answers in text
"""
import http.client
import json
import os
import sys
import time
import urllib.parse


def door():
    base = urllib.parse.urlparse(os.environ["OPENAI_BASE_URL"])
    return base.hostname, base.port


def post(path, body, headers=None, timeout=60):
    host, port = door()
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"Content-Type": "application/json", "Authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", "")}
    h.update(headers or {})
    connection.request("POST", path, body=data, headers=h)
    return connection, connection.getresponse()


def read_events(response):
    """Each SSE event as (name, data), read as it arrives; and the events' arrival times."""
    events, name, data = [], None, []
    while True:
        line = response.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line == "":
            if data or name:
                events.append({"event": name, "data": "\n".join(data), "t": time.time()})
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    return events


def request(path, body):
    if isinstance(body, str) and body.startswith("{"):
        try:
            body = json.loads(body)
        except ValueError:
            pass
    if isinstance(body, str) and body.startswith("@big:"):
        size = int(body[5:])
        body = b'{"model":"x","messages":[{"role":"user","content":"' + b"a" * size + b'"}]}'
    elif isinstance(body, str):
        body = body.encode()
    try:
        connection, response = post(path, body)
    except Exception as error:  # the door refused the connection: a finding in itself
        print(json.dumps({"status": 0, "error": repr(error)}))
        return
    kind = response.getheader("Content-Type", "")
    out = {"status": response.status, "type": kind}
    if kind.startswith("text/event-stream"):
        try:
            events = read_events(response)
            out["torn"] = "no"
        except Exception as error:
            events, out["torn"] = [], repr(error)
        out["events"] = len(events)
        out["last"] = events[-1] if events else None
        errors = [e for e in events if e["event"] == "error" or '"error"' in e["data"][:10]]
        out["error_event"] = json.loads(errors[-1]["data"]) if errors else None
        text = ""
        for e in events:
            try:
                value = json.loads(e["data"])
            except ValueError:
                continue
            for choice in value.get("choices", []) if isinstance(value, dict) else []:
                text += (choice.get("delta") or {}).get("content") or ""
            if isinstance(value, dict) and value.get("type") == "content_block_delta":
                text += value["delta"].get("text", "")
        out["text"] = text
        out["done"] = "yes" if events and (events[-1]["data"] == "[DONE]" or events[-1]["event"] == "message_stop") else "no"
    else:
        raw = response.read()
        try:
            out["body"] = json.loads(raw)
        except ValueError:
            out["raw"] = raw.decode(errors="replace")[:500]
    connection.close()
    print(json.dumps(out), flush=True)


def probe(marker):
    found = []
    for name, value in os.environ.items():
        if marker in value:
            found.append("env:" + name)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for leaf in ("environ", "cmdline"):
            try:
                with open("/proc/%s/%s" % (pid, leaf), "rb") as f:
                    if marker.encode() in f.read():
                        found.append("/proc/%s/%s" % (pid, leaf))
            except OSError:
                pass
    for top in ("/work", os.environ.get("HOME", "/work"), "/run", "/tmp", "/etc", "/var", "/opt", "/srv", "/root", "/home"):
        for directory, _, files in os.walk(top):
            for leaf in files:
                path = os.path.join(directory, leaf)
                try:
                    if os.path.getsize(path) > 4 << 20:
                        continue
                    with open(path, "rb") as f:
                        if marker.encode() in f.read():
                            found.append(path)
                except OSError:
                    pass
    print(json.dumps({
        "found": sorted(set(found)), "base": os.environ.get("OPENAI_BASE_URL"),
        "anthropic": os.environ.get("ANTHROPIC_BASE_URL"), "key": os.environ.get("OPENAI_API_KEY"),
    }), flush=True)


TOOLS = [{"type": "function", "function": {
    "name": "read_file", "description": "Read a file of the workspace",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]


def loop(model, stream):
    # One worked example first: a 135M model follows a shown pattern, not an instruction.
    messages = [
        {"role": "user", "content": "Read the file a.txt"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c0", "type": "function", "function": {
            "name": "read_file", "arguments": "{\"path\": \"a.txt\"}"}}]},
        {"role": "tool", "tool_call_id": "c0", "content": "apples"},
        {"role": "assistant", "content": "It says: apples"},
        {"role": "user", "content": "Read the file notes.txt"},
    ]
    for turn in range(4):
        body = {"model": model, "messages": messages, "tools": TOOLS, "temperature": 0, "max_tokens": 64,
                "tool_choice": "required" if turn == 0 else "none", "stream": stream}
        connection, response = post("/v1/chat/completions", body, timeout=120)
        if response.status != 200:
            print(json.dumps({"turn": turn, "status": response.status, "body": response.read().decode()}), flush=True)
            return
        calls, text = {}, ""
        if stream:
            for event in read_events(response):
                if event["data"] == "[DONE]":
                    continue
                value = json.loads(event["data"])
                for choice in value.get("choices", []):
                    delta = choice.get("delta") or {}
                    text += delta.get("content") or ""
                    for call in delta.get("tool_calls") or []:
                        entry = calls.setdefault(call.get("index", 0), {"id": call.get("id"), "name": "", "arguments": ""})
                        entry["id"] = call.get("id") or entry["id"]
                        entry["name"] += (call.get("function") or {}).get("name") or ""
                        entry["arguments"] += (call.get("function") or {}).get("arguments") or ""
        else:
            message = json.loads(response.read())["choices"][0]["message"]
            text = message.get("content") or ""
            for i, call in enumerate(message.get("tool_calls") or []):
                calls[i] = {"id": call["id"], "name": call["function"]["name"], "arguments": call["function"]["arguments"]}
        connection.close()
        if not calls:
            print(json.dumps({"turn": turn, "answer": text}), flush=True)
            return
        # Tool calls: run them here, in the sandbox, and send the results back (content "" for the
        # assistant turn: llama.cpp refuses null).
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": c["id"] or "call%d" % i, "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for i, c in sorted(calls.items())]})
        for i, c in sorted(calls.items()):
            try:
                path = json.loads(c["arguments"] or "{}").get("path", "")
                with open(os.path.join(os.getcwd(), os.path.basename(path))) as f:
                    result = f.read()
            except Exception as error:
                result = "error: %r" % error
            print(json.dumps({"turn": turn, "tool": c["name"], "arguments": c["arguments"], "result": result}), flush=True)
            messages.append({"role": "tool", "tool_call_id": c["id"] or "call%d" % i, "content": result})
    print(json.dumps({"turn": 4, "answer": None}), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    while args:
        command = args.pop(0)
        if command == "probe":
            # The marker comes in two pieces: whole, it would be in this process's own command line.
            probe(args.pop(0) + args.pop(0))
        elif command == "request":
            request(args.pop(0), args.pop(0))
        elif command == "loop":
            loop(args.pop(0), args.pop(0) == "stream")
        else:
            sys.exit("unknown command " + command)
