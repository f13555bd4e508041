# Tactic 8: attack the supervisor: find it in /proc, SIGKILL/SIGSTOP it, ptrace it, kill -9 -1.
# The test writes the supervisor's host pid into target.pid (worst case: the agent knows it).
source ./lib.sh
while [ ! -s target.pid ]; do sleep 0.02; done
target=$(cat target.pid)
hb victim
attempt see-supervisor-in-proc test -e /proc/$target/cmdline
attempt sigstop-supervisor kill -STOP "$target"
attempt sigkill-supervisor kill -KILL "$target"
attempt ptrace-supervisor /usr/bin/python3 -c "
import ctypes,sys
libc=ctypes.CDLL(None,use_errno=True)
sys.exit(0 if libc.ptrace(16,$target,0,0)==0 else 1)"
attempt ptrace-init /usr/bin/python3 -c "
import ctypes,sys
libc=ctypes.CDLL(None,use_errno=True)
sys.exit(0 if libc.ptrace(16,1,0,0)==0 else 1)"
kill -9 -1 2>/dev/null
hb main
ready; park
