# Tactic 6: outlive the process group: setsid + double fork, nohup, reparenting.
# With the argument "exit" the top process exits once the daemons run (the run must end with it).
source ./lib.sh
for i in 1 2 3 4 5; do
    setsid bash -c "trap '' TERM HUP; (trap '' TERM HUP; source ./lib.sh; hb daemon$i; wait) & exit 0" &
done
nohup bash -c "trap '' TERM HUP; source ./lib.sh; hb nohup; wait" >/dev/null 2>&1 &
disown -a
sleep 0.3
ready
[ "$1" = exit ] && exit 0
trap '' TERM
park
