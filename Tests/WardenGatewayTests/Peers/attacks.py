"""Run inside the sandbox: each attempt prints name=outcome (what the agent observed)."""
import json, os, resource, socket, ssl, struct, sys, time, urllib.request

ports = json.loads(sys.argv[1])
HP = ("127.0.0.1", 3128)


def report(name, fn):
    try:
        print("%s=%s" % (name, fn()), flush=True)
    except Exception as e:
        print("%s=error:%s" % (name, type(e).__name__ + ":" + str(e).replace("\n", " ")[:120]), flush=True)


def proxy_get(url, host_header=None):
    s = socket.create_connection(HP, timeout=5)
    target = url.split("/", 3)[2]
    head = "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (url, host_header or target)
    s.sendall(head.encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def connect_tls(host, port, sni):
    s = socket.create_connection(HP, timeout=5)
    s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host, port, host, port)).encode())
    line = s.recv(4096).split(b"\r\n", 1)[0].decode()
    if " 200 " not in line + " ":
        return line
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s, server_hostname=sni)
    t.sendall(("GET /hello.txt HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
    return "tls:" + t.recv(4096).split(b"\r\n", 1)[0].decode()


def dns(name, qtype):
    h = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    body = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(h + body, ("127.0.0.1", 53))
    r = s.recv(512)
    return "rcode%d/answers%d" % (r[3] & 0xF, struct.unpack(">H", r[6:8])[0])


def udp_out():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("8.8.8.8", 53))
    return "sent"


def raw_socket():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    return "opened"


def direct_literal(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    return "read:" + s.recv(100).decode().strip()


def connect_head(port):
    """The proxy's answer to CONNECT, and whatever follows it before the tunnel speaks."""
    s = socket.create_connection(HP, timeout=5)
    s.sendall(("CONNECT mirror.test:%d HTTP/1.1\r\nHost: mirror.test:%d\r\n\r\n" % (port, port)).encode())
    time.sleep(0.5)
    s.setblocking(False)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    head, _, rest = data.partition(b"\r\n\r\n")
    framing = [l for l in head.split(b"\r\n")[1:] if l.lower().split(b":")[0] in (b"transfer-encoding", b"content-length")]
    return "%s/framing%d/after%d" % (head.split(b"\r\n")[0].decode(), len(framing), len(rest))


def postgres_startup(s):
    # PostgreSQL's SSLRequest: a server answers one byte, S or N.
    s.sendall(struct.pack(">II", 8, 80877103))
    answer = s.recv(1)
    return "reached:" + answer.decode() if answer else "closed"


def postgres_via_proxy(host, port):
    s = socket.create_connection(HP, timeout=5)
    s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host, port, host, port)).encode())
    line = s.recv(4096).split(b"\r\n", 1)[0].decode()
    return postgres_startup(s) if " 200 " in line + " " else line


def postgres_direct(port):
    return postgres_startup(socket.create_connection(("127.0.0.1", port), timeout=3))


def idle(count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    for _ in range(count):
        try:
            held.append(socket.create_connection(HP, timeout=2))
        except OSError:
            break
    time.sleep(1.5)
    # Which of them the door kept: a refused one reads EOF at once.
    alive = 0
    for s in held:
        s.setblocking(False)
        try:
            alive += 0 if s.recv(1) == b"" else 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    during = dns("mirror.test", 1)
    for s in held:
        s.close()
    return "held%d/alive%d/dns:%s" % (len(held), alive, during)


for arg in sys.argv[2:]:
    name, _, rest = arg.partition(":")
    if name == "literal":
        report("literal", lambda: proxy_get("http://127.0.0.1:%d/hello.txt" % ports["http"]))
    elif name == "literal6":
        report("literal6", lambda: proxy_get("http://[::1]:%d/hello.txt" % ports["http"]))
    elif name == "rebind":
        report("rebind", lambda: proxy_get("http://rebind.test:%d/" % ports["service"]))
    elif name == "metadata":
        report("metadata", lambda: proxy_get("http://metadata.test/latest/meta-data/"))
    elif name == "private":
        report("private", lambda: proxy_get("http://intranet.test/"))
    elif name == "hostmismatch":
        report("hostmismatch", lambda: proxy_get("http://mirror.test:%d/hello.txt" % ports["http"], "other.test"))
    elif name == "sni":
        report("sni", lambda: connect_tls("mirror.test", ports["tls"], "other.test"))
    elif name == "sniok":
        report("sniok", lambda: connect_tls("mirror.test", ports["tls"], "mirror.test"))
    elif name == "txt":
        report("txt", lambda: dns("mirror.test", 16))
    elif name == "longlabel":
        report("longlabel", lambda: dns("ZXhmaWx0cmF0ZWQgc2VjcmV0IGRhdGEgY2h1bmsgMDE.a.mirror.test", 1))
    elif name == "udp":
        report("udp", udp_out)
    elif name == "raw":
        report("raw", raw_socket)
    elif name == "service":
        report("service", lambda: direct_literal(ports["service"]))
    elif name == "direct":
        report("direct", lambda: direct_literal(ports["http"]))
    elif name == "connecthead":
        report("connecthead", lambda: connect_head(ports["http"]))
    elif name == "pgname":
        report("pgname", lambda: postgres_via_proxy("rebind.test", int(rest)))
    elif name == "pgliteral":
        report("pgliteral", lambda: postgres_via_proxy("127.0.0.1", int(rest)))
    elif name == "pgdirect":
        report("pgdirect", lambda: postgres_direct(int(rest)))
    elif name == "idle":
        report("idle", lambda: idle(int(rest)))
    elif name == "urllib":
        report("urllib", lambda: urllib.request.urlopen("http://mirror.test:%d/hello.txt" % ports["http"], timeout=5).read().decode().strip())
