//! Support for ocibench's integration tests: a real Distribution registry, fixture
//! images built by independent tools (tar, gzip, sha256sum, skopeo), and a sealed
//! `TestContext` to run the `ocibench` binary.
//!
//! Use from `tests/NAME.rs` with `mod support;`:
//!
//! ```ignore
//! mod support;
//! use support::{Registry, TestContext, Variant, push_fixture};
//!
//! #[test]
//! fn size_reports_fixture_sizes() {
//!     let registry = Registry::start();
//!     let image = push_fixture(&registry, "busybox", "1", Variant::Oci);
//!     let ctx = TestContext::new();
//!     let out = ctx.run(["size", &image.reference, "--json"]).success();
//!     assert_eq!(out.json()["compressed_bytes"], image.compressed_bytes());
//! }
//! ```
//!
//! Fixtures are never made with ocibench's own code, so they can judge it.
#![allow(dead_code, unused_imports)]

pub mod context;
pub mod expected;
pub mod fixtures;
pub mod http;
pub mod layout;
pub mod media;
pub mod registry;
pub mod rootfs;
pub mod tools;

pub use context::{Output, TestContext};
pub use fixtures::{
    FixtureImage, FixtureIndex, FixtureLayer, FixtureLayout, Variant, export_fixture,
    fixture_layout, push_fixture, read_layout, read_registry, tamper_blob,
};
pub use registry::{LogMark, LoggedRequest, Registry};
pub use tools::{free_port, require, run};
