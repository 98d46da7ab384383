//! The experiment: build the application on every candidate base, make each
//! image ready to run, then `repeats` rounds in rotating order (`schedule`), a
//! fresh container per trial, collecting what `report::analyze` needs: every
//! run's load result, start-up time, peak memory, the service's CPU and the load
//! generator's share of its own CPU.
//!
//! The loop knows the lab only through the `Lab` trait (prepare a candidate, run
//! one trial of it), so its rules are unit-tested with a mock lab and no podman:
//! the rotation, a fresh container per trial, every prepared image removed when
//! any step fails, and the CPU-share arithmetic. `lab::PodmanLab` is the real one.
//! Nothing here prints: progress goes to an `ExperimentObserver`.

use std::time::{Duration, Instant};

use crate::oci::build::BuildError;
use crate::oci::location::TransportError;
use crate::oci::pull::ImageSize;
use crate::oci::push::PushError;
use crate::oci::reference::ImageReference;
use crate::report::{self, CandidateRuns, CompareInput, Isolation, LoadSummary, Report};

use super::config::{Candidate, CompareConfig};
use super::schedule;
use super::trial::{NoObserver, TrialError, TrialObserver, TrialOutcome};

/// Where candidates are prepared and tried: podman (`lab::PodmanLab`), or a mock.
pub trait Lab {
    /// A candidate's built image, ready to be installed on the node.
    type Image;
    /// An image installed on the node (podman's storage); dropping it removes
    /// it from the node.
    type Node;
    /// Builds the application on `candidate`'s base.
    fn prepare(
        &self,
        candidate: &Candidate,
        observer: &dyn ExperimentObserver,
    ) -> Result<Prepared<Self::Image>, ExperimentError>;
    /// Installs `image` on the node the way a node gets it: pulled from a
    /// registry. Timed, for the cold start.
    fn install(
        &self,
        candidate: &Candidate,
        image: &Self::Image,
        observer: &dyn ExperimentObserver,
    ) -> Result<Installed<Self::Node>, TrialError>;
    /// One trial of `candidate`'s installed image: a fresh container with the
    /// candidate's resources, started, loaded and removed before this returns,
    /// also when it fails. `previous_capacity`: with `[load] slo`, the
    /// capacity an earlier run found (this candidate's last, else the last of
    /// any), where the trial's search starts.
    fn trial(
        &self,
        candidate: &Candidate,
        node: &Self::Node,
        previous_capacity: Option<f64>,
        observer: &dyn TrialObserver,
    ) -> Result<TrialOutcome, TrialError>;
    /// Which CPUs the service and the load generator get; unknown by default.
    fn isolation(&self) -> Isolation {
        Isolation::default()
    }
    /// How the load reaches the service, for the report; unknown by default.
    fn network(&self) -> Option<String> {
        None
    }
    /// What the host cannot measure, for the report's notes; none by default.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Pushes `candidate`'s built image to `dest` (`compare --push`).
    fn push(
        &self,
        candidate: &Candidate,
        image: &Self::Image,
        dest: &ImageReference,
    ) -> Result<Pushed, ExperimentError>;
}

/// An image installed on the node, and how its pull went.
pub struct Installed<N> {
    pub node: N,
    pub pull: Pull,
}

/// What one install pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pull {
    /// From the pull's start until the image was in podman's storage.
    pub took: Duration,
    /// The image's layers.
    pub layers: usize,
    /// Layers that were in podman's storage already (shared with an image of
    /// the user's); the pull did not fetch or unpack them.
    pub layers_present: usize,
    /// The whole image was in podman's storage already.
    pub image_present: bool,
}

/// The recommended candidate's image, pushed (`compare --push`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pushed {
    /// The candidate pushed.
    pub candidate: String,
    /// Where it went, as `docker://REF`.
    pub reference: String,
    /// The manifest digest the registry now holds.
    pub digest: String,
}

/// A candidate, built and ready for trials.
pub struct Prepared<I> {
    pub image: I,
    /// The built image's sizes.
    pub size: ImageSize,
}

/// Phases of the experiment, for status lines. All methods default to nothing;
/// the trial's own phases come through `TrialObserver`.
pub trait ExperimentObserver: TrialObserver {
    /// `candidate`'s image is about to be built.
    fn building(&self, _candidate: &Candidate) {}
    /// `candidate`'s built image is being pulled into podman's storage;
    /// `cold`: for a cold start (each trial), else once for all trials.
    fn installing(&self, _candidate: &Candidate, _cold: bool) {}
    /// `candidate` is built and ready for trials.
    fn prepared(&self, _candidate: &Candidate, _size: &ImageSize) {}
    /// A trial of `candidate` finished; `round` counts from 1 to `rounds`;
    /// `pull` is the pull of its cold start (`None` when trials start warm).
    fn trial_finished(
        &self,
        _round: usize,
        _rounds: usize,
        _candidate: &Candidate,
        _outcome: &TrialOutcome,
        _pull: Option<&Pull>,
    ) {
    }
}

impl ExperimentObserver for NoObserver {}

/// Why the experiment stopped. Every image prepared so far has been removed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("candidate {name}: base {base:?}")]
    Base {
        name: String,
        base: String,
        #[source]
        source: TransportError,
    },
    /// The candidate is boxed to keep every `Result` small (`BuildError` is large).
    #[error("building candidate {} on {}", .candidate.name, .candidate.base)]
    Build {
        candidate: Box<Candidate>,
        #[source]
        source: BuildError,
    },
    #[error("pulling candidate {name} into podman")]
    Load {
        name: String,
        #[source]
        source: TrialError,
    },
    #[error("round {round} of candidate {name}")]
    Trial {
        round: usize,
        name: String,
        #[source]
        source: TrialError,
    },
    /// `--push` was asked for but the report recommends no candidate.
    #[error("no candidate is recommended, so nothing was pushed to {dest}")]
    NothingToPush { dest: String },
    #[error("pushing candidate {name} to {dest}")]
    Push {
        name: String,
        dest: String,
        #[source]
        source: Box<PushError>,
    },
}

/// Runs the whole experiment `config` describes in `lab` and analyses it.
pub fn run<L: Lab>(
    lab: &L,
    config: &CompareConfig,
    observer: &dyn ExperimentObserver,
) -> Result<Report, ExperimentError> {
    Ok(run_and_push(lab, config, None, observer)?.report)
}

/// What `run_and_push` produced.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// `None` when no push was asked for; else the push, or why it failed
    /// (`NothingToPush` without a recommendation, `Push`).
    pub pushed: Option<Result<Pushed, ExperimentError>>,
}

/// `run`, then, when `push` names a destination, pushes the recommended
/// candidate's image there. A failed push (or none, without a recommendation)
/// keeps the report: the caller shows it, then the push's error.
pub fn run_and_push<L: Lab>(
    lab: &L,
    config: &CompareConfig,
    push: Option<&ImageReference>,
    observer: &dyn ExperimentObserver,
) -> Result<Outcome, ExperimentError> {
    let (input, prepared) = measure(lab, config, observer, &ProcessClock::new())?;
    let report = report::analyze(input);
    let pushed = push.map(|dest| {
        let nothing = || ExperimentError::NothingToPush {
            dest: format!("docker://{dest}"),
        };
        let name = &report.recommendation.as_ref().ok_or_else(nothing)?.name;
        let i = config
            .candidates
            .iter()
            .position(|c| &c.name == name)
            .ok_or_else(nothing)?;
        lab.push(&config.candidates[i], &prepared[i].image, dest)
    });
    drop(prepared);
    Ok(Outcome { report, pushed })
}

/// Where the experiment reads time: this process's CPU and the wall clock.
/// A trait so the tests can drive both.
trait Clock {
    /// CPU seconds (user + system, all threads) this process has used so far.
    fn cpu_seconds(&self) -> f64;
    /// Wall-clock seconds since a fixed point.
    fn wall_seconds(&self) -> f64;
}

struct ProcessClock(Instant);

impl ProcessClock {
    fn new() -> Self {
        ProcessClock(Instant::now())
    }
}

impl Clock for ProcessClock {
    fn cpu_seconds(&self) -> f64 {
        // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    }
    fn wall_seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// The load generator's share of the CPU it had during one trial: the process's
/// CPU seconds over the whole trial (the start-up wait included, so at most the
/// trial's wall time) over the load's threads × the load's wall time. An upper
/// bound on the generator's share, at most 1.
pub fn generator_cpu_share(
    cpu_seconds: f64,
    trial_wall_seconds: f64,
    load_threads: usize,
    load_seconds: f64,
) -> f64 {
    let load_secs = load_seconds.max(1e-9);
    let cpu = cpu_seconds.max(0.0);
    (cpu.min(trial_wall_seconds) / (load_threads.max(1) as f64 * load_secs)).min(1.0)
}

/// Whether two images have a layer in common (podman stores it once: pulling
/// one would make the other's pull skip it).
fn shares_layers(a: &ImageSize, b: &ImageSize) -> bool {
    a.layers
        .iter()
        .any(|l| b.layers.iter().any(|m| m.diff_id == l.diff_id))
}

/// The measurements, and the prepared images.
type Measured<I> = (CompareInput, Vec<Prepared<I>>);

/// Prepares every candidate, then runs the rounds; the measurements, unanalysed.
///
/// In the first `[cold_start] rounds` rounds every trial installs its image on
/// the node first and removes it after, so at each install no other
/// candidate's image that shares a layer with it is on the node (a base's
/// layers pulled for one candidate would make the next one's start warm). The
/// container's start is the trial's own, so a cold start costs only the pull.
/// The last cold round keeps each image no later pull of that round would
/// find; the warm rounds after it install the rest once and keep them all.
fn measure<L: Lab>(
    lab: &L,
    config: &CompareConfig,
    observer: &dyn ExperimentObserver,
    clock: &dyn Clock,
) -> Result<Measured<L::Image>, ExperimentError> {
    // 1. Build every candidate.
    let mut prepared = Vec::with_capacity(config.candidates.len());
    for c in &config.candidates {
        observer.building(c);
        let p = lab.prepare(c, observer)?;
        observer.prepared(c, &p.size);
        prepared.push(p);
    }
    // The images on the node for warm rounds (removed when dropped, also when
    // anything fails, newest first: see `Shelf`).
    let mut warm: Shelf<L::Node> = Shelf::new(config.candidates.len());

    // 2. Rounds in rotating order, a fresh container each trial.
    let mut runs: Vec<CandidateRuns> = config
        .candidates
        .iter()
        .zip(&prepared)
        .map(|(c, p)| CandidateRuns {
            name: c.name.clone(),
            base: c.base.clone(),
            image: p.size.clone(),
            startup_ms: Vec::new(),
            pull_ms: Vec::new(),
            layers_present: Vec::new(),
            peak_memory_bytes: Vec::new(),
            service_cpu_percent: Vec::new(),
            generator_cpu_share: Vec::new(),
            runs: Vec::new(),
            capacity_per_second: Vec::new(),
            capacity_searches: Vec::new(),
        })
        .collect();
    // Where each candidate's next capacity search starts (see `Lab::trial`).
    let mut last_capacity: Vec<Option<f64>> = config.candidates.iter().map(|_| None).collect();
    let mut last_capacity_any: Option<f64> = None;
    let rounds = schedule(config.candidates.len(), config.load.repeats);
    let cold_rounds = (config.cold_start.rounds as usize).min(rounds.len());
    let shares = |i: usize, j: usize| shares_layers(&prepared[i].size, &prepared[j].size);
    for (r, order) in rounds.iter().enumerate() {
        let cold = r < cold_rounds;
        if !cold {
            // Warm from here on: every image not kept from the last cold round.
            for (i, c) in config.candidates.iter().enumerate() {
                if warm.get(i).is_none() {
                    observer.installing(c, false);
                    let installed =
                        lab.install(c, &prepared[i].image, observer)
                            .map_err(|source| ExperimentError::Load {
                                name: c.name.clone(),
                                source,
                            })?;
                    warm.put(i, installed.node);
                }
            }
        }
        for (pos, &i) in order.iter().enumerate() {
            let candidate = &config.candidates[i];
            let failed = |source| ExperimentError::Trial {
                round: r + 1,
                name: candidate.name.clone(),
                source,
            };
            let installed = match cold {
                true => Some({
                    observer.installing(candidate, true);
                    lab.install(candidate, &prepared[i].image, observer)
                        .map_err(failed)?
                }),
                false => None,
            };
            let node = match (&installed, warm.get(i)) {
                (Some(x), _) => &x.node,
                (None, Some(node)) => node,
                (None, None) => unreachable!("warm rounds install every image first"),
            };
            let (cpu_before, wall_before) = (clock.cpu_seconds(), clock.wall_seconds());
            let previous = last_capacity[i].or(last_capacity_any);
            let outcome = lab
                .trial(candidate, node, previous, observer)
                .map_err(failed)?;
            let pull = installed.map(|x| {
                // After the last cold round the image stays for the warm ones,
                // unless a later pull of this round would find its layers.
                let keep = r + 1 == cold_rounds
                    && cold_rounds < rounds.len()
                    && !order[pos + 1..].iter().any(|&j| shares(i, j));
                if keep {
                    warm.put(i, x.node);
                } // else dropped here: the image leaves the node
                x.pull
            });
            // Measured over the load itself when the trial could; else over the trial.
            let share = match outcome.generator_cpu_seconds {
                Some(cpu) => generator_cpu_share(
                    cpu,
                    outcome.load_seconds,
                    outcome.load_threads,
                    outcome.load_seconds,
                ),
                None => generator_cpu_share(
                    clock.cpu_seconds() - cpu_before,
                    clock.wall_seconds() - wall_before,
                    outcome.load_threads,
                    outcome.bench.total_seconds,
                ),
            };
            let c = &mut runs[i];
            c.startup_ms.push(outcome.startup.as_secs_f64() * 1000.0);
            if let Some(p) = &pull {
                c.pull_ms.push(p.took.as_secs_f64() * 1000.0);
                c.layers_present.push(match p.image_present {
                    true => p.layers.max(1),
                    false => p.layers_present,
                });
            }
            if let Some(m) = outcome.peak_memory_bytes {
                c.peak_memory_bytes.push(m);
            }
            // The cgroup's CPU time over the load says whether the service was
            // saturated; podman stats samples under-report, a peak overstates.
            if let Some(p) = outcome.service_cpu_percent() {
                c.service_cpu_percent.push(p);
            }
            c.generator_cpu_share.push(share);
            if let Some(search) = &outcome.search {
                // No rate kept the SLO: capacity 0, kept (and warned about by
                // the report), so round k stays round k for the paired statistics.
                c.capacity_per_second
                    .push(search.found_per_second.unwrap_or(0.0));
                c.capacity_searches.push(search.clone());
                if let Some(found) = search.found_per_second {
                    last_capacity[i] = Some(found);
                    last_capacity_any = Some(found);
                }
            }
            observer.trial_finished(r + 1, rounds.len(), candidate, &outcome, pull.as_ref());
            c.runs.push(outcome.bench);
        }
    }
    drop(warm);
    let input = CompareInput {
        candidates: runs,
        load: LoadSummary {
            requests: (config.load.duration.is_none() && config.load.slo.is_none())
                .then_some(config.load.requests),
            duration_seconds: config.load.duration.map(|d| d.as_secs_f64()),
            concurrency: config.load.concurrency,
            keepalive: config.load.keepalive,
            warmup: config.load.warmup,
            warmup_seconds: config.load.warmup_duration.map(|d| d.as_secs_f64()),
            repeats: config.load.repeats,
            path: config.app.path.clone(),
            isolation: lab.isolation(),
            cold_start_rounds: cold_rounds as u32,
            cold_start_bandwidth: config.cold_start.bandwidth.filter(|_| cold_rounds > 0),
            slo: config.load.slo.map(|s| s.slo),
            slo_precision: config.load.slo.map(|s| s.precision),
            slo_step_seconds: config
                .load
                .slo
                .map(|s| s.step_length(&config.load).as_secs_f64()),
            network: lab.network(),
            notes: lab.notes(),
        },
    };
    Ok((input, prepared))
}

/// The images kept on the node between trials, one slot per candidate,
/// removed newest first when dropped (at the end, or on an error). Identical
/// images are one image in podman: a later install of the same image only adds
/// a name, and removes only that name on drop (`podman untag`), so it must go
/// before the install that owns the image, which then removes it; the other
/// way round the owner would only untag and the last name go with nothing left
/// to remove the image (a nameless image left behind).
struct Shelf<N> {
    slots: Vec<Option<N>>,
    /// Slot indices in the order they were filled.
    filled: Vec<usize>,
}

impl<N> Shelf<N> {
    fn new(n: usize) -> Shelf<N> {
        Shelf {
            slots: (0..n).map(|_| None).collect(),
            filled: Vec::new(),
        }
    }

    fn get(&self, i: usize) -> Option<&N> {
        self.slots[i].as_ref()
    }

    fn put(&mut self, i: usize, node: N) {
        self.filled.retain(|&j| j != i);
        self.filled.push(i);
        self.slots[i] = Some(node);
    }
}

impl<N> Drop for Shelf<N> {
    fn drop(&mut self) {
        while let Some(i) = self.filled.pop() {
            drop(self.slots[i].take());
        }
    }
}

#[cfg(test)]
mod shelf_tests {
    use super::Shelf;
    use std::cell::RefCell;

    struct Noted<'a>(&'a RefCell<Vec<usize>>, usize);
    impl Drop for Noted<'_> {
        fn drop(&mut self) {
            self.0.borrow_mut().push(self.1);
        }
    }

    #[test]
    fn a_shelf_drops_its_nodes_newest_first() {
        let dropped = RefCell::new(Vec::new());
        let mut shelf = Shelf::new(4);
        shelf.put(2, Noted(&dropped, 2));
        shelf.put(0, Noted(&dropped, 0));
        shelf.put(3, Noted(&dropped, 3));
        assert_eq!(shelf.get(0).map(|n| n.1), Some(0));
        assert!(shelf.get(1).is_none());
        drop(shelf);
        assert_eq!(*dropped.borrow(), [3, 0, 2]);
    }
}

#[cfg(test)]
mod tests;
