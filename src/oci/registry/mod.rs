//! The registry API v2 (OCI distribution): the client's calls, authentication,
//! where credentials come from, how each registry host is reached (`hosts`: HTTPS
//! or the plain-HTTP fallback, certs.d, proxies), and where an image really is
//! (registries.conf's rewrites and mirrors).

pub mod auth;
pub mod certs_d;
mod client;
mod connect_failure;
pub mod credentials;
mod error;
pub mod exchange;
mod forward_proxy;
mod hosts;
mod limits;
pub mod mirrors;
pub mod proxy;
mod referrers;
pub mod registries_conf;
mod send;

pub use auth::{CredentialProvider, ProvidedCredential};
pub use client::{BlobStream, FetchedManifest, RegistryClient, RegistryClientBuilder};
pub use connect_failure::ConnectFailure;
pub use error::{BadRewrite, CredentialSourceError, RegistryError, ShownUrl};
pub use exchange::{BodyEnd, Exchange, ExchangeHook, Outcome, Then};
pub use limits::{Deadline, SpeedLimit, TransferTimeout};
pub use mirrors::PullEndpoints;
pub use referrers::{Referrers, ReferrersVia};
pub use registries_conf::{Endpoint, RegistriesConf, RegistriesConfError};
pub use send::{CallBody, RetryPolicy, jitter, parse_retry_after};

/// Manifests larger than this are refused (the distribution spec suggests 4 MiB).
const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;
