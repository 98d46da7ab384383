//! The registry API v2 (OCI distribution): the client's calls, authentication and
//! where credentials come from.

pub mod auth;
mod client;
pub mod credentials;
mod error;
mod limits;
mod referrers;
mod send;

pub use auth::{CredentialProvider, ProvidedCredential};
pub use client::{BlobStream, FetchedManifest, RegistryClient, RegistryClientBuilder};
pub use error::{CredentialSourceError, RegistryError, ShownUrl};
pub use limits::{Deadline, SpeedLimit, TransferTimeout};
pub use referrers::{Referrers, ReferrersVia};
pub use send::{CallBody, RetryPolicy, jitter, parse_retry_after};

/// Manifests larger than this are refused (the distribution spec suggests 4 MiB).
const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;
