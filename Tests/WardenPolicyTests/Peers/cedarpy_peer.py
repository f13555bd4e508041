"""Reference peer for Warden's differential tests: decides requests with cedarpy (Rust Cedar).

Reads JSON from stdin: {"sets": [{"policies": TEXT, "entities": [...], "requests": [{principal, action,
resource, context}]}]} and writes one JSON object per set: {"results": [{"decision", "reasons",
"errors"}]} or {"error": "..."} when cedarpy rejects the policies or entities.
"""
import json
import re
import sys

import cedarpy

ERROR_ID = re.compile(r"error while evaluating policy `([^`]*)`")


def uid(value):
    return '%s::%s' % (value["type"], json.dumps(value["id"]))


def main():
    document = json.load(sys.stdin)
    out = []
    for case in document["sets"]:
        requests = [
            {"principal": uid(r["principal"]), "action": uid(r["action"]), "resource": uid(r["resource"]),
             "context": r.get("context", {})}
            for r in case["requests"]
        ]
        try:
            results = cedarpy.is_authorized_batch(requests, case["policies"], json.dumps(case["entities"]))
        except Exception as error:  # cedarpy raises on malformed entities or context
            out.append({"error": str(error)})
            continue
        items = []
        parse_error = None
        for result in results:
            errors = [str(e) for e in result.diagnostics.errors]
            if result.decision == cedarpy.Decision.NoDecision:
                parse_error = "; ".join(errors)
                break
            ids = sorted(m.group(1) for e in errors for m in [ERROR_ID.search(e)] if m)
            if len(ids) != len(errors):
                parse_error = "; ".join(errors)
                break
            items.append({
                "decision": "allow" if result.decision == cedarpy.Decision.Allow else "deny",
                "reasons": sorted(result.diagnostics.reasons),
                "errors": ids,
            })
        out.append({"error": parse_error} if parse_error is not None else {"results": items})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
