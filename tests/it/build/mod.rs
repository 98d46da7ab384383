//! Making images: `ocibench build` end to end, layers checked by GNU tar, Nix closures,
//! and `export` to `oci:`, `oci-archive:` and `docker-archive:` read back by skopeo.

mod annotations;
mod build_cli;
mod build_zstd;
mod export_oci;
mod flake;
mod layer;
mod multiplatform;
mod nix;
mod output_whole;
mod snapshots;
