#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing:
#   Debian: python3-grpcio python3-grpc-tools python3-protobuf (gRPC C-core xDS peer)
#   npm:    tests/peers/node (@grpc/grpc-js-xds peer, upstream Envoy protos for conformance)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_apt=()
/usr/bin/python3 -c 'import grpc, grpc_tools, google.protobuf' 2>/dev/null \
  || need_apt+=(python3-grpcio python3-grpc-tools python3-protobuf)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "test.sh: missing Debian packages; run: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
fi

peers="$root/tests/peers/node"
if [ ! -f "$peers/node_modules/.package-lock.json" ] || [ "$peers/package-lock.json" -nt "$peers/node_modules/.package-lock.json" ]; then
  echo "test.sh: installing npm packages in tests/peers/node"
  (cd "$peers" && npm ci --no-audit --no-fund --loglevel=error)
fi

dotnet build Mesh.Sdk.sln -c Release -warnaserror --nologo -v q
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
dotnet test Mesh.Sdk.sln -c Release --no-build --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over all test projects: "Tests: N passed, N failed".
awk '/(Passed|Failed)! +- +Failed:/ {
       for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1) }
     } END { printf "Tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
