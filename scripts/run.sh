#!/usr/bin/env bash
# Runs the embedded control plane on 127.0.0.1:15010, serving and watching samples/mesh-config.
# Extra arguments are passed to the control plane (e.g. --xds-port 15012).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec dotnet run --project "$root/src/Mesh.ControlPlane" -c Release -- \
  --config "$root/samples/mesh-config" --xds-port 15010 "$@"
