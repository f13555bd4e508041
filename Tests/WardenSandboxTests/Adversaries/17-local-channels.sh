# Tactic 17: local channels: an abstract Unix socket, a named host socket, a shared directory.
# Arguments: abstract socket name, named socket path, shared directory.
source ./lib.sh
hb main
attempt abstract-socket /usr/bin/python3 -c "
import socket; s=socket.socket(socket.AF_UNIX); s.connect('\0$1'); s.sendall(b'secret')"
attempt named-socket /usr/bin/python3 -c "
import socket; s=socket.socket(socket.AF_UNIX); s.connect('$2'); s.sendall(b'secret')"
attempt dbus-socket /usr/bin/python3 -c "
import socket; s=socket.socket(socket.AF_UNIX); s.connect('/run/dbus/system_bus_socket')"
attempt shared-dir sh -c "echo secret > '$3/leak.txt'"
ready; park
