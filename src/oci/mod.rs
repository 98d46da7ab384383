//! Everything OCI: references, digests, manifests, the registry client, the
//! content-addressed blob store, layer building and image formats.
//!
//! Nothing here knows about the command line or prints; progress goes through
//! `crate::progress::Reporter`.

pub mod auth;
pub mod config;
pub mod credentials;
pub mod digest;
pub mod export;
pub mod export_archive;
pub mod export_dest;
pub mod image;
pub mod inflate;
pub mod layer;
pub mod layer_tar;
pub mod layer_walk;
pub mod manifest;
pub mod nix;
pub mod parallel;
pub mod pgzip;
pub mod push;
pub mod reference;
pub mod registry;
pub mod source;
pub mod store;
pub mod transport;
