#!/usr/bin/env bash
# Builds and starts bookinfo-dotnet: the embedded control plane (xDS on 127.0.0.1:15010) loading and watching
# samples/bookinfo-dotnet/config, and productpage v1, details v1, reviews v1/v2/v3, ratings v1 as separate
# processes on 127.0.0.1. Prints the product page URL (http://127.0.0.1:9080/productpage); Ctrl+C stops all.
# Launcher arguments pass through (e.g. --port 9081, --xds-port 0, --config DIR); --no-build skips the build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sample="$root/samples/bookinfo-dotnet"

build=1
args=()
for arg in "$@"; do
  if [ "$arg" = "--no-build" ]; then build=0; else args+=("$arg"); fi
done

if [ "$build" = 1 ]; then
  echo "run.sh: building samples/bookinfo-dotnet (Release)"
  dotnet build "$sample/launcher/Bookinfo.Launcher.csproj" -c Release --nologo -v q -clp:ErrorsOnly
fi

launcher="$sample/launcher/bin/Release/net10.0/Bookinfo.Launcher.dll"
if [ ! -f "$launcher" ]; then
  echo "run.sh: $launcher is missing; run without --no-build" >&2
  exit 1
fi

exec dotnet "$launcher" --config "$sample/config" --port 9080 --xds-port 15010 ${args[@]+"${args[@]}"}
