//! `RegistryError`: every way a registry call can fail, in one enum shared by the
//! client, the send loop and the token exchange. It sits apart so that each of
//! those can name it without depending on the others.

use super::MAX_MANIFEST_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {host} ({url})")]
    Unreachable {
        host: String,
        url: String,
        #[source]
        source: ureq::Error,
    },
    #[error("{what} not found: {reference}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    NotFound {
        what: &'static str,
        reference: String,
        detail: String,
    },
    #[error(
        "registry {host} refused access to {repository}: {detail} (credentials: {credentials})"
    )]
    Unauthorized {
        host: String,
        repository: String,
        detail: String,
        /// Where the credential came from, or "none (anonymous)".
        credentials: String,
    },
    #[error(
        "token server {realm} refused the credentials: HTTP {status} (credentials: {credentials})"
    )]
    TokenRefused {
        realm: String,
        status: u16,
        credentials: String,
    },
    #[error("registry {host} (HTTPS) sent its token requests to {realm}, over plain HTTP: refused")]
    InsecureRealm { host: String, realm: String },
    #[error("timed out after {} talking to registry {host}", humantime::format_duration(*after))]
    TimedOut {
        host: String,
        after: std::time::Duration,
    },
    #[error("cannot get credentials for {registry}")]
    Credentials {
        registry: String,
        #[source]
        source: CredentialSourceError,
    },
    #[error("registry {host} answered {status} for {method} {url}{detail}")]
    Status {
        host: String,
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{what} from {host} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        host: String,
        expected: String,
        actual: String,
    },
    #[error("manifest from {host} is larger than {MAX_MANIFEST_BYTES} bytes")]
    ManifestTooLarge { host: String },
    #[error("bad redirect from {url}: {detail}")]
    BadRedirect { url: String, detail: String },
    #[error("reading the response from {url}")]
    Body {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why a credential source could not answer (a malformed file, a failing helper).
pub type CredentialSourceError = Box<dyn std::error::Error + Send + Sync>;
