//! `RegistryError`: every way a registry call can fail, in one enum shared by the
//! client, the send loop and the token exchange. It sits apart so that each of
//! those can name it without depending on the others.

use std::fmt;

use super::MAX_MANIFEST_BYTES;
use super::certs_d::CertError;
use super::connect_failure::ConnectFailure;

/// A URL as errors show it: without user info, fragment, or the values of query
/// parameters that are not the registry API's own. A pre-signed upload URL's
/// signature, or a token realm's, is a credential; `digest=` and `mount=` help.
/// Redacted when made, so neither `Display` nor `Debug` can leak.
#[derive(Clone, PartialEq, Eq)]
pub struct ShownUrl(String);

/// Query parameters of the registry API, shown as they are.
const PLAIN_QUERY: &[&str] = &[
    "digest",
    "mount",
    "from",
    "n",
    "last",
    "service",
    "scope",
    "artifactType",
];

impl ShownUrl {
    pub fn new(raw: &str) -> Self {
        let Ok(mut u) = url::Url::parse(raw) else {
            // Not a URL: shown only up to where a query or user info could start.
            let cut = raw.find(['?', '@', '#']).unwrap_or(raw.len());
            return ShownUrl(raw[..cut].to_string());
        };
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_fragment(None);
        if u.query().is_some() {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if PLAIN_QUERY.contains(&k.as_ref()) {
                        v.into_owned()
                    } else {
                        "redacted".to_string()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        ShownUrl(u.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ShownUrl {
    fn from(s: &str) -> Self {
        ShownUrl::new(s)
    }
}

impl From<String> for ShownUrl {
    fn from(s: String) -> Self {
        ShownUrl::new(&s)
    }
}

impl From<&String> for ShownUrl {
    fn from(s: &String) -> Self {
        ShownUrl::new(s)
    }
}

impl std::ops::Deref for ShownUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShownUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShownUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The message names the cause when it is a known one ([`ConnectFailure::of`]
    /// reads it out of `source` when asked, so the enum stays small).
    #[error("cannot reach registry {host} ({url}){}", ConnectFailure::of(source).map(|c| format!(": {c}")).unwrap_or_default())]
    Unreachable {
        host: String,
        url: ShownUrl,
        #[source]
        source: ureq::Error,
    },
    #[error("the certificates for registry {host} cannot be used")]
    Certificates {
        host: String,
        #[source]
        source: Box<CertError>,
    },
    #[error("bad proxy {proxy}: {detail}")]
    BadProxy { proxy: String, detail: String },
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
        realm: ShownUrl,
        status: u16,
        credentials: String,
    },
    #[error("registry {host} (HTTPS) sent its token requests to {realm}, over plain HTTP: refused")]
    InsecureRealm { host: String, realm: ShownUrl },
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
        url: ShownUrl,
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
    #[error("the referrers of {subject} from {host} are not an OCI image index")]
    BadReferrers {
        host: String,
        subject: String,
        #[source]
        source: Box<crate::oci::manifest::ManifestError>,
    },
    #[error("manifest from {host} is larger than {MAX_MANIFEST_BYTES} bytes")]
    ManifestTooLarge { host: String },
    #[error("bad redirect from {url}: {detail}")]
    BadRedirect { url: ShownUrl, detail: String },
    /// registries.conf marks the name's registry `blocked = true`.
    #[error("{reference} is blocked: registry {prefix:?} has blocked = true in {}", file.display())]
    Blocked {
        reference: String,
        prefix: String,
        file: std::path::PathBuf,
    },
    /// registries.conf rewrote the name into something that is not a reference.
    #[error("{0}")]
    BadRewrite(Box<BadRewrite>),
    #[error("reading the response from {url}")]
    Body {
        url: ShownUrl,
        #[source]
        source: std::io::Error,
    },
}

/// A registries.conf table whose location turns a name into a non-reference
/// (boxed in `RegistryError`: errors stay small).
#[derive(Debug, thiserror::Error)]
#[error("registry {prefix:?} in {} rewrites {reference} to {rewritten}: {reason}", file.display())]
pub struct BadRewrite {
    pub reference: String,
    pub rewritten: String,
    pub prefix: String,
    pub file: std::path::PathBuf,
    pub reason: String,
}

/// Why a credential source could not answer (a malformed file, a failing helper).
pub type CredentialSourceError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::ShownUrl;

    #[test]
    fn urls_in_errors_lose_their_secrets_not_their_digest() {
        let u = ShownUrl::new(
            "https://user:pw@s3.example/up/1?X-Amz-Signature=abc&digest=sha256%3Aff&_state=st#frag",
        );
        assert_eq!(
            u.as_str(),
            "https://s3.example/up/1?X-Amz-Signature=redacted&digest=sha256%3Aff&_state=redacted"
        );
        assert_eq!(format!("{u:?}"), format!("{:?}", u.as_str()));
        let plain = "http://127.0.0.1:5000/v2/a/blobs/sha256:ff";
        assert_eq!(ShownUrl::new(plain).as_str(), plain);
        assert_eq!(ShownUrl::new("not a url?token=x").as_str(), "not a url");
    }
}
#[cfg(test)]
#[test]
fn zz_sizes() {
    eprintln!(
        "RegistryError {} ureq::Error {} ShownUrl {}",
        std::mem::size_of::<RegistryError>(),
        std::mem::size_of::<ureq::Error>(),
        std::mem::size_of::<ShownUrl>()
    );
    eprintln!(
        "BuildError {}",
        std::mem::size_of::<crate::oci::build::BuildError>()
    );
}
