//! The experiment's loop with a mock lab: no podman, no build, a fake clock.
//! The mock logs every image and container it creates and removes, so the tests
//! check the loop's promises from the outside.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::loadgen::result::Tally;
use crate::runner::RunnerError;

/// What the mock lab did, in order, and the fake clock it advances.
#[derive(Default)]
struct Log {
    events: RefCell<Vec<String>>,
    live_images: Cell<i32>,
    live_containers: Cell<i32>,
    /// The most containers alive at once.
    peak_containers: Cell<i32>,
    containers: Cell<u32>,
    trials: Cell<u32>,
    cpu: Cell<f64>,
    wall: Cell<f64>,
    /// Per trial: `NAME podman-args` of the candidate's limits.
    limits: RefCell<Vec<String>>,
    /// Per trial: the candidate and the capacity its search was told to start at.
    capacity_hints: RefCell<Vec<(String, Option<f64>)>>,
}

impl Log {
    fn push(&self, e: String) {
        self.events.borrow_mut().push(e);
    }
    fn events(&self) -> Vec<String> {
        self.events.borrow().clone()
    }
    fn starts(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.starts_with("start "))
            .collect()
    }
}

impl Clock for Log {
    fn cpu_seconds(&self) -> f64 {
        self.cpu.get()
    }
    fn wall_seconds(&self) -> f64 {
        self.wall.get()
    }
}

/// A built image: only its name (building is not the mock's subject).
struct MockBuilt {
    name: String,
}

/// An image installed on the node: logged when it comes and goes.
struct MockImage<'a> {
    name: String,
    log: &'a Log,
}

impl Drop for MockImage<'_> {
    fn drop(&mut self) {
        self.log.push(format!("remove image {}", self.name));
        self.log.live_images.set(self.log.live_images.get() - 1);
    }
}

/// How much CPU and wall time one trial takes, and the load it reports.
#[derive(Clone, Copy)]
struct TrialCost {
    cpu: f64,
    wall: f64,
    load_seconds: f64,
    threads: usize,
}

const CHEAP: TrialCost = TrialCost {
    cpu: 0.1,
    wall: 1.0,
    load_seconds: 0.5,
    threads: 1,
};

struct MockLab<'a> {
    log: &'a Log,
    /// The candidate whose preparation (build) fails.
    fail_prepare: Option<&'static str>,
    /// The candidate whose installs fail.
    fail_install: Option<&'static str>,
    /// Every install finds this many layers on the node already.
    layers_present: usize,
    /// Every candidate's image also has one layer in common (one base).
    shared_base: bool,
    /// The trial (counted from 1 over the whole experiment) that fails.
    fail_trial: Option<u32>,
    cost: TrialCost,
    /// Each trial searches a capacity: this one (candidate, trial counted
    /// from 1), `None` when no rate keeps the SLO.
    capacity: Option<fn(&str, u32) -> Option<f64>>,
}

impl<'a> MockLab<'a> {
    fn new(log: &'a Log) -> Self {
        MockLab {
            log,
            fail_prepare: None,
            fail_install: None,
            layers_present: 0,
            shared_base: false,
            fail_trial: None,
            cost: CHEAP,
            capacity: None,
        }
    }
}

impl<'a> Lab for MockLab<'a> {
    type Image = MockBuilt;
    type Node = MockImage<'a>;

    fn prepare(
        &self,
        c: &Candidate,
        _observer: &dyn ExperimentObserver,
    ) -> Result<Prepared<MockBuilt>, ExperimentError> {
        // Building costs CPU too; it must not count in any trial's share.
        self.log.cpu.set(self.log.cpu.get() + 5.0);
        self.log.wall.set(self.log.wall.get() + 5.0);
        if self.fail_prepare == Some(c.name.as_str()) {
            return Err(ExperimentError::Base {
                name: c.name.clone(),
                base: c.base.clone(),
                source: crate::oci::location::TransportError::Unsupported("bogus".into()),
            });
        }
        self.log.push(format!("build {}", c.name));
        let mut size = crate::report::sample::image(&c.name, 1, 1);
        size.compressed_bytes = c.name.len() as u64;
        if self.shared_base {
            let base = crate::report::sample::image("base", 1, 1).layers;
            size.layers.splice(0..0, base);
        }
        Ok(Prepared {
            image: MockBuilt {
                name: c.name.clone(),
            },
            size,
        })
    }

    fn install(
        &self,
        c: &Candidate,
        image: &MockBuilt,
        _observer: &dyn ExperimentObserver,
    ) -> Result<Installed<MockImage<'a>>, TrialError> {
        assert_eq!(c.name, image.name, "an install gets its own candidate");
        if self.fail_install == Some(c.name.as_str()) {
            return Err(TrialError::Runner(RunnerError::PodmanMissing));
        }
        let log = self.log;
        // What is on the node when a pull starts decides how cold it is.
        let present = log.live_images.get();
        log.push(format!("load image {} ({present} on the node)", c.name));
        log.live_images.set(present + 1);
        log.wall.set(log.wall.get() + 2.0);
        Ok(Installed {
            node: MockImage {
                name: c.name.clone(),
                log,
            },
            pull: Pull {
                took: Duration::from_millis(2000 + 10 * u64::from(log.containers.get())),
                layers: 3,
                layers_present: self.layers_present,
                image_present: false,
            },
        })
    }

    fn trial(
        &self,
        candidate: &Candidate,
        image: &MockImage<'a>,
        previous_capacity: Option<f64>,
        _observer: &dyn TrialObserver,
    ) -> Result<TrialOutcome, TrialError> {
        let log = self.log;
        log.capacity_hints
            .borrow_mut()
            .push((candidate.name.clone(), previous_capacity));
        assert_eq!(candidate.name, image.name, "a trial gets its own candidate");
        log.limits.borrow_mut().push(format!(
            "{} {}",
            candidate.name,
            candidate.resources.podman_args().join(" ")
        ));
        let n = log.containers.get() + 1;
        log.containers.set(n);
        log.trials.set(log.trials.get() + 1);
        log.push(format!("start {} {}", image.name, n));
        log.live_containers.set(log.live_containers.get() + 1);
        log.peak_containers
            .set(log.peak_containers.get().max(log.live_containers.get()));
        log.cpu.set(log.cpu.get() + self.cost.cpu);
        log.wall.set(log.wall.get() + self.cost.wall);
        // The container goes on every path, as `RunningContainer` does on drop.
        log.push(format!("remove container {n}"));
        log.live_containers.set(log.live_containers.get() - 1);
        if self.fail_trial == Some(log.trials.get()) {
            return Err(TrialError::Runner(RunnerError::PortsBusy { attempts: 5 }));
        }
        let mut t = Tally::new();
        t.response(200, 100, Duration::from_millis(3));
        Ok(TrialOutcome {
            container: format!("ocibench-mock-{n}"),
            network: "published port (root, netavark)".into(),
            startup: Duration::from_millis(100 + u64::from(n)),
            peak_memory_bytes: Some(1000 * u64::from(n)),
            cpu_percent_peak: Some(90.0),
            cpu_percent_mean: Some(50.0),
            load_threads: self.cost.threads,
            load_seconds: self.cost.load_seconds,
            service_cpu_seconds: None,
            generator_cpu_seconds: None,
            service_cpus: None,
            bench: t.into_result(
                "http://127.0.0.1:1/",
                1,
                true,
                Duration::from_secs_f64(self.cost.load_seconds),
            ),
            search: self
                .capacity
                .map(|f| capacity::searched(f(&candidate.name, log.trials.get()))),
        })
    }

    fn push(
        &self,
        candidate: &Candidate,
        image: &MockBuilt,
        dest: &ImageReference,
    ) -> Result<Pushed, ExperimentError> {
        assert_eq!(candidate.name, image.name);
        self.log
            .push(format!("push {} docker://{dest}", image.name));
        Ok(Pushed {
            candidate: candidate.name.clone(),
            reference: format!("docker://{dest}"),
            digest: format!("sha256:mock-{}", image.name),
        })
    }
}

/// Trials that start warm: each image installed once, before the rounds.
fn config(names: &[&str], repeats: u32) -> CompareConfig {
    let mut c = cold_config(names, repeats);
    c.cold_start.rounds = 0;
    c
}

/// Trials that start cold (the default).
fn cold_config(names: &[&str], repeats: u32) -> CompareConfig {
    let mut toml = format!("[app]\nport = 8080\npath = \"/x\"\n[load]\nrepeats = {repeats}\n");
    for n in names {
        toml.push_str(&format!(
            "[[candidate]]\nname = \"{n}\"\nbase = \"oci:/bases/{n}\"\n"
        ));
    }
    CompareConfig::parse(&toml, Path::new("."), "test.toml", &|_| None).unwrap()
}

mod capacity;

fn measure_with(lab: &MockLab<'_>, c: &CompareConfig) -> Result<CompareInput, ExperimentError> {
    measure(lab, c, &NoObserver, lab.log).map(|(input, _prepared)| input)
}

#[test]
fn rounds_rotate_the_order_of_the_trials() {
    let log = Log::default();
    let input = measure_with(&MockLab::new(&log), &config(&["a", "b", "c"], 4)).unwrap();
    let order: Vec<String> = log
        .starts()
        .iter()
        .map(|s| s.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        order.join(""),
        ["abc", "bca", "cab", "abc"].concat(),
        "{:?}",
        log.events()
    );
    // Results land with their candidate, whatever the position.
    for c in &input.candidates {
        assert_eq!(c.runs.len(), 4, "{}", c.name);
        assert_eq!(c.startup_ms.len(), 4);
        assert_eq!(c.image.compressed_bytes, c.name.len() as u64);
        assert_eq!(c.base, format!("oci:/bases/{}", c.name));
    }
    assert_eq!(input.load.repeats, 4);
    assert_eq!(input.load.path, "/x");
}

#[test]
fn every_trial_gets_a_fresh_container_removed_before_the_next() {
    let log = Log::default();
    let input = measure_with(&MockLab::new(&log), &config(&["a", "b"], 3)).unwrap();
    let events = log.events();
    // Warm: all images are loaded before the first trial, and removed after the last.
    let first_start = events.iter().position(|e| e.starts_with("start")).unwrap();
    assert!(
        events[..first_start]
            .iter()
            .all(|e| e.starts_with("load image") || e.starts_with("build ")),
        "{events:?}"
    );
    let trials: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("start") || e.starts_with("remove container"))
        .collect();
    assert_eq!(trials.len(), 2 * 6, "{events:?}");
    for (k, pair) in trials.chunks(2).enumerate() {
        let n = k + 1;
        assert!(pair[0].ends_with(&format!(" {n}")), "{pair:?}");
        assert_eq!(pair[1], &format!("remove container {n}"));
    }
    assert_eq!(log.peak_containers.get(), 1);
    assert_eq!(log.live_containers.get(), 0);
    assert_eq!(log.live_images.get(), 0);
    // Newest first: a later install of an identical image only adds a name.
    assert!(events.ends_with(&["remove image b".to_string(), "remove image a".to_string()]));
    // One container's figures per run: start-up times differ run by run.
    let a = &input.candidates[0];
    assert_eq!(a.startup_ms, vec![101.0, 104.0, 105.0]);
    assert_eq!(a.peak_memory_bytes, vec![1000, 4000, 5000]);
    assert_eq!(a.service_cpu_percent, vec![50.0; 3]);
}

#[test]
fn a_failing_trial_removes_every_image_and_names_round_and_candidate() {
    let log = Log::default();
    let lab = MockLab {
        // The fifth trial: round 2 (b c a), the second in order: c.
        fail_trial: Some(5),
        ..MockLab::new(&log)
    };
    let err = measure_with(&lab, &config(&["a", "b", "c"], 3)).unwrap_err();
    match &err {
        ExperimentError::Trial {
            round: 2,
            name,
            source: TrialError::Runner(RunnerError::PortsBusy { .. }),
        } if name == "c" => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "round 2 of candidate c",
        "the context, then the cause in the chain"
    );
    assert_eq!(log.trials.get(), 5, "no trial after the failure");
    assert_eq!(log.live_containers.get(), 0);
    assert_eq!(log.live_images.get(), 0, "{:?}", log.events());
    let events = log.events();
    let tail: Vec<&str> = events[events.len() - 3..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(tail, ["remove image c", "remove image b", "remove image a"]);
}

#[test]
fn a_failing_preparation_stops_before_anything_runs() {
    let log = Log::default();
    let lab = MockLab {
        fail_prepare: Some("b"),
        ..MockLab::new(&log)
    };
    let err = measure_with(&lab, &config(&["a", "b", "c"], 2)).unwrap_err();
    assert!(
        matches!(&err, ExperimentError::Base { name, .. } if name == "b"),
        "{err:?}"
    );
    assert_eq!(
        log.events(),
        ["build a"],
        "c is never prepared, nothing runs"
    );
    assert_eq!(log.live_images.get(), 0);
}

#[test]
fn a_failing_install_removes_the_images_installed_before_it() {
    let log = Log::default();
    let lab = MockLab {
        fail_install: Some("b"),
        ..MockLab::new(&log)
    };
    let err = measure_with(&lab, &config(&["a", "b", "c"], 2)).unwrap_err();
    assert!(
        matches!(&err, ExperimentError::Load { name, .. } if name == "b"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "pulling candidate b into podman");
    assert_eq!(
        log.events(),
        [
            "build a",
            "build b",
            "build c",
            "load image a (0 on the node)",
            "remove image a"
        ],
        "c is never installed, nothing runs"
    );
    assert_eq!(log.live_images.get(), 0);
}

#[test]
fn cold_starts_pull_before_every_trial_onto_an_empty_node() {
    let log = Log::default();
    let input = measure_with(&MockLab::new(&log), &cold_config(&["a", "b", "c"], 3)).unwrap();
    let events = log.events();
    // Each trial: its image alone on the node, pulled, run, removed.
    let trials: Vec<&String> = events.iter().filter(|e| !e.starts_with("build ")).collect();
    assert_eq!(trials.len(), 4 * 9, "{events:?}");
    for (k, t) in trials.chunks(4).enumerate() {
        let n = k + 1;
        let name = t[1].split(' ').nth(1).unwrap();
        assert_eq!(t[0], &format!("load image {name} (0 on the node)"), "{t:?}");
        assert_eq!(t[1], &format!("start {name} {n}"));
        assert_eq!(t[2], &format!("remove container {n}"));
        assert_eq!(t[3], &format!("remove image {name}"));
    }
    assert_eq!(log.live_images.get(), 0);
    // Each run's pull, beside its start-up: the pull of trial n took 2000 + 10 (n - 1) ms.
    let a = &input.candidates[0];
    assert_eq!(a.startup_ms, vec![101.0, 106.0, 108.0]);
    assert_eq!(a.pull_ms, vec![2000.0, 2050.0, 2070.0]);
    assert_eq!(a.layers_present, vec![0; 3]);
    assert_eq!(input.load.cold_start_rounds, 3);
    // The report adds them up, run by run.
    let r = crate::report::analyze(input);
    let cold = r.candidates[0].cold_start.as_ref().unwrap();
    assert_eq!(cold.runs_ms, vec![2101.0, 2156.0, 2178.0]);
    assert_eq!((cold.median_ms, cold.pull_ms), (2156.0, 2050.0));
    assert_eq!((cold.low_ms, cold.high_ms), (2101.0, 2178.0));
}

/// The `load image` events: `NAME ON-THE-NODE`.
fn loads(log: &Log) -> Vec<String> {
    log.events()
        .iter()
        .filter_map(|e| e.strip_prefix("load image "))
        .map(|e| e.replace(" on the node)", "").replace(" (", " "))
        .collect()
}

#[test]
fn cold_rounds_come_first_and_the_last_keeps_what_no_later_pull_would_find() {
    // No layer in common: the last cold round keeps every image, the warm
    // rounds pull nothing more.
    let log = Log::default();
    let mut c = cold_config(&["a", "b", "c"], 5);
    c.cold_start.rounds = 3;
    let input = measure_with(&MockLab::new(&log), &c).unwrap();
    assert_eq!(
        loads(&log).join(","),
        "a 0,b 0,c 0,b 0,c 0,a 0,c 0,a 1,b 2",
        "round 3 (c a b) keeps each image: its pulls stay cold all the same"
    );
    assert_eq!(log.live_images.get(), 0, "{:?}", log.events());
    for cand in &input.candidates {
        assert_eq!(
            (cand.pull_ms.len(), cand.runs.len()),
            (3, 5),
            "{}",
            cand.name
        );
    }
    assert_eq!(input.load.cold_start_rounds, 3);
    let r = crate::report::analyze(input);
    assert_eq!(
        r.candidates[0].cold_start.as_ref().unwrap().runs_ms.len(),
        3
    );

    // One base under all: keeping c or a would warm the pulls after them in
    // round 3, so only b (the last) stays; c and a come back before round 4.
    let log = Log::default();
    let lab = MockLab {
        shared_base: true,
        ..MockLab::new(&log)
    };
    measure_with(&lab, &c).unwrap();
    assert_eq!(
        loads(&log).join(","),
        "a 0,b 0,c 0,b 0,c 0,a 0,c 0,a 0,b 0,a 1,c 2"
    );
    let starts = log.starts();
    assert_eq!(starts.len(), 15);
    assert_eq!(log.live_images.get(), 0);
}

#[test]
fn more_cold_rounds_than_rounds_make_every_round_cold() {
    let log = Log::default();
    let mut c = cold_config(&["a", "b"], 2);
    c.cold_start.rounds = 9;
    let input = measure_with(&MockLab::new(&log), &c).unwrap();
    assert_eq!(input.load.cold_start_rounds, 2);
    assert_eq!(loads(&log).len(), 4);
}

#[test]
fn warm_trials_report_no_cold_start() {
    let log = Log::default();
    let input = measure_with(&MockLab::new(&log), &config(&["a", "b"], 2)).unwrap();
    assert_eq!(input.load.cold_start_rounds, 0);
    assert!(input.candidates.iter().all(|c| c.pull_ms.is_empty()));
    let r = crate::report::analyze(input);
    assert!(r.candidates.iter().all(|c| c.cold_start.is_none()));
}

#[test]
fn layers_already_on_the_node_are_counted_and_warned_about() {
    let log = Log::default();
    let lab = MockLab {
        layers_present: 2,
        ..MockLab::new(&log)
    };
    let input = measure_with(&lab, &cold_config(&["a", "b"], 3)).unwrap();
    assert_eq!(input.candidates[1].layers_present, vec![2; 3]);
    let r = crate::report::analyze(input);
    assert_eq!(
        r.candidates[1].cold_start.as_ref().unwrap().layers_present,
        2
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("b: 2 of its layers were in podman's storage already")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_failing_cold_pull_names_the_round_and_leaves_nothing() {
    let log = Log::default();
    let lab = MockLab {
        fail_install: Some("b"),
        ..MockLab::new(&log)
    };
    let err = measure_with(&lab, &cold_config(&["a", "b"], 2)).unwrap_err();
    assert_eq!(err.to_string(), "round 1 of candidate b");
    assert_eq!(log.trials.get(), 1);
    assert_eq!((log.live_images.get(), log.live_containers.get()), (0, 0));
}

#[test]
fn generator_share_counts_each_trial_alone() {
    let log = Log::default();
    // Each trial: 0.6 CPU seconds in 2 s of wall time, a 1.5 s load on 2 threads.
    let lab = MockLab {
        cost: TrialCost {
            cpu: 0.6,
            wall: 2.0,
            load_seconds: 1.5,
            threads: 2,
        },
        ..MockLab::new(&log)
    };
    let input = measure_with(&lab, &config(&["a", "b"], 2)).unwrap();
    for c in &input.candidates {
        // The 5 CPU seconds of each build are outside every trial.
        for s in &c.generator_cpu_share {
            assert!((s - 0.6 / (2.0 * 1.5)).abs() < 1e-12, "{s}");
        }
        assert_eq!(c.generator_cpu_share.len(), 2);
    }
}

#[test]
fn generator_share_arithmetic() {
    // CPU over threads × load time.
    assert!((generator_cpu_share(0.5, 3.0, 1, 1.0) - 0.5).abs() < 1e-12);
    assert!((generator_cpu_share(1.5, 3.0, 2, 1.0) - 0.75).abs() < 1e-12);
    // The CPU counted is at most the trial's wall time ...
    assert!((generator_cpu_share(4.0, 1.0, 4, 1.0) - 0.25).abs() < 1e-12);
    // ... the share at most 1, never negative, and a zero-length load is no division by zero.
    assert_eq!(generator_cpu_share(3.0, 3.0, 1, 1.0), 1.0);
    assert_eq!(generator_cpu_share(-0.1, 3.0, 1, 1.0), 0.0);
    assert_eq!(generator_cpu_share(0.5, 1.0, 1, 0.0), 1.0);
    // Zero threads count as one.
    assert_eq!(
        generator_cpu_share(0.5, 3.0, 0, 1.0),
        generator_cpu_share(0.5, 3.0, 1, 1.0)
    );
}

/// The observer's events, as status lines would show them.
#[derive(Default)]
struct Recorder(RefCell<Vec<String>>);

impl TrialObserver for Recorder {}

impl ExperimentObserver for Recorder {
    fn building(&self, c: &Candidate) {
        self.0.borrow_mut().push(format!("building {}", c.name));
    }
    fn prepared(&self, c: &Candidate, size: &ImageSize) {
        self.0
            .borrow_mut()
            .push(format!("prepared {} {}", c.name, size.compressed_bytes));
    }
    fn installing(&self, c: &Candidate, cold: bool) {
        self.0
            .borrow_mut()
            .push(format!("installing {} cold={cold}", c.name));
    }
    fn trial_finished(
        &self,
        round: usize,
        rounds: usize,
        c: &Candidate,
        o: &TrialOutcome,
        pull: Option<&Pull>,
    ) {
        let pull = pull.map_or(String::new(), |p| format!(" pull {:?}", p.took));
        self.0.borrow_mut().push(format!(
            "round {round}/{rounds} {} {}{pull}",
            c.name, o.container
        ));
    }
}

#[test]
fn the_observer_hears_each_phase_in_order() {
    let log = Log::default();
    let rec = Recorder::default();
    measure(&MockLab::new(&log), &config(&["a", "bb"], 2), &rec, &log).unwrap();
    assert_eq!(
        rec.0.into_inner(),
        [
            "building a",
            "prepared a 1",
            "building bb",
            "prepared bb 2",
            "installing a cold=false",
            "installing bb cold=false",
            "round 1/2 a ocibench-mock-1",
            "round 1/2 bb ocibench-mock-2",
            "round 2/2 bb ocibench-mock-3",
            "round 2/2 a ocibench-mock-4",
        ]
    );
    let rec = Recorder::default();
    measure(&MockLab::new(&log), &cold_config(&["a"], 2), &rec, &log).unwrap();
    assert_eq!(
        rec.0.into_inner(),
        [
            "building a",
            "prepared a 1",
            "installing a cold=true",
            "round 1/2 a ocibench-mock-5 pull 2.04s",
            "installing a cold=true",
            "round 2/2 a ocibench-mock-6 pull 2.05s",
        ]
    );
}

#[test]
fn each_trial_runs_with_its_candidates_limits() {
    let toml = "[app]\nport = 8080\ncpus = 1.5\nmemory = \"512m\"\n[load]\nrepeats = 2\n\
        [[candidate]]\nname = \"a\"\nbase = \"oci:/a\"\n\
        [[candidate]]\nname = \"b\"\nbase = \"oci:/b\"\ncpus = 0.5\n\
        [[candidate]]\nname = \"c\"\nbase = \"oci:/c\"\nmemory = \"1g\"\n";
    let c = CompareConfig::parse(toml, Path::new("."), "t.toml", &|_| None).unwrap();
    let log = Log::default();
    measure_with(&MockLab::new(&log), &c).unwrap();
    let mut limits = log.limits.borrow().clone();
    limits.sort();
    limits.dedup();
    assert_eq!(
        limits,
        [
            "a --cpus=1.5 --memory=512m",
            "b --cpus=0.5 --memory=512m",
            "c --cpus=1.5 --memory=1g",
        ]
    );
    assert_eq!(log.limits.borrow().len(), 6, "every trial, every round");
}

#[test]
fn duration_based_load_reaches_the_report_and_the_generator() {
    let toml = "[app]\nport = 8080\n[load]\nduration = \"2s\"\nwarmup = \"500ms\"\nrepeats = 1\n\
        [[candidate]]\nname = \"a\"\nbase = \"oci:/a\"\n";
    let c = CompareConfig::parse(toml, Path::new("."), "t.toml", &|_| None).unwrap();
    let log = Log::default();
    let input = measure_with(&MockLab::new(&log), &c).unwrap();
    assert_eq!(input.load.duration_seconds, Some(2.0));
    assert_eq!(
        (input.load.warmup, input.load.warmup_seconds),
        (0, Some(0.5))
    );
    let load = crate::compare::lab::load_config(&c.load, "http://127.0.0.1:1/").unwrap();
    assert_eq!(load.request_count(), None, "a run by time has no count");
}

#[test]
fn push_sends_the_recommended_candidates_image_after_the_trials() {
    let log = Log::default();
    // Identical runs: the smallest image (the shortest name) is recommended.
    let c = config(&["bbb", "a", "cc"], 2);
    let dest: ImageReference = "127.0.0.1:5000/app:chosen".parse().unwrap();
    let out = run_and_push(&MockLab::new(&log), &c, Some(&dest), &NoObserver).unwrap();
    let recommended = out.report.recommendation.as_ref().unwrap().name.clone();
    assert_eq!(recommended, "a");
    let pushed = out.pushed.unwrap().unwrap();
    assert_eq!(
        pushed,
        Pushed {
            candidate: "a".into(),
            reference: "docker://127.0.0.1:5000/app:chosen".into(),
            digest: "sha256:mock-a".into(),
        }
    );
    let events = log.events();
    assert_eq!(
        events.last().unwrap(),
        "push a docker://127.0.0.1:5000/app:chosen",
        "from the blob store, once every trial is over: {events:?}"
    );
    assert_eq!(events.iter().filter(|e| e.starts_with("push ")).count(), 1);
    assert_eq!(log.live_images.get(), 0);
}

#[test]
fn without_push_nothing_is_pushed() {
    let log = Log::default();
    let out = run_and_push(
        &MockLab::new(&log),
        &config(&["a", "b"], 1),
        None,
        &NoObserver,
    )
    .unwrap();
    assert!(out.pushed.is_none());
    assert!(!log.events().iter().any(|e| e.starts_with("push ")));
}
