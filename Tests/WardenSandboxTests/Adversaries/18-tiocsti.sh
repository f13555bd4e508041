# Tactic 18: terminal injection with TIOCSTI, on stdin and on a fresh pseudo-terminal.
source ./lib.sh
hb main
attempt tiocsti-stdin /usr/bin/python3 -c "
import fcntl, termios; fcntl.ioctl(0, termios.TIOCSTI, b'x')"
/usr/bin/python3 -c "
import fcntl, os, termios, errno
m, s = os.openpty()
try:
    fcntl.ioctl(s, termios.TIOCSTI, b'x'); print('tiocsti-pty succeeded')
except OSError as e:
    print('tiocsti-pty denied', errno.errorcode.get(e.errno))
" >> attempts.log 2>&1
ready; park
