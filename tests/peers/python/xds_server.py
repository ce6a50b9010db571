#!/usr/bin/python3
"""xDS server peer for the interop tests: gRPC C-core (Debian python3-grpcio) serving with xds=True.

The server asks the control plane in GRPC_XDS_BOOTSTRAP_CONFIG (or GRPC_XDS_BOOTSTRAP) for its inbound
listener (the bootstrap's server_listener_resource_name_template with <host>:<port>) and applies what it
gets: mTLS from the filter chain's transport socket, RBAC from its HTTP filters. It serves any method of
mesh.test.Echo without (de)serialising: each call answers the JSON bytes
  {"method": "<method>", "workload": "<--workload>", "peer": "<caller address>", "auth": {<auth context>}}.

Credentials: xds_server_credentials over insecure (plaintext unless the listener asks for TLS); the
certificate files come from the bootstrap's file_watcher certificate provider.

Output: one JSON line {"started": true, "port": N} once the port is bound (serving starts when the
listener arrives). The process runs until its stdin closes.
"""
import argparse
import json
import sys
from concurrent import futures

import grpc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workload", default="echo-server")
    args = p.parse_args()

    def answer(method):
        def handle(request, context):
            # The caller's authenticated identity when the connection is mTLS (peer_spiffe_id, SANs), else nothing.
            auth = {k: [v.decode(errors="replace") for v in vs] for k, vs in context.auth_context().items()}
            return json.dumps({"method": method, "workload": args.workload, "peer": context.peer(), "auth": auth}).encode()

        # No request_deserializer / response_serializer: bytes in, bytes out.
        return grpc.unary_unary_rpc_method_handler(handle)

    class AnyMethod(grpc.GenericRpcHandler):
        def service(self, handler_call_details):
            service, _, method = handler_call_details.method.lstrip("/").partition("/")
            return answer(method) if service == "mesh.test.Echo" else None

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), xds=True)
    server.add_generic_rpc_handlers((AnyMethod(),))
    bound = server.add_secure_port("%s:%d" % (args.host, args.port), grpc.xds_server_credentials(grpc.insecure_server_credentials()))
    server.start()
    sys.stdout.write(json.dumps({"started": True, "port": bound}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
