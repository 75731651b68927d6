"""TCP workloads for the tcp.analysis differential test (kernel TCP on both ends).

server ADDR PORT: an HTTP/1.1 server (keep-alive; `/bytes/N` answers N bytes; `/close/N`
    answers and closes first, so the client may reuse its port).
client ADDR PORT: every workload in turn, from the peer namespace:
    - HTTP/1.1 keep-alive requests of several sizes (retransmissions under loss);
    - a slow reader with a tiny receive buffer (zero windows, probes, window updates);
    - an idle connection with TCP keep-alive every second (keep-alives and their ACKs);
    - the same client port twice (reused ports);
    - a request then an abortive close (RST after data).
"""
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        n = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 100
        body = (b"0123456789abcdef" * (n // 16 + 1))[:n]
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        if parts[0] == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def server(addr, port):
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((addr, port), Handler)
    print("ready", flush=True)
    srv.serve_forever()


def request(sock, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return rest


def connect(addr, port, **kw):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if kw.get("rcvbuf"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, kw["rcvbuf"])
    if kw.get("local_port"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", kw["local_port"]))
    s.settimeout(60)
    s.connect((addr, port))
    return s


def http_keepalive(addr, port):
    for round_ in range(4):
        s = connect(addr, port)
        for n in (200, 3000, 40000, 250000):
            request(s, f"/bytes/{n + round_}")
        s.close()


def slow_reader(addr, port):
    s = connect(addr, port, rcvbuf=4096)
    s.sendall(b"GET /bytes/120000 HTTP/1.1\r\nHost: t\r\n\r\n")
    got = 0
    # About 50 kB/s against a sender on a veth: the receive window closes again and again.
    while got < 120000:
        chunk = s.recv(1024)
        if not chunk:
            break
        got += len(chunk)
        time.sleep(0.02)
    s.close()


def keepalive_idle(addr, port):
    s = connect(addr, port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 20)
    request(s, "/bytes/10")
    time.sleep(4.5)
    request(s, "/bytes/10")
    s.close()


def reused_port(addr, port):
    for _ in range(2):
        # Loss can leave this side in TIME_WAIT after all (its FIN may go first): retry.
        for attempt in range(20):
            try:
                s = connect(addr, port, local_port=41999)
                break
            except OSError:
                time.sleep(0.5)
        request(s, "/close/500")
        # The server closed first: its side holds TIME_WAIT; an abortive close leaves
        # none on this side, so the port is free again at once.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        time.sleep(0.3)


def rst_after_data(addr, port):
    s = connect(addr, port)
    request(s, "/bytes/1000")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def client(addr, port):
    jobs = [http_keepalive, slow_reader, keepalive_idle, reused_port, rst_after_data]
    threads = [threading.Thread(target=j, args=(addr, port)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("done", flush=True)


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
