#!/usr/bin/python3
"""xDS mTLS client peer for the interop tests: gRPC C-core (Debian python3-grpcio) with xDS channel
credentials, so the cluster's UpstreamTlsContext (certificates from the bootstrap's file_watcher
provider, peer SANs from the cluster) decides TLS; insecure is the fallback when the cluster has none.

Calls mesh.test.Echo/Say as raw bytes (the peer xds_server.py answers JSON bytes, a .NET echo service a
serialized SayReply) on --target, up to --attempts times, --interval-ms apart, stopping at the first attempt
that ends with --until-code (0, the default: the first success).

Output: one JSON line per attempt, {"i":0,"ok":true,"reply":"<reply as text>","reply_b64":"<reply bytes>"} or
{"i":0,"ok":false,"code":14,"error":"..."}, then {"done":true,"ok":<true if an attempt succeeded>}.
"""
import argparse
import base64
import json
import sys
import time

import grpc
import grpc.experimental


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True)
    p.add_argument("--attempts", type=int, default=1)
    p.add_argument("--interval-ms", type=int, default=200)
    p.add_argument("--call-timeout-ms", type=int, default=3000)
    p.add_argument("--until-code", type=int, default=0)
    args = p.parse_args()

    channel = grpc.secure_channel(args.target, grpc.xds_channel_credentials(grpc.experimental.insecure_channel_credentials()))
    say = channel.unary_unary("/mesh.test.Echo/Say")
    ok = False
    for i in range(args.attempts):
        try:
            reply = say(b"", timeout=args.call_timeout_ms / 1000.0)
            print(json.dumps({"i": i, "ok": True, "reply": reply.decode(errors="replace"),
                              "reply_b64": base64.b64encode(reply).decode("ascii")}), flush=True)
            ok = True
            if args.until_code == 0:
                break
        except grpc.RpcError as e:
            code = e.code()
            value = code.value[0] if code else -1
            print(json.dumps({"i": i, "ok": False, "code": value, "error": e.details()}), flush=True)
            if value == args.until_code:
                break
        time.sleep(args.interval_ms / 1000.0)
    print(json.dumps({"done": True, "ok": ok}), flush=True)
    channel.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
