//! What `-v` traces: one [`Exchange`] per HTTP request the client sends (to the
//! registry, its token realm, a host a redirect led to), handed to the hook the
//! builder was given (`RegistryClientBuilder::on_exchange`). The library only
//! reports; the binary decides how a line looks and where it goes.
//!
//! A response's body is counted as the caller reads it, so the bytes reported are
//! the bytes received, and an exchange is reported when its body ends: at the end
//! of a streamed blob, not when its headers arrive. An answer the send loop consumes
//! itself (a 401 it authenticates, a 503 it retries, a redirect) is reported at once,
//! its body unread. A request for a URL whose last body broke off mid-read (the pull
//! fetching a blob again, whole) is numbered as a retry, as the send loop's are. Nothing here ever holds a header value: the URL is redacted when
//! recorded ([`ShownUrl`]), and failures are described by kind, never by a message
//! that could quote a URL.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Method;
use ureq::Body;

use super::ShownUrl;
use super::limits::TransferTimeout;

/// Told of every finished exchange; called from the thread that made it.
pub type ExchangeHook = Arc<dyn Fn(&Exchange) + Send + Sync>;

/// One finished HTTP exchange, as `-v` shows it. Holds no secret: the URL's
/// credentials and signatures are redacted, and no header is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    /// The URL actually requested (a mirror, a redirect's target), redacted.
    pub url: ShownUrl,
    pub outcome: Outcome,
    /// Body bytes received (after chunked decoding): what the client read.
    pub received: u64,
    pub body: BodyEnd,
    /// Request body bytes handed to the connection (uploads, token forms).
    pub sent: u64,
    /// From sending the request to the end of its body (to the answer's headers
    /// when the body was not read).
    pub elapsed: Duration,
    /// `Some(n)`: this request is the n-th retry of the one before it.
    pub retry: Option<u32>,
    /// What the client did next with this answer, when the send loop consumed it.
    pub then: Option<Then>,
    /// A request to the token realm (Docker's token flow), not to the registry API.
    pub token_request: bool,
}

/// How an exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No answer: the kind of failure (`connection refused`, `timed out`).
    Failed(String),
}

/// How much of the response body the client read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// Read to its end (or the answer has no body).
    Complete,
    /// Not read at all: the answer was consumed by the send loop, or dropped.
    Unread,
    /// Read in part: dropped early, or a read failed (`error`, by kind).
    Cut {
        expected: Option<u64>,
        error: Option<String>,
    },
}

/// What the send loop did with an answer it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// A 401 whose challenge the client answers next (a token, or Basic credentials).
    Authenticate,
    /// A redirect, followed (without `Authorization` on another origin).
    Redirected,
    /// Retried after this wait (backoff, or the registry's `Retry-After`).
    RetryIn(Duration),
}

/// A client's hook, and the URLs whose last body broke off mid-read: a request for
/// one of them again (a pull fetching a blob again, whole) is a retry, and says so.
#[derive(Clone)]
pub(super) struct Tracer {
    hook: ExchangeHook,
    /// URL (as sent, never shown) -> the retry number its next request will be.
    broken: Arc<Mutex<HashMap<String, u32>>>,
}

impl Tracer {
    pub(super) fn new(hook: ExchangeHook) -> Self {
        Tracer {
            hook,
            broken: Arc::default(),
        }
    }

    fn broken(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.broken.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An exchange under way: created as the request goes out, finished once. Without
/// a tracer every method does nothing, so an untraced client pays for one `Option`.
pub(super) struct Pending {
    tracer: Option<Tracer>,
    /// The URL as sent: the key of `Tracer::broken` (only kept when traced).
    sent_url: String,
    record: Exchange,
    started: Instant,
}

impl Pending {
    pub(super) fn start(tracer: Option<&Tracer>, method: &Method, url: &str) -> Pending {
        let (shown, sent_url, retry) = match tracer {
            Some(t) => (ShownUrl::new(url), url.to_string(), t.broken().remove(url)),
            None => (ShownUrl::new(""), String::new(), None),
        };
        Pending {
            tracer: tracer.cloned(),
            sent_url,
            record: Exchange {
                method: method.to_string(),
                url: shown,
                outcome: Outcome::Failed(String::new()),
                received: 0,
                body: BodyEnd::Unread,
                sent: 0,
                elapsed: Duration::ZERO,
                retry,
                then: None,
                token_request: false,
            },
            started: Instant::now(),
        }
    }

    /// Marks this request as the send loop's retry `retry` (when `Some`).
    pub(super) fn retry(mut self, retry: Option<u32>) -> Self {
        if retry.is_some() {
            self.record.retry = retry;
        }
        self
    }

    pub(super) fn token_request(mut self) -> Self {
        self.record.token_request = true;
        self
    }

    pub(super) fn sent(&mut self, bytes: u64) {
        self.record.sent = bytes;
    }

    /// No answer came: reports the failure by kind.
    pub(super) fn failed(mut self, e: &ureq::Error) {
        if let Some(t) = self.tracer.take() {
            self.record.outcome = Outcome::Failed(failure_kind(e));
            self.record.elapsed = self.started.elapsed();
            (t.hook)(&self.record);
        }
    }

    /// An answer the send loop consumes itself, reported now with its body unread.
    pub(super) fn consumed(mut self, status: u16, then: Then) {
        if let Some(t) = self.tracer.take() {
            self.record.outcome = Outcome::Status(status);
            self.record.then = Some(then);
            self.record.elapsed = self.started.elapsed();
            (t.hook)(&self.record);
        }
    }

    /// An answer handed to the caller: its body is counted as it is read, and the
    /// exchange reported when the body ends, fails or is dropped.
    pub(super) fn attach(mut self, resp: http::Response<Body>) -> http::Response<Body> {
        let Some(tracer) = self.tracer.take() else {
            return resp;
        };
        self.record.outcome = Outcome::Status(resp.status().as_u16());
        let expected = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        // A HEAD answer, a 204 or 304, or `Content-Length: 0` has no body to read:
        // the exchange ends with its headers, reported now (an upload's POST answer
        // may be held until the upload is done; its line must not wait for that).
        let empty = self.record.method == "HEAD"
            || matches!(resp.status().as_u16(), 204 | 304)
            || expected == Some(0);
        if empty {
            self.record.body = BodyEnd::Complete;
            self.record.elapsed = self.started.elapsed();
            (tracer.hook)(&self.record);
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let traced = TracedBody {
            inner: body.into_reader(),
            tracer,
            sent_url: self.sent_url,
            record: self.record,
            started: self.started,
            expected,
            done: false,
        };
        http::Response::from_parts(parts, Body::builder().reader(traced))
    }
}

/// A response body that counts what is read and reports its exchange once.
struct TracedBody<R> {
    inner: R,
    tracer: Tracer,
    sent_url: String,
    record: Exchange,
    started: Instant,
    expected: Option<u64>,
    /// Reported already (at the end, on an error): `Drop` then stays quiet.
    done: bool,
}

impl<R> TracedBody<R> {
    fn report(&mut self, body: BodyEnd) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.record.body = body;
        self.record.elapsed = self.started.elapsed();
        (self.tracer.hook)(&self.record);
    }
}

impl<R: Read> Read for TracedBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.report(BodyEnd::Complete);
                Ok(0)
            }
            Ok(n) => {
                self.record.received += n as u64;
                Ok(n)
            }
            Err(e) => {
                // Whoever asks for this URL again is retrying it.
                let next = self.record.retry.unwrap_or(0) + 1;
                self.tracer.broken().insert(self.sent_url.clone(), next);
                let expected = self.expected;
                self.report(BodyEnd::Cut {
                    expected,
                    error: Some(io_failure_kind(&e)),
                });
                Err(e)
            }
        }
    }
}

impl<R> Drop for TracedBody<R> {
    fn drop(&mut self) {
        let end = if self.record.received == 0 {
            BodyEnd::Unread
        } else if self.expected == Some(self.record.received) {
            // Every byte announced arrived; only the final empty read was skipped.
            BodyEnd::Complete
        } else {
            BodyEnd::Cut {
                expected: self.expected,
                error: None,
            }
        };
        self.report(end);
    }
}

/// A ureq failure by kind only: some of its messages quote the URL (`BadUri`), and
/// a trace line names the URL once, redacted.
fn failure_kind(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io_failure_kind(io),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Protocol(_) => "HTTP protocol error".into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => "TLS error".into(),
        ureq::Error::ConnectProxyFailed(_) | ureq::Error::InvalidProxyUrl => "proxy error".into(),
        ureq::Error::LargeResponseHeader(..) => "response header too large".into(),
        _ => "request failed".into(),
    }
}

/// An I/O failure by kind (`connection reset`), or the low-speed limit's own words.
fn io_failure_kind(e: &io::Error) -> String {
    match TransferTimeout::of(e) {
        Some(t) => t.to_string(),
        None => e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collecting() -> (Tracer, Arc<Mutex<Vec<Exchange>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let hook: ExchangeHook = Arc::new(move |e: &Exchange| sink.lock().unwrap().push(e.clone()));
        (Tracer::new(hook), seen)
    }

    fn response(status: u16, body: &'static [u8], length: Option<u64>) -> http::Response<Body> {
        let mut b = http::Response::builder().status(status);
        if let Some(l) = length {
            b = b.header("content-length", l.to_string());
        }
        b.body(Body::builder().data(body)).unwrap()
    }

    #[test]
    fn a_body_read_to_its_end_reports_its_exact_size_once() {
        let (tracer, seen) = collecting();
        let url = "http://r.example/v2/a/blobs/sha256:ab";
        let resp = Pending::start(Some(&tracer), &Method::GET, url)
            .retry(Some(2))
            .attach(response(200, b"0123456789", Some(10)));
        let mut out = Vec::new();
        resp.into_body()
            .into_reader()
            .read_to_end(&mut out)
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let e = &seen[0];
        assert_eq!(
            (e.method.as_str(), e.url.as_str(), &e.outcome),
            ("GET", url, &Outcome::Status(200))
        );
        assert_eq!(
            (e.received, &e.body, e.retry),
            (10, &BodyEnd::Complete, Some(2))
        );
    }

    #[test]
    fn a_body_dropped_half_read_is_cut_and_an_unread_one_unread() {
        let (tracer, seen) = collecting();
        let resp = Pending::start(Some(&tracer), &Method::GET, "http://r.example/b")
            .attach(response(200, b"0123456789", Some(10)));
        let mut reader = resp.into_body().into_reader();
        reader.read_exact(&mut [0u8; 4]).unwrap();
        drop(reader);
        let resp = Pending::start(Some(&tracer), &Method::GET, "http://r.example/c")
            .attach(response(404, b"{}", Some(2)));
        drop(resp);
        let head = Pending::start(Some(&tracer), &Method::HEAD, "http://r.example/d")
            .attach(response(200, b"", Some(1234)));
        drop(head);
        let seen = seen.lock().unwrap();
        let ends: Vec<_> = seen.iter().map(|e| (e.received, e.body.clone())).collect();
        assert_eq!(
            ends,
            [
                (
                    4,
                    BodyEnd::Cut {
                        expected: Some(10),
                        error: None
                    }
                ),
                (0, BodyEnd::Unread),
                (0, BodyEnd::Complete),
            ]
        );
    }

    #[test]
    fn signed_query_values_never_reach_the_hook() {
        let (tracer, seen) = collecting();
        let url = "https://cdn.example/b?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=deadbeef&digest=sha256:ab&token=t0k";
        Pending::start(Some(&tracer), &Method::GET, url).consumed(307, Then::Redirected);
        let seen = seen.lock().unwrap();
        let shown = seen[0].url.as_str();
        for secret in ["AKIA", "deadbeef", "t0k"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(
            shown,
            "https://cdn.example/b?X-Amz-Credential=redacted&X-Amz-Signature=redacted&digest=sha256%3Aab&token=redacted"
        );
        assert_eq!(seen[0].then, Some(Then::Redirected));
    }

    #[test]
    fn an_answer_without_a_body_is_reported_with_its_headers() {
        // An upload's POST answer is held until the upload ends; its line must not wait.
        let (tracer, seen) = collecting();
        let held = Pending::start(
            Some(&tracer),
            &Method::POST,
            "http://r.example/v2/a/blobs/uploads/",
        )
        .attach(response(202, b"", Some(0)));
        assert_eq!(seen.lock().unwrap().len(), 1);
        drop(held);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "reported twice: {seen:?}");
        assert_eq!((seen[0].received, &seen[0].body), (0, &BodyEnd::Complete));
    }

    /// A reader that gives `n` bytes, then fails as a dropped connection does.
    struct Breaks(usize);
    impl Read for Breaks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn asking_again_for_a_body_that_broke_off_is_a_numbered_retry() {
        let (tracer, seen) = collecting();
        let url = "http://r.example/v2/a/blobs/sha256:ab";
        let broken = || {
            http::Response::builder()
                .status(200)
                .header("content-length", "10")
                .body(Body::builder().reader(Breaks(4)))
                .unwrap()
        };
        for _ in 0..2 {
            let resp = Pending::start(Some(&tracer), &Method::GET, url).attach(broken());
            let mut out = Vec::new();
            assert!(
                resp.into_body()
                    .into_reader()
                    .read_to_end(&mut out)
                    .is_err()
            );
        }
        let resp = Pending::start(Some(&tracer), &Method::GET, url).attach(response(
            200,
            b"0123456789",
            Some(10),
        ));
        resp.into_body()
            .into_reader()
            .read_to_end(&mut Vec::new())
            .unwrap();
        // Another URL, and the same one once it came whole, are first tries.
        drop(
            Pending::start(Some(&tracer), &Method::GET, "http://r.example/other")
                .attach(response(204, b"", None)),
        );
        drop(Pending::start(Some(&tracer), &Method::GET, url).attach(response(204, b"", None)));
        let seen = seen.lock().unwrap();
        let got: Vec<_> = seen
            .iter()
            .map(|e| (e.retry, e.received, e.body.clone()))
            .collect();
        let cut = BodyEnd::Cut {
            expected: Some(10),
            error: Some("unexpected end of file".into()),
        };
        assert_eq!(
            got,
            [
                (None, 4, cut.clone()),
                (Some(1), 4, cut),
                (Some(2), 10, BodyEnd::Complete),
                (None, 0, BodyEnd::Complete),
                (None, 0, BodyEnd::Complete),
            ]
        );
    }

    #[test]
    fn without_a_hook_the_body_is_left_as_it_is() {
        let resp = Pending::start(None, &Method::GET, "http://r.example/a?sig=s").attach(response(
            200,
            b"abc",
            Some(3),
        ));
        assert_eq!(resp.into_body().read_to_string().unwrap(), "abc");
    }
}
