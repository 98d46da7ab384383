//! `ocibench run IMAGE --port PORT`: one image, one container, one load.
//!
//! Checks every flag, pulls IMAGE (any transport) into the cache, then one
//! trial (`compare::trial::run_stored`): the image loaded into podman, a
//! container publishing `--port` on 127.0.0.1, `--health` waited for (start-up
//! time), the load against `--path` while the container's memory and CPU are
//! sampled, container and image removed. Prints `report::run`'s text (the bench
//! summary with start-up time and peak memory) or one JSON document (`--json`).

use crate::app::args::{BenchOptions, SourceSettings, check_any_response, podman_runner, usage};
use crate::app::explain::UserError;
use crate::app::globals::Context;
use crate::app::output::{self, write_stdout};
use crate::app::terminal::{CliObserver, status};
use ocibench::compare::image::StoredManifest;
use ocibench::compare::trial::{TrialSpec, run_stored};
use ocibench::report::run::{RunReport, write_text};

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
    /// How the load reaches the service: auto (host network rootless, published port as root), host, published
    #[arg(long, value_name = "PATH", default_value = "auto", value_parser = crate::app::args::parse_network)]
    pub network: ocibench::runner::NetworkChoice,
    /// Under host networking, the variable that tells the service its port ("" for none: it keeps --port)
    #[arg(long, value_name = "NAME", default_value = "PORT")]
    pub port_env: String,
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

pub fn run(args: RunArgs, ctx: &Context) -> anyhow::Result<()> {
    // Every flag is checked before anything is pulled or started.
    let pull = SourceSettings::new(&args.image, &args.source)?;
    let spec = spec(&args)?;
    let load = args.bench.settings()?;
    let probe = load.load_config(format!("http://127.0.0.1:1{}", spec.path))?;
    // -c beyond the file-descriptor limit fails now, not after the container started.
    ocibench::loadgen::reserve_fds(&probe)?;
    let show = ctx.show_progress() && !args.json;

    let runner = podman_runner(args.runtime.clone(), args.network, "the container")?;
    let ctx = &ctx.bind_creds_to_source(&pull.location)?;
    let (store, stored, size) = ctx.fetch_sized(&pull, show)?;

    if show {
        status(format_args!("Loading {} into podman", size.reference));
    }
    let outcome = run_stored(
        &runner,
        &store,
        StoredManifest {
            digest: &stored.manifest_digest,
            media_type: &stored.manifest_media_type,
        },
        &spec,
        &|url: &str| load.builder(url).build(),
        &CliObserver::new(show, false),
        ctx.reporter(show).as_ref(),
    )?;

    let report = RunReport {
        image: size,
        runtime: runner.runtime(),
        network: outcome.network.clone(),
        storage_driver: runner.host().graph_driver.clone(),
        service_cpu_percent: outcome.service_cpu_percent(),
        notes: runner.unmeasured(),
        startup_ms: outcome.startup.as_secs_f64() * 1000.0,
        peak_memory_bytes: outcome.peak_memory_bytes,
        cpu_percent_peak: outcome.cpu_percent_peak,
        cpu_percent_mean: outcome.cpu_percent_mean,
        bench: outcome.bench,
    };
    let written = write_stdout(|out| {
        if args.json {
            output::json(out, &report)
        } else {
            write_text(&report, &spec.health_path, out)
        }
    });
    // A run that measured nothing fails, whether or not stdout was still open.
    check_any_response(&report.bench)?;
    written
}

/// Flags -> a `TrialSpec`; bad paths and durations are usage errors.
fn spec(args: &RunArgs) -> anyhow::Result<TrialSpec> {
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
            .map_err(usage)?;
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
    Ok(TrialSpec {
        container_port: args.port,
        health_path: args.health.clone().unwrap_or_else(|| args.path.clone()),
        path: args.path.clone(),
        startup_timeout,
        env: args.env.clone(),
        extra_args: args.podman_args.clone(),
        name_prefix: args.name_prefix.clone(),
        service_cpus: None,
        warmup_for: None,
        search: None,
        port_env: Some(args.port_env.clone()).filter(|e| !e.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<TrialSpec> {
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
