//! Everything OCI: references, digests, manifests, image locations, the registry
//! client, the content-addressed blob store, the OCI image layout, archives,
//! compression, and image building.
//!
//! Nothing here knows about the command line or prints; progress goes through
//! `crate::progress::Reporter`.

pub mod archive;
pub mod build;
pub mod compress;
pub mod copy;
pub mod digest;
pub mod export;
pub mod image_config;
pub mod inspect;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod parallel;
pub mod parse_error;
pub mod publish;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod serve;
pub mod source;
pub mod store;
pub mod temp;
