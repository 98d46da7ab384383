//! Everything that runs containers with real podman (and runc, see ENVIRONMENT.md):
//! `ocibench run`, the `PodmanRunner` library, `compare` end to end, and exported
//! archives and edited configs as podman loads and runs them, and the host's image
//! of a multi-platform build.

mod cold_pull;
mod compare;
mod compare_push;
mod compare_slo;
mod config_podman;
mod export_podman;
mod isolation;
mod multiplatform_podman;
mod rootless;
mod run_cli;
mod runner_lib;
mod snapshots;
mod zstd_podman;
