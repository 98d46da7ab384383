//! Command-line groups more than one command shares (`--platform`, `--tls-verify`,
//! the load flags), resolved into library settings; every mistake is a usage
//! error with a hint.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use ocibench::loadgen::{self, BenchResult, ConfigError, LoadConfig};
use ocibench::oci::location::ImageLocation;
use ocibench::oci::manifest::Platform;
use ocibench::oci::reference::TlsMode;
use ocibench::oci::registry::SpeedLimit;
use ocibench::oci::registry::auth::Secret;

use crate::app::explain::UserError;
use crate::app::terminal::{signal_word, status};
use ocibench::runner::{PodmanRunner, RunnerError, RunnerOptions, cleanup};

/// `--tls-verify`, as podman spells it. (`--cert-dir` is a global flag: every
/// command that reaches a registry takes it, as podman's do.)
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Verify registry certificates (false: skip verification, and use plain HTTP
    /// for a registry that does not speak TLS)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
}

impl TlsArgs {
    pub fn mode(&self) -> TlsMode {
        if self.tls_verify {
            TlsMode::Auto
        } else {
            TlsMode::Insecure
        }
    }
}

/// A `USER:PASS` flag value as parsed arguments hold it: `Debug` prints
/// `<redacted>`, so a `{:?}` of the command line cannot leak the password.
#[derive(Clone)]
pub struct CredsValue(Secret);

impl CredsValue {
    /// The raw `USER:PASS`, to parse into credentials. Never print it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::str::FromStr for CredsValue {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(CredsValue(Secret::new(s)))
    }
}

impl std::fmt::Debug for CredsValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// skopeo's `--src-creds`/`--dest-creds`, for commands that read from one registry
/// and write to another (push, build); the global `--creds` is the destination's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CopyCredsArgs {
    /// Credentials for the source registry only
    #[arg(long, value_name = "USER:PASS")]
    pub src_creds: Option<CredsValue>,
    /// Credentials for the destination registry only (what --creds means here)
    #[arg(long, value_name = "USER:PASS")]
    pub dest_creds: Option<CredsValue>,
}

/// Time limits on registry traffic: `--timeout` for the whole command, and the
/// low-speed limit (hidden: its default suits every working link; tests and odd
/// networks set it, also through the environment).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetArgs {
    /// Give up on registries after this long in all (500ms, 3s, 2m) [default: no limit]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Abandon (and retry) a transfer below this many bytes/s over --low-speed-time (0: off)
    #[arg(
        long,
        value_name = "BYTES",
        env = "OCIBENCH_LOW_SPEED_LIMIT",
        hide = true
    )]
    pub low_speed_limit: Option<u64>,
    /// The window the low-speed limit is averaged over
    #[arg(
        long,
        value_name = "DURATION",
        env = "OCIBENCH_LOW_SPEED_TIME",
        hide = true
    )]
    pub low_speed_time: Option<String>,
}

/// `NetArgs`, checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetSettings {
    pub timeout: Option<Duration>,
    pub speed: Option<SpeedLimit>,
}

impl NetArgs {
    pub fn settings(&self) -> anyhow::Result<NetSettings> {
        let duration = |what, raw: &Option<String>| -> anyhow::Result<Option<Duration>> {
            raw.as_deref()
                .map(|r| loadgen::config::parse_duration(what, r).map_err(usage))
                .transpose()
                .map_err(Into::into)
        };
        let timeout = duration("--timeout", &self.timeout)?;
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(UserError::usage("--timeout must be longer than zero")
                .with_hint("leave --timeout out for no overall limit")
                .into());
        }
        let default = SpeedLimit::default();
        let speed = SpeedLimit {
            bytes_per_sec: self.low_speed_limit.unwrap_or(default.bytes_per_sec),
            over: duration("--low-speed-time", &self.low_speed_time)?.unwrap_or(default.over),
        };
        Ok(NetSettings {
            timeout,
            speed: (speed.bytes_per_sec > 0 && !speed.over.is_zero()).then_some(speed),
        })
    }
}

/// Which image of a multi-platform index to read, and how to reach its registry:
/// shared by every command that reads an image (pull, size, push, run).
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Platform to choose from a multi-platform index [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// An image to read and report on: `pull` and `size`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// Image: docker://REF (or bare REF), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    pub image: String,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// An image to read and how: the location, the platform, TLS.
pub struct SourceSettings {
    pub location: ImageLocation,
    pub platform: Platform,
    /// `--platform` was given (not the host's default).
    pub platform_required: bool,
    pub tls: TlsMode,
}

impl SourceSettings {
    /// `image` in any transport, with the source flags.
    pub fn new(image: &str, source: &SourceArgs) -> anyhow::Result<Self> {
        let location: ImageLocation = image.parse().map_err(|e: ocibench::oci::location::TransportError| {
            UserError::usage(e.to_string()).with_hint(
                "images are docker://REGISTRY/REPO:TAG (or REPO:TAG), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]",
            )
        })?;
        let platform = parse_platform(source.platform.as_deref())?;
        Ok(SourceSettings {
            location,
            platform,
            platform_required: source.platform.is_some(),
            tls: source.tls.mode(),
        })
    }
}

pub fn parse_platform(p: Option<&str>) -> Result<Platform, UserError> {
    match p {
        None => Ok(Platform::host()),
        Some(s) => Ok(s
            .parse()
            .map_err(|e: ocibench::oci::manifest::PlatformParseError| {
                UserError::usage(e.to_string())
            })?),
    }
}

// ---------------------------------------------------------------- the load (bench, run)

/// The load flags `bench` and `run` share (everything but the URL).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Number of requests [default: 200]
    #[arg(short = 'n', long = "requests", value_name = "N")]
    pub requests: Option<u64>,
    /// Number of connections open at once
    #[arg(short = 'c', long, value_name = "C", default_value_t = loadgen::config::DEFAULT_CONCURRENCY)]
    pub concurrency: u64,
    /// Run for this long instead of a request count (500ms, 3s, 2m)
    #[arg(short = 'z', long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// One connection per request (as ab without -k)
    #[arg(long, visible_alias = "disable-keepalive")]
    pub no_keepalive: bool,
    /// Open loop: send R requests per second on a fixed schedule, whatever the
    /// responses do; latency counts from each request's scheduled time
    /// (coordinated omission corrected, as wrk2 -R)
    #[arg(short = 'R', long, value_name = "R")]
    pub rate: Option<f64>,
    /// HTTP method
    #[arg(short = 'm', long, value_name = "METHOD", default_value = "GET")]
    pub method: String,
    /// Request header, repeatable: -H 'Accept: application/json'
    #[arg(short = 'H', long = "header", value_name = "'K: V'")]
    pub headers: Vec<String>,
    /// Request body
    #[arg(short = 'd', long, value_name = "BODY")]
    pub body: Option<String>,
    /// Request body read from a file
    #[arg(short = 'D', long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Per-request timeout, connection included (500ms, 3s, 2m; 0: none)
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,
    /// Requests sent before the measured run, not counted
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warmup: u64,
    /// Worker threads, one runtime each [default: one per core]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// HTTP/2: ALPN h2 over https://, prior knowledge (h2c) over http://
    #[arg(long)]
    pub http2: bool,
    /// Concurrent streams per HTTP/2 connection: -c C --streams N keeps C*N
    /// requests in flight (h2load's -m) [default: 1]
    #[arg(long, value_name = "N")]
    pub streams: Option<u64>,
    /// Trust the CA certificates in this PEM file instead of the system's
    /// (as curl's --cacert, it replaces the default bundle)
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Accept any server certificate (no -k: ab's -k means keep-alive)
    #[arg(long)]
    pub insecure: bool,
}

/// `BenchOptions` parsed and read (the body file included): builds a
/// `LoadConfigBuilder` for any URL without failing.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    requests: Option<u64>,
    concurrency: u64,
    duration: Option<Duration>,
    keepalive: bool,
    method: http::Method,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    body: Option<bytes::Bytes>,
    timeout: Option<Duration>,
    warmup: u64,
    threads: Option<usize>,
    rate: Option<f64>,
    http2: bool,
    streams: Option<u64>,
    cacert: Option<PathBuf>,
    insecure: bool,
}

impl BenchOptions {
    /// Parses every flag; mistakes are usage errors with a hint.
    pub fn settings(&self) -> anyhow::Result<BenchSettings> {
        let duration = match &self.duration {
            Some(z) => Some(loadgen::config::parse_duration("-z", z).map_err(usage)?),
            None => None,
        };
        let mut headers = Vec::with_capacity(self.headers.len());
        for h in &self.headers {
            headers.push(loadgen::config::parse_header(h).map_err(usage)?);
        }
        let body = match (&self.body, &self.body_file) {
            (Some(_), Some(_)) => {
                return Err(UserError::usage("-d BODY and -D FILE exclude each other")
                    .with_hint("give the body inline with -d, or from a file with -D, not both")
                    .into());
            }
            (Some(body), None) => Some(body.clone().into_bytes().into()),
            (None, Some(path)) => Some(
                std::fs::read(path)
                    .map_err(|e| {
                        UserError::usage(format!(
                            "cannot read the body file {}: {e}",
                            path.display()
                        ))
                        .with_hint("-D takes the path of an existing, readable file")
                    })?
                    .into(),
            ),
            (None, None) => None,
        };
        Ok(BenchSettings {
            requests: self.requests,
            concurrency: self.concurrency,
            duration,
            keepalive: !self.no_keepalive,
            method: loadgen::config::parse_method(&self.method).map_err(usage)?,
            headers,
            body,
            timeout: timeout(&self.timeout)?,
            warmup: self.warmup,
            threads: self.threads,
            rate: self.rate,
            http2: self.http2,
            streams: self.streams,
            cacert: self.cacert.clone(),
            insecure: self.insecure,
        })
    }
}

impl BenchSettings {
    /// Runs for `d` when neither `-n` nor `-z` was given.
    pub fn default_duration(&mut self, d: Duration) {
        if self.requests.is_none() && self.duration.is_none() {
            self.duration = Some(d);
        }
    }

    /// The load for `url`; `build()` still checks the URL and the combination.
    pub fn builder(&self, url: impl Into<String>) -> loadgen::LoadConfigBuilder {
        let mut b = LoadConfig::builder(url)
            .concurrency(self.concurrency)
            .keepalive(self.keepalive)
            .warmup(self.warmup)
            .method(self.method.clone())
            .timeout(self.timeout)
            .http2(self.http2)
            .insecure(self.insecure);
        if let Some(n) = self.streams {
            b = b.streams(n);
        }
        if let Some(path) = &self.cacert {
            b = b.cacert(path.clone());
        }
        if let Some(n) = self.requests {
            b = b.requests(n);
        }
        if let Some(d) = self.duration {
            b = b.duration(d);
        }
        if let Some(t) = self.threads {
            b = b.threads(t);
        }
        if let Some(r) = self.rate {
            b = b.rate(r);
        }
        for (name, value) in &self.headers {
            b = b.header(name.clone(), value.clone());
        }
        if let Some(body) = &self.body {
            b = b.body(body.clone());
        }
        b
    }

    /// The load for `url`, checked; mistakes are usage errors with a hint.
    pub fn load_config(&self, url: impl Into<String>) -> anyhow::Result<LoadConfig> {
        Ok(self.builder(url).build().map_err(usage)?)
    }
}

/// `--timeout`: a duration, or 0 for none (as hey).
fn timeout(raw: &str) -> anyhow::Result<Option<Duration>> {
    let t = loadgen::config::parse_duration("--timeout", raw).map_err(usage)?;
    Ok((!t.is_zero()).then_some(t))
}

pub fn usage(e: ConfigError) -> UserError {
    // The load generator's words for the settings it checks, in the flags' names.
    let message = match e {
        ConfigError::RequestsAndDuration => {
            "-n (a request count) and -z (a duration) exclude each other".to_string()
        }
        ConfigError::ZeroDuration => "-z must be longer than zero".to_string(),
        ConfigError::ZeroTimeout => "--timeout must be longer than zero".to_string(),
        ref other => other.to_string(),
    };
    UserError::usage(message).with_hint(crate::app::explain::Explain::hint(&e).unwrap_or_default())
}

/// Exit 1 when not a single request got a response: nothing was measured
/// (failed or unfinished requests alike: a silent server is no success).
pub fn check_any_response(r: &BenchResult) -> anyhow::Result<()> {
    if r.completed > 0 {
        return Ok(());
    }
    let e = &r.errors;
    let (what, hint) = if r.failed > 0 && e.connect == r.failed && r.unfinished == 0 {
        (
            "every connection was refused".to_string(),
            format!("is a server listening at {}?", r.url),
        )
    } else if r.failed > 0 && e.timeout == r.failed && r.unfinished == 0 {
        (
            "every request timed out".to_string(),
            "the server does not answer in time: check it, or raise --timeout".to_string(),
        )
    } else if r.failed > 0 && e.tls == r.failed && r.unfinished == 0 {
        (
            format!(
                "every TLS handshake failed ({})",
                r.tls_error
                    .as_deref()
                    .unwrap_or("the server's certificate was not accepted")
            ),
            "if the server's certificate is signed by your own CA, pass that CA with --cacert FILE; to skip verification, --insecure".to_string(),
        )
    } else if r.failed == 0 && r.unfinished > 0 {
        (
            "no request got a response".to_string(),
            format!(
                "the server at {} accepted connections but did not answer within the run: check it, or run longer (-z)",
                r.url
            ),
        )
    } else {
        (
            "no request got a response".to_string(),
            if r.http_version == "HTTP/2" && r.url.starts_with("http:") {
                format!(
                    "--http2 over http:// speaks HTTP/2 at once (prior knowledge, h2c): if the server at {} speaks HTTP/1.1 only, drop --http2",
                    r.url
                )
            } else {
                format!("check the server at {}", r.url)
            },
        )
    };
    let unfinished = if r.unfinished > 0 {
        format!("; {} unfinished when the run ended", r.unfinished)
    } else {
        String::new()
    };
    let tls = if e.tls > 0 {
        format!(", {} tls", e.tls)
    } else {
        String::new()
    };
    Err(UserError::runtime(format!(
        "{what}: nothing was measured ({} failed: {} connect, {} reset, {} timeout{tls}, {} other{unfinished})",
        r.failed, e.connect, e.reset, e.timeout, e.other
    ))
    .with_hint(hint)
    .into())
}

// ---------------------------------------------------------------- podman (run, compare)

/// podman, found and probed with `--runtime`; a signal from here on removes
/// what the runner created, after a line saying it removes `what`.
pub fn podman_runner(
    runtime: Option<String>,
    network: ocibench::runner::NetworkChoice,
    what: &'static str,
) -> Result<PodmanRunner, RunnerError> {
    // `on_signal` takes a plain `fn`: the words wait in a static.
    static WHAT: OnceLock<&'static str> = OnceLock::new();
    let _ = WHAT.set(what);
    cleanup::on_signal(cleanup::OnSignal {
        notice: |sig| {
            status(format_args!(
                "ocibench: {}; removing {}",
                signal_word(sig),
                WHAT.get().copied().unwrap_or("containers")
            ))
        },
        // The shell's convention for a command ended by a signal; the cache's and
        // outputs' temporaries go too (app::interrupt is not installed here).
        exit: |sig| {
            ocibench::oci::temp::remove_all_live();
            std::process::exit(128 + sig)
        },
    });
    PodmanRunner::new(RunnerOptions {
        podman: None,
        runtime,
        network,
    })
}

/// `--network auto|host|published`.
pub fn parse_network(s: &str) -> Result<ocibench::runner::NetworkChoice, String> {
    s.parse()
}

/// The history line (`created_by`) of a layer from `--layer SRC:DEST` or
/// `[app] layers`: it names the destination only (source paths differ between
/// machines; the image must not), so both build the same bytes.
pub fn layer_created_by(dest: &str) -> String {
    format!("ocibench build --layer {dest}")
}
