#!/usr/bin/env python3
"""gRPC over h2c for live_http2.rs, with generic handlers (raw bytes, no protoc).

server HOST:PORT        serves /pkg.Echo/Say (echoes) and /pkg.Echo/Missing (NOT_FOUND)
client HOST:PORT TP     calls Say (OK) then Missing (error), with `traceparent: TP`
"""
import sys
from concurrent import futures

import grpc


def say(request, context):
    return b"echo:" + request


def missing(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such key: k1")


def server(addr):
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Missing": grpc.unary_unary_rpc_method_handler(missing),
    }
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    s.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("pkg.Echo", handlers),))
    s.add_insecure_port(addr)
    s.start()
    print("listening", flush=True)
    s.wait_for_termination()


def client(addr, traceparent):
    with grpc.insecure_channel(addr) as ch:
        md = (("traceparent", traceparent),)
        say_rpc = ch.unary_unary("/pkg.Echo/Say")
        assert say_rpc(b"hi", metadata=md, timeout=10) == b"echo:hi"
        try:
            ch.unary_unary("/pkg.Echo/Missing")(b"k1", metadata=md, timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            print("not found:", e.details(), flush=True)
        else:
            raise SystemExit("Missing succeeded")


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        client(sys.argv[2], sys.argv[3])
