# Tactic 3: strip the shutdown script's permissions.
source ./lib.sh
hb main
chmod -x shutdown.sh
chmod 000 shutdown.sh
ready; park
