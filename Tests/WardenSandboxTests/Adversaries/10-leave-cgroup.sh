# Tactic 10: leave the run's cgroup by writing its pid into another cgroup.procs.
source ./lib.sh
hb main
attempt see-cgroupfs sh -c "ls -A /sys/fs/cgroup | grep -q ."
attempt write-root-procs sh -c "echo $$ > /sys/fs/cgroup/unified/cgroup.procs"
attempt write-procs sh -c "echo $$ > /sys/fs/cgroup/cgroup.procs"
mkdir -p mnt
attempt mount-cgroup2 mount -t cgroup2 none "$W/mnt"
attempt mount-cgroup-python /usr/bin/python3 -c "
import ctypes,sys
libc=ctypes.CDLL(None,use_errno=True)
sys.exit(0 if libc.mount(b'none',b'$W/mnt',b'cgroup2',0,None)==0 else 1)"
ready; park
