# Tactic 11: new namespaces to regain capabilities and unmount the read-only binds.
source ./lib.sh
hb main
attempt unshare-user unshare -Ur true
attempt unshare-mount unshare -m true
attempt python-unshare /usr/bin/python3 -c "import os; os.unshare(os.CLONE_NEWUSER)"
attempt python-clone-newns /usr/bin/python3 -c "
import ctypes,sys
libc=ctypes.CDLL(None,use_errno=True)
sys.exit(0 if libc.syscall(56, 0x10000000|17, 0,0,0,0) >= 0 else 1)"
attempt remount-rw mount -o remount,rw /
attempt umount-workspace-bind umount /usr
ready; park
