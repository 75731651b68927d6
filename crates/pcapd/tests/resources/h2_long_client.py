#!/usr/bin/env python3
"""A long-lived h2c client for live_http2.rs's mid-connection test (no libraries).

h2_long_client.py HOST PORT GO_FILE

Phase 1: preface, SETTINGS, GET /index.html whose headers go into the dynamic table
(literals with incremental indexing). Prints "phase1" and waits until GO_FILE exists.
Phase 2, on the same connection: GET /index.html again (stream 3) whose custom headers
are *indexed references* to those dynamic entries, plus a static :method and a literal
:path. A capture started between the phases has never seen the entries.
"""
import os
import socket
import struct
import sys
import time

END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def lit_index(name, value):
    # Literal with incremental indexing, new name; short raw strings.
    return bytes([0x40, len(name)]) + name + bytes([len(value)]) + value


def lit_new(name, value):
    # Literal without indexing, new name.
    return bytes([0x00, len(name)]) + name + bytes([len(value)]) + value


def lit_static_name(index, value):
    # Literal without indexing, static name index (4-bit prefix, index < 15).
    return bytes([index, len(value)]) + value


def read_until_end(sock, sid):
    buf = b""
    while True:
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            t, flags = buf[3], buf[4]
            fsid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            buf = buf[9 + length:]
            if t == 4 and not flags & ACK:
                sock.sendall(frame(4, ACK, 0))
            if fsid == sid and t in (0, 1) and flags & END_STREAM:
                return
        data = sock.recv(65536)
        if not data:
            raise SystemExit("connection closed")
        buf += data


def main():
    host, port, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.create_connection((host, port), timeout=20)
    authority = f"{host}:{port}".encode()
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
    block = (
        b"\x82\x86"  # :method GET, :scheme http
        + lit_static_name(4, b"/index.html")
        + lit_static_name(1, authority)
        + lit_index(b"x-session", b"phase-one-session")
        + lit_index(b"x-tenant", b"tenant-42")
    )
    s.sendall(frame(1, END_STREAM | END_HEADERS, 1, block))
    read_until_end(s, 1)
    print("phase1", flush=True)
    deadline = time.time() + 30
    while not os.path.exists(go):
        if time.time() > deadline:
            raise SystemExit("no go file")
        time.sleep(0.05)
    # Dynamic table now: 62 = x-tenant, 63 = x-session.
    block = (
        b"\x82\x86"
        + lit_static_name(4, b"/index.html")
        + lit_static_name(1, authority)
        + bytes([0x80 | 63, 0x80 | 62])
        + lit_new(b"x-phase", b"two")
    )
    s.sendall(frame(1, END_STREAM | END_HEADERS, 3, block))
    read_until_end(s, 3)
    print("phase2", flush=True)
    s.close()


if __name__ == "__main__":
    main()
