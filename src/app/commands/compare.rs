//! `ocibench compare`: the whole experiment of DESIGN.md's "Origin", done properly.
//!
//! Builds the application on every candidate base (the build command's builder),
//! loads each image into podman once, then runs `repeats` rounds: in each, every
//! candidate in rotating order gets a fresh container, a warm-up and a measured
//! load. The measurements go to `report::analyze`; the report is printed as a
//! table and written as Markdown, JSON and SVG on request.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use crate::app::commands::run::{CliObserver, load_into_podman};
use crate::app::explain::UserError;
use crate::app::globals::Context;
use ocibench::compare::config::{CompareConfig, DEFAULT_APP_SERVER, DEFAULT_TOML};
use ocibench::compare::schedule;
use ocibench::loadgen::LoadConfig;
use ocibench::oci::build::{BuildSpec, ImageBuilder, LayerSpec, NixSpec};
use ocibench::oci::location::ImageLocation;
use ocibench::oci::manifest::Platform;
use ocibench::oci::store::BlobStore;
use ocibench::oci::store::write_atomic;
use ocibench::report::{self, CandidateRuns, CompareInput, Format, LoadSummary};
use ocibench::runner::{PodmanRunner, RunSpec, RunnerOptions};

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
    /// Override [load] requests per run
    #[arg(short = 'n', long, value_name = "N")]
    pub requests: Option<u64>,
    /// Override [load] concurrency
    #[arg(short = 'c', long, value_name = "C")]
    pub concurrency: Option<u64>,
    /// Override [load] warm-up requests
    #[arg(long, value_name = "N")]
    pub warmup: Option<u64>,
    /// OCI runtime for podman (runc, crun) [default: probed]
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    #[command(flatten)]
    pub tls: crate::app::args::TlsArgs,
}

pub fn run(args: CompareArgs, ctx: &Context) -> anyhow::Result<()> {
    // Keep the embedded demo's files alive for the whole run.
    let (mut config, _demo_dir) = load_config(args.file.as_deref())?;
    if let Some(r) = args.repeats {
        config.load.repeats = r;
    }
    if let Some(n) = args.requests {
        config.load.requests = n;
    }
    if let Some(c) = args.concurrency {
        config.load.concurrency = c;
    }
    if let Some(w) = args.warmup {
        config.load.warmup = w;
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
    let tls = args.tls.mode();
    // Validate the load settings before building anything.
    load_config_for(&config, "http://127.0.0.1:1/")?;
    let show = ctx.show_progress();
    let say = |msg: &str| {
        if !ctx.quiet {
            eprintln!("{msg}");
        }
    };

    ocibench::runner::cleanup::on_signal(|sig| {
        let what = if sig == libc::SIGINT {
            "interrupted"
        } else {
            "terminated"
        };
        let _ = writeln!(
            std::io::stderr(),
            "ocibench: {what}; removing containers and images"
        );
    });
    let runner = PodmanRunner::new(RunnerOptions {
        podman: None,
        runtime: args.runtime.clone(),
    })?;

    // 1. Build the application on every base and load it into podman.
    let mut built = Vec::new();
    for c in &config.candidates {
        say(&format!("==> {}: building on {}", c.name, c.base));
        let spec = build_spec(&config, &c.base).with_context(|| format!("candidate {}", c.name))?;
        let store = BlobStore::open(&ctx.cache_dir)?;
        let reporter = crate::app::terminal::reporter(show);
        let image = ImageBuilder::new(&store, ctx.registry_client(tls), reporter.as_ref())
            .build(&spec)
            .with_context(|| format!("building candidate {} on {}", c.name, c.base))?;
        let loaded = load_into_podman(
            &runner,
            &store,
            &image.manifest_digest,
            &image.media_type,
            "compare",
            show,
        )
        .with_context(|| format!("loading candidate {} into podman", c.name))?;
        say(&format!(
            "    {} on disk, {} compressed",
            ocibench::report::units::human_bytes(image.size.uncompressed_bytes),
            ocibench::report::units::human_bytes(image.size.compressed_bytes)
        ));
        built.push((image, loaded));
    }

    // 2. Rounds in rotating order, a fresh container each run.
    let mut runs: Vec<CandidateRuns> = config
        .candidates
        .iter()
        .zip(&built)
        .map(|(c, (image, _))| CandidateRuns {
            name: c.name.clone(),
            base: c.base.clone(),
            image: image.size.clone(),
            startup_ms: Vec::new(),
            peak_memory_bytes: Vec::new(),
            service_cpu_percent: Vec::new(),
            generator_cpu_share: Vec::new(),
            runs: Vec::new(),
        })
        .collect();
    let spec = RunSpec {
        container_port: config.app.port,
        health_path: config.app.health.clone(),
        path: config.app.path.clone(),
        startup_timeout: config.app.startup_timeout,
        env: Vec::new(),
        extra_args: config.app.podman_args.clone(),
        name_prefix: Some("compare".into()),
    };
    let rounds = schedule(config.candidates.len(), config.load.repeats);
    let observer = CliObserver::new(show);
    for (r, order) in rounds.iter().enumerate() {
        for &i in order {
            let name = &config.candidates[i].name;
            let threads = std::cell::Cell::new(1usize);
            let cpu_before = process_cpu_seconds();
            let t0 = Instant::now();
            let outcome = runner
                .run_once(
                    &built[i].1,
                    &spec,
                    &|url: &str| {
                        let c = load_config_for(&config, url)?;
                        threads.set(c.threads.max(1));
                        Ok(c)
                    },
                    &observer,
                )
                .with_context(|| format!("round {} of candidate {name}", r + 1))?;
            // The whole run's CPU (start-up wait included) over the load's
            // threads × the load's wall time: an upper bound on the generator's share.
            let load_secs = outcome.bench.total_seconds.max(1e-9);
            let cpu = (process_cpu_seconds() - cpu_before).max(0.0);
            let share =
                (cpu.min(t0.elapsed().as_secs_f64()) / (threads.get() as f64 * load_secs)).min(1.0);
            let c = &mut runs[i];
            c.startup_ms.push(outcome.startup.as_secs_f64() * 1000.0);
            if let Some(m) = outcome.peak_memory_bytes {
                c.peak_memory_bytes.push(m);
            }
            // The mean over the load says whether the service was saturated;
            // a peak between two samples can overstate it.
            if let Some(p) = outcome.cpu_percent_mean.or(outcome.cpu_percent_peak) {
                c.service_cpu_percent.push(p);
            }
            c.generator_cpu_share.push(share);
            say(&format!(
                "    round {}/{}: {name:<20} {:>10.1} req/s  (start-up {:.0} ms)",
                r + 1,
                rounds.len(),
                outcome.bench.requests_per_second,
                outcome.startup.as_secs_f64() * 1000.0
            ));
            c.runs.push(outcome.bench);
        }
    }
    drop(built); // removes the images from podman

    // 3. Analyse and report.
    let report = report::analyze(CompareInput {
        candidates: runs,
        load: LoadSummary {
            requests: config.load.requests,
            concurrency: config.load.concurrency,
            keepalive: config.load.keepalive,
            warmup: config.load.warmup,
            repeats: config.load.repeats,
            path: config.app.path.clone(),
        },
    });
    for (file, format) in [
        (&args.json, Format::Json),
        (&args.markdown, Format::Markdown),
        (&args.svg, Format::Svg),
    ] {
        if let Some(path) = file {
            write_atomic(path, &format.render(&report))
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let mut out = std::io::stdout().lock();
    Format::Table.write(&report, &mut out)?;
    out.flush()?;
    Ok(())
}

/// `-f FILE`, else `./ocibench.toml`, else the embedded demo (written to a temp dir).
fn load_config(file: Option<&Path>) -> anyhow::Result<(CompareConfig, Option<tempfile::TempDir>)> {
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

fn build_spec(config: &CompareConfig, base: &str) -> anyhow::Result<BuildSpec> {
    let from: ImageLocation = base.parse().map_err(|e| {
        UserError::usage(format!("base {base:?}: {e}")).with_hint(
            "a base is an image reference (REGISTRY/REPO:TAG) or oci:/oci-archive:/docker-archive:",
        )
    })?;
    let app = &config.app;
    Ok(BuildSpec {
        from: Some(from),
        layers: app
            .layers
            .iter()
            .map(|l| LayerSpec {
                src: l.src.clone(),
                dest: l.dest.clone(),
                created_by: format!("ocibench build --layer {}", l.dest),
            })
            .collect(),
        nix: NixSpec::default(),
        config: ocibench::oci::image_config::ConfigEdit {
            entrypoint: app.entrypoint.clone(),
            cmd: app.cmd.clone(),
            env: app.env.clone(),
            workdir: app.workdir.clone(),
            expose: vec![format!("{}/tcp", app.port)],
            labels: vec![(
                "org.opencontainers.image.description".into(),
                "ocibench compare candidate".into(),
            )],
            user: app.user.clone(),
            created_epoch: 0,
        },
        platform: Platform::host(),
    })
}

fn load_config_for(
    config: &CompareConfig,
    url: &str,
) -> Result<LoadConfig, ocibench::loadgen::ConfigError> {
    LoadConfig::builder(url)
        .requests(config.load.requests)
        .concurrency(config.load.concurrency)
        .keepalive(config.load.keepalive)
        .warmup(config.load.warmup)
        .timeout(Some(config.load.timeout))
        .build()
}

/// User + system CPU seconds of this process so far (all threads).
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
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
