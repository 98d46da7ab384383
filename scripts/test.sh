#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs the system packages
# the integration tests use (registry, skopeo, podman, runc, busybox, nginx, nix),
# then runs every test. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
cargo test --locked --all-targets "$@"
# The fuzz crate (its own workspace, tests/fuzz) replays its seeds as plain tests, so
# a library change that breaks a fuzz target or one of its fixed defects shows here,
# not only in CI's fuzzing pass. A dependency change in Cargo.toml needs its lock
# updated too: (cd tests/fuzz && cargo metadata >/dev/null).
cargo test --locked --manifest-path tests/fuzz/Cargo.toml
