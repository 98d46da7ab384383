//! ocibench's integration tests: one test binary (`cargo test --test it`), so the
//! crate, hyper and tokio are linked once instead of once per file.
//!
//! Suites are modules grouped by the system packages they need, so each group runs
//! apart with a name filter (`cargo test --test it -- FILTER`):
//!
//! | filter              | modules                                                  | needs                          |
//! |---------------------|----------------------------------------------------------|--------------------------------|
//! | `registry::`        | pull, auth_basic, auth_token, credentials_registry,      | docker-registry, skopeo,       |
//! |                     | push_registry, push_faults, registry_mock, snapshots     | apache2-utils, openssl, podman |
//! | `podman::`          | run_cli, runner_lib, compare, export_podman,             | podman, runc, skopeo,          |
//! |                     | config_podman, snapshots                                 | docker-registry                |
//! | `loadgen::`         | bench_cli, bench_lib, snapshots                          | nothing but loopback           |
//! | `build::`           | build, layer, nix, export_oci, snapshots                 | tar, gzip, skopeo, nix-bin,    |
//! |                     |                                                          | podman, docker-registry        |
//! | `report::`          | the compare report's API and its table snapshot          | nothing                        |
//! | `credentials_helpers::` | `docker-credential-*` helpers run for real           | sh                             |
//! | `support_selftest::`| the support itself (registry, fixtures, TestContext)     | all of the above               |
//!
//! `registry::` and `podman::` match no test outside those two modules (no other module
//! path contains `registry::` or `podman::`). Each suite's human-output snapshots
//! (`insta`, inline) live in its `snapshots` module: `-- snapshots::` runs them all.
//!
//! Everything the suites share is in [`support`]: one `require` (path of a tool, or a
//! panic naming its Debian package), one `run`, one `free_port`, the real registry,
//! fixture images made by independent tools, `TestContext` for the built binary, podman
//! helpers and in-test HTTP servers. A missing tool is a loud failure, never a skip
//! (scripts/install-deps.sh test installs them all).

mod support;

mod build;
mod credentials_helpers;
mod loadgen;
mod podman;
mod registry;
mod report;
mod support_selftest;
