#!/usr/bin/env bash
# Runs one fuzz target under afl-fuzz for a while (default 10 minutes) and copies what it finds into
# fuzz/crashes/TARGET/, where Mesh.Fuzz.Tests replays it on every test run.
#   scripts/fuzz.sh yaml|xds|re2|route [MINUTES]
# Installs what it needs when missing: Debian's afl++ (afl-fuzz) and the SharpFuzz.CommandLine tool (into
# fuzz/.tools, not globally). Everything runs on local files; nothing listens on the network.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

target="${1:-}"
minutes="${2:-10}"
case "$target" in
  yaml|xds|re2|route) ;;
  *) echo "usage: scripts/fuzz.sh yaml|xds|re2|route [MINUTES]" >&2; exit 2 ;;
esac

if ! command -v afl-fuzz >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "fuzz.sh: installing Debian package afl++"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
  else
    echo "fuzz.sh: afl-fuzz is missing; run: sudo apt-get install -y afl++" >&2
    exit 1
  fi
fi

tools="$root/fuzz/.tools"
if [ ! -x "$tools/sharpfuzz" ]; then
  echo "fuzz.sh: installing SharpFuzz.CommandLine 2.3.0 into fuzz/.tools"
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >/dev/null
fi

work="$root/fuzz/findings/$target"
build="$root/fuzz/findings/build"
rm -rf "$build"
dotnet publish fuzz/Mesh.Fuzz/Mesh.Fuzz.csproj -c Release -o "$build" --nologo -v q
# Instrument the code under test and the parsers it leans on (AFL's coverage comes from these).
for dll in Mesh.Xds.dll Mesh.Sdk.dll Mesh.ControlPlane.dll YamlDotNet.dll Google.Protobuf.dll; do
  "$tools/sharpfuzz" "$build/$dll"
done

mkdir -p "$work"
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
# -t: a .NET start plus one input; an input that takes longer than 10 s is reported as a hang.
afl-fuzz -i "fuzz/corpus/$target" -o "$work" -t 10000 -m none -V "$((minutes * 60))" -- "$build/Mesh.Fuzz" "$target" || true

found=0
for dir in "$work"/default/crashes "$work"/default/hangs; do
  [ -d "$dir" ] || continue
  for f in "$dir"/id*; do
    [ -f "$f" ] || continue
    mkdir -p "fuzz/crashes/$target"
    cp "$f" "fuzz/crashes/$target/$(basename "$dir")-$(sha256sum "$f" | cut -c1-12)"
    found=$((found + 1))
  done
done
echo "fuzz.sh: $target ran ${minutes} min; $found crash/hang inputs copied to fuzz/crashes/$target/"
[ "$found" = 0 ]
