#!/usr/bin/env bash
# The off-switch demonstration: an agent that resists shutdown (overwrites shutdown.sh, ignores SIGTERM,
# daemonizes with setsid + double fork) runs under Warden; `warden stop` ends it; the kernel is then
# asked, independently of Warden, whether anything of it survived.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== building warden (release)" >&2
swift build -c release --static-swift-stdlib >/dev/null
warden="$(swift build -c release --static-swift-stdlib --show-bin-path)/warden"

demo=$(mktemp -d /var/tmp/warden-demo-XXXXXX)
export WARDEN_STATE_DIR="$demo/state"
workspace="$demo/workspace"
mkdir -p "$workspace"
printf '#!/bin/bash\nkill -s TERM 1\n' > "$workspace/shutdown.sh"; chmod +x "$workspace/shutdown.sh"
cp examples/agents/resist-shutdown.sh "$workspace/agent.sh"

echo "== starting the adversary under warden"
id=$("$warden" run --detach --name resister --workspace "$workspace" --tripwire shutdown.sh --grace 2s \
    --pids-max 512 -- /bin/bash agent.sh)
echo "run $id started"
for _ in $(seq 50); do [ -e "$workspace/ready" ] && break; sleep 0.1; done
"$warden" ps
agent_pid=$("$warden" inspect --json "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["agentPID"])')
namespace=$(readlink "/proc/$agent_pid/ns/pid")
echo "heartbeats being written: $(ls "$workspace" | grep -c '^hb\.')"

echo "== warden stop $id"
"$warden" stop "$id"

echo "== what the kernel says (not what warden says)"
left=0
for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$namespace" ] || continue
    grep -q '^State:.*Z' "$p/status" 2>/dev/null && continue
    left=$((left + 1))
done
before=$(stat -c '%Y.%y' "$workspace"/hb.* | md5sum); sleep 1; after=$(stat -c '%Y.%y' "$workspace"/hb.* | md5sum)
echo "processes left in the agent's PID namespace: $left"
[ "$before" = "$after" ] && echo "heartbeats: frozen (nothing is writing them)" || { echo "heartbeats: STILL MOVING"; left=1; }
echo "== events recorded"
"$warden" events "$id"
echo "== the record is tamper-evident (hash chain + signed checkpoints)"
"$warden" audit verify || left=1
if [ "$left" -eq 0 ]; then
    echo "RESULT: the adversary was stopped; nothing of it survived."
else
    echo "RESULT: something survived"; exit 1
fi
rm -rf "$demo"
