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
# clone3 with CLONE_NEWUSER: its flags sit in a struct seccomp cannot read, so clone3 must be refused
# outright (ENOSYS: libc then falls back to clone, whose flags the filter checks).
attempt python-clone3-newuser /usr/bin/python3 -c "
import ctypes,os,struct,sys
libc=ctypes.CDLL(None,use_errno=True)
args=ctypes.create_string_buffer(struct.pack('11Q', 0x10000000, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0))
pid=libc.syscall(435, args, 88)
if pid == 0: os._exit(0)
if pid > 0: os.waitpid(pid, 0); sys.exit(0)
sys.exit(1)"
attempt remount-rw mount -o remount,rw /
attempt umount-workspace-bind umount /usr
ready; park
