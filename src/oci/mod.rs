//! Everything OCI: references, digests, manifests, the registry client, the
//! content-addressed blob store, layer building and image formats.
//!
//! Nothing here knows about the command line or prints; progress goes through
//! `crate::progress::Reporter`.

pub mod digest;
pub mod layer;
pub mod pgzip;
pub mod store;
