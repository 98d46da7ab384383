//! The registry API v2 (OCI distribution): the client's calls, authentication and
//! where credentials come from, and how each registry host is reached (`hosts`:
//! HTTPS or the plain-HTTP fallback, certs.d, proxies).

pub mod auth;
pub mod certs_d;
mod client;
mod connect_failure;
pub mod credentials;
mod error;
mod forward_proxy;
mod hosts;
mod limits;
pub mod proxy;
mod send;

pub use auth::{CredentialProvider, ProvidedCredential};
pub use client::{BlobStream, FetchedManifest, RegistryClient, RegistryClientBuilder};
pub use connect_failure::ConnectFailure;
pub use error::{CredentialSourceError, RegistryError, ShownUrl};
pub use limits::{Deadline, SpeedLimit, TransferTimeout};
pub use send::{CallBody, RetryPolicy, jitter, parse_retry_after};

/// Manifests larger than this are refused (the distribution spec suggests 4 MiB).
const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;
