#!/usr/bin/env bash
# Installs the Debian packages ocibench's tests, quick start and benchmarks use.
# Idempotent: installs only what is missing. Needs root (or sudo) and the apt mirror.
set -euo pipefail

# Package list by purpose. Building ocibench itself needs a C toolchain, nasm and the
# autotools: the isal-sys crate compiles ISA-L's igzip (the pull's inflater) from source.
build_pkgs=(build-essential nasm autoconf automake libtool)
test_pkgs=("${build_pkgs[@]}" docker-registry skopeo podman runc busybox-static apache2-utils nginx-light
           nix-bin debootstrap ca-certificates curl pigz jq time openssl
           util-linux mount   # unshare, setpriv, mount: the cache tests' read-only and full-disk cases
           uidmap slirp4netns fuse-overlayfs passt  # rootless podman (tests/it/support/rootless.rs)
           iproute2           # ip netns: the registry tests' non-loopback addresses (tests/it/support/netns.rs)
           zsh fish groff-base man-db     # the shells and man read `completions` and `man` (cli_docs)
           zstd python3)      # the zstd fixtures (zstd CLI + Python tarfile) and benches/build-zstd
# nghttp2-client: h2load, for benches/loadgen-h2; python3: benches/slow_server.py and
# the open-loop benches' reports
bench_pkgs=(wrk hey nghttp2-client python3)

want=("${test_pkgs[@]}")
case "${1:-test}" in
  test) ;;
  bench) want+=("${bench_pkgs[@]}") ;;
  # scripts/fuzz.sh: the C toolchain also builds AFL++ (cargo-afl compiles it).
  fuzz) want=("${build_pkgs[@]}") ;;
  *) echo "usage: $0 [test|bench|fuzz]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
