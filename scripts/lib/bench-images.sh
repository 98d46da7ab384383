# shellcheck shell=bash
# bench_images: builds (once, cached) the images the pull and push benchmarks use and
# sets BASE (a one-layer Python base, the quick start's slim bookworm, in an OCI
# layout tagged 3.11-slim-bookworm) and SPLIT (the same rootfs as five layers: usr/lib,
# usr/share, usr/bin+sbin, var, the rest; tagged split). Needs bench_dir set.
bench_images() {
  # The quick start's slim base (same arguments, so it is built once for both).
  qs_dir=${QUICKSTART_DIR:-$HOME/.cache/ocibench-quickstart}
  base=$qs_dir/3.11-slim-bookworm
  DEBOOTSTRAP_CACHE=$qs_dir/debs scripts/make-python-base.sh 3.11-slim-bookworm bookworm slim "$base" >&2

  # The same rootfs as five layers (usr/lib, usr/share, usr/bin+sbin, var, the rest), made
  # with GNU tar and gzip from the one-layer image, so both images hold identical files.
  split=$bench_dir/python-bookworm-slim-5layers
  # Rebuilt whenever the base changes (its manifest digest is recorded beside it).
  base_digest=$(jq -r '.manifests[0].digest' "$base/index.json")
  if [ ! -f "$split/index.json" ] || [ "$(cat "$split/.base" 2>/dev/null)" != "$base_digest" ]; then
    work=$(mktemp -d "$bench_dir/.split.XXXXXX")
    manifest=$(jq -r '.manifests[0].digest' "$base/index.json" | cut -d: -f2)
    layer=$(jq -r '.layers[0].digest' "$base/blobs/sha256/$manifest" | cut -d: -f2)
    config=$(jq -r '.config.digest' "$base/blobs/sha256/$manifest" | cut -d: -f2)
    mkdir -p "$work/rootfs" "$work/out/blobs/sha256"
    tar -C "$work/rootfs" --numeric-owner -xzf "$base/blobs/sha256/$layer"
    parts=("usr/lib" "usr/share" "usr/bin usr/sbin" "var")
    rest=$(cd "$work/rootfs" && ls -A | grep -vx usr | grep -vx var | tr '\n' ' ')
    parts+=("$rest")
    diff_ids=() layers_json=()
    for p in "${parts[@]}"; do
      # shellcheck disable=SC2086
      tar --sort=name --mtime=@0 --numeric-owner --format=gnu -C "$work/rootfs" -cf "$work/l.tar" $p
      pigz -n -6 -c "$work/l.tar" > "$work/l.tar.gz"
      d=$(sha256sum "$work/l.tar" | cut -d' ' -f1)
      g=$(sha256sum "$work/l.tar.gz" | cut -d' ' -f1)
      mv "$work/l.tar.gz" "$work/out/blobs/sha256/$g"
      diff_ids+=("\"sha256:$d\"")
      layers_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$g\",\"size\":$(stat -c%s "$work/out/blobs/sha256/$g")}")
    done
    ids=$(IFS=,; echo "${diff_ids[*]}")
    jq -c ".rootfs.diff_ids = [$ids] | .history = []" "$base/blobs/sha256/$config" > "$work/config.json"
    c=$(sha256sum "$work/config.json" | cut -d' ' -f1)
    cp "$work/config.json" "$work/out/blobs/sha256/$c"
    ls_json=$(IFS=,; echo "${layers_json[*]}")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[%s]}' \
      "$c" "$(stat -c%s "$work/config.json")" "$ls_json" > "$work/manifest.json"
    m=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
    cp "$work/manifest.json" "$work/out/blobs/sha256/$m"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"split"}}]}' \
      "$m" "$(stat -c%s "$work/manifest.json")" > "$work/out/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' > "$work/out/oci-layout"
    echo "$base_digest" > "$work/out/.base"
    rm -rf "$split"; mv "$work/out" "$split"; rm -rf "$work"
  fi
  BASE=$base
  SPLIT=$split
}
