//! `ocibench run IMAGE --port PORT`: one image, one container, one load.
//!
//! Pulls IMAGE (any transport) into the cache, exports it as a docker-archive
//! and `podman load`s it, starts a container publishing `--port` on 127.0.0.1,
//! waits for `--health` to answer 2xx (start-up time), runs the load against
//! `--path` while sampling the container's memory and CPU, removes the
//! container and the loaded image, and prints the bench summary with start-up
//! time and peak memory (or one JSON document with `--json`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use crate::app::args::SourceSettings;
use crate::app::commands::bench::{self, BenchOptions};
use crate::app::explain::UserError;
use crate::app::globals::Context;
use ocibench::loadgen::{BenchResult, LoadConfig, Progress};
use ocibench::oci::publish::{Destination, ExportImage, export, normalize_docker_reference};
use ocibench::oci::pull::{self as image, ImageSize};
use ocibench::report::units::human_bytes;
use ocibench::runner::{
    PodmanRunner, RunObserver, RunOutcome, RunSpec, RunnerOptions, RunningContainer, cleanup,
};

/// A status line on stderr; never panics (`eprintln!` does when stderr is gone).
macro_rules! status {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Image: docker://REF (or bare REF), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    pub image: String,
    /// The port the service listens on inside the container
    #[arg(long, value_name = "PORT")]
    pub port: u16,
    /// What the load requests
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub path: String,
    /// Must answer 2xx before the load starts [default: --path]
    #[arg(long, value_name = "PATH")]
    pub health: Option<String>,
    /// Time from `podman run` to a 2xx answer of --health (500ms, 3s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub startup_timeout: String,
    /// Environment variable for the container, repeatable (K=V)
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Extra `podman run` argument, repeatable: --podman-arg=--memory=512m
    #[arg(long = "podman-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub podman_args: Vec<String>,
    /// OCI runtime for podman [default: podman's, or runc where crun cannot run]
    #[arg(long, value_name = "NAME", env = "OCIBENCH_RUNTIME")]
    pub runtime: Option<String>,
    /// Put TEXT in container names (ocibench-TEXT-...), to find them in `podman ps`
    #[arg(long, value_name = "TEXT")]
    pub name_prefix: Option<String>,
    #[command(flatten)]
    pub source: crate::app::args::SourceArgs,
    #[command(flatten)]
    pub bench: BenchOptions,
    /// Print one JSON document on stdout instead of the report
    #[arg(long)]
    pub json: bool,
}

/// `run --json`.
#[derive(Serialize)]
struct RunReport<'a> {
    image: &'a ImageSize,
    runtime: Option<String>,
    startup_ms: f64,
    peak_memory_bytes: Option<u64>,
    cpu_percent_peak: Option<f64>,
    cpu_percent_mean: Option<f64>,
    bench: &'a BenchResult,
}

pub fn run(args: RunArgs, ctx: &Context) -> anyhow::Result<()> {
    // Every flag is checked before anything is pulled or started.
    let pull = SourceSettings::new(&args.image, &args.source)?;
    let spec = spec(&args)?;
    let load = args.bench.settings()?;
    load.load_config(format!("http://127.0.0.1:1{}", spec.path))?;
    let show = ctx.show_progress() && !args.json;

    cleanup::on_signal(|sig| {
        let name = if sig == libc::SIGINT {
            "interrupted"
        } else {
            "terminated"
        };
        status!("ocibench: {name}; removing the container");
    });
    let runner = PodmanRunner::new(RunnerOptions {
        podman: None,
        runtime: args.runtime.clone(),
    })?;
    let (store, stored) = ctx.fetch(&pull, show)?;
    let size = image::size_of(&store, &stored.name, &stored.manifest_digest)?;

    if show {
        status!("Loading {} into podman", size.reference);
    }
    let loaded = load_into_podman(
        &runner,
        &store,
        &stored.manifest_digest,
        &stored.manifest_media_type,
        "run",
        show,
    )?;

    let observer = CliObserver::new(show);
    let outcome = runner.run_once(
        &loaded,
        &spec,
        &|url: &str| load.builder(url).build(),
        &observer,
    )?;
    drop(loaded);

    let mut out = std::io::stdout().lock();
    if args.json {
        let report = RunReport {
            image: &size,
            runtime: runner.runtime(),
            startup_ms: outcome.startup.as_secs_f64() * 1000.0,
            peak_memory_bytes: outcome.peak_memory_bytes,
            cpu_percent_peak: outcome.cpu_percent_peak,
            cpu_percent_mean: outcome.cpu_percent_mean,
            bench: &outcome.bench,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        ocibench::loadgen::write_summary(&outcome.bench, &mut out)?;
        writeln!(out)?;
        write_run_summary(&mut out, &size, &spec, &outcome)?;
    }
    out.flush()?;
    bench::check_any_response(&outcome.bench)
}

/// Exports a stored image as a docker-archive in the cache's scratch space (gone
/// once podman has it) and loads it into podman; the image is removed again when
/// the returned value drops. Shared with `compare`.
pub fn load_into_podman(
    runner: &PodmanRunner,
    store: &ocibench::oci::store::BlobStore,
    manifest_digest: &ocibench::oci::digest::Digest,
    media_type: &str,
    purpose: &str,
    show: bool,
) -> anyhow::Result<ocibench::runner::LoadedImage> {
    let scratch = tempfile::Builder::new()
        .prefix(".run-")
        .tempdir_in(store.root().join("ocibench"))
        .context("creating a scratch directory in the cache")?;
    let scratch_guard = cleanup::remove_on_signal(scratch.path());
    let archive = scratch.path().join("image.tar");
    let reference = normalize_docker_reference(&format!(
        "localhost/ocibench/{purpose}:{}-{}",
        manifest_digest.short(),
        std::process::id()
    ))
    .map_err(|e| anyhow::anyhow!("internal image name: {e}"))?;
    let export_image = ExportImage::from_store(store, manifest_digest, media_type)?;
    let reporter = crate::app::terminal::reporter(show);
    export(
        store,
        &export_image,
        &Destination::DockerArchive {
            path: archive.clone(),
            reference: Some(reference),
        },
        reporter.as_ref(),
    )?;
    drop(reporter);
    if show {
        status!("Loading {} into podman", manifest_digest);
    }
    let loaded = runner.load(&archive)?;
    drop(scratch);
    drop(scratch_guard);
    Ok(loaded)
}

/// Flags -> a `RunSpec`; bad paths and durations are usage errors.
fn spec(args: &RunArgs) -> anyhow::Result<RunSpec> {
    for (flag, p) in [
        ("--path", Some(&args.path)),
        ("--health", args.health.as_ref()),
    ] {
        if p.is_some_and(|p| !p.starts_with('/')) {
            let p = p.map_or("", |p| p.as_str());
            return Err(
                UserError::usage(format!("{flag} {p:?} is not an absolute path"))
                    .with_hint(format!("{flag} takes a URL path such as / or /health"))
                    .into(),
            );
        }
    }
    if args.port == 0 {
        return Err(UserError::usage("--port 0 is not a port")
            .with_hint("--port is the port the service listens on inside the container, e.g. 8080")
            .into());
    }
    let startup_timeout =
        ocibench::loadgen::config::parse_duration("--startup-timeout", &args.startup_timeout)
            .map_err(bench::usage)?;
    if startup_timeout.is_zero() {
        return Err(UserError::usage("--startup-timeout must be more than 0")
            .with_hint("give the service time to start, e.g. --startup-timeout 60s")
            .into());
    }
    for e in &args.env {
        if e.is_empty() || e.starts_with('=') {
            return Err(
                UserError::usage(format!("--env {e:?} has no variable name"))
                    .with_hint("write --env NAME=VALUE")
                    .into(),
            );
        }
    }
    Ok(RunSpec {
        container_port: args.port,
        health_path: args.health.clone().unwrap_or_else(|| args.path.clone()),
        path: args.path.clone(),
        startup_timeout,
        env: args.env.clone(),
        extra_args: args.podman_args.clone(),
        name_prefix: args.name_prefix.clone(),
    })
}

/// Start-up time, memory and CPU, in the bench summary's layout.
fn write_run_summary(
    out: &mut dyn Write,
    size: &ImageSize,
    spec: &RunSpec,
    o: &RunOutcome,
) -> std::io::Result<()> {
    writeln!(out, "Image:                  {}", size.reference)?;
    writeln!(
        out,
        "Image size:             {} compressed, {} uncompressed",
        human_bytes(size.compressed_bytes),
        human_bytes(size.uncompressed_bytes)
    )?;
    writeln!(
        out,
        "Start-up time:          {:.1} ms (podman run to the first 2xx of {})",
        o.startup.as_secs_f64() * 1000.0,
        spec.health_path
    )?;
    match o.peak_memory_bytes {
        Some(m) => writeln!(
            out,
            "Peak memory:            {} ({m} bytes, podman stats)",
            human_bytes(m)
        )?,
        None => writeln!(
            out,
            "Peak memory:            unknown (podman stats gave nothing)"
        )?,
    }
    if let (Some(mean), Some(peak)) = (o.cpu_percent_mean, o.cpu_percent_peak) {
        writeln!(
            out,
            "Container CPU:          {mean:.1}% mean, {peak:.1}% peak (100% = one core)"
        )?;
    }
    Ok(())
}

/// Status lines and the load's progress bar, on a terminal only.
pub(crate) struct CliObserver {
    show: bool,
    bar: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl CliObserver {
    pub(crate) fn new(show: bool) -> Self {
        CliObserver {
            show,
            bar: Mutex::new(None),
        }
    }
}

impl RunObserver for CliObserver {
    fn container_started(&self, c: &RunningContainer) {
        if self.show {
            status!(
                "Started {} (127.0.0.1:{} -> {})",
                c.name(),
                c.host_port(),
                c.container_port()
            );
        }
    }
    fn container_ready(&self, _c: &RunningContainer, startup: Duration) {
        if self.show {
            status!("Ready after {:.1} ms", startup.as_secs_f64() * 1000.0);
        }
    }
    fn load_started(&self, config: &LoadConfig, progress: &Progress) {
        if !self.show {
            return;
        }
        let done = Arc::new(AtomicBool::new(false));
        let (config, progress, flag) = (config.clone(), progress.clone(), done.clone());
        let handle = std::thread::spawn(move || bench::draw_progress(&config, &progress, &flag));
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some((done, handle));
    }
    fn load_finished(&self) {
        if let Some((done, handle)) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            done.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<RunSpec> {
        let w = Wrap::try_parse_from(std::iter::once("run").chain(args.iter().copied()))?;
        spec(&w.run)
    }

    #[test]
    fn flags_to_spec() {
        let s = parse(&[
            "img",
            "--port",
            "8080",
            "--path",
            "/api",
            "--env",
            "A=1",
            "--podman-arg",
            "--memory=64m",
            "--startup-timeout",
            "5s",
            "-n",
            "10",
        ])
        .unwrap();
        assert_eq!(s.container_port, 8080);
        assert_eq!((s.path.as_str(), s.health_path.as_str()), ("/api", "/api"));
        assert_eq!(s.env, vec!["A=1"]);
        assert_eq!(s.extra_args, vec!["--memory=64m"]);
        assert_eq!(s.startup_timeout, Duration::from_secs(5));
        let s = parse(&["img", "--port", "80", "--health", "/healthz"]).unwrap();
        assert_eq!((s.path.as_str(), s.health_path.as_str()), ("/", "/healthz"));
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for args in [
            &["img", "--port", "80", "--path", "api"][..],
            &["img", "--port", "80", "--health", "health"],
            &["img", "--port", "0"],
            &["img", "--port", "80", "--startup-timeout", "soon"],
            &["img", "--port", "80", "--startup-timeout", "0s"],
            &["img", "--port", "80", "--env", "=x"],
        ] {
            let err = parse(args).unwrap_err();
            let u = err.downcast_ref::<UserError>().expect("a UserError");
            assert_eq!(u.kind, crate::app::explain::ExitKind::Usage, "{args:?}");
            assert!(u.hint.is_some(), "{args:?}");
        }
    }
}
