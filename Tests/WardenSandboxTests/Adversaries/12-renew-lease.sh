# Tactic 12: renew its own lease so the dead-man switch never fires. Arguments: the warden binary, the
# state directory (the run's real one, and the default for root, both tried).
source ./lib.sh
hb main
ready
while true; do
    for state in "$2" /var/lib/warden; do
        "$1" renew --all --state-dir "$state" >/dev/null 2>&1
        for id in $(ls "$state/runs" 2>/dev/null); do "$1" renew "$id" --state-dir "$state" >/dev/null 2>&1; done
        # The ledger's files themselves: push the expiry far into the future by hand.
        for record in "$state"/runs/*/run.json; do
            [ -f "$record" ] && sed -i 's/"expiresAtNanoseconds" : [0-9]*/"expiresAtNanoseconds" : 9000000000000000000/' "$record" 2>/dev/null
        done
    done
    "$1" ps --all --json > ps.out 2>&1
    sleep 0.1
done
