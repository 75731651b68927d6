#!/bin/bash
# Runs inside the gVisor sandbox: tcpdumpw (which starts pcapd) on loopback, traffic, SIGTERM.
set -u
dir="$1"; bin="$2"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
env GCS_MOUNT="$dir/pcap" PCAP_RUN_DIR="$dir/run" PCAP_JSON=true PCAP_LOOPBACK=true \
  PCAP_IFACE=eth PCAP_L4_PROTOS=udp PCAP_PORTS=5000 PCAP_ROTATE_SECS=0 \
  "$bin/tcpdumpw" > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  ls "$dir"/run/*/* >/dev/null 2>&1 && grep -q '"capture ready on' "$dir/log" && break
  sleep 0.1
done
python3 - <<'PY'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in (5000, 5001):
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", port))
for i in range(10):
    s.sendto(b"kept %d" % i, ("127.0.0.1", 5000))
    s.sendto(b"excluded %d" % i, ("127.0.0.1", 5001))
    time.sleep(0.02)
PY
sleep 1
kill -TERM "$pid"; wait "$pid"; echo "tcpdumpw exit $?" >> "$dir/log"
