//! `ocibench bench URL`: the load generator's command.
//!
//! Turns flags into a validated `LoadConfig` (bad input: exit 2 with a hint),
//! runs it while a progress bar polls the library's counter, then prints the
//! ab-style report or one JSON document. A run in which no request got any
//! response is reported, then fails with exit status 1 (as ab and oha do).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::app::explain::UserError;
use crate::app::globals::Context;
use ocibench::loadgen::{self, BenchResult, ConfigError, LoadConfig, LoadError, Progress, Stop};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// URL to load (http://HOST:PORT/PATH)
    pub url: String,
    #[command(flatten)]
    pub options: BenchOptions,
    /// Print one JSON document on stdout instead of the report
    #[arg(long)]
    pub json: bool,
}

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
    #[arg(long)]
    pub no_keepalive: bool,
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
        })
    }
}

impl BenchSettings {
    /// The load for `url`; `build()` still checks the URL and the combination.
    pub fn builder(&self, url: impl Into<String>) -> loadgen::LoadConfigBuilder {
        let mut b = LoadConfig::builder(url)
            .concurrency(self.concurrency)
            .keepalive(self.keepalive)
            .warmup(self.warmup)
            .method(self.method.clone())
            .timeout(self.timeout);
        if let Some(n) = self.requests {
            b = b.requests(n);
        }
        if let Some(d) = self.duration {
            b = b.duration(d);
        }
        if let Some(t) = self.threads {
            b = b.threads(t);
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

pub fn run(args: BenchArgs, ctx: &Context) -> anyhow::Result<()> {
    let config = settings(&args)?;
    let progress = Progress::new();
    let show_bar = ctx.show_progress() && !args.json;
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        if show_bar {
            s.spawn(|| draw_progress(&config, &progress, &done));
        }
        let r = loadgen::run(&config, &progress);
        done.store(true, Ordering::Relaxed);
        r
    })
    .map_err(explain_load_error)?;

    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &result)?;
        writeln!(stdout)?;
    } else {
        loadgen::write_summary(&result, &mut stdout)?;
    }
    stdout.flush()?;
    check_any_response(&result)
}

/// Flags -> a validated `LoadConfig`; every mistake is a usage error with a hint.
fn settings(args: &BenchArgs) -> anyhow::Result<LoadConfig> {
    args.options.settings()?.load_config(args.url.clone())
}

/// `--timeout`: a duration, or 0 for none (as hey).
fn timeout(raw: &str) -> anyhow::Result<Option<Duration>> {
    let t = loadgen::config::parse_duration("--timeout", raw).map_err(usage)?;
    Ok((!t.is_zero()).then_some(t))
}

pub(crate) fn usage(e: ConfigError) -> UserError {
    UserError::usage(e.to_string())
        .with_hint(crate::app::explain::Explain::hint(&e).unwrap_or_default())
}

pub(crate) fn explain_load_error(e: LoadError) -> anyhow::Error {
    let hint = crate::app::explain::Explain::hint(&e).unwrap_or_default();
    let msg = match std::error::Error::source(&e) {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    };
    UserError::runtime(msg).with_hint(hint).into()
}

/// Exit 1 when not a single request got a response: nothing was measured.
pub(crate) fn check_any_response(r: &BenchResult) -> anyhow::Result<()> {
    if r.completed > 0 || r.failed == 0 {
        return Ok(());
    }
    let e = &r.errors;
    let (what, hint) = if e.connect == r.failed {
        (
            "every connection was refused",
            format!("is a server listening at {}?", r.url),
        )
    } else if e.timeout == r.failed {
        (
            "every request timed out",
            "the server does not answer in time: check it, or raise --timeout".to_string(),
        )
    } else {
        (
            "no request got a response",
            format!("check the server at {}", r.url),
        )
    };
    Err(UserError::runtime(format!(
        "{what}: nothing was measured ({} failed: {} connect, {} reset, {} timeout, {} other)",
        r.failed, e.connect, e.reset, e.timeout, e.other
    ))
    .with_hint(hint)
    .into())
}

/// Draws a bar on stderr until `done`, polling the library's counter.
pub(crate) fn draw_progress(config: &LoadConfig, progress: &Progress, done: &AtomicBool) {
    use indicatif::{ProgressBar, ProgressStyle};
    let bar = match config.stop {
        Stop::Requests(n) => {
            let bar = ProgressBar::new(n);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }
        Stop::Duration(d) => {
            let bar = ProgressBar::new(d.as_millis() as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }
    };
    let started = std::time::Instant::now();
    while !done.load(Ordering::Relaxed) {
        let n = progress.finished();
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
        match config.stop {
            Stop::Requests(_) => {
                bar.set_position(n);
                bar.set_message(format!("{rate:.0} req/s"));
            }
            Stop::Duration(_) => {
                bar.set_position(started.elapsed().as_millis() as u64);
                bar.set_message(format!("{n} requests, {rate:.0} req/s"));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<LoadConfig> {
        let w = Wrap::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))?;
        settings(&w.bench)
    }

    fn usage_hint(args: &[&str]) -> (String, Option<String>) {
        let err = parse(args).unwrap_err();
        let u = err.downcast_ref::<UserError>().expect("a UserError");
        assert_eq!(u.kind, crate::app::explain::ExitKind::Usage, "{u}");
        (u.message.clone(), u.hint.clone())
    }

    #[test]
    fn full_flags() {
        let c = parse(&[
            "http://127.0.0.1:9/p",
            "-n",
            "10",
            "-c",
            "3",
            "--no-keepalive",
            "-m",
            "post",
            "-H",
            "X-A: 1",
            "-H",
            "X-A: 2",
            "-d",
            "hi",
            "--timeout",
            "500ms",
            "--warmup",
            "4",
            "--threads",
            "1",
        ])
        .unwrap();
        assert_eq!(c.stop, Stop::Requests(10));
        assert_eq!(c.concurrency, 3);
        assert!(!c.keepalive);
        assert_eq!(c.method, http::Method::POST);
        assert_eq!(c.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(&c.body[..], b"hi");
        assert_eq!(c.timeout, Some(Duration::from_millis(500)));
        assert_eq!((c.warmup, c.threads), (4, 1));
    }

    #[test]
    fn timeout_zero_means_none() {
        let c = parse(&["http://127.0.0.1:9/", "--timeout", "0"]).unwrap();
        assert_eq!(c.timeout, None);
        let c = parse(&["http://127.0.0.1:9/"]).unwrap();
        assert_eq!(c.timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn duration_run() {
        let c = parse(&["http://127.0.0.1:9/", "-z", "2s"]).unwrap();
        assert_eq!(c.stop, Stop::Duration(Duration::from_secs(2)));
    }

    #[test]
    fn body_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"{\"a\":1}").unwrap();
        let c = parse(&["http://127.0.0.1:9/", "-D", f.path().to_str().unwrap()]).unwrap();
        assert_eq!(&c.body[..], b"{\"a\":1}");
    }

    #[test]
    fn bad_input_is_usage_with_hint() {
        for args in [
            &["ftp://x/"][..],
            &["https://127.0.0.1/"],
            &["http://127.0.0.1/", "-c", "0"],
            &["http://127.0.0.1/", "-n", "0"],
            &["http://127.0.0.1/", "-n", "5", "-z", "1s"],
            &["http://127.0.0.1/", "-z", "soon"],
            &["http://127.0.0.1/", "--timeout", "x"],
            &["http://127.0.0.1/", "-H", "NoColon"],
            &["http://127.0.0.1/", "-D", "/nonexistent/body"],
            &["http://127.0.0.1/", "-d", "a", "-D", "/etc/hostname"],
            &["http://127.0.0.1/", "-m", "G T"],
        ] {
            let (msg, hint) = usage_hint(args);
            assert!(hint.is_some_and(|h| !h.is_empty()), "{args:?}: {msg}");
        }
    }
}
