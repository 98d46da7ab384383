#!/usr/bin/env bash
# Builds a Python base image without Docker Hub: a Debian rootfs made by debootstrap
# from the apt mirror, turned into a one-layer OCI image layout that skopeo can push:
#
#   scripts/make-python-base.sh NAME SUITE VARIANT OUTDIR
#   skopeo copy --dest-tls-verify=false oci:OUTDIR:NAME docker://localhost:PORT/python:NAME
#
# NAME     tag written into OUTDIR/index.json (org.opencontainers.image.ref.name)
# SUITE    Debian suite: bookworm (Python 3.11), bullseye (Python 3.9), ...
# VARIANT  slim: minbase + python3 with its full standard library, nothing else
#          (like python:*-slim; python3-minimal alone lacks json, http.server, ...)
#          full: minbase + python3, pip, venv, headers, build-essential, git, curl, ...
#                (like python:*-bookworm, which is built on buildpack-deps)
# OUTDIR   the OCI layout to write; skipped when it is already complete for the same
#          inputs (delete it to rebuild)
#
# Independent of ocibench's own code: GNU tar (sorted, mtime and gzip header fixed),
# pigz -n (or gzip -n), sha256sum and jq. tar and gzip add no time or host data, so the
# layer depends only on the rootfs; debootstrap itself writes the day into a few files
# (/etc/shadow's last-change field), so rebuilds on another day differ there. Needs root (debootstrap chroots). Env: MIRROR (default
# http://deb.debian.org/debian), DEBOOTSTRAP_CACHE (a .deb cache dir shared between
# runs), SOURCE_DATE_EPOCH (config `created` and file mtimes, default 0).
set -euo pipefail

usage() { echo "usage: $0 NAME SUITE slim|full OUTDIR" >&2; exit 2; }
[ $# -eq 4 ] || usage
name=$1 suite=$2 variant=$3 outdir=$4
mirror=${MIRROR:-http://deb.debian.org/debian}
epoch=${SOURCE_DATE_EPOCH:-0}

case "$variant" in
  slim) include=python3 ;;
  # Like python:<v>-<suite> (buildpack-deps): a compiler toolchain and headers as well.
  full) include=python3,python3-dev,python3-pip,python3-venv,build-essential,git,curl,wget,ca-certificates,procps,netbase,tzdata ;;
  *) usage ;;
esac

for tool in debootstrap tar sha256sum jq; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null || {
    echo "error: missing tool $tool: install the Debian package $tool (scripts/install-deps.sh does)" >&2
    exit 1
  }
done
PATH=$PATH:/usr/sbin:/sbin
if [ "$(id -u)" -ne 0 ]; then
  echo "error: debootstrap needs root; run this script as root (or with sudo)" >&2
  exit 1
fi
if command -v pigz >/dev/null; then compress=(pigz -n -6 -c); else compress=(gzip -n -6 -c); fi

# Cache: OUTDIR/.ocibench-base records the inputs of a finished build.
stamp="name=$name suite=$suite variant=$variant include=$include mirror=$mirror epoch=$epoch"
if [ -f "$outdir/.ocibench-base" ] && [ "$(cat "$outdir/.ocibench-base")" = "$stamp" ] \
   && [ -f "$outdir/index.json" ]; then
  echo "$outdir is up to date ($stamp)" >&2
  exit 0
fi

parent=$(dirname "$outdir")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.make-python-base.XXXXXX")
rootfs=$work/rootfs
unmount_all() {
  # debootstrap mounts proc/sys (and in containers binds /dev) in the chroot; never leave
  # them mounted, and never delete through them.
  for m in dev/pts dev proc sys; do
    if mountpoint -q "$rootfs/$m" 2>/dev/null; then umount -l "$rootfs/$m" || true; fi
  done
  for m in dev/pts dev proc sys; do
    if mountpoint -q "$rootfs/$m" 2>/dev/null; then
      echo "error: $rootfs/$m is still mounted; not deleting through it" >&2
      return 1
    fi
  done
}
cleanup() {
  unmount_all && rm -rf "$work"
}
trap cleanup EXIT

t0=$(date +%s.%N)
cache_args=()
if [ -n "${DEBOOTSTRAP_CACHE:-}" ]; then
  mkdir -p "$DEBOOTSTRAP_CACHE"
  cache_args=(--cache-dir="$(realpath "$DEBOOTSTRAP_CACHE")")
fi
echo "debootstrap --variant=minbase --include=$include $suite (mirror $mirror)" >&2
fail() {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "error: debootstrap $1 failed (log above); is the apt mirror $mirror reachable?" >&2
  exit 1
}
# Two stages so dpkg can be told not to fsync every file (force-unsafe-io) before it
# installs anything: that fsync, not the download, is most of debootstrap's time on a
# busy disk. The setting is removed again before the rootfs becomes a layer.
debootstrap --foreign --variant=minbase --include="$include" "${cache_args[@]}" \
  "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || fail "(first stage)"
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/zz-make-python-base-unsafe-io"
chroot "$rootfs" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 \
  || fail "(second stage)"
rm "$rootfs/etc/dpkg/dpkg.cfg.d/zz-make-python-base-unsafe-io"
t1=$(date +%s.%N)

unmount_all
rootfs_bytes=$(du -sb "$rootfs" | cut -f1)
# What an image should not carry: package caches, logs, host-specific ids, device nodes.
rm -rf "$rootfs"/var/cache/ldconfig/aux-cache "$rootfs"/var/cache/debconf/*-old \
       "$rootfs"/var/lib/dpkg/*-old \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* \
       "$rootfs"/debootstrap
find "$rootfs/dev" -mindepth 1 -delete
: >"$rootfs/etc/machine-id"
printf '%s\n' "python-base" >"$rootfs/etc/hostname"
py=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')

arch=$(dpkg --print-architecture)
case "$arch" in
  amd64 | arm64 | s390x | ppc64el | riscv64) oci_arch=${arch/ppc64el/ppc64le} ;;
  armhf) oci_arch=arm ;;
  i386) oci_arch=386 ;;
  *) oci_arch=$arch ;;
esac

tmp_out=$work/layout
mkdir -p "$tmp_out/blobs/sha256"
# Deterministic layer: sorted names, fixed mtime, numeric ids kept (a Debian rootfs has
# non-root owners, e.g. group shadow), no atime/ctime.
tar --sort=name --mtime="@$epoch" --numeric-owner --format=gnu \
    -C "$rootfs" -cf "$work/layer.tar" .
rm -rf "$rootfs"
t2=$(date +%s.%N)
diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
usize=$(stat -c %s "$work/layer.tar")
"${compress[@]}" "$work/layer.tar" >"$work/layer.tar.gz"
rm "$work/layer.tar"
layer_hex=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
csize=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$tmp_out/blobs/sha256/$layer_hex"
t3=$(date +%s.%N)

created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
put_blob() { # file -> prints "hex size"
  local hex
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$tmp_out/blobs/sha256/$hex"
  echo "$hex $(stat -c %s "$tmp_out/blobs/sha256/$hex")"
}

jq -cnS --arg arch "$oci_arch" --arg diff "$diff_id" --arg created "$created" \
   --arg by "debootstrap --variant=minbase --include=$include $suite" --arg py "$py" '{
  architecture: $arch, os: "linux", created: $created,
  config: {
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
          ("PYTHON_VERSION=" + $py)],
    Cmd: ["python3"]
  },
  rootfs: {type: "layers", diff_ids: [$diff]},
  history: [{created: $created, created_by: $by}]
}' | tr -d '\n' >"$work/config.json"
read -r config_hex config_size < <(put_blob "$work/config.json")

jq -cn --arg c "sha256:$config_hex" --argjson cs "$config_size" \
   --arg l "sha256:$layer_hex" --argjson ls "$csize" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]
}' | tr -d '\n' >"$work/manifest.json"
read -r manifest_hex manifest_size < <(put_blob "$work/manifest.json")

jq -cn --arg m "sha256:$manifest_hex" --argjson ms "$manifest_size" --arg name "$name" \
   --arg arch "$oci_arch" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
               platform: {architecture: $arch, os: "linux"},
               annotations: {"org.opencontainers.image.ref.name": $name}}]
}' >"$tmp_out/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp_out/oci-layout"
printf '%s' "$stamp" >"$tmp_out/.ocibench-base"

rm -rf "$outdir"
mv "$tmp_out" "$outdir"
t4=$(date +%s.%N)

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f s", b - a }'; }
cat >&2 <<EOF
built $outdir (tag $name): Debian $suite $variant, Python $py, $oci_arch
  manifest sha256:$manifest_hex
  layer    sha256:$layer_hex  compressed $csize bytes, uncompressed $usize bytes
  rootfs   $rootfs_bytes bytes after debootstrap (before removing apt caches and lists)
  time     debootstrap $(elapsed "$t0" "$t1"), clean+tar $(elapsed "$t1" "$t2"), compress $(elapsed "$t2" "$t3"), total $(elapsed "$t0" "$t4")
EOF
