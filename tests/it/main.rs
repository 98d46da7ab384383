//! ocibench's integration tests: one test binary (`cargo test --test it`), so the
//! crate, hyper and tokio are linked once instead of once per file.
//!
//! Suites are modules grouped by the system packages they need, so each group runs
//! apart with a name filter (`cargo test --test it -- FILTER`):
//!
//! | filter                  | modules                                              | needs                               |
//! |-------------------------|------------------------------------------------------|-------------------------------------|
//! | `registry::`            | pull, auth_basic, auth_token, credentials_registry,  | docker-registry, skopeo, openssl,   |
//! |                         | push_registry, push_faults, registry_mock, snapshots | apache2-utils, podman (push_registry) |
//! |                         | inspect, copy                                        |                                     |
//! |                         | zstd_layers                                          | zstd, python3 (the zstd fixtures)   |
//! |                         | cache_integrity, interrupt                           | root: util-linux (unshare, setpriv), |
//! |                         |                                                      | mount; coreutils (mkfifo)           |
//! | `podman::`              | run_cli, runner_lib, compare, export_podman,         | podman, runc, skopeo, busybox-static, |
//! |                         | config_podman, snapshots, zstd_podman                | docker-registry (run_cli, compare)  |
//! | `loadgen::`             | bench_cli, bench_lib, snapshots                      | loopback only                       |
//! | `build::`               | build_cli, layer, nix, export_oci, snapshots,        | tar, gzip, skopeo, nix-bin, podman, |
//! |                         | output_whole, build_zstd                             | docker-registry (build_cli); root:  |
//! |                         |                                                      | mount (a tmpfs, output_whole);      |
//! |                         |                                                      | zstd, util-linux taskset (build_zstd) |
//! | `cli_output::`          | closed stdout, errors that never echo input files    | tar, gzip                           |
//! | `cli_docs::`            | `completions` and `man` read by the shells and groff | bash, zsh, fish, groff-base, man-db |
//! | `chaos::`               | concurrent ops through a fault-injecting proxy;      | docker-registry, skopeo, busybox-   |
//! |                         | `OCIBENCH_CHAOS_OPS` (scripts/chaos.sh runs 1,000)   | static                              |
//! | `report::`              | the report API, and snapshots of its table           | nothing                             |
//! | `credentials_helpers::` | `docker-credential-*` helpers run for real           | sh                                  |
//! | `support_selftest::`    | the support itself (registry, fixtures, context)     | all of the above                    |
//!
//! `-- registry::` and `-- podman::` run exactly those two suites: no other test's
//! path contains `registry::` or `podman::` (libtest filters by substring). The
//! snapshots of the human output (`insta`, inline; see [`support::snapshot`]) live in
//! each suite's `snapshots` module and in `report` (`-- snapshots:: the_table` runs
//! them); `podman::compare`'s end-to-end test also snapshots its table, filtered.
//!
//! Everything the suites share is in [`support`]: one `require` (path of a tool, or a
//! panic naming its Debian package), one `run`, one `free_port`, the real registry,
//! fixture images made by independent tools, `TestContext` for the built binary, podman
//! helpers and in-test HTTP servers. A missing tool is a loud failure, never a skip
//! (scripts/install-deps.sh test installs them all).

mod support;

mod build;
mod chaos;
mod cli_docs;
mod cli_output;
mod credentials_helpers;
mod loadgen;
mod podman;
mod registry;
mod report;
mod support_selftest;
