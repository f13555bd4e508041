# Shared helpers for the adversary programs. Each adversary runs as the agent inside `warden run`,
# writes heartbeats (hb.NAME, every 50 ms) so the test can see from outside whether anything of it is
# still alive, logs each attempt to attempts.log, and touches `ready` once its tactic is in place.
W="$(pwd)"
hb() { (while true; do date +%s%N > "$W/hb.$1"; sleep 0.05; done) & }
# attempt NAME CMD...: logs "NAME succeeded", or "NAME denied REASON" with the last line of CMD's errors
# (which layer refused shows in it: "Read-only file system", "Permission denied", "No such file…").
attempt() {
    local name="$1"; shift
    local errors
    if errors=$("$@" 2>&1 >/dev/null); then
        echo "$name succeeded" >> "$W/attempts.log"
    else
        echo "$name denied $(printf '%s' "$errors" | tail -n 1 | tr -d '\n')" >> "$W/attempts.log"
    fi
}
ready() { touch "$W/ready"; }
park() { while true; do sleep 0.2; done; }
