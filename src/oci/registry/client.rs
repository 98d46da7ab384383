//! The registry client: the Registry API v2 / OCI distribution calls over ureq
//! (blocking). Each call describes its request and leaves delivery (auth, retries,
//! redirects) to `send`; manifests come back whole and verified, blobs as a stream
//! for the caller to verify as it stores.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use ureq::Body;

use super::auth::{Authenticator, CredentialProvider};
use super::certs_d::CertDirs;
use super::exchange::{ExchangeHook, Tracer};
use super::hosts::{HostSettings, Hosts};
use super::limits::{Deadline, SpeedLimit, TransferTimeout, Watched};
use super::proxy::ProxyEnv;
use super::send::{
    self, Call, CallBody, RetryPolicy, Transport, error_detail, header, resolve_location,
};
use super::{MAX_MANIFEST_BYTES, RegistriesConf, RegistryError};
use crate::oci::digest::Digest;
use crate::oci::manifest::ACCEPT_MANIFESTS;
use crate::oci::reference::{ImageReference, TlsMode};

/// Builds a `RegistryClient`.
pub struct RegistryClientBuilder {
    tls: TlsMode,
    retry: RetryPolicy,
    credentials: CredentialProvider,
    speed: Option<SpeedLimit>,
    deadline: Deadline,
    trace: Option<ExchangeHook>,
    registries: Arc<RegistriesConf>,
    insecure: HashSet<String>,
    certs: CertDirs,
    proxies: ProxyEnv,
}

impl Default for RegistryClientBuilder {
    fn default() -> Self {
        RegistryClientBuilder {
            tls: TlsMode::Auto,
            retry: RetryPolicy::default(),
            credentials: Arc::new(|_, _| Ok(None)),
            speed: Some(SpeedLimit::default()),
            deadline: Deadline::default(),
            trace: None,
            registries: Arc::new(RegistriesConf::default()),
            insecure: HashSet::new(),
            certs: CertDirs::from_env(None),
            proxies: ProxyEnv::from_env(),
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
    /// The low-speed limit (`None`: off). Also the longest wait for any one read.
    pub fn speed_limit(mut self, speed: Option<SpeedLimit>) -> Self {
        self.speed = speed.filter(|s| s.bytes_per_sec > 0 && !s.over.is_zero());
        self
    }
    /// When every call of this client stops: nothing is sent or retried after it.
    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }
    /// Tells `hook` of every HTTP exchange (`-v`): method, redacted URL, status,
    /// bytes, time, retry number. Called on the thread of the exchange, once its
    /// response body has been read (or dropped).
    pub fn on_exchange(mut self, hook: ExchangeHook) -> Self {
        self.trace = Some(hook);
        self
    }
    /// The registries.conf that pulls and pushes resolve names through (by
    /// default, none: every name is its own location).
    pub fn registries_conf(mut self, conf: Arc<RegistriesConf>) -> Self {
        self.registries = conf;
        self
    }
    /// Hosts spoken to as with `--tls-verify=false` (no certificate checks, plain
    /// HTTP when they do not speak TLS), as `host[:port]`: registries.conf's
    /// `insecure = true`.
    pub fn insecure_hosts(mut self, hosts: impl IntoIterator<Item = String>) -> Self {
        self.insecure
            .extend(hosts.into_iter().map(|h| h.to_ascii_lowercase()));
        self
    }
    /// Where certificates come from: `--cert-dir`, or the certs.d directories.
    pub fn cert_dirs(mut self, dirs: CertDirs) -> Self {
        self.certs = dirs;
        self
    }
    /// The proxy settings (by default, the process environment's).
    pub fn proxies(mut self, proxies: ProxyEnv) -> Self {
        self.proxies = proxies;
        self
    }
    pub fn build(self) -> RegistryClient {
        // One read or write (response headers included) may wait two low-speed
        // windows: with the default 30 s window, the minute it always had (a
        // registry finishing a large upload may think that long before it answers).
        // Without a low-speed limit, also a minute.
        let per_io = self
            .speed
            .map_or(Duration::from_secs(60), |s| s.over.saturating_mul(2));
        let tracer = self.trace.map(Tracer::new);
        RegistryClient {
            registries: self.registries,
            transport: Transport {
                hosts: Hosts::new(HostSettings {
                    tls: self.tls,
                    insecure: self.insecure,
                    certs: self.certs,
                    proxies: self.proxies,
                    per_io,
                }),
                retry: self.retry,
                auth: Authenticator::new(self.credentials).traced(tracer.clone()),
                deadline: self.deadline,
                speed: self.speed,
                trace: tracer,
            },
        }
    }
}

/// A registry API client shared by all threads of a pull or push.
pub struct RegistryClient {
    registries: Arc<RegistriesConf>,
    pub(super) transport: Transport,
}

/// One page of a tag list: its tags, and the next page's address (`Link`).
type TagsPage = (Vec<String>, Option<String>);

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

impl RegistryClient {
    pub fn builder() -> RegistryClientBuilder {
        RegistryClientBuilder::default()
    }

    /// The registries.conf names are resolved through.
    pub fn registries_conf(&self) -> &RegistriesConf {
        &self.registries
    }

    pub(super) fn url(&self, image: &ImageReference, tail: &str) -> String {
        format!(
            "{}/v2/{}/{}",
            self.transport.hosts.base_url(image),
            image.repository(),
            tail
        )
    }

    /// GETs a manifest by tag or digest and verifies it when the digest is known
    /// (asked by digest, or announced in `Docker-Content-Digest`). A body cut short
    /// (a dropped connection, as the chaos suite injects) or arriving below the
    /// low-speed limit is asked for again, as blobs are; not after `--timeout`.
    pub fn fetch_manifest(
        &self,
        image: &ImageReference,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let retry = &self.transport.retry;
        let mut attempt = 0;
        loop {
            match self.fetch_manifest_once(image, reference) {
                Err(RegistryError::Body { source, .. })
                    if attempt + 1 < retry.attempts
                        && !matches!(
                            TransferTimeout::of(&source),
                            Some(TransferTimeout::Deadline { .. })
                        ) =>
                {
                    std::thread::sleep(retry.delay(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn fetch_manifest_once(
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
            let (code, detail) = error_detail(&self.transport, resp);
            // Asked by digest: the tags are beside the point.
            if code.as_deref() != Some("NAME_UNKNOWN") && reference.parse::<Digest>().is_ok() {
                return Err(RegistryError::NotFound {
                    what: "manifest digest",
                    reference: format!("{}/{}@{reference}", image.registry(), image.repository()),
                    detail: "the repository has no manifest with this digest".into(),
                });
            }
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
        let bytes = self
            .transport
            .read_capped(resp.into_body(), MAX_MANIFEST_BYTES)
            .map_err(|source| RegistryError::Body {
                url: url.clone().into(),
                source,
            })?
            .ok_or_else(|| RegistryError::ManifestTooLarge {
                host: image.api_host().to_string(),
            })?;
        // A manifest asked for by digest is hashed with that digest's algorithm
        // (sha512 included); by tag, with sha256, checked against the registry's
        // announced digest when it uses sha256 too.
        let pinned = reference.parse::<Digest>().ok();
        let digest = Digest::of_with(
            pinned.as_ref().map_or(Default::default(), Digest::alg),
            &bytes,
        );
        let expected = pinned
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

    /// The digest the registry names for a manifest (HEAD, `Docker-Content-Digest`),
    /// without fetching it: Docker Hub counts manifest GETs against its pull limit,
    /// not HEADs. `None` when the answer carries no (sha256) digest.
    pub fn head_manifest(
        &self,
        image: &ImageReference,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let url = self.url(image, &format!("manifests/{reference}"));
        let mut call = Call::get(image, url.clone());
        call.method = Method::HEAD;
        // The same Accept as the GET, so the digest is of the document a GET gets.
        call.headers.push(("Accept", ACCEPT_MANIFESTS.to_string()));
        let resp = self.send(call)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                what: "manifest",
                reference: format!("{}/{}:{reference}", image.registry(), image.repository()),
                detail: String::new(),
            });
        }
        let resp = self.check_status(image, "HEAD", &url, resp)?;
        Ok(header(&resp, "docker-content-digest")
            .filter(|d| d.starts_with("sha256:"))
            .and_then(|d| d.parse().ok()))
    }

    /// The repository's tags (the first 20), or `None` when the repository is unknown.
    pub fn list_tags(&self, image: &ImageReference) -> Result<Option<Vec<String>>, RegistryError> {
        let url = self.url(image, "tags/list?n=20");
        Ok(self
            .tags_page(image, &url, 1024 * 1024)?
            .map(|(tags, _)| tags))
    }

    /// Every tag of the repository, page after page (`Link: <...>; rel="next"`, as
    /// the distribution spec paginates), or `None` when the repository is unknown.
    pub fn all_tags(&self, image: &ImageReference) -> Result<Option<Vec<String>>, RegistryError> {
        // A registry paging forever is cut off here.
        const MAX_PAGES: usize = 10_000;
        let mut url = self.url(image, "tags/list");
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let Some((tags, next)) = self.tags_page(image, &url, 16 * 1024 * 1024)? else {
                return Ok(None);
            };
            all.extend(tags);
            match next {
                Some(n) => url = resolve_location(&url, &n)?,
                None => break,
            }
        }
        Ok(Some(all))
    }

    /// One page of a tag list (its body capped at `cap` bytes) and the next page's
    /// address; `None` when the repository is unknown.
    fn tags_page(
        &self,
        image: &ImageReference,
        url: &str,
        cap: u64,
    ) -> Result<Option<TagsPage>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let resp = self.send(Call::get(image, url.to_string()))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.check_status(image, "GET", url, resp)?;
        let next = header(&resp, "link").and_then(|l| next_link(&l));
        let body = self
            .transport
            .read_capped(resp.into_body(), cap)
            .and_then(|b| {
                b.ok_or_else(|| std::io::Error::other(format!("tag list over {cap} bytes")))
            })
            .map_err(|source| RegistryError::Body {
                url: url.into(),
                source,
            })?;
        let tags: Tags = serde_json::from_slice(&body).map_err(|e| RegistryError::Body {
            url: url.into(),
            source: std::io::Error::other(e),
        })?;
        Ok(Some((tags.tags.unwrap_or_default(), next)))
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
            let (_, detail) = error_detail(&self.transport, resp);
            return Err(RegistryError::NotFound {
                what: "blob",
                reference: format!("{}/{}@{digest}", image.registry(), image.repository()),
                detail,
            });
        }
        let resp = self.check_status(image, "GET", &url, resp)?;
        let content_length = header(&resp, "content-length").and_then(|v| v.parse().ok());
        // Watched: below the low-speed limit or past the deadline, a read fails
        // with a `TransferTimeout` saying which (the first is worth retrying).
        Ok(BlobStream {
            reader: Box::new(Watched::new(
                resp.into_body().into_reader(),
                self.transport.speed,
                self.transport.deadline,
            )),
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
                url: image.to_string().into(),
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
            url: location.clone().into(),
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
            url: base.to_string().into(),
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
        // Pushed by a sha512 digest, the manifest is named by sha512; a registry
        // announcing another algorithm's digest is not contradicting it.
        let algorithm = reference
            .parse::<Digest>()
            .map_or(Default::default(), |d| d.alg());
        let ours = Digest::of_with(algorithm, bytes);
        if let Some(theirs) = header(&resp, "docker-content-digest")
            && theirs.starts_with(&format!("{}:", ours.algorithm()))
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
    pub(super) fn check_status(
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
        let (_, detail) = error_detail(&self.transport, resp);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let credentials = self.transport.auth.source_of(image.api_host());
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
        // An upload session may live on another host (its Location): name that one.
        let answered_by = url::Url::parse(url)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .filter(|h| h != image.api_host() && !h.starts_with(&format!("{}:", image.api_host())))
            .unwrap_or_else(|| image.api_host().to_string());
        Err(RegistryError::Status {
            host: answered_by,
            method: method.to_string(),
            url: url.to_string().into(),
            status: status.as_u16(),
            detail: if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            },
        })
    }

    /// Sends a request with authentication, retries and safe redirects.
    pub(super) fn send(&self, mut call: Call<'_>) -> Result<http::Response<Body>, RegistryError> {
        call.fail_fast = self.registries.is_mirror_only(call.image.registry());
        let home = self.transport.hosts.base_url(call.image);
        send::send(&self.transport, &home, call)
    }
}

/// The target of a `Link` header's `rel="next"` entry (`<url>; rel="next"`).
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim().split_once('='), Some(("rel", v)) if v.trim_matches('"') == "next"));
        let t = target.trim();
        (is_next && t.starts_with('<') && t.ends_with('>')).then(|| t[1..t.len() - 1].to_string())
    })
}

#[cfg(test)]
mod link_tests {
    #[test]
    fn next_link_finds_the_next_page() {
        assert_eq!(
            super::next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(super::next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(super::next_link(""), None);
    }
}
