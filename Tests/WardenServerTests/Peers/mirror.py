"""A plain HTTP server on the host's loopback (a free port, printed as JSON on stdout): what a run's held
connection reaches once a person approves it."""
import http.server
import json
import sys


class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=sys.argv[1], **kwargs)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
