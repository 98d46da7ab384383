#!/usr/bin/env bash
# Completes a copy of tests/nix/nixpkgs-standin for `nix build --override-input`:
#   tests/nix/prepare-standin.sh DEST [OCIBENCH_BINARY]
# DEST gets the stand-in's .nix files, busybox/ (a static busybox with its applets:
# the builders' shell and tools) and ocibench/lib/ (the binary, stripped, with its
# dynamic loader and libraries). OCIBENCH_BINARY defaults to target/debug/ocibench.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:?usage: prepare-standin.sh DEST [OCIBENCH_BINARY]}
binary=${2:-$here/../../target/debug/ocibench}
for tool in busybox strip ldd; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
[ -x "$binary" ] || { echo "error: $binary is not built; run cargo build" >&2; exit 1; }

mkdir -p "$dest/busybox/bin" "$dest/ocibench/lib"
cp "$here"/nixpkgs-standin/*.nix "$dest/"
# The static busybox: its applets as symlinks, so `sh` is argv[0] when a builder starts.
bb=$(command -v busybox)
file_type=$(head -c 4 "$bb" | od -An -c | tr -d ' ')
[ "$file_type" = "177ELF" ] || { echo "error: $bb is not an ELF binary" >&2; exit 1; }
cp "$bb" "$dest/busybox/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dest/busybox/bin/$applet"
done
# ocibench and every library it loads; the stand-in runs it through this ld.so.
strip -o "$dest/ocibench/lib/ocibench" "$binary"
ldd "$binary" | while read -r first _ second _; do
  case $first in
    /*) cp -L "$first" "$dest/ocibench/lib/ld.so" ;;
    *) [ -n "$second" ] && [ -e "$second" ] && cp -L "$second" "$dest/ocibench/lib/$first" ;;
  esac
done
[ -e "$dest/ocibench/lib/ld.so" ] || { echo "error: no dynamic loader in ldd $binary" >&2; exit 1; }
# Each prepared stand-in gives new derivations (pkgs.nix reads this), so a build
# cannot be answered by an earlier run's outputs.
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$dest/salt"
