//! Support for ocibench's integration tests, shared by every suite of the `it` binary: a
//! real Distribution registry, fixture images built by independent tools (tar, gzip,
//! sha256sum, skopeo), a sealed `TestContext` to run the `ocibench` binary, podman
//! helpers, and in-test HTTP servers.
//!
//! ```ignore
//! use crate::support::{Registry, TestContext, Variant, push_fixture};
//!
//! #[test]
//! fn size_reports_fixture_sizes() {
//!     let registry = Registry::start();
//!     let image = push_fixture(&registry, "busybox", "1", Variant::Oci);
//!     let ctx = TestContext::new();
//!     let out = ctx.run(["size", image.reference.as_str(), "--json"]).success();
//!     assert_eq!(out.json()["compressed_bytes"], image.compressed_bytes());
//! }
//! ```
//!
//! Fixtures pushed to registries are never made with ocibench's own code, so they can
//! judge it; [`store_fixture`] is the exception, for tests of `export` that start from
//! ocibench's own blob store.
//!
//! Modules: [`registry`] (the server, its request log), [`chaos_proxy`] (a seeded
//! fault-injecting proxy in front of it, for the chaos suite), [`fixtures`] (variants, push,
//! tamper, cached layouts), [`expected`] (values read back from blobs), [`layout`]
//! (writing OCI layouts with tar/gzip/sha256sum), [`rootfs`] (busybox and app roots),
//! [`context`] (`TestContext`, `Output`), [`token`] (a Docker token issuer for `auth: token`),
//! [`tools`] (`require`, `run`, `free_port`), [`http`] (a tiny std-only HTTP client),
//! [`http_server`] (a tiny std-only HTTP server for mock registries), [`hyper_server`]
//! (hyper servers for the load generator), [`tls_server`] (HTTPS and HTTP/2 ones, with a
//! test CA), [`media`] (media types), [`podman`] (runc,
//! ulimits, cleanup guards), [`store_fixture`] (a busybox image in a `BlobStore`),
//! [`python_base`] (Debian Python bases from `scripts/make-python-base.sh`, cached),
//! [`zstd_fixture`] (zstd images from Python tarfile and the zstd CLI),
//! [`snapshot`] (what insta snapshots of the human output hide, and the tiny image),
//! [`netns`] (a network namespace with a non-loopback address), [`ns_registry`] (the
//! registry inside one, plain HTTP or HTTPS), [`openssl_ca`] (a CA made by openssl),
//! [`connect_proxy`] (a counting CONNECT proxy).
//!
//! Facts measured on Debian 12 (skopeo 1.9.3, Distribution 2.8.2) that shaped this code:
//! - `skopeo copy --all` pushes an OCI index with an attestation entry
//!   (`unknown/unknown`, in-toto layer) unchanged: same index digest.
//! - `skopeo copy --all --format v2s2` fails on that index ("Unknown media type during
//!   manifest conversion: application/vnd.in-toto+json") but converts an index of real
//!   images into a Docker manifest list; so the list variant has no attestation.
//! - `--format v2s2` keeps layer blobs byte for byte; config and manifest digests change.
//! - The registry writes an Apache combined access log on stdout (independent of
//!   `log.level`); its own log goes to stderr. Both land in the registry's temp dir.

pub mod chaos_proxy;
pub mod connect_proxy;
pub mod context;
pub mod expected;
pub mod fixtures;
pub mod http;
pub mod http_server;
pub mod hyper_server;
pub mod layout;
pub mod media;
pub mod mock_image;
pub mod netns;
pub mod ns_registry;
pub mod openssl_ca;
pub mod podman;
pub mod python_base;
pub mod registry;
pub mod rootfs;
pub mod rootless;
pub mod snapshot;
pub mod store_fixture;
pub mod tls_server;
pub mod token;
pub mod tools;
pub mod zstd_fixture;

pub use context::{Output, TestContext};
pub use fixtures::{
    FixtureImage, Variant, export_fixture, fixture_layout, push_fixture, push_fixture_as,
    read_registry, tamper_blob,
};
pub use python_base::python_base;
pub use registry::{LoggedRequest, Registry};
pub use tools::{free_port, require, run};
