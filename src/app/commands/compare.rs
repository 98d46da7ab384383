//! `ocibench compare`: the command line of the experiment (`compare::experiment`).
//!
//! Reads `ocibench.toml` (or the embedded demo), applies the flags' overrides,
//! checks the outputs can be written, runs the experiment in podman, and renders
//! the report: a table on stdout, Markdown, JSON and SVG files on request.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::app::args::{CopyCredsArgs, layer_created_by, podman_runner};
use crate::app::explain::UserError;
use crate::app::globals::{Context, registry_of};
use crate::app::output::write_stdout;
use crate::app::terminal::CliObserver;
use ocibench::compare::config::{CompareConfig, DEFAULT_APP_SERVER, DEFAULT_TOML};
use ocibench::compare::experiment::{self, Pushed};
use ocibench::compare::lab::{PodmanLab, load_config};
use ocibench::oci::build::ImageBuilder;
use ocibench::oci::location::ImageLocation;
use ocibench::oci::store::{BlobStore, write_atomic};
use ocibench::report::{Format, Report};

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The comparison file [default: ./ocibench.toml if present, else the embedded demo]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Write the report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the report as a Markdown table to FILE
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write an SVG chart (throughput with intervals, sizes) to FILE
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Override [load] repeats (rounds)
    #[arg(long, value_name = "N")]
    pub repeats: Option<u32>,
    /// Override [load] requests per run (replaces a [load] duration)
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Override [load] duration: each run lasts this long (5s, 500ms; replaces [load] requests; with [load] slo, each search step does)
    #[arg(short = 'z', long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Override [load] concurrency
    #[arg(short = 'c', long, value_name = "C")]
    pub concurrency: Option<u64>,
    /// Override [load] warmup with this many requests (replaces a warm-up by time)
    #[arg(long, value_name = "N")]
    pub warmup: Option<u64>,
    /// Let the container and the load generator share every CPU ([load] isolate = false)
    #[arg(long)]
    pub no_isolate: bool,
    /// Start every round warm: pull each image once, before the rounds ([cold_start] rounds = 0)
    #[arg(long)]
    pub no_cold_start: bool,
    /// How the load reaches the service: auto (host network rootless, published port as root), host, published ([load] network)
    #[arg(long, value_name = "PATH", value_parser = crate::app::args::parse_network)]
    pub network: Option<ocibench::runner::NetworkChoice>,
    /// OCI runtime for podman (runc, crun) [default: probed]
    #[arg(long, value_name = "RUNTIME", env = "OCIBENCH_RUNTIME")]
    pub runtime: Option<String>,
    /// After the comparison, push the recommended candidate's image to DEST (docker://REGISTRY/REPO:TAG)
    #[arg(long, value_name = "DEST")]
    pub push: Option<String>,
    /// Credentials for the candidates' registry (what --creds means without --push)
    #[arg(long, value_name = "USER:PASS")]
    pub src_creds: Option<crate::app::args::CredsValue>,
    /// Credentials for the --push destination only (what --creds means with --push)
    #[arg(long, value_name = "USER:PASS")]
    pub dest_creds: Option<crate::app::args::CredsValue>,
    #[command(flatten)]
    pub tls: crate::app::args::TlsArgs,
}

pub fn run(args: CompareArgs, ctx: &Context) -> anyhow::Result<()> {
    // Keep the embedded demo's files alive for the whole run.
    let (mut config, _demo_dir) = read_config(args.file.as_deref())?;
    if let Some(r) = args.repeats {
        config.load.repeats = r;
    }
    if let Some(n) = args.requests {
        if let Some(slo) = &config.load.slo {
            return Err(UserError::usage(format!(
                "-n/--requests does not apply: {} ranks by capacity at {}, searched in timed steps",
                config.source,
                slo.slo.describe()
            ))
            .with_hint("give each step's length with -z DURATION, or [load] slo_step")
            .into());
        }
        config.load.requests = n;
        config.load.duration = None;
    }
    if let Some(z) = &args.duration {
        let d = ocibench::loadgen::config::parse_duration("--duration", z)?;
        if d.is_zero() {
            return Err(UserError::usage("--duration must be longer than 0").into());
        }
        config.load.duration = Some(d);
        // With an SLO, -z is each search step's length, over [load] slo_step too.
        if let Some(slo) = config.load.slo.as_mut() {
            slo.step = None;
        }
    }
    if let Some(c) = args.concurrency {
        config.load.concurrency = c;
    }
    if let Some(w) = args.warmup {
        config.load.warmup = w;
        config.load.warmup_duration = None;
    }
    if args.no_isolate {
        config.load.isolate = false;
    }
    if let Some(n) = args.network {
        config.load.network = n;
    }
    if args.no_cold_start {
        config.cold_start.rounds = 0;
    }
    if config.load.repeats == 0 || config.load.requests == 0 || config.load.concurrency == 0 {
        return Err(
            UserError::usage("--repeats, --requests and --concurrency must be at least 1").into(),
        );
    }
    for out in [&args.json, &args.markdown, &args.svg]
        .into_iter()
        .flatten()
    {
        check_writable(out)?;
    }
    // Validate the load settings and the push destination before building anything.
    load_config(&config.load, "http://127.0.0.1:1/")?;
    let push_dest = args
        .push
        .as_deref()
        .map(crate::app::commands::push::parse_registry_dest)
        .transpose()?;
    let show = ctx.show_progress();

    // As in push and build: `--creds` is the destination's when there is one
    // (`--push`), else the candidates' registry (one registry only, or refused).
    let bases: Vec<ImageLocation> = config
        .candidates
        .iter()
        .filter_map(|c| c.base.parse().ok())
        .collect();
    let sources: Vec<_> = bases.iter().filter_map(registry_of).collect();
    let destinations: Vec<_> = push_dest.iter().collect();
    let copy = CopyCredsArgs {
        src_creds: args.src_creds.clone(),
        dest_creds: args.dest_creds.clone(),
    };
    let ctx = &ctx.bind_creds(&sources, &destinations, &copy)?;
    let runner = podman_runner(
        args.runtime.clone(),
        config.load.network,
        "containers and images",
    )?;
    // Limits this podman cannot apply fail now, not after the builds.
    let mut limit_args = config.app.podman_args.clone();
    for r in
        std::iter::once(&config.app.resources).chain(config.candidates.iter().map(|c| &c.resources))
    {
        limit_args.extend(r.cpus.map(|_| "--cpus".to_string()));
        limit_args.extend(r.memory.as_ref().map(|_| "--memory".to_string()));
    }
    runner.refuse_limits(&limit_args)?;
    let store = BlobStore::open(&ctx.cache_dir)?;
    let progress = ctx.reporter(show);
    let names: Vec<&ocibench::oci::reference::ImageReference> =
        sources.iter().chain(&destinations).copied().collect();
    let client = ctx.registry_client(args.tls.mode(), &names)?;
    let builder = ImageBuilder::new(&store, client.clone(), progress.as_ref());
    let lab = PodmanLab::new(
        &runner,
        &store,
        builder,
        progress.as_ref(),
        &config,
        layer_created_by,
        client,
    );
    let outcome = experiment::run_and_push(
        &lab,
        &config,
        push_dest.as_ref(),
        &CliObserver::new(show, !ctx.quiet),
    )?;
    let report = &outcome.report;
    let (pushed, push_error) = match outcome.pushed {
        None => (None, None),
        Some(Ok(p)) => (Some(p), None),
        Some(Err(e)) => (None, Some(e)),
    };

    for (file, format) in [
        (&args.json, Format::Json),
        (&args.markdown, Format::Markdown),
        (&args.svg, Format::Svg),
    ] {
        if let Some(path) = file {
            let bytes = match format {
                Format::Json => json_with_push(report, pushed.as_ref(), push_dest.is_some())?,
                _ => format.render(report),
            };
            write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    write_stdout(|out| {
        Format::Table.write(report, &mut *out)?;
        if let Some(p) = &pushed {
            writeln!(out, "\n{}", pushed_line(p))?;
        }
        Ok(())
    })?;
    match push_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The table's footer line for a push: `Pushed slim to docker://... (sha256:...)`.
fn pushed_line(p: &Pushed) -> String {
    format!("Pushed {} to {} ({})", p.candidate, p.reference, p.digest)
}

/// The report's JSON with `pushed` (`{candidate, reference, digest}`; null when
/// `--push` was given but nothing was pushed); without `--push`, unchanged.
fn json_with_push(
    report: &Report,
    pushed: Option<&Pushed>,
    asked: bool,
) -> anyhow::Result<Vec<u8>> {
    let rendered = Format::Json.render(report);
    if !asked {
        return Ok(rendered);
    }
    let mut value: serde_json::Value = serde_json::from_slice(&rendered)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("pushed".into(), serde_json::to_value(pushed)?);
    }
    let mut out = serde_json::to_vec_pretty(&value)?;
    out.push(b'\n');
    Ok(out)
}

/// `-f FILE`, else `./ocibench.toml`, else the embedded demo (written to a temp dir).
fn read_config(file: Option<&Path>) -> anyhow::Result<(CompareConfig, Option<tempfile::TempDir>)> {
    if let Some(f) = file {
        return Ok((CompareConfig::load(f)?, None));
    }
    let local = Path::new("ocibench.toml");
    if local.is_file() {
        return Ok((CompareConfig::load(local)?, None));
    }
    let dir = tempfile::Builder::new()
        .prefix("ocibench-demo-")
        .tempdir()
        .context("creating a directory for the embedded demo")?;
    let app = dir.path().join("layers/app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(app.join("server.py"), DEFAULT_APP_SERVER)?;
    let config = CompareConfig::parse(DEFAULT_TOML, dir.path(), "(embedded default)", &|k| {
        std::env::var(k).ok()
    })?;
    Ok((config, Some(dir)))
}

/// Refuses up front an output whose folder does not exist (not after the runs).
fn check_writable(path: &Path) -> Result<(), UserError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(UserError::usage(format!(
            "cannot write {}: {} is not a directory",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::app::explain::{ExitKind, explain};
    use ocibench::compare::experiment::ExperimentError;
    use ocibench::compare::trial::TrialError;
    use ocibench::runner::RunnerError;

    /// The `error:` line and the first hint, as `main` prints them.
    fn shown(e: ExperimentError) -> (String, Option<String>, ExitKind) {
        let err = anyhow::Error::from(e);
        let mut hint = None;
        let mut kind = ExitKind::Runtime;
        for cause in err.chain() {
            if let Some((h, k)) = explain(cause) {
                hint = hint.or(h);
                if k == ExitKind::Usage {
                    kind = k;
                }
            }
        }
        (format!("{err:#}"), hint, kind)
    }

    #[test]
    fn experiment_errors_keep_the_causes_words_and_hints() {
        let (line, hint, kind) = shown(ExperimentError::Trial {
            round: 2,
            name: "slim".into(),
            source: TrialError::Runner(RunnerError::PortsBusy { attempts: 5 }),
        });
        assert_eq!(
            line,
            "round 2 of candidate slim: no free host port after 5 attempts (another process took each one first)"
        );
        assert!(hint.unwrap().contains("free some ports"));
        assert_eq!(kind, ExitKind::Runtime);

        let (line, hint, _) = shown(ExperimentError::Load {
            name: "slim".into(),
            source: TrialError::Runner(RunnerError::PodmanMissing),
        });
        assert_eq!(
            line,
            "pulling candidate slim into podman: podman is not installed (not found on PATH)"
        );
        assert!(hint.unwrap().contains("install podman"));

        let base = "bad base!!";
        let (line, hint, kind) = shown(ExperimentError::Base {
            name: "slim".into(),
            base: base.into(),
            source: base
                .parse::<ocibench::oci::location::ImageLocation>()
                .unwrap_err(),
        });
        assert!(
            line.starts_with(r#"candidate slim: base "bad base!!": invalid image reference"#),
            "{line}"
        );
        assert!(hint.unwrap().starts_with("a base is an image reference"));
        assert_eq!(kind, ExitKind::Usage);

        let (line, hint, kind) = shown(ExperimentError::NothingToPush {
            dest: "docker://r/app:1".into(),
        });
        assert_eq!(
            line,
            "no candidate is recommended, so nothing was pushed to docker://r/app:1"
        );
        assert!(hint.unwrap().contains("ocibench push"));
        assert_eq!(kind, ExitKind::Runtime);
    }

    #[test]
    fn json_gets_pushed_only_with_push() {
        let report = ocibench::report::analyze(ocibench::report::CompareInput {
            candidates: Vec::new(),
            load: ocibench::report::LoadSummary {
                requests: Some(1000),
                duration_seconds: None,
                concurrency: 100,
                keepalive: true,
                warmup: 100,
                warmup_seconds: None,
                repeats: 5,
                path: "/".into(),
                isolation: Default::default(),
                cold_start_rounds: 0,
                cold_start_bandwidth: None,
                slo: None,
                slo_precision: None,
                slo_step_seconds: None,
                network: None,
                notes: Vec::new(),
            },
        });
        let plain = super::json_with_push(&report, None, false).unwrap();
        assert_eq!(plain, ocibench::report::Format::Json.render(&report));
        let v: serde_json::Value =
            serde_json::from_slice(&super::json_with_push(&report, None, true).unwrap()).unwrap();
        assert!(v["pushed"].is_null() && v.get("pushed").is_some());
        let p = super::Pushed {
            candidate: "a".into(),
            reference: "docker://r/app:1".into(),
            digest: "sha256:ab".into(),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&super::json_with_push(&report, Some(&p), true).unwrap())
                .unwrap();
        assert_eq!(v["pushed"]["digest"], "sha256:ab");
        assert_eq!(v["pushed"]["reference"], "docker://r/app:1");
        assert_eq!(
            super::pushed_line(&p),
            "Pushed a to docker://r/app:1 (sha256:ab)"
        );
    }
}
