#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs the system packages
# the integration tests use (registry, skopeo, podman, runc, busybox, nginx, nix),
# then runs every test. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
cargo test --locked --all-targets "$@"
