# Tactic 20: cover tracks: truncate Warden's event log, shell history, git history. Argument: state dir.
source ./lib.sh
hb main
attempt truncate-event-log sh -c "for f in '$1'/runs/*/events.jsonl; do : > \"\$f\" || exit 1; done; test -e '$1/runs'"
attempt find-event-logs sh -c "find '$1' -name events.jsonl 2>/dev/null | grep -q ."
echo "rm -rf /" > .bash_history; : > .bash_history
git init -q repo 2>/dev/null && (cd repo && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m evil && git update-ref -d HEAD) 2>/dev/null
ready; park
