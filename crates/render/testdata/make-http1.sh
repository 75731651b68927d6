#!/bin/sh
# Regenerates http1.pcap: real HTTP/1.1 traffic between two network namespaces
# (10.88.0.1 client, 10.88.0.2 server), captured with tcpdump on the client's veth.
# Exchanges: keep-alive GET x2 on one connection (traceparent, X-Cloud-Trace-Context),
# both trace headers, no trace header, 404, 500, chunked response, POST of 20 KB across
# several segments (MTU 1400), a header block split across two segments, and Authorization/Cookie headers (secrets must never appear
# in the translator's output). Run as root: sh make-http1.sh [OUT.pcap]
set -eu
OUT=${1:-$(dirname "$0")/http1.pcap}
C=pcaphttpc$$; S=pcaphttps$$
cleanup() { ip netns pids "$S" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$C" 2>/dev/null || true; ip netns del "$S" 2>/dev/null || true; rm -rf "$TMP"; }
TMP=$(mktemp -d); trap cleanup EXIT
ip netns add "$C"; ip netns add "$S"
ip link add vc0 netns "$C" type veth peer name vs0 netns "$S"
ip -n "$C" addr add 10.88.0.1/24 dev vc0; ip -n "$S" addr add 10.88.0.2/24 dev vs0
ip -n "$C" link set vc0 mtu 1400 up; ip -n "$S" link set vs0 mtu 1400 up
ip -n "$C" link set lo up; ip -n "$S" link set lo up
# Disable offloads so segments on the wire are what tcpdump sees.
ip netns exec "$C" ethtool -K vc0 tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec "$S" ethtool -K vs0 tso off gso off gro off >/dev/null 2>&1 || true
cat > "$TMP/srv.py" <<'PY'
import http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/fail":
            body = b"internal error\n"
            self.send_response(500); self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        elif self.path == "/chunked":
            self.send_response(200); self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked"); self.send_header("Set-Cookie", "sid=SETCOOKIESECRET")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part)); self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            super().do_GET()
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0)); data = self.rfile.read(n)
        body = b"got %d bytes\n" % len(data)
        self.send_response(201); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("10.88.0.2", 8080), H).serve_forever()
PY
mkdir -p "$TMP/www"; echo "hello from the server" > "$TMP/www/index.html"; echo "second" > "$TMP/www/two.txt"
head -c 20000 /dev/zero | tr '\0' 'x' > "$TMP/big.bin"
(cd "$TMP/www" && ip netns exec "$S" python3 "$TMP/srv.py" >/dev/null 2>&1 &)
sleep 1
ip netns exec "$C" tcpdump -i vc0 -s 0 -U -w "$TMP/cap.pcap" tcp >/dev/null 2>&1 &
TD=$!; sleep 1
U=http://10.88.0.2:8080
cc() { ip netns exec "$C" curl -s -o /dev/null "$@"; }
TP=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
XC="0af7651916cd43dd8448eb211c80319c/12345678901234567890;o=1"
cc -H "traceparent: $TP" $U/index.html $U/two.txt          # keep-alive, both traced
cc -H "X-Cloud-Trace-Context: $XC" $U/index.html
cc -H "traceparent: 00-11111111111111111111111111111111-2222222222222222-00" \
   -H "X-Cloud-Trace-Context: 33333333333333333333333333333333/1;o=1" $U/index.html
cc $U/index.html $U/missing                                  # no trace; 200 then 404 keep-alive
cc -H "X-Cloud-Trace-Context: 44444444444444444444444444444444/255;o=0" $U/fail
cc -H "Authorization: Bearer AUTHSECRET" -H "Cookie: session=COOKIESECRET" $U/chunked
cc -H "traceparent: 00-55555555555555555555555555555555-6666666666666666-01" \
   -H "Content-Type: application/octet-stream" --data-binary @"$TMP/big.bin" $U/upload
# A request whose header block is split across two segments (secret split in its name).
cat > "$TMP/split.py" <<'PY'
import socket, time
s = socket.create_connection(("10.88.0.2", 8080)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b"GET /index.html HTTP/1.1\r\nHost: 10.88.0.2:8080\r\nUser-Agent: split/1\r\nAuthoriza")
time.sleep(0.2)
s.sendall(b"tion: Basic SPLITSECRET\r\ntraceparent: 00-77777777777777777777777777777777-8888888888888888-01\r\nConnection: close\r\n\r\n")
while s.recv(65536): pass
s.close()
PY
ip netns exec "$C" python3 "$TMP/split.py"
sleep 1; kill "$TD"; wait "$TD" 2>/dev/null || true
cp "$TMP/cap.pcap" "$OUT"; echo "wrote $OUT ($(wc -c < "$OUT") bytes)"
