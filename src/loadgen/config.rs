//! What a load run does, validated once: `LoadConfigBuilder` -> `LoadConfig`.
//!
//! Everything a user can get wrong (the URL, `-c 0`, `-n` with `-z`, a header
//! without a colon, a duration like `3 parsecs`) is rejected here with a
//! `ConfigError` that knows its hint, before any socket is opened. The hot loop
//! then only reads plain, already-checked values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// Default number of requests when neither `-n` nor `-z` is given (as oha).
pub const DEFAULT_REQUESTS: u64 = 200;
/// Default number of concurrent connections (as oha).
pub const DEFAULT_CONCURRENCY: u64 = 50;
/// Default per-request timeout (as ab): every load is bounded in time.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The highest `--rate` accepted, requests per second.
pub const MAX_RATE: f64 = 10_000_000.0;

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After exactly this many requests (`-n`).
    Requests(u64),
    /// After this long (`-z`); requests still in flight then are abandoned and
    /// reported as `unfinished`.
    Duration(Duration),
}

/// Which certificates an `https://` server may present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    /// Those signed by the system's CA bundle (rustls-native-certs: on Debian
    /// /etc/ssl/certs, from the `ca-certificates` package).
    System,
    /// Those signed by these CAs only (`--cacert`: as curl, they replace the
    /// system bundle).
    CaCerts(Vec<CertificateDer<'static>>),
    /// Any certificate (`--insecure`): the handshake still checks signatures.
    Insecure,
}

/// A validated load: where, what, how many, how hard.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The URL as given (for reports).
    pub url: String,
    /// Host name or address to connect to (brackets removed for IPv6); also
    /// the TLS server name (an address sends no SNI).
    pub host: String,
    pub port: u16,
    /// An `https://` URL: every connection is TLS (rustls).
    pub https: bool,
    /// `--http2`: ALPN `h2` over TLS, prior knowledge (h2c) over plain TCP.
    pub http2: bool,
    /// Concurrent HTTP/2 streams per connection (`--streams`); 1 for HTTP/1.1.
    /// Requests in flight: `concurrency * streams` (h2load's `-c` and `-m`).
    pub streams: u64,
    /// Certificates accepted from an `https://` server.
    pub tls_trust: TlsTrust,
    pub method: Method,
    /// Request target in origin form (`/path?query`).
    pub path: Uri,
    /// Headers sent with every request, `Host` included.
    pub headers: HeaderMap,
    pub body: Bytes,
    pub concurrency: u64,
    pub stop: Stop,
    /// HTTP/1.1 only: `--no-keepalive` is refused with `--http2`.
    pub keepalive: bool,
    /// Per request, connection set-up included; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Requests sent (and not counted) before the measured run starts.
    pub warmup: u64,
    /// Worker threads, each with its own current-thread runtime.
    pub threads: usize,
    /// CPUs the worker threads are pinned to (`sched_setaffinity`); `None`
    /// leaves them to the scheduler. `compare` keeps the service's CPUs free.
    pub cpus: Option<Vec<usize>>,
    /// Open loop (`--rate`): requests per second on a fixed schedule; `None`
    /// is closed loop (each connection sends its next request when the last
    /// one is answered).
    pub rate: Option<f64>,
}

impl LoadConfig {
    pub fn builder(url: impl Into<String>) -> LoadConfigBuilder {
        LoadConfigBuilder::new(url)
    }

    /// The number of requests a `-n` run makes, `None` for a timed run.
    pub fn request_count(&self) -> Option<u64> {
        match self.stop {
            Stop::Requests(n) => Some(n),
            Stop::Duration(_) => None,
        }
    }
}

/// Collects raw settings; `build` checks them all.
#[derive(Debug, Clone)]
pub struct LoadConfigBuilder {
    url: String,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    concurrency: u64,
    requests: Option<u64>,
    duration: Option<Duration>,
    keepalive: bool,
    timeout: Option<Duration>,
    warmup: u64,
    threads: Option<usize>,
    cpus: Option<Vec<usize>>,
    rate: Option<f64>,
    http2: bool,
    streams: Option<u64>,
    cacert: Option<PathBuf>,
    insecure: bool,
}

impl LoadConfigBuilder {
    pub fn new(url: impl Into<String>) -> Self {
        LoadConfigBuilder {
            url: url.into(),
            method: Method::GET,
            headers: Vec::new(),
            body: Bytes::new(),
            concurrency: DEFAULT_CONCURRENCY,
            requests: None,
            duration: None,
            keepalive: true,
            timeout: Some(DEFAULT_TIMEOUT),
            warmup: 0,
            threads: None,
            cpus: None,
            rate: None,
            http2: false,
            streams: None,
            cacert: None,
            insecure: false,
        }
    }
    /// HTTP/2 (`--http2`): ALPN `h2` over TLS, prior knowledge over plain TCP.
    pub fn http2(mut self, on: bool) -> Self {
        self.http2 = on;
        self
    }
    /// Concurrent streams per HTTP/2 connection (`--streams`); needs `http2`.
    pub fn streams(mut self, n: u64) -> Self {
        self.streams = Some(n);
        self
    }
    /// Trusts the CA certificates (PEM) in `path` instead of the system's.
    pub fn cacert(mut self, path: impl Into<PathBuf>) -> Self {
        self.cacert = Some(path.into());
        self
    }
    /// Accepts any server certificate (`--insecure`).
    pub fn insecure(mut self, on: bool) -> Self {
        self.insecure = on;
        self
    }
    /// `-n`: an exact request count.
    pub fn requests(mut self, n: u64) -> Self {
        self.requests = Some(n);
        self
    }
    /// `-z`: a timed run.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }
    pub fn concurrency(mut self, c: u64) -> Self {
        self.concurrency = c;
        self
    }
    pub fn keepalive(mut self, on: bool) -> Self {
        self.keepalive = on;
        self
    }
    pub fn method(mut self, m: Method) -> Self {
        self.method = m;
        self
    }
    /// Adds a header; a `Host` header replaces the one derived from the URL.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
    /// Per-request timeout; `None` disables it.
    pub fn timeout(mut self, t: Option<Duration>) -> Self {
        self.timeout = t;
        self
    }
    pub fn warmup(mut self, n: u64) -> Self {
        self.warmup = n;
        self
    }
    /// Worker threads; default: the number of cores.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Pins the worker threads to `cpus` (an empty list pins nothing); without
    /// `threads`, one worker per CPU listed.
    pub fn cpus(mut self, cpus: Vec<usize>) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// `--rate`: open loop at `per_second` requests per second.
    pub fn rate(mut self, per_second: f64) -> Self {
        self.rate = Some(per_second);
        self
    }

    pub fn build(self) -> Result<LoadConfig, ConfigError> {
        let target = parse_target(&self.url)?;
        if self.concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        let streams = match (self.streams, self.http2) {
            (Some(0), _) => return Err(ConfigError::ZeroStreams),
            (Some(_), false) => return Err(ConfigError::StreamsWithoutHttp2),
            (Some(n), true) => n,
            (None, _) => 1,
        };
        if self.http2 && !self.keepalive {
            return Err(ConfigError::NoKeepaliveWithHttp2);
        }
        let tls_trust = match (&self.cacert, self.insecure) {
            (Some(_), true) => return Err(ConfigError::CaCertAndInsecure),
            (Some(path), false) => TlsTrust::CaCerts(read_ca_certs(path)?),
            (None, true) => TlsTrust::Insecure,
            (None, false) => TlsTrust::System,
        };
        if !target.https && tls_trust != TlsTrust::System {
            return Err(ConfigError::TlsOptionWithoutHttps {
                option: if self.insecure {
                    "--insecure"
                } else {
                    "--cacert"
                },
            });
        }
        let stop = match (self.requests, self.duration) {
            (Some(_), Some(_)) => return Err(ConfigError::RequestsAndDuration),
            (Some(0), None) => return Err(ConfigError::ZeroRequests),
            (Some(n), None) => Stop::Requests(n),
            (None, Some(d)) if d.is_zero() => {
                return Err(ConfigError::ZeroDuration);
            }
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Requests(DEFAULT_REQUESTS),
        };
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::ZeroTimeout);
        }
        if let Some(r) = self.rate {
            // Below one request an hour is a typo, not a load; above 10M/s no
            // schedule of ours is kept (the timer has 1 ms resolution).
            if !(r.is_finite() && (1.0 / 3600.0..=MAX_RATE).contains(&r)) {
                return Err(ConfigError::BadRate { rate: r });
            }
        }
        let mut cpus = self.cpus.filter(|c| !c.is_empty());
        if let Some(c) = &mut cpus {
            c.sort_unstable();
            c.dedup();
        }
        let threads = match (self.threads, &cpus) {
            (Some(0), _) => return Err(ConfigError::ZeroThreads),
            (Some(n), _) => n,
            (None, Some(c)) => c.len(),
            (None, None) => default_threads(),
        };

        let mut headers = HeaderMap::new();
        headers.insert(HOST, target.host_header);
        if let Some(auth) = target.authorization {
            headers.insert(http::header::AUTHORIZATION, auth);
        }
        for (name, value) in self.headers {
            if name == HOST || name == http::header::AUTHORIZATION {
                headers.insert(name, value);
            } else {
                headers.append(name, value);
            }
        }
        if !self.keepalive {
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(LoadConfig {
            url: redact_password(&self.url),
            host: target.host,
            port: target.port,
            https: target.https,
            http2: self.http2,
            streams,
            tls_trust,
            method: self.method,
            path: target.path,
            headers,
            body: self.body,
            concurrency: self.concurrency,
            stop,
            keepalive: self.keepalive,
            timeout: self.timeout,
            warmup: self.warmup,
            threads,
            cpus,
            rate: self.rate,
        })
    }
}

/// One worker per core (thread-per-core). Measured against nginx on the same
/// 2 cores: one worker spends a little less CPU per request, but on a busy
/// machine it gets one thread's share of the CPU and its throughput halves.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The parts of a URL a connection needs.
struct Target {
    https: bool,
    host: String,
    port: u16,
    host_header: HeaderValue,
    path: Uri,
    /// `Basic` credentials from the URL's `user:password@`, as curl sends them.
    authorization: Option<HeaderValue>,
}

fn parse_target(raw: &str) -> Result<Target, ConfigError> {
    let bad = |reason: &str| ConfigError::BadUrl {
        url: redact_password(raw),
        reason: reason.to_string(),
    };
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(bad(&format!("unsupported scheme `{other}`"))),
    };
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    if port == 0 {
        return Err(bad("port 0 is not a port a server listens on"));
    }
    // Host header: as written in the URL, port only when not the default.
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let host_header = HeaderValue::from_str(&host_header).map_err(|e| bad(&e.to_string()))?;
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let path: Uri = path
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    let authorization = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let user = percent_decode(url.username());
        let password = percent_decode(url.password().unwrap_or(""));
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| bad("credentials that cannot be sent in a header"))?;
        value.set_sensitive(true);
        Some(value)
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(Target {
        https,
        host,
        port,
        host_header,
        path,
        authorization,
    })
}

/// The certificates of a PEM file (`--cacert`): one or more.
fn read_ca_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bad = |reason: String| ConfigError::CaCert {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(pem_reason(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(pem_reason(e)))?;
    if certs.is_empty() {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(certs)
}

fn pem_reason(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a PEM file ({other:?})"),
    }
}

/// Parses a header line, `Name: value`.
pub fn parse_header(raw: &str) -> Result<(HeaderName, HeaderValue), ConfigError> {
    // The name only: a header's value may be a credential (`Authorization`).
    let bad = |reason: &str| ConfigError::BadHeader {
        name: raw
            .split_once(':')
            .map_or_else(String::new, |(n, _)| n.trim().to_string()),
        reason: reason.to_string(),
    };
    let (name, value) = raw.split_once(':').ok_or_else(|| bad("no `:`"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid name"))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| bad("invalid value"))?;
    Ok((name, value))
}

/// Parses a duration such as `500ms`, `3s`, `2m` (humantime); a bare number is
/// seconds. `what` names the setting in the error.
pub fn parse_duration(what: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    let raw_trim = raw.trim();
    let parsed = match raw_trim.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(raw_trim).map_err(|e| e.to_string()),
    };
    parsed.map_err(|reason| ConfigError::BadDuration {
        what,
        value: raw.to_string(),
        reason,
    })
}

/// The URL with the password of its `user:password@` part replaced by `***`, so a
/// report or an error never shows it. Textual, so it also covers a URL that does
/// not parse (`http://u:p@host:99999/`).
fn redact_password(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        return raw.to_string();
    };
    let rest = &raw[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return raw.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return raw.to_string();
    };
    format!(
        "{}{}***{}",
        &raw[..scheme_end],
        &authority[..=colon],
        &raw[scheme_end + at..]
    )
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses a method: any token, upper-cased (`get` means `GET`).
pub fn parse_method(raw: &str) -> Result<Method, ConfigError> {
    Method::from_bytes(raw.to_ascii_uppercase().as_bytes()).map_err(|_| ConfigError::BadMethod {
        method: raw.to_string(),
    })
}

/// A setting that cannot make a load run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("bad URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot use {} as CA certificates: {reason}", path.display())]
    CaCert { path: PathBuf, reason: String },
    #[error("--cacert and --insecure exclude each other")]
    CaCertAndInsecure,
    #[error("{option} applies to https:// URLs only")]
    TlsOptionWithoutHttps { option: &'static str },
    #[error("--streams needs --http2 (HTTP/1.1 carries one request at a time per connection)")]
    StreamsWithoutHttp2,
    #[error("--streams must be at least 1")]
    ZeroStreams,
    #[error("--no-keepalive and --http2 exclude each other")]
    NoKeepaliveWithHttp2,
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    #[error("the number of requests must be at least 1")]
    ZeroRequests,
    #[error("a request count and a duration exclude each other")]
    RequestsAndDuration,
    #[error("a timed run must last longer than zero")]
    ZeroDuration,
    #[error("a timeout must be longer than zero")]
    ZeroTimeout,
    /// `what` is the caller's name for the setting (the command line says `-z`).
    #[error("bad duration `{value}` for {what}: {reason}")]
    BadDuration {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// Names the header, never its value (it may be a token).
    #[error("bad header{}: {reason}", if name.is_empty() { String::new() } else { format!(" `{name}`") })]
    BadHeader { name: String, reason: String },
    #[error("bad method `{method}`")]
    BadMethod { method: String },
    #[error("the number of threads must be at least 1")]
    ZeroThreads,
    #[error("bad rate {rate}: requests per second must be a number above 0 and at most 10,000,000")]
    BadRate { rate: f64 },
    #[error("bad SLO `{slo}`: {reason}")]
    BadSlo { slo: String, reason: String },
    #[error("bad precision {precision}: it is a fraction above 0% and below 100%")]
    BadPrecision { precision: f64 },
    #[error("a search needs at least 2 steps")]
    TooFewSteps,
}

#[cfg(test)]
mod tests;
