#!/usr/bin/env bash
# Regenerates the captures the wire/analyze/render tests read: real traffic between two network
# namespaces joined by a veth pair (nothing leaves the machine). Needs root, iproute2, tcpdump,
# dnsmasq, dig, curl, python3, openssl, arping. Usage: capture.sh OUTDIR
set -euo pipefail
out=$(realpath "${1:-.}")
A=pcapwA$$ B=pcapwB$$
cleanup() {
  ip netns pids "$B" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids "$A" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add vA netns "$A" type veth peer name vB netns "$B"
inA() { ip netns exec "$A" "$@"; }
inB() { ip netns exec "$B" "$@"; }
inA ip link set lo up; inB ip link set lo up
inA ip link set vA address 02:00:00:00:00:0a; inB ip link set vB address 02:00:00:00:00:0b
inA ip addr add 10.77.0.1/24 dev vA; inB ip addr add 10.77.0.2/24 dev vB
inA ip addr add fd77::1/64 dev vA nodad; inB ip addr add fd77::2/64 dev vB nodad
inA ip link set vA up; inB ip link set vB up
tmp=$(mktemp -d)
cat >"$tmp/hosts" <<H
10.77.0.9 www.example.test
fd77::9 www.example.test
H
inB dnsmasq --no-daemon --no-resolv --no-hosts --addn-hosts="$tmp/hosts" --listen-address=10.77.0.2 \
  --bind-interfaces --port=53 --pid-file="$tmp/dnsmasq.pid" \
  --cname=alias.example.test,www.example.test --mx-host=example.test,mail.example.test,10 \
  --txt-record=example.test,"v=spf1 -all","second string" \
  --srv-host=_sip._udp.example.test,sip.example.test,5060,1,2 \
  --ptr-record=9.0.77.10.in-addr.arpa,www.example.test \
  --dns-rr=example.test,257,000569737375656c657473656e63727970742e6f7267 \
  --auth-server=ns.example.test --auth-zone=example.test --auth-soa=2024010101,hostmaster.example.test \
  2>"$tmp/dnsmasq.log" &
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
  -subj /CN=tls.example.test 2>/dev/null
inB python3 -m http.server 8080 --bind 10.77.0.2 --directory "$tmp" >/dev/null 2>&1 &
inB openssl s_server -accept 4433 -cert "$tmp/cert.pem" -key "$tmp/key.pem" -alpn h2,http/1.1 -www \
  >/dev/null 2>&1 &
sleep 1
inA tcpdump -i vA -U -w "$out/veth.pcap" 2>/dev/null &
inA tcpdump -i any -y LINUX_SLL2 -U -w "$out/any-sll2.pcap" 2>/dev/null &
inA tcpdump -i any -y LINUX_SLL -U -w "$out/any-sll.pcap" 2>/dev/null &
inA tcpdump -i vA -s 64 -U -w "$out/snaplen64.pcap" 2>/dev/null &
inA tcpdump -i lo -U -w "$out/lo.pcap" 2>/dev/null &
sleep 1
inA arping -c 1 -I vA 10.77.0.2 >/dev/null 2>&1 || true
inA ping -c 2 -i 0.2 10.77.0.2 >/dev/null
inA ping -6 -c 2 -i 0.2 fd77::2 >/dev/null
inA ping -c 1 127.0.0.1 >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 www.example.test A >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 www.example.test AAAA >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 alias.example.test A >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 example.test MX >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 example.test TXT >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 _sip._udp.example.test SRV >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 -x 10.77.0.9 >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 example.test CAA >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 example.test SOA >/dev/null
inA dig +tries=1 +time=2 @10.77.0.2 nope.example.test A >/dev/null
inA dig +tcp +tries=1 +time=2 @10.77.0.2 www.example.test A >/dev/null
inA curl -s -o /dev/null http://10.77.0.2:8080/
inA curl -s -o /dev/null -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-753f2fd13f6f4bd2-01' \
  http://10.77.0.2:8080/hosts
echo Q | inA timeout 5 openssl s_client -connect 10.77.0.2:4433 -servername tls.example.test \
  -alpn h2,http/1.1 >/dev/null 2>&1 || true
inA bash -c 'echo hi >/dev/udp/10.77.0.2/9999' || true
inA bash -c 'echo hi >/dev/udp/fd77::2/9999' || true
inA bash -c 'exec 3<>/dev/tcp/10.77.0.2/9' 2>/dev/null || true
sleep 1
ip netns pids "$A" | xargs -r kill -INT 2>/dev/null || true
sleep 1
