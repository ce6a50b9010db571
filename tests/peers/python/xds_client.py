#!/usr/bin/python3
"""xDS client peer for the interop tests: gRPC C-core (Debian python3-grpcio) resolving xds:///
targets through the bootstrap in GRPC_XDS_BOOTSTRAP_CONFIG (or GRPC_XDS_BOOTSTRAP), calling
mesh.test.Echo/Say.

Run with /usr/bin/python3 (Debian's grpcio and grpc_tools). The Python stubs are generated from
echo.proto with grpc_tools.protoc into a temporary folder at start (or --stubs-dir if given).

Output: one JSON line per call on stdout,
  {"i":0,"ok":true,"version":"v1","workload":"echo-v1-0","ms":3}
  {"i":1,"ok":false,"code":14,"error":"..."}
and a final {"done":true,"calls":N,"ok":M,"reason":"..."} line.

Same arguments as xds-client.js: --target, --proto, --count, --metadata key=value (repeatable),
--call-timeout-ms, --deadline-ms, --stream, --interval-ms, --max-duration-ms, --max-failures.
"""
import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time

_lock = threading.Lock()
_state = {"calls": 0, "ok": 0, "finished": False}


def emit(obj):
    with _lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def finish(reason, exit_code):
    with _lock:
        if _state["finished"]:
            return
        _state["finished"] = True
        sys.stdout.write(json.dumps({"done": True, "calls": _state["calls"], "ok": _state["ok"], "reason": reason}) + "\n")
        sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: a channel may still hold threads; the process must end now.
    os._exit(exit_code)


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="xds:///echo.default.svc.cluster.local:9080")
    p.add_argument("--proto", default=os.path.join(here, "..", "protos", "echo.proto"))
    p.add_argument("--stubs-dir", default=None)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--metadata", action="append", default=[])
    p.add_argument("--call-timeout-ms", type=int, default=5000)
    p.add_argument("--deadline-ms", type=int, default=60000)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--interval-ms", type=int, default=20)
    p.add_argument("--max-duration-ms", type=int, default=30000)
    p.add_argument("--max-failures", type=int, default=5)
    args = p.parse_args()
    md = []
    for kv in args.metadata:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            p.error("--metadata expects key=value, got '%s'" % kv)
        md.append((key, value))
    args.metadata = md
    return args


def load_stubs(proto, stubs_dir):
    from grpc_tools import protoc
    import grpc_tools

    owned = stubs_dir is None
    out = stubs_dir or tempfile.mkdtemp(prefix="mesh-echo-stubs-")
    proto = os.path.abspath(proto)
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main([
        "grpc_tools.protoc",
        "-I" + os.path.dirname(proto),
        "-I" + include,
        "--python_out=" + out,
        "--grpc_python_out=" + out,
        os.path.basename(proto),
    ])
    if rc != 0:
        raise RuntimeError("grpc_tools.protoc failed on %s (exit %d)" % (proto, rc))
    sys.path.insert(0, out)
    name = os.path.splitext(os.path.basename(proto))[0]
    pb2 = importlib.import_module(name + "_pb2")
    pb2_grpc = importlib.import_module(name + "_pb2_grpc")
    if owned:
        shutil.rmtree(out, ignore_errors=True)
    return pb2, pb2_grpc


def main():
    args = parse_args()
    # The overall deadline: the process always ends, whatever the channel does.
    timer = threading.Timer(args.deadline_ms / 1000.0, finish, args=("deadline", 3))
    timer.daemon = True
    timer.start()

    import grpc

    pb2, pb2_grpc = load_stubs(args.proto, args.stubs_dir)
    channel = grpc.insecure_channel(args.target)
    stub = pb2_grpc.EchoStub(channel)

    def too_many_failures():
        with _lock:
            return _state["calls"] - _state["ok"] >= args.max_failures

    def call_once(i):
        started = time.monotonic()
        try:
            reply = stub.Say(pb2.SayRequest(message="call-%d" % i),
                             metadata=args.metadata or None,
                             timeout=args.call_timeout_ms / 1000.0)
            ms = int((time.monotonic() - started) * 1000)
            with _lock:
                _state["calls"] += 1
                _state["ok"] += 1
            emit({"i": i, "ok": True, "version": reply.version, "workload": reply.workload,
                  "headers": dict(reply.headers), "ms": ms})
        except grpc.RpcError as e:
            ms = int((time.monotonic() - started) * 1000)
            with _lock:
                _state["calls"] += 1
            code = e.code()
            emit({"i": i, "ok": False, "code": code.value[0] if code else -1, "error": e.details(), "ms": ms})

    if not args.stream:
        for i in range(args.count):
            call_once(i)
            if too_many_failures():
                finish("max-failures", 0)
        finish("count", 0)
        return

    stdin_closed = threading.Event()

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:  # noqa: BLE001 - any failure to read means the parent is gone
            pass
        stdin_closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop_at = time.monotonic() + args.max_duration_ms / 1000.0
    i = 0
    while True:
        if stdin_closed.is_set():
            finish("stdin-closed", 0)
        if time.monotonic() >= stop_at:
            finish("max-duration", 0)
        next_at = time.monotonic() + args.interval_ms / 1000.0
        call_once(i)
        if too_many_failures():
            finish("max-failures", 0)
        i += 1
        wait = next_at - time.monotonic()
        if wait > 0:
            stdin_closed.wait(wait)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - report and end with a done line
        import traceback
        traceback.print_exc()
        finish("exception", 1)
