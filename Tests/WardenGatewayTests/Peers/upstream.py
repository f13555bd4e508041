"""Servers on the host's loopback for the egress door's tests; the door is the thing under test.

Prints one JSON line with the ports, then serves until killed:
  http     files from ROOT (also a git "dumb HTTP" repository and a PyPI-style simple index)
  tls      the same over TLS, certificate for mirror.test (self-signed, made with openssl)
  sink     counts the bytes each connection sends; appends the count to ROOT/sink.counts on close
  slow     sends 1 KiB every 50 ms for a minute
  service  a "host loopback service" that hands out a secret to whoever connects
"""
import http.server, json, os, socket, socketserver, ssl, subprocess, sys, threading, time

root = sys.argv[1]
os.chdir(root)


def package_index():
    """A package index (PEP 503 "simple" pages) with one wheel, for `pip download`."""
    import hashlib, zipfile
    os.makedirs("packages", exist_ok=True)
    os.makedirs("simple/wardenprobe", exist_ok=True)
    wheel = "packages/wardenprobe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("wardenprobe/__init__.py", "")
        z.writestr("wardenprobe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: wardenprobe\nVersion: 1.0\n")
        z.writestr("wardenprobe-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: warden-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("wardenprobe-1.0.dist-info/RECORD", "")
    digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    with open("simple/wardenprobe/index.html", "w") as page:
        page.write('<!DOCTYPE html><html><body><a href="../../%s#sha256=%s">%s</a></body></html>'
                   % (wheel, digest, os.path.basename(wheel)))


package_index()


class Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        reply = b"received %d\n" % len(body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def serve_http(tls):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    if tls:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
             "-days", "2", "-subj", "/CN=mirror.test", "-addext", "subjectAltName=DNS:mirror.test"],
            check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain("cert.pem", "key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


class Sink(socketserver.BaseRequestHandler):
    def handle(self):
        total = 0
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            total += len(chunk)
        with open(os.path.join(root, "sink.counts"), "a") as f:
            f.write("%d\n" % total)


class Slow(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            self.request.recv(4096)
            for _ in range(1200):
                self.request.sendall(b"x" * 1024)
                time.sleep(0.05)
        except OSError:
            pass


class Service(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"SECRET-SERVICE\n")


def serve_tcp(handler):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


ports = {
    "http": serve_http(False), "tls": serve_http(True), "sink": serve_tcp(Sink), "slow": serve_tcp(Slow),
    "service": serve_tcp(Service),
}
print(json.dumps(ports), flush=True)
while True:
    time.sleep(3600)
