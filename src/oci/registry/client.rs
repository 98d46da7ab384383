//! The registry client: Registry API v2 / OCI distribution over ureq (blocking).
//!
//! One `send` path does what every request needs: the cached authorisation for
//! its (host, scope), the 401 challenge and token dance (Bearer with
//! realm/service/scope, or Basic), retries with backoff on 408/429/5xx and
//! broken connections honouring `Retry-After`, and redirects followed by hand so
//! that `Authorization` never reaches another host. Manifests come back whole and
//! verified; blobs come back as a stream for the caller to verify as it stores.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use ureq::Body;

use crate::oci::digest::Digest;
use crate::oci::manifest::ACCEPT_MANIFESTS;
use crate::oci::reference::{ImageReference, TlsMode};
use crate::oci::registry::auth::{self, AuthCache, Authorization, Challenge, Credential, Secret};

/// Manifests larger than this are refused (the distribution spec suggests 4 MiB).
const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;
const MAX_REDIRECTS: usize = 5;

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

/// How many times and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32) -> Duration {
        self.base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay)
    }
}

/// A credential and where it came from (named in errors, never its value).
#[derive(Debug, Clone)]
pub struct ProvidedCredential {
    pub credential: Credential,
    pub source: String,
}

/// Why a credential source could not answer (a malformed file, a failing helper).
pub type CredentialSourceError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies the credential for (registry, repository): `None` is anonymous.
pub type CredentialProvider = Arc<
    dyn Fn(&str, &str) -> Result<Option<ProvidedCredential>, CredentialSourceError> + Send + Sync,
>;

/// Builds a `RegistryClient`.
pub struct RegistryClientBuilder {
    tls: TlsMode,
    retry: RetryPolicy,
    credentials: CredentialProvider,
}

impl Default for RegistryClientBuilder {
    fn default() -> Self {
        RegistryClientBuilder {
            tls: TlsMode::Auto,
            retry: RetryPolicy::default(),
            credentials: Arc::new(|_, _| Ok(None)),
        }
    }
}

impl RegistryClientBuilder {
    pub fn tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
    pub fn credentials(mut self, provider: CredentialProvider) -> Self {
        self.credentials = provider;
        self
    }
    pub fn build(self) -> RegistryClient {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .disable_verification(self.tls == TlsMode::Insecure)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .user_agent(concat!("ocibench/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(16)
            .build()
            .into();
        RegistryClient {
            agent,
            tls: self.tls,
            retry: self.retry,
            credentials: self.credentials,
            auth: AuthCache::default(),
            sources: Default::default(),
        }
    }
}

/// A registry API client shared by all threads of a pull or push.
pub struct RegistryClient {
    agent: ureq::Agent,
    tls: TlsMode,
    retry: RetryPolicy,
    credentials: CredentialProvider,
    auth: AuthCache,
    /// Per host: where the credential last presented came from, for error messages.
    sources: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// A manifest as served: bytes, content type and their digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// A blob body being streamed.
pub struct BlobStream {
    pub reader: Box<dyn Read + Send>,
    pub content_length: Option<u64>,
}

/// A request body that can be produced again for a retry.
#[derive(Clone)]
pub enum CallBody {
    Empty,
    Bytes(Arc<[u8]>),
    /// `len` bytes of a file from `offset`, streamed; `progress` is told of each read.
    File {
        path: std::path::PathBuf,
        offset: u64,
        len: u64,
    },
}

/// The parts of a request that `send` may repeat (retries, re-auth, redirects).
struct Call<'a> {
    image: &'a ImageReference,
    /// Token scopes, e.g. `repository:a:pull,push` (the first is the image's own).
    scopes: Vec<String>,
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: CallBody,
    /// Told of each body chunk sent (upload progress).
    on_send: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl<'a> Call<'a> {
    fn get(image: &'a ImageReference, url: String) -> Self {
        Call {
            image,
            scopes: vec![format!("repository:{}:pull", image.repository())],
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: CallBody::Empty,
            on_send: None,
        }
    }
}

/// A reader that reports how much has been read.
struct Counting<'a, R> {
    inner: R,
    on_read: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(f) = self.on_read {
            f(n as u64);
        }
        Ok(n)
    }
}

impl RegistryClient {
    pub fn builder() -> RegistryClientBuilder {
        RegistryClientBuilder::default()
    }

    fn url(&self, image: &ImageReference, tail: &str) -> String {
        format!(
            "{}/v2/{}/{}",
            image.base_url(self.tls),
            image.repository(),
            tail
        )
    }

    /// GETs a manifest by tag or digest and verifies it when the digest is known
    /// (asked by digest, or announced in `Docker-Content-Digest`).
    pub fn fetch_manifest(
        &self,
        image: &ImageReference,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = self.url(image, &format!("manifests/{reference}"));
        let mut call = Call::get(image, url.clone());
        call.headers.push(("Accept", ACCEPT_MANIFESTS.to_string()));
        let resp = self.send(call)?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            let (code, detail) = error_detail(resp);
            // Registries answer MANIFEST_UNKNOWN for a missing repository too; the tag
            // list tells the two apart and names the tags that do exist.
            let tags = match code.as_deref() {
                Some("NAME_UNKNOWN") => None,
                _ => self.list_tags(image).ok().flatten(),
            };
            return Err(match tags {
                None => RegistryError::NotFound {
                    what: "repository",
                    reference: format!("{}/{}", image.registry(), image.repository()),
                    detail: if code.as_deref() == Some("NAME_UNKNOWN") {
                        detail
                    } else {
                        String::new()
                    },
                },
                Some(tags) => RegistryError::NotFound {
                    what: "manifest",
                    reference: image.to_string(),
                    detail: if tags.is_empty() {
                        "the repository has no tags".to_string()
                    } else {
                        format!("tags: {}", tags.join(", "))
                    },
                },
            });
        }
        let resp = self.check_status(image, "GET", &url, resp)?;
        let media_type = header(&resp, "content-type").unwrap_or_default();
        let announced = header(&resp, "docker-content-digest");
        let bytes = resp
            .into_body()
            .into_with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => RegistryError::ManifestTooLarge {
                    host: image.api_host().to_string(),
                },
                other => RegistryError::Body {
                    url: url.clone(),
                    source: std::io::Error::other(other),
                },
            })?;
        let digest = Digest::of(&bytes);
        let expected = reference
            .parse::<Digest>()
            .ok()
            .map(|d| d.to_string())
            .or(announced.filter(|a| a.starts_with("sha256:")));
        if let Some(expected) = expected
            && expected != digest.to_string()
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {reference}"),
                host: image.api_host().to_string(),
                expected,
                actual: digest.to_string(),
            });
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The repository's tags (the first 20), or `None` when the repository is unknown.
    pub fn list_tags(&self, image: &ImageReference) -> Result<Option<Vec<String>>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let url = self.url(image, "tags/list?n=20");
        let resp = self.send(Call::get(image, url.clone()))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.check_status(image, "GET", &url, resp)?;
        let tags: Tags = resp
            .into_body()
            .into_with_config()
            .limit(1024 * 1024)
            .read_json()
            .map_err(|e| RegistryError::Body {
                url,
                source: std::io::Error::other(e),
            })?;
        Ok(Some(tags.tags.unwrap_or_default()))
    }

    /// Opens a blob for streaming. The caller verifies digest and size while storing.
    pub fn open_blob(
        &self,
        image: &ImageReference,
        digest: &Digest,
    ) -> Result<BlobStream, RegistryError> {
        let url = self.url(image, &format!("blobs/{digest}"));
        let resp = self.send(Call::get(image, url.clone()))?;
        if resp.status() == StatusCode::NOT_FOUND {
            let (_, detail) = error_detail(resp);
            return Err(RegistryError::NotFound {
                what: "blob",
                reference: format!("{}/{}@{digest}", image.registry(), image.repository()),
                detail,
            });
        }
        let resp = self.check_status(image, "GET", &url, resp)?;
        let content_length = header(&resp, "content-length").and_then(|v| v.parse().ok());
        Ok(BlobStream {
            reader: Box::new(resp.into_body().into_reader()),
            content_length,
        })
    }

    fn push_scopes(image: &ImageReference) -> Vec<String> {
        vec![format!("repository:{}:pull,push", image.repository())]
    }

    /// Whether the repository already has the blob (HEAD). `Some(size)` when it does.
    pub fn blob_exists(
        &self,
        image: &ImageReference,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let url = self.url(image, &format!("blobs/{digest}"));
        let mut call = Call::get(image, url.clone());
        call.method = Method::HEAD;
        call.scopes = Self::push_scopes(image);
        let resp = self.send(call)?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(
                header(&resp, "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            _ => self.check_status(image, "HEAD", &url, resp).map(|_| None),
        }
    }

    /// Asks the registry to mount `digest` from repository `from` (same registry).
    /// Returns true when mounted; false when the registry declined (it then opened
    /// an upload session, which is simply abandoned).
    pub fn mount_blob(
        &self,
        image: &ImageReference,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let mut u = url::Url::parse(&self.url(image, "blobs/uploads/")).map_err(|e| {
            RegistryError::BadRedirect {
                url: image.to_string(),
                detail: e.to_string(),
            }
        })?;
        u.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let mut call = Call::get(image, u.to_string());
        call.method = Method::POST;
        call.scopes = Self::push_scopes(image);
        call.scopes.push(format!("repository:{from}:pull"));
        let resp = self.send(call)?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => Ok(false),
            _ => self
                .check_status(image, "POST", u.as_str(), resp)
                .map(|_| false),
        }
    }

    /// Uploads the blob stored at `path` (`size` bytes): POST to open a session, then a
    /// monolithic PUT for blobs up to `chunk`, or PATCHes of `chunk` bytes then a final
    /// PUT for larger ones. Relative and absolute `Location`s are followed, queries kept.
    pub fn upload_blob(
        &self,
        image: &ImageReference,
        digest: &Digest,
        path: &std::path::Path,
        size: u64,
        chunk: u64,
        on_send: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let start_url = self.url(image, "blobs/uploads/");
        let mut call = Call::get(image, start_url.clone());
        call.method = Method::POST;
        call.scopes = Self::push_scopes(image);
        let resp = self.send(call)?;
        let resp = self.check_status(image, "POST", &start_url, resp)?;
        let mut location = self.next_location(&start_url, &resp)?;
        let file_body = |offset: u64, len: u64| CallBody::File {
            path: path.to_path_buf(),
            offset,
            len,
        };
        let mut offset = 0u64;
        if size > chunk {
            while offset < size {
                let len = chunk.min(size - offset);
                let mut call = Call::get(image, location.clone());
                call.method = Method::PATCH;
                call.scopes = Self::push_scopes(image);
                call.headers
                    .push(("Content-Type", "application/octet-stream".into()));
                call.headers
                    .push(("Content-Range", format!("{}-{}", offset, offset + len - 1)));
                call.body = file_body(offset, len);
                call.on_send = Some(on_send);
                let resp = self.send(call)?;
                let resp = self.check_status(image, "PATCH", &location, resp)?;
                location = self.next_location(&location, &resp)?;
                offset += len;
            }
        }
        let mut put_url = url::Url::parse(&location).map_err(|e| RegistryError::BadRedirect {
            url: location.clone(),
            detail: e.to_string(),
        })?;
        put_url
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut call = Call::get(image, put_url.to_string());
        call.method = Method::PUT;
        call.scopes = Self::push_scopes(image);
        call.headers
            .push(("Content-Type", "application/octet-stream".into()));
        if offset < size {
            call.body = file_body(0, size);
            call.on_send = Some(on_send);
        }
        let resp = self.send(call)?;
        self.check_status(image, "PUT", put_url.as_str(), resp)?;
        Ok(())
    }

    fn next_location(
        &self,
        base: &str,
        resp: &http::Response<Body>,
    ) -> Result<String, RegistryError> {
        let loc = header(resp, "location").ok_or_else(|| RegistryError::BadRedirect {
            url: base.to_string(),
            detail: "upload answer without Location".into(),
        })?;
        resolve_location(base, &loc)
    }

    /// PUTs a manifest under `reference` (a tag or its digest) with its exact media
    /// type; returns the digest the registry reports (checked against ours).
    pub fn put_manifest(
        &self,
        image: &ImageReference,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let url = self.url(image, &format!("manifests/{reference}"));
        let mut call = Call::get(image, url.clone());
        call.method = Method::PUT;
        call.scopes = Self::push_scopes(image);
        call.headers.push(("Content-Type", media_type.to_string()));
        call.body = CallBody::Bytes(Arc::from(bytes));
        let resp = self.send(call)?;
        let resp = self.check_status(image, "PUT", &url, resp)?;
        let ours = Digest::of(bytes);
        if let Some(theirs) = header(&resp, "docker-content-digest")
            && theirs != ours.to_string()
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("pushed manifest {reference}"),
                host: image.api_host().to_string(),
                expected: ours.to_string(),
                actual: theirs,
            });
        }
        Ok(ours)
    }

    /// Turns a non-success status into an error, keeping the registry's own message.
    fn check_status(
        &self,
        image: &ImageReference,
        method: &str,
        url: &str,
        resp: http::Response<Body>,
    ) -> Result<http::Response<Body>, RegistryError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let (_, detail) = error_detail(resp);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let credentials = self
                .sources
                .lock()
                .expect("sources lock")
                .get(image.api_host())
                .cloned()
                .unwrap_or_else(|| "none (anonymous)".to_string());
            return Err(RegistryError::Unauthorized {
                host: image.api_host().to_string(),
                repository: image.repository().to_string(),
                detail: if detail.is_empty() {
                    format!("HTTP {}", status.as_u16())
                } else {
                    detail
                },
                credentials,
            });
        }
        Err(RegistryError::Status {
            host: image.api_host().to_string(),
            method: method.to_string(),
            url: url.to_string(),
            status: status.as_u16(),
            detail: if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            },
        })
    }

    /// Sends a request with authentication, retries and safe redirects.
    fn send(&self, call: Call<'_>) -> Result<http::Response<Body>, RegistryError> {
        let host = call.image.api_host().to_string();
        let scope = call.scopes.join(" ");
        let mut url = call.url.clone();
        let mut attempt = 0u32;
        let mut authenticated_once = false;
        let mut redirects = 0usize;
        let mut foreign = false; // after a cross-host redirect: no Authorization
        loop {
            let auth = if foreign {
                None
            } else {
                self.auth.get(&host, &scope)
            };
            let mut req = Request::builder().method(call.method.clone()).uri(&url);
            for (k, v) in &call.headers {
                req = req.header(*k, v);
            }
            if let Some(a) = &auth {
                req = req.header("Authorization", a.header());
            }
            let result = match &call.body {
                CallBody::Empty => req.body(()).map(|r| self.agent.run(r)),
                CallBody::Bytes(b) => req.body(b.to_vec()).map(|r| self.agent.run(r)),
                CallBody::File { path, offset, len } => {
                    let mut f =
                        std::fs::File::open(path).map_err(|source| RegistryError::Body {
                            url: url.clone(),
                            source,
                        })?;
                    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(*offset)).map_err(
                        |source| RegistryError::Body {
                            url: url.clone(),
                            source,
                        },
                    )?;
                    // ureq reads straight into its 128 KiB output buffer (no BufReader
                    // copy), and the explicit length keeps the body sized: a reader alone
                    // would go out with `Transfer-Encoding: chunked`.
                    let mut reader = Counting {
                        inner: f.take(*len),
                        on_read: call.on_send,
                    };
                    req.header("Content-Length", len.to_string())
                        .body(ureq::SendBody::from_reader(&mut reader))
                        .map(|r| self.agent.run(r))
                }
            };
            let result = result.map_err(|e| RegistryError::BadRedirect {
                url: url.clone(),
                detail: e.to_string(),
            })?;
            let resp = match result {
                Ok(r) => r,
                Err(e) if attempt + 1 < self.retry.attempts && transient(&e) => {
                    std::thread::sleep(self.retry.delay(attempt));
                    attempt += 1;
                    continue;
                }
                Err(source) => {
                    return Err(RegistryError::Unreachable { host, url, source });
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !foreign && !authenticated_once {
                if let Some(challenge) = header(&resp, "www-authenticate")
                    .map(|h| auth::parse_challenges(&h))
                    .and_then(pick_challenge)
                {
                    authenticated_once = true;
                    self.authenticate(call.image, &host, &call.scopes, &challenge)?;
                    continue;
                }
                return Ok(resp);
            }
            if matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
                && attempt + 1 < self.retry.attempts
            {
                let wait = retry_after(&resp)
                    .unwrap_or_else(|| self.retry.delay(attempt))
                    .min(self.retry.max_delay);
                drop(resp);
                std::thread::sleep(wait);
                attempt += 1;
                continue;
            }
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                redirects += 1;
                let location =
                    header(&resp, "location").ok_or_else(|| RegistryError::BadRedirect {
                        url: url.clone(),
                        detail: format!("HTTP {} without Location", status.as_u16()),
                    })?;
                if redirects > MAX_REDIRECTS {
                    return Err(RegistryError::BadRedirect {
                        url,
                        detail: "too many redirects".into(),
                    });
                }
                let next = resolve_location(&url, &location)?;
                if origin(&next) != origin(&call.url) {
                    foreign = true;
                }
                url = next;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Answers a challenge: fetches a bearer token (anonymously, with Basic
    /// credentials, or by an OAuth2 refresh-token grant) or prepares Basic credentials.
    fn authenticate(
        &self,
        image: &ImageReference,
        host: &str,
        scopes: &[String],
        challenge: &Challenge,
    ) -> Result<(), RegistryError> {
        let scope = scopes.join(" ");
        let scope = scope.as_str();
        let provided =
            (self.credentials)(image.registry(), image.repository()).map_err(|source| {
                RegistryError::Credentials {
                    registry: image.registry().to_string(),
                    source,
                }
            })?;
        let source_name = provided
            .as_ref()
            .map(|p| p.source.clone())
            .unwrap_or_else(|| "none (anonymous)".to_string());
        self.sources
            .lock()
            .expect("sources lock")
            .insert(host.to_string(), source_name.clone());
        let credential = provided.map(|p| p.credential).unwrap_or_default();
        if challenge.scheme == "basic" {
            return match credential.basic_header() {
                Some(h) => {
                    self.auth
                        .put(host, scope, Authorization::Basic(Secret::new(h)));
                    Ok(())
                }
                None => Err(RegistryError::Unauthorized {
                    host: host.to_string(),
                    repository: image.repository().to_string(),
                    detail: "the registry requires a username and password".into(),
                    credentials: source_name,
                }),
            };
        }
        let realm = challenge.param("realm").unwrap_or_default().to_string();
        let mut token_url = url::Url::parse(&realm).map_err(|e| RegistryError::BadRedirect {
            url: realm.clone(),
            detail: format!("bad token realm: {e}"),
        })?;
        let service = challenge.param("service").unwrap_or_default().to_string();
        let req = if let Credential::IdentityToken(refresh) = &credential {
            // OAuth2 refresh-token grant (what `docker login` stores as identitytoken).
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("service", &service)
                .append_pair("client_id", "ocibench")
                .append_pair("refresh_token", refresh.expose());
            for sc in scopes {
                form.append_pair("scope", sc);
            }
            Request::builder()
                .method(Method::POST)
                .uri(token_url.as_str())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form.finish().into_bytes())
        } else {
            {
                let mut q = token_url.query_pairs_mut();
                if !service.is_empty() {
                    q.append_pair("service", &service);
                }
                for sc in scopes {
                    q.append_pair("scope", sc);
                }
            }
            let mut req = Request::builder()
                .method(Method::GET)
                .uri(token_url.as_str());
            if let Some(h) = credential.basic_header() {
                req = req.header("Authorization", h);
            }
            req.body(Vec::new())
        };
        let req = req.expect("token request builds");
        let resp = self
            .agent
            .run(req)
            .map_err(|source| RegistryError::Unreachable {
                host: token_url.host_str().unwrap_or("").to_string(),
                url: realm.clone(),
                source,
            })?;
        if !resp.status().is_success() {
            return Err(RegistryError::TokenRefused {
                realm,
                status: resp.status().as_u16(),
                credentials: source_name,
            });
        }
        let parsed: auth::TokenResponse =
            resp.into_body()
                .read_json()
                .map_err(|e| RegistryError::Body {
                    url: realm.clone(),
                    source: std::io::Error::other(e),
                })?;
        let token = parsed.into_token().ok_or(RegistryError::TokenRefused {
            realm,
            status: 200,
            credentials: source_name,
        })?;
        self.auth.put(host, scope, Authorization::Bearer(token));
        Ok(())
    }
}

/// Bearer is preferred over Basic when a registry offers both.
fn pick_challenge(cs: Vec<Challenge>) -> Option<Challenge> {
    let mut cs = cs;
    cs.sort_by_key(|c| match c.scheme.as_str() {
        "bearer" => 0,
        "basic" => 1,
        _ => 2,
    });
    cs.into_iter()
        .find(|c| c.scheme == "bearer" || c.scheme == "basic")
}

fn header(resp: &http::Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(resp: &http::Response<Body>) -> Option<Duration> {
    let v = header(resp, "retry-after")?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Connection-level failures worth another try.
fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

/// The registry's error code and message (`{"errors":[{"code":..,"message":..}]}`).
fn error_detail(resp: http::Response<Body>) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let body = resp
        .into_body()
        .into_with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) if !e.errors.is_empty() => {
            let code = e.errors[0].code.clone();
            let text = e
                .errors
                .iter()
                .map(|x| {
                    format!(
                        "{}{}",
                        x.code.as_deref().unwrap_or(""),
                        x.message
                            .as_deref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            (code, text)
        }
        _ => (
            None,
            String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        ),
    }
}

fn resolve_location(base: &str, location: &str) -> Result<String, RegistryError> {
    let base_url = url::Url::parse(base).map_err(|e| RegistryError::BadRedirect {
        url: base.to_string(),
        detail: e.to_string(),
    })?;
    base_url
        .join(location)
        .map(|u| u.to_string())
        .map_err(|e| RegistryError::BadRedirect {
            url: base.to_string(),
            detail: format!("bad Location {location:?}: {e}"),
        })
}

/// scheme://host:port of a URL, for same-origin checks.
fn origin(u: &str) -> String {
    url::Url::parse(u)
        .map(|p| p.origin().ascii_serialization())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_relative_and_absolute() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/sha256:x";
        assert_eq!(
            resolve_location(base, "/v2/a/blobs/uploads/u?state=1").unwrap(),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u?state=1"
        );
        assert_eq!(
            resolve_location(base, "http://cdn.local:9/b?sig=z").unwrap(),
            "http://cdn.local:9/b?sig=z"
        );
        assert_ne!(origin("http://a:1/x"), origin("http://a:2/x"));
        assert_eq!(origin("http://a:1/x"), origin("http://a:1/y"));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0), Duration::from_millis(200));
        assert_eq!(p.delay(2), Duration::from_millis(800));
        assert_eq!(p.delay(30), Duration::from_secs(30));
    }

    #[test]
    fn bearer_preferred() {
        let cs = auth::parse_challenges(r#"Basic realm="x", Bearer realm="y""#);
        assert_eq!(pick_challenge(cs).unwrap().scheme, "bearer");
    }
}
