#!/usr/bin/env bash
# Runs the whole test suite: dotnet test on the solution, then the bookinfo browser tests
# (tests/bookinfo-browser, node --test) against the Release build of samples/bookinfo-dotnet.
# Installs what the tests need when it is missing:
#   Debian: python3-grpcio python3-grpc-tools python3-protobuf (gRPC C-core xDS peer), openssl (an independent
#           CSR maker and chain verifier for the CA tests; with curl, the end-to-end zero-trust checks), curl,
#           chromium (browser tests), prometheus (promtool checks
#           the /metrics exposition; the service graph's Prometheus source), graphviz (dot renders /dotviz)
#   npm:    tests/peers/node (@grpc/grpc-js-xds peer, upstream Envoy protos for conformance),
#           tests/bookinfo-browser (playwright-core)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_apt=()
/usr/bin/python3 -c 'import grpc, grpc_tools, google.protobuf' 2>/dev/null \
  || need_apt+=(python3-grpcio python3-grpc-tools python3-protobuf)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$chromium" ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing Debian packages: ${need_apt[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null; }; then
      echo "test.sh: could not install Debian packages; install them with: apt-get install -y ${need_apt[*]}" >&2
      exit 1
    fi
    if [ ! -x "$chromium" ]; then
      echo "test.sh: $chromium is still missing after installing chromium; install Debian's chromium package or set CHROMIUM_PATH" >&2
      exit 1
    fi
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
browser="$root/tests/bookinfo-browser"
if [ ! -f "$browser/node_modules/.package-lock.json" ] || [ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
  echo "test.sh: installing npm packages in tests/bookinfo-browser"
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi

dotnet build Mesh.Sdk.sln -c Release -warnaserror --nologo -v q
log="$(mktemp)"
browser_tap="$(mktemp)"
trap 'rm -f "$log" "$browser_tap"' EXIT
set +e
dotnet test Mesh.Sdk.sln -c Release --no-build --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Browser tests: one launcher (samples/bookinfo-dotnet, Release build above), one headless Chromium.
# Spec output on the console, TAP into a file for the counts; bounded so a hang cannot stall the run.
echo "test.sh: bookinfo browser tests (tests/bookinfo-browser)"
(cd "$browser" && CHROMIUM_PATH="$chromium" timeout --kill-after=20 420 \
  node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$browser_tap" tests/)
browser_status=$?
set -e
read -r browser_pass browser_fail < <(awk '
  /^# pass /      { p = $3 }
  /^# (fail|cancelled) / { f += $3 }
  END { printf "%d %d\n", p, f }' "$browser_tap")
if [ "$browser_status" -ne 0 ] && [ "$browser_fail" -eq 0 ]; then
  # The runner died or hit the time bound before reporting a failure: count the run as one.
  echo "test.sh: browser tests exited with status $browser_status without reporting a failed test" >&2
  browser_fail=1
fi
echo "test.sh: browser tests finished with $browser_pass passed and $browser_fail failed (exit $browser_status)"

# One closing line over all test projects and the browser tests: "Tests: N passed, N failed".
awk -v bp="$browser_pass" -v bf="$browser_fail" '/(Passed|Failed)! +- +Failed:/ {
       for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1) }
     } END { printf "Tests: %d passed, %d failed\n", p + bp, f + bf }' "$log"
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
if [ "$browser_status" -ne 0 ] || [ "$browser_fail" -ne 0 ]; then
  exit 1
fi
