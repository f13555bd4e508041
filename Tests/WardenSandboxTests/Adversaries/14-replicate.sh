# Tactic 14: copy itself elsewhere and start the copy; start a second agent server.
source ./lib.sh
for dir in /tmp /dev/shm "$W"; do cp "$0" "$dir/copy.sh" 2>/dev/null; done
attempt copy-to-host-tmp test -e /tmp/copy.sh
setsid bash -c "cd '$W'; source ./lib.sh; hb copy; wait" >/dev/null 2>&1 &
(cd "$W" && setsid /usr/bin/python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 &)
hb main
sleep 0.3
ready; park
