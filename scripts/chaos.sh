#!/usr/bin/env bash
# The chaos test at full size: OPS (default 1000) ocibench operations (pull, size, push,
# build) from several processes at once into one cache, through a fault-injecting proxy
# in front of a real registry, some SIGKILLed; then the cache and the registry are
# checked with sha256sum and skopeo. The test prints the summary (ops, failures and
# faults by kind, wall time) and writes a log of every op and fault.
#
#   scripts/chaos.sh [OPS]
#
# Environment (see tests/it/chaos/mod.rs): OCIBENCH_CHAOS_WORKERS, _SEED, _RATE, _FAULTS,
# _STALL_MS, _KILL, _CHUNK, _WATCHDOG_S; OCIBENCH_CHAOS_LOG (default
# target/tmp/chaos/last-run.log).
set -euo pipefail
cd "$(dirname "$0")/.."
ops=${1:-1000}
case "$ops" in
  '' | *[!0-9]*) echo "usage: $0 [OPS]" >&2; exit 2 ;;
esac
scripts/install-deps.sh test
export OCIBENCH_CHAOS_OPS=$ops
start=$(date +%s)
status=0
cargo test --locked --test it chaos:: -- --nocapture --test-threads 1 || status=$?
echo "scripts/chaos.sh: $ops ops, wall time $(($(date +%s) - start)) s, exit $status" >&2
exit "$status"
