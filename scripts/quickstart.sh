#!/usr/bin/env bash
# The quick start, on a fresh Debian 12 machine (root, package registries only): the
# experiment of DESIGN.md's "Origin", done properly, in one command.
#
# Installs what it needs, builds ocibench, builds four real Python base images from
# Debian packages (Docker Hub is unreachable here: bookworm/bullseye, slim/full),
# pushes them with ocibench into a Distribution registry on loopback that it starts,
# and runs `ocibench compare` on the demo service in layers/app. The bases are cached
# (in $QUICKSTART_DIR, default ~/.cache/ocibench-quickstart): a second run reuses them.
#
# Environment: QUICKSTART_DIR; COMPARE_ARGS (extra `ocibench compare` flags, e.g.
# "--repeats 3 --requests 500" to keep a CI run short).
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
bases=(
  "3.11-slim-bookworm bookworm slim"
  "3.11-bookworm bookworm full"
  "3.9-slim-bullseye bullseye slim"
  "3.9-bullseye bullseye full"
)
for b in "${bases[@]}"; do
  read -r tag suite variant <<<"$b"
  echo "==> python:$tag from Debian packages (cached in $work/$tag)" >&2
  DEBOOTSTRAP_CACHE=$work/debs scripts/make-python-base.sh "$tag" "$suite" "$variant" "$work/$tag" >&2
done

run_dir=$(mktemp -d)
trap 'stop_registry; rm -rf "$run_dir"' EXIT
start_registry "$run_dir"
export REGISTRY OCIBENCH_CACHE=${OCIBENCH_CACHE:-$work/cache}
echo "==> registry at $REGISTRY" >&2
for b in "${bases[@]}"; do
  read -r tag _ <<<"$b"
  "$ocibench" push -q "oci:$work/$tag:$tag" "$REGISTRY/python:$tag" >&2
done

echo "==> ocibench compare (ocibench.toml: the demo service on the four bases)" >&2
t0=$(date +%s)
# shellcheck disable=SC2086
"$ocibench" compare -f ocibench.toml --markdown "$work/comparison.md" \
  --json "$work/comparison.json" --svg "$work/comparison.svg" ${COMPARE_ARGS:-}
echo "==> the compare took $(($(date +%s) - t0)) s" >&2
echo "(Markdown, JSON and SVG reports written to $work/comparison.{md,json,svg})" >&2
