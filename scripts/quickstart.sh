#!/usr/bin/env bash
# The quick start, on a fresh Debian 12 machine (root, package registries only):
# installs what it needs, builds ocibench, builds a real Python base image from
# Debian packages (Docker Hub is unreachable here), serves it from a local
# Distribution registry, and shows ocibench pulling, sizing, building on and
# pushing it. A second run reuses the cached base.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/lib/registry.sh
. scripts/lib/registry.sh

scripts/install-deps.sh test
echo "==> building ocibench (release)" >&2
cargo build --release --locked -q
ocibench=$root/target/release/ocibench

work=${QUICKSTART_DIR:-$HOME/.cache/ocibench-quickstart}
mkdir -p "$work"
base=$work/python-3.11-slim-bookworm
echo "==> Python base from Debian packages (cached in $base)" >&2
DEBOOTSTRAP_CACHE=$work/debs scripts/make-python-base.sh 3.11-slim-bookworm bookworm slim "$base" >&2

run_dir=$(mktemp -d)
trap 'stop_registry; rm -rf "$run_dir"' EXIT
start_registry "$run_dir"
export OCIBENCH_CACHE=$run_dir/cache
echo "==> registry at $REGISTRY" >&2

set -x
"$ocibench" push "oci:$base:3.11-slim-bookworm" "$REGISTRY/python:3.11-slim-bookworm"
"$ocibench" size "$REGISTRY/python:3.11-slim-bookworm"
"$ocibench" build --from "$REGISTRY/python:3.11-slim-bookworm" \
  --layer layers/app:/app --entrypoint '["python3","/app/server.py"]' \
  --env PORT=8080 --expose 8080 \
  --output "oci-archive:$run_dir/app.tar:localhost/app:latest" \
  --output "$REGISTRY/app:latest"
"$ocibench" size "$REGISTRY/app:latest"
