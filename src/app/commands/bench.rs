//! `ocibench bench URL`: the load generator's command.
//!
//! Turns flags into a validated `LoadConfig` (bad input: exit 2 with a hint),
//! runs it while a progress bar polls the library's counter, then prints the
//! ab-style report or one JSON document. A run in which no request got any
//! response (refused, timed out, or unfinished at a `-z` deadline) is reported,
//! then fails with exit status 1 (wrk and oha exit 0 there).

use crate::app::args::{BenchOptions, check_any_response, usage};
use crate::app::explain::UserError;
use crate::app::globals::Context;
use crate::app::output::{self, write_stdout};
use crate::app::terminal::{CliObserver, status};
use ocibench::compare::trial::TrialObserver;
use ocibench::loadgen::search::{self, RateSearch, Slo, parse_percent};
use ocibench::loadgen::{self, LoadConfig, Progress};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// URL to load (http://HOST:PORT/PATH or https://...)
    pub url: String,
    #[command(flatten)]
    pub options: BenchOptions,
    /// Print one JSON document on stdout instead of the report
    #[arg(long)]
    pub json: bool,
    /// Search the highest rate that keeps --slo: open-loop steps of -z each
    /// (default 3s), doubling from -R (default 100) until one fails, then
    /// bisecting to within --precision
    #[arg(long, requires = "slo")]
    pub find_rate: bool,
    /// The objective of --find-rate: a latency percentile, optionally an error
    /// rate (default errors=1%): p99=50ms, p99.9=200ms,errors=0.1%
    #[arg(long, value_name = "SLO", requires = "find_rate")]
    pub slo: Option<String>,
    /// How close --find-rate gets: the lowest failing rate within this much
    /// above the highest passing one
    #[arg(
        long,
        value_name = "PERCENT",
        default_value = "5%",
        requires = "find_rate"
    )]
    pub precision: String,
    /// The most steps --find-rate takes
    #[arg(long, value_name = "N", default_value_t = search::DEFAULT_MAX_STEPS, requires = "find_rate")]
    pub max_steps: u32,
}

pub fn run(args: BenchArgs, ctx: &Context) -> anyhow::Result<()> {
    if args.find_rate {
        return find_rate(&args, ctx);
    }
    let config = settings(&args)?;
    let progress = Progress::new();
    // The same bar `run` and `compare` draw around their loads.
    let bar = CliObserver::new(ctx.show_progress() && !args.json, false);
    bar.load_started(&config, &progress);
    let result = loadgen::run(&config, &progress);
    bar.load_finished();
    // A LoadError's message, its cause and hint come through app::explain.
    let result = result?;

    let written = write_stdout(|out| {
        if args.json {
            output::json(out, &result)
        } else {
            ocibench::report::bench::write_summary(&result, out)
        }
    });
    // A run that measured nothing fails, whether or not stdout was still open.
    check_any_response(&result)?;
    written
}

/// Flags -> a validated `LoadConfig`; every mistake is a usage error with a hint.
fn settings(args: &BenchArgs) -> anyhow::Result<LoadConfig> {
    args.options.settings()?.load_config(args.url.clone())
}

/// `--find-rate`: the search, a line per step on stderr as it goes, then the
/// report (or JSON). Exits 1 when no rate kept the SLO.
fn find_rate(args: &BenchArgs, ctx: &Context) -> anyhow::Result<()> {
    let (config, search) = search_settings(args)?;
    let show = ctx.show_progress() && !args.json;
    if show {
        status(format_args!(
            "searching the highest rate at {} ({} per step)",
            search.slo.describe(),
            humantime::format_duration(match config.stop {
                loadgen::Stop::Duration(d) => d,
                loadgen::Stop::Requests(_) => unreachable!("checked: a search runs by time"),
            })
        ));
    }
    let mut n = 0;
    let result = loadgen::find_rate(&config, &search, &Progress::new(), &mut |step| {
        n += 1;
        if show {
            status(format_args!(
                "  step {n}: {:.1} req/s: {}",
                step.rate,
                step.reason.as_deref().unwrap_or("ok")
            ));
        }
    })?;
    let written = write_stdout(|out| {
        if args.json {
            output::json(out, &result)
        } else {
            ocibench::report::capacity::write_search(&result, out)
        }
    });
    if result.found_per_second.is_none() {
        let lowest = result
            .steps
            .iter()
            .map(|s| s.rate)
            .fold(f64::INFINITY, f64::min);
        return Err(UserError::runtime(format!(
            "no rate kept {}: even {lowest} req/s missed it",
            search.slo.describe()
        ))
        .with_hint("check the server, or loosen the SLO (a higher latency bound or percentile)")
        .into());
    }
    written
}

/// The search's load (`-z` per step, default 3s) and settings; `-n` is refused.
fn search_settings(args: &BenchArgs) -> anyhow::Result<(LoadConfig, RateSearch)> {
    let raw = args.slo.as_deref().unwrap_or_default();
    let slo = Slo::parse(raw).map_err(usage)?;
    if args.options.requests.is_some() {
        return Err(
            UserError::usage("--find-rate runs each step for a time, not for -n requests")
                .with_hint("give each step's length with -z (default 3s)")
                .into(),
        );
    }
    let precision = parse_percent(&args.precision).ok_or_else(|| {
        UserError::usage(format!("bad --precision `{}`", args.precision))
            .with_hint("--precision looks like 5% (the default) or 1%")
    })?;
    let mut search = RateSearch::new(slo);
    search.precision = precision;
    search.max_steps = args.max_steps;
    if let Some(r) = args.options.rate {
        search.start = r;
    }
    search.check().map_err(usage)?;
    let mut settings = args.options.settings()?;
    settings.default_duration(search::DEFAULT_STEP);
    let config = settings.load_config(args.url.clone())?;
    Ok((config, search))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::explain::UserError;
    use clap::Parser;
    use ocibench::loadgen::Stop;
    use std::io::Write;
    use std::time::Duration;

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
    fn https_and_http2_flags() {
        let c = parse(&[
            "https://127.0.0.1:8443/",
            "--http2",
            "--streams",
            "8",
            "--insecure",
        ])
        .unwrap();
        assert!(c.https && c.http2);
        assert_eq!((c.streams, c.tls_trust), (8, loadgen::TlsTrust::Insecure));
        let (msg, hint) = usage_hint(&["http://127.0.0.1/", "--streams", "4"]);
        assert!(msg.contains("--streams needs --http2"), "{msg}");
        assert!(hint.unwrap().contains("--http2"));
        let (msg, hint) = usage_hint(&["https://127.0.0.1/", "--cacert", "/nonexistent/ca.pem"]);
        assert!(msg.contains("/nonexistent/ca.pem"), "{msg}");
        assert!(hint.unwrap().contains("PEM"));
    }

    #[test]
    fn bad_input_is_usage_with_hint() {
        for args in [
            &["ftp://x/"][..],
            &["http://127.0.0.1/", "--streams", "4"],
            &["https://127.0.0.1/", "--http2", "--streams", "0"],
            &["https://127.0.0.1/", "--cacert", "/nonexistent/ca.pem"],
            &[
                "https://127.0.0.1/",
                "--cacert",
                "/etc/hostname",
                "--insecure",
            ],
            &["http://127.0.0.1/", "--insecure"],
            &["http://127.0.0.1/", "--http2", "--no-keepalive"],
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
