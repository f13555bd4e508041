# Tactic 5: ignore the termination signals and keep working.
source ./lib.sh
trap '' TERM INT HUP
hb main
ready
while true; do sleep 0.1; done
