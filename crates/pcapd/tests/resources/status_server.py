#!/usr/bin/env python3
"""HTTP/1.1 keep-alive server for reassembly.rs: GET /status/<code>/<size>/<name> answers
<code> with a body of <size> bytes (Content-Length). Prints "ready" once listening.

status_server.py HOST PORT
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        parts = self.path.split("/")
        try:
            code, size = int(parts[2]), int(parts[3])
        except (IndexError, ValueError):
            code, size = 400, 0
        body = bytes(97 + i % 26 for i in range(size))
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    print("ready", flush=True)
    server.serve_forever()
