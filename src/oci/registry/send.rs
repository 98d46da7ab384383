//! Sending one registry request: retries with backoff on 408/429/5xx and broken
//! connections (honouring `Retry-After`), a 401 answered once through `auth`, and
//! redirects followed by hand. `Authorization` goes only to the registry's own
//! origin (scheme, host, port): a redirect or an upload `Location` on another origin
//! is followed without it, as S3-style upload and download URLs expect.
//! The API calls in `client` describe a request as a `Call`; this file delivers it.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use ureq::Body;

use super::RegistryError;
use super::auth::{self, Authenticator, pick_challenge};
use super::connect_failure::ConnectFailure;
use super::exchange::{Pending, Then, Tracer};
use super::hosts::Hosts;
use super::limits::{self, Deadline, SpeedLimit, Watched};
use crate::oci::reference::ImageReference;

const MAX_REDIRECTS: usize = 5;

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
    /// The wait before retry `attempt` (from 0): exponential, capped, with "equal
    /// jitter" (half of it fixed, half random), so that threads which failed
    /// together do not all come back together.
    pub fn delay(&self, attempt: u32) -> Duration {
        jitter(
            self.base_delay
                .saturating_mul(1 << attempt.min(16))
                .min(self.max_delay),
        )
    }

    /// The wait after a `Retry-After` of `asked`: at least that (capped at
    /// `max_delay`), plus a random part of the backoff for this attempt.
    pub fn delay_after(&self, attempt: u32, asked: Duration) -> Duration {
        let spread = self.delay(attempt) / 2;
        asked.min(self.max_delay) + spread.mul_f64(fastrand::f64())
    }
}

/// `d` with equal jitter: uniformly between `d / 2` and `d`. Every retry loop of
/// the client (requests, whole blobs) waits through this.
pub fn jitter(d: Duration) -> Duration {
    d / 2 + (d / 2).mul_f64(fastrand::f64())
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
pub(super) struct Call<'a> {
    pub(super) image: &'a ImageReference,
    /// Token scopes, e.g. `repository:a:pull,push` (the first is the image's own).
    pub(super) scopes: Vec<String>,
    pub(super) method: Method,
    pub(super) url: String,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: CallBody,
    /// Told of each body chunk sent (upload progress).
    pub(super) on_send: Option<&'a (dyn Fn(u64) + Sync)>,
    /// A connection that fails is not tried again: another endpoint follows (a
    /// registries.conf mirror, before its location), which beats five tries of a
    /// mirror that is down.
    pub(super) fail_fast: bool,
}

impl<'a> Call<'a> {
    pub(super) fn get(image: &'a ImageReference, url: String) -> Self {
        Call {
            image,
            scopes: vec![format!("repository:{}:pull", image.repository())],
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: CallBody::Empty,
            on_send: None,
            fail_fast: false,
        }
    }
}

/// A reader that reports how much has been read, and counts it (for `-v`).
struct Counting<'a, R> {
    inner: R,
    on_read: Option<&'a (dyn Fn(u64) + Sync)>,
    total: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(f) = self.on_read {
            f(n as u64);
        }
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What every request of one client goes through: the agent, the retry policy,
/// the authorisations, and the time limits.
pub(super) struct Transport {
    /// The agents, one per scheme and host, and what was learnt about hosts.
    pub(super) hosts: Hosts,
    pub(super) retry: RetryPolicy,
    pub(super) auth: Authenticator,
    pub(super) deadline: Deadline,
    pub(super) speed: Option<SpeedLimit>,
    /// Told of every exchange (`-v`); `None`: nothing is traced.
    pub(super) trace: Option<Tracer>,
}

/// Sends a request with authentication, retries and safe redirects. `home` is the
/// registry's base URL: only requests to its origin carry `Authorization`.
pub(super) fn send(
    t: &Transport,
    home: &str,
    call: Call<'_>,
) -> Result<http::Response<Body>, RegistryError> {
    let (retry, authenticator, deadline) = (&t.retry, &t.auth, t.deadline);
    let host = call.image.api_host().to_string();
    let timed_out = |host: &str| RegistryError::TimedOut {
        host: host.to_string(),
        after: deadline.timeout().unwrap_or_default(),
    };
    let scope = call.scopes.join(" ");
    let mut home = home.to_string();
    let mut home_origin = origin(&home);
    let mut url = call.url.clone();
    let mut attempt = 0u32;
    let mut authenticated_once = false;
    let mut redirects = 0usize;
    // Set when the request about to go out repeats the one before (its number).
    let mut retrying: Option<u32> = None;
    loop {
        // Whatever led here (a redirect, an upload session's Location), another
        // origin never sees the registry's credentials or tokens.
        let foreign = origin(&url) != home_origin;
        if deadline.passed() {
            return Err(timed_out(&host));
        }
        let auth = if foreign {
            None
        } else {
            authenticator.get(&host, &scope)
        };
        let agent = &t.hosts.agent(&url)?;
        let mut req = Request::builder().method(call.method.clone()).uri(&url);
        for (k, v) in &call.headers {
            req = req.header(*k, v);
        }
        if let Some(a) = &auth {
            req = req.header("Authorization", a.header());
        }
        let mut pending =
            Pending::start(t.trace.as_ref(), &call.method, &url).retry(retrying.take());
        let file_sent = AtomicU64::new(0);
        let result = match &call.body {
            CallBody::Empty => req.body(()).map(|r| limits::run(agent, r, deadline)),
            CallBody::Bytes(b) => req
                .body(b.to_vec())
                .map(|r| limits::run(agent, r, deadline)),
            CallBody::File { path, offset, len } => {
                let mut f = std::fs::File::open(path).map_err(|source| RegistryError::Body {
                    url: url.clone().into(),
                    source,
                })?;
                std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(*offset)).map_err(
                    |source| RegistryError::Body {
                        url: url.clone().into(),
                        source,
                    },
                )?;
                // ureq reads straight into its 128 KiB output buffer (no BufReader
                // copy), and the explicit length keeps the body sized: a reader alone
                // would go out with `Transfer-Encoding: chunked`.
                // Watched: a registry taking the body slower than the low-speed limit
                // fails this attempt, retried below like a broken connection.
                let mut reader = Watched::new(
                    Counting {
                        inner: f.take(*len),
                        on_read: call.on_send,
                        total: &file_sent,
                    },
                    t.speed,
                    deadline,
                );
                req.header("Content-Length", len.to_string())
                    .body(ureq::SendBody::from_reader(&mut reader))
                    .map(|r| limits::run(agent, r, deadline))
            }
        };
        let result = result.map_err(|e| RegistryError::BadRedirect {
            url: url.clone().into(),
            detail: e.to_string(),
        })?;
        pending.sent(pending_sent(&call.body, &file_sent));
        let resp = match result {
            Ok(r) => {
                if !foreign && url.starts_with("https://") {
                    t.hosts.answered_over_tls(&host);
                }
                r
            }
            Err(e) if deadline.passed() => {
                pending.failed(&e);
                return Err(timed_out(&host));
            }
            Err(e) => {
                pending.failed(&e);
                let cause = ConnectFailure::of(&e);
                // `--tls-verify=false` (or `insecure = true`): a registry that does
                // not speak TLS is spoken to over plain HTTP from now on, as
                // containers/image does.
                if !foreign
                    && url.starts_with("https://")
                    && t.hosts.may_fall_back(&host)
                    && not_tls(&e, cause.as_ref())
                {
                    t.hosts.fall_back_to_http(&host);
                    url = format!("http://{}", &url["https://".len()..]);
                    home = format!("http://{}", &home["https://".len()..]);
                    home_origin = origin(&home);
                    continue;
                }
                // A known cause (an untrusted certificate, plain HTTP, a proxy's
                // refusal) is the same on every try: reported at once.
                if attempt + 1 < retry.attempts
                    && transient(&e)
                    && cause.is_none()
                    && !call.fail_fast
                {
                    sleep_within(retry.delay(attempt), deadline);
                    attempt += 1;
                    retrying = Some(attempt);
                    continue;
                }
                return Err(RegistryError::Unreachable {
                    host,
                    url: url.into(),
                    source: e,
                });
            }
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED && !foreign && !authenticated_once {
            if let Some(challenge) = header(&resp, "www-authenticate")
                .map(|h| auth::parse_challenges(&h))
                .and_then(pick_challenge)
            {
                authenticated_once = true;
                pending.consumed(status.as_u16(), Then::Authenticate);
                drop(resp);
                authenticator.authenticate(
                    &t.hosts,
                    call.image,
                    &home,
                    &call.scopes,
                    &challenge,
                    (deadline, t.speed),
                )?;
                continue;
            }
            return Ok(pending.attach(resp));
        }
        if matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
            && attempt + 1 < retry.attempts
        {
            let wait = match retry_after(&resp) {
                Some(asked) => retry.delay_after(attempt, asked),
                None => retry.delay(attempt),
            };
            pending.consumed(status.as_u16(), Then::RetryIn(wait));
            drop(resp);
            sleep_within(wait, deadline);
            attempt += 1;
            retrying = Some(attempt);
            continue;
        }
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            redirects += 1;
            let location = header(&resp, "location");
            let next = match location {
                None => Err(RegistryError::BadRedirect {
                    url: url.clone().into(),
                    detail: format!("HTTP {} without Location", status.as_u16()),
                }),
                Some(_) if redirects > MAX_REDIRECTS => Err(RegistryError::BadRedirect {
                    url: url.clone().into(),
                    detail: "too many redirects".into(),
                }),
                Some(location) => resolve_location(&url, &location),
            };
            match next {
                Ok(next) => {
                    pending.consumed(status.as_u16(), Then::Redirected);
                    url = next;
                    continue;
                }
                Err(e) => {
                    drop(pending.attach(resp));
                    return Err(e);
                }
            }
        }
        return Ok(pending.attach(resp));
    }
}

/// The request body bytes sent: a file body's as counted while it went out.
fn pending_sent(body: &CallBody, file_sent: &AtomicU64) -> u64 {
    match body {
        CallBody::Empty => 0,
        CallBody::Bytes(b) => b.len() as u64,
        CallBody::File { .. } => file_sent.load(Ordering::Relaxed),
    }
}

/// Sleeps `d`, or until the deadline if that comes first (the loop then stops).
fn sleep_within(d: Duration, deadline: Deadline) {
    std::thread::sleep(deadline.remaining().map_or(d, |left| d.min(left)));
}

pub(super) fn header(resp: &http::Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(resp: &http::Response<Body>) -> Option<Duration> {
    parse_retry_after(&header(resp, "retry-after")?, std::time::SystemTime::now())
}

/// A `Retry-After` value (delay seconds or an HTTP date) as a delay from `now`; a
/// date already past is no delay. Public so the fuzz targets (`tests/fuzz`) reach it.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether an HTTPS attempt failed as one to a server without TLS fails: a reply
/// that is not TLS, or the connection dropped during the handshake.
fn not_tls(e: &ureq::Error, cause: Option<&ConnectFailure>) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, InvalidData, UnexpectedEof};
    match (cause, e) {
        (Some(ConnectFailure::PlainHttp), _) => true,
        (Some(_), _) => false,
        (None, ureq::Error::Io(io)) => matches!(
            io.kind(),
            UnexpectedEof | ConnectionReset | ConnectionAborted | InvalidData
        ),
        (None, ureq::Error::Protocol(_)) => true,
        _ => false,
    }
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

impl Transport {
    /// `limits::read_capped` with this transport's limits.
    pub(super) fn read_capped(&self, body: Body, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        limits::read_capped(body, limit, self.speed, self.deadline)
    }
}

/// The registry's error code and message (`{"errors":[{"code":..,"message":..}]}`).
pub(super) fn error_detail(t: &Transport, resp: http::Response<Body>) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let body = t
        .read_capped(resp.into_body(), 64 * 1024)
        .ok()
        .flatten()
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

pub(super) fn resolve_location(base: &str, location: &str) -> Result<String, RegistryError> {
    let base_url = url::Url::parse(base).map_err(|e| RegistryError::BadRedirect {
        url: base.to_string().into(),
        detail: e.to_string(),
    })?;
    base_url
        .join(location)
        .map(|u| u.to_string())
        .map_err(|e| RegistryError::BadRedirect {
            url: base.to_string().into(),
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
    fn retries_after_a_shared_failure_spread_out() {
        // Four blob threads hit by one 429 must not come back in lockstep.
        let p = RetryPolicy::default();
        let samples: std::collections::HashSet<Duration> = (0..64).map(|_| p.delay(2)).collect();
        assert!(samples.len() > 1, "no jitter: {samples:?}");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy::default();
        let within = |d: Duration, lo: u64, hi: u64| {
            assert!(
                (Duration::from_millis(lo)..=Duration::from_millis(hi)).contains(&d),
                "{d:?} not in {lo}..={hi} ms"
            );
        };
        for _ in 0..32 {
            within(p.delay(0), 100, 200);
            within(p.delay(2), 400, 800);
            within(p.delay(30), 15_000, 30_000);
            // Retry-After is a lower bound; the spread comes on top.
            within(p.delay_after(0, Duration::from_secs(1)), 1000, 1100);
            within(p.delay_after(0, Duration::from_secs(3600)), 30_000, 30_100);
        }
    }
}
