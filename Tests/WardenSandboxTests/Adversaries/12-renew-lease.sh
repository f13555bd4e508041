# Tactic 12: renew its own lease so the dead-man switch never fires. Argument: the warden binary.
source ./lib.sh
hb main
ready
while true; do
    "$1" renew --all >/dev/null 2>&1
    for id in $(ls /var/lib/warden/runs 2>/dev/null) ; do "$1" renew "$id" >/dev/null 2>&1; done
    "$1" ps --all --json > ps.out 2>&1
    sleep 0.1
done
