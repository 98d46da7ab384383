//! The registry client and the commands that talk to registries (`pull`, `size`,
//! `push`, `build --output docker://`, `inspect`, `copy`), against the real
//! Distribution registry (`docker-registry`), in-process mock registries, and faults
//! in between. Judged by independent readers: skopeo, podman, the registry's storage
//! and access log.

mod auth_basic;
mod auth_token;
mod cache_integrity;
mod copy;
mod credentials_registry;
mod creds_scope;
mod digests;
mod hints;
mod inspect;
mod interrupt;
mod limits;
mod pull;
mod push_faults;
mod push_registry;
mod referrers;
mod registries_conf;
mod registry_mock;
mod snapshots;
mod tls_certs;
mod tls_proxy;
mod trust;
mod verbose;
mod zstd_layers;
