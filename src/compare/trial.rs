//! One trial: one fresh container of a loaded image, started, waited on until
//! healthy, warmed up and loaded by the load generator while its memory and CPU
//! are sampled, and always removed.
//!
//! This is where podman (`runner`) and the load generator (`loadgen`) meet: the
//! runner knows containers and nothing of the load, the load generator knows
//! URLs and nothing of containers. `ocibench run` is one trial; `compare` runs
//! one per candidate per round. Progress goes to a `TrialObserver`.
//!
//! A trial's load is one closed-loop run, or, with `[load] slo`, a capacity
//! search (`loadgen::find_rate`): open-loop steps at rising rates until the
//! SLO breaks, in the same container, warm-up and sampling.

use std::time::{Duration, Instant};

use crate::loadgen::search::{RateSearch, RateSearchResult, SearchStep, find_rate_measured};
use crate::loadgen::{self, BenchResult, ConfigError, LoadConfig, LoadError, Progress};
use crate::oci::export::ExportError;
use crate::oci::store::BlobStore;
use crate::progress::Reporter;
use crate::runner::{LoadedImage, PodmanRunner, RunnerError, RunningContainer, StartOptions};

use super::image::{StoredManifest, load_into_podman};

/// How to run one trial of an image.
#[derive(Debug, Clone)]
pub struct TrialSpec {
    /// The port the service listens on inside the container.
    pub container_port: u16,
    /// Must answer 2xx before the load starts.
    pub health_path: String,
    /// What the load hits (`/`, `/api?q=1`).
    pub path: String,
    /// From `podman run` to the first 2xx of `health_path`.
    pub startup_timeout: Duration,
    /// `K=V` (or `K`, taken from ocibench's environment), as `podman run -e`.
    pub env: Vec<String>,
    /// More `podman run` arguments, placed before the image.
    pub extra_args: Vec<String>,
    /// Inserted in the container's name: `ocibench-PREFIX-...`.
    pub name_prefix: Option<String>,
    /// The CPUs the container gets (`--cpuset-cpus`); `None`: all. The load's
    /// own CPUs are in its `LoadConfig` (`cpus`).
    pub service_cpus: Option<Vec<usize>>,
    /// A warm-up by time: the load, for this long and not measured, before
    /// the measured run (besides any warm-up count the load has itself).
    pub warmup_for: Option<Duration>,
    /// Search the capacity at an SLO instead of one closed-loop run; the
    /// load is then each step's (timed) load.
    pub search: Option<RateSearch>,
    /// Under host networking, the variable that gives the service its port
    /// (`StartOptions::port_env`).
    pub port_env: Option<String>,
}

impl TrialSpec {
    /// A spec with the usual defaults: health and load on `/`, 60 s to start.
    pub fn new(container_port: u16) -> TrialSpec {
        TrialSpec {
            container_port,
            health_path: "/".into(),
            path: "/".into(),
            startup_timeout: Duration::from_secs(60),
            env: Vec::new(),
            extra_args: Vec::new(),
            name_prefix: None,
            service_cpus: None,
            warmup_for: None,
            search: None,
            port_env: Some("PORT".into()),
        }
    }

    fn start_options(&self) -> StartOptions {
        StartOptions {
            env: self.env.clone(),
            extra_args: self.extra_args.clone(),
            name_prefix: self.name_prefix.clone(),
            cpuset_cpus: self.service_cpus.clone(),
            port_env: self.port_env.clone(),
        }
    }
}

/// What one trial measured.
#[derive(Debug, Clone)]
pub struct TrialOutcome {
    /// The container's name (it no longer exists).
    pub container: String,
    /// How the load reached it (`published port (root, netavark)`, `host network, port N`).
    pub network: String,
    /// From the `podman run` call to the first 2xx answer of the health path.
    pub startup: Duration,
    /// Highest memory use seen during the load (`podman stats`).
    pub peak_memory_bytes: Option<u64>,
    /// Highest CPU use between two samples, in percent of one core.
    pub cpu_percent_peak: Option<f64>,
    /// CPU use over the load, in percent of one core (tells whether the
    /// service or the load generator was the bottleneck).
    pub cpu_percent_mean: Option<f64>,
    /// The load generator's worker threads (at least 1).
    pub load_threads: usize,
    /// Wall time of the whole load, warm-up included (the span the CPU times cover).
    pub load_seconds: f64,
    /// CPU seconds every process of the container used during the load, from
    /// its cgroup (`None` if this host's cgroup could not be read).
    pub service_cpu_seconds: Option<f64>,
    /// CPU seconds this process (the load generator) used during the load.
    pub generator_cpu_seconds: Option<f64>,
    /// The CPUs the container could run on, read back from its cgroup.
    pub service_cpus: Option<Vec<usize>>,
    /// The measured run; in a capacity search, the step at the capacity found
    /// (or, when no rate kept the SLO, the step at the lowest rate tried).
    pub bench: BenchResult,
    /// The capacity search, when the trial ran one (`TrialSpec::search`).
    pub search: Option<RateSearchResult>,
}

impl TrialOutcome {
    /// The service's CPU over the load in percent of one core (cgroup), else the
    /// mean of `podman stats` samples, else their peak.
    pub fn service_cpu_percent(&self) -> Option<f64> {
        self.service_cpu_seconds
            .map(|s| 100.0 * s / self.load_seconds.max(1e-9))
            .or(self.cpu_percent_mean)
            .or(self.cpu_percent_peak)
    }
}

/// Builds the load for a container's URL (`http://127.0.0.1:PORT/path`).
pub type LoadFor<'a> = dyn Fn(&str) -> Result<LoadConfig, ConfigError> + 'a;

/// Phases of a trial, for progress display. All methods default to nothing.
pub trait TrialObserver {
    fn container_started(&self, _container: &RunningContainer) {}
    fn container_ready(&self, _container: &RunningContainer, _startup: Duration) {}
    /// The measured load starts; poll `progress` for finished requests.
    fn load_started(&self, _config: &LoadConfig, _progress: &Progress) {}
    fn load_finished(&self) {}
    /// A step of a capacity search finished.
    fn search_step(&self, _step: &SearchStep) {}
}

/// An observer that ignores everything.
pub struct NoObserver;

impl TrialObserver for NoObserver {}

/// Why a trial, or getting its image into podman (`image::load_into_podman`), failed.
///
/// `Runner` and `Export` are transparent: their own message says it all
/// (`container ... did not answer ...`), as it did before the trial had a type of
/// its own; `app::explain` asks the error inside for the hint.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error("the load configuration is invalid")]
    LoadConfig(#[source] ConfigError),
    #[error("the load could not run")]
    Load(#[source] LoadError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("creating a scratch directory in the cache")]
    Scratch(#[source] std::io::Error),
    #[error("internal image name: {0}")]
    ImageName(&'static str),
    /// The loopback registry podman pulls a candidate from could not start.
    #[error("serving the image to podman")]
    Serve(#[from] crate::oci::serve::ServeError),
}

/// Starts a fresh container of `image`, waits for `spec.health_path`, runs
/// the load `load_for` builds for its URL while sampling memory and CPU, and
/// removes the container (on every path: `RunningContainer` removes itself
/// when dropped).
pub fn run_trial(
    runner: &PodmanRunner,
    image: &LoadedImage,
    spec: &TrialSpec,
    load_for: &LoadFor<'_>,
    observer: &dyn TrialObserver,
) -> Result<TrialOutcome, TrialError> {
    let container = runner.start(image, spec.container_port, &spec.start_options())?;
    observer.container_started(&container);
    let startup = container.wait_ready(&spec.health_path, spec.startup_timeout)?;
    observer.container_ready(&container, startup);
    let config = load_for(&container.url(&spec.path)).map_err(TrialError::LoadConfig)?;
    let cgroup = container.cgroup().unwrap_or_default();
    let service_cpus = cgroup.cpus(); // while the container (and its cgroup) exists
    if let Some(d) = spec.warmup_for {
        loadgen::run(&warmup_by_time(&config, d), &Progress::new()).map_err(TrialError::Load)?;
    }
    let sampler = container.sample_memory();
    let progress = Progress::new();
    observer.load_started(&config, &progress);
    let (service_before, generator_before) = (cgroup.cpu_seconds(), process_cpu_seconds());
    let load_start = Instant::now();
    let result = match &spec.search {
        None => loadgen::run(&config, &progress).map(|r| (r, None)),
        Some(search) => {
            let mut steps = Vec::new();
            find_rate_measured(&config, search, &progress, &mut |step, r| {
                observer.search_step(step);
                steps.push(r.clone());
            })
            .map(|found| (run_at_capacity(&found, steps), Some(found)))
        }
    };
    let load_seconds = load_start.elapsed().as_secs_f64();
    let since = |before: Option<f64>, now: Option<f64>| Some((now? - before?).max(0.0));
    let service_cpu_seconds = since(service_before, cgroup.cpu_seconds());
    let generator_cpu_seconds = since(generator_before, process_cpu_seconds());
    let usage = sampler.stop();
    observer.load_finished();
    let (bench, search) = result.map_err(TrialError::Load)?;
    let name = container.name().to_string();
    let network = container.network().to_string();
    container.remove()?;
    Ok(TrialOutcome {
        container: name,
        network,
        startup,
        peak_memory_bytes: usage.peak_memory_bytes,
        cpu_percent_peak: usage.cpu_percent_peak,
        cpu_percent_mean: usage.cpu_percent_mean,
        load_threads: config.threads.max(1),
        load_seconds,
        service_cpu_seconds,
        generator_cpu_seconds,
        service_cpus,
        bench,
        search,
    })
}

/// The run of a search that stands for the trial: the step at the capacity
/// found (its last step at that rate), else the one at the lowest rate tried
/// (the closest to passing). `steps` holds each step's result, in order.
pub fn run_at_capacity(found: &RateSearchResult, mut steps: Vec<BenchResult>) -> BenchResult {
    let at = match found.found_per_second {
        Some(rate) => found.steps.iter().rposition(|s| s.rate == rate),
        None => found
            .steps
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.rate.total_cmp(&b.1.rate))
            .map(|(i, _)| i),
    };
    // A checked search takes at least 2 steps (`RateSearch::check`), each with a result.
    let last = steps.len().saturating_sub(1);
    steps.swap_remove(at.unwrap_or(last).min(last))
}

/// CPU seconds (user + system, every thread) this process has used so far.
pub fn process_cpu_seconds() -> Option<f64> {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(tv(u.ru_utime) + tv(u.ru_stime))
}

/// `config` as an unmeasured warm-up of `time` (no warm-up count of its own).
pub fn warmup_by_time(config: &LoadConfig, time: Duration) -> LoadConfig {
    let mut w = config.clone();
    w.stop = loadgen::Stop::Duration(time);
    w.warmup = 0;
    w
}

/// `ocibench run`: loads a stored image into podman, runs one trial of it and
/// removes the image again.
pub fn run_stored(
    runner: &PodmanRunner,
    store: &BlobStore,
    image: StoredManifest<'_>,
    spec: &TrialSpec,
    load_for: &LoadFor<'_>,
    observer: &dyn TrialObserver,
    export_progress: &dyn Reporter,
) -> Result<TrialOutcome, TrialError> {
    let loaded = load_into_podman(runner, store, image, "run", export_progress)?;
    run_trial(runner, &loaded, spec, load_for, observer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::result::Tally;

    fn outcome(cgroup: Option<f64>, mean: Option<f64>, peak: Option<f64>) -> TrialOutcome {
        TrialOutcome {
            container: "c".into(),
            network: "published port (root, netavark)".into(),
            startup: Duration::from_millis(1),
            peak_memory_bytes: None,
            cpu_percent_peak: peak,
            cpu_percent_mean: mean,
            load_threads: 1,
            load_seconds: 2.0,
            service_cpu_seconds: cgroup,
            generator_cpu_seconds: None,
            service_cpus: None,
            bench: Tally::new().into_result("http://h/", 1, true, Duration::from_secs(2)),
            search: None,
        }
    }

    #[test]
    fn a_searchs_run_is_the_step_at_the_capacity_found() {
        use crate::loadgen::search::{SearchStep, Slo};
        let step = |rate: f64, passed: bool| SearchStep {
            rate,
            passed,
            percentile_ms: None,
            error_rate: 0.0,
            achieved_per_second: rate,
            scheduled: 0,
            sent: 0,
            reason: None,
            latency_ms: None,
        };
        // Ramp 100, 200 (fail), bisect 150 (pass), 175 (fail): found 150.
        let rates = [(100.0, true), (200.0, false), (150.0, true), (175.0, false)];
        let steps: Vec<SearchStep> = rates.iter().map(|&(r, p)| step(r, p)).collect();
        let result = |found| RateSearchResult {
            url: "http://h/".into(),
            concurrency: 1,
            slo: Slo::parse("p99=5ms").unwrap(),
            precision: 0.2,
            step_seconds: 1.0,
            found_per_second: found,
            at_found: None,
            first_failed: None,
            converged: true,
            steps: steps.clone(),
        };
        // Each step's result told apart by its duration.
        let benches = || -> Vec<BenchResult> {
            (1..=4)
                .map(|s| Tally::new().into_result("http://h/", 1, true, Duration::from_secs(s)))
                .collect()
        };
        assert_eq!(
            run_at_capacity(&result(Some(150.0)), benches()).total_seconds,
            3.0
        );
        // None passed: the lowest rate tried, the closest to passing.
        assert_eq!(run_at_capacity(&result(None), benches()).total_seconds, 1.0);
    }

    #[test]
    fn service_cpu_prefers_the_cgroup_over_podman_stats() {
        // 1.5 CPU seconds over a 2 s load: 75% of one core, whatever stats sampled.
        assert_eq!(
            outcome(Some(1.5), Some(40.0), Some(90.0)).service_cpu_percent(),
            Some(75.0)
        );
        assert_eq!(
            outcome(None, Some(40.0), Some(90.0)).service_cpu_percent(),
            Some(40.0)
        );
        assert_eq!(
            outcome(None, None, Some(90.0)).service_cpu_percent(),
            Some(90.0)
        );
        assert_eq!(outcome(None, None, None).service_cpu_percent(), None);
    }
}
