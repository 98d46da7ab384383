//! Everything the binary draws on stderr: progress bars (indicatif, the
//! binary's `Reporter`), the load's progress bar, status lines, and the
//! observers that turn the library's events (`compare::trial`,
//! `compare::experiment`) into those lines. Bars are drawn only when stderr is a
//! terminal and `--quiet` is off; status lines never panic, even when stderr is
//! closed (`eprintln!` would).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use ocibench::compare::config::Candidate;
use ocibench::compare::experiment::{ExperimentObserver, Pull};
use ocibench::compare::trial::{TrialObserver, TrialOutcome};
use ocibench::loadgen::{LoadConfig, Progress, Stop};
use ocibench::oci::pull::ImageSize;
use ocibench::progress::{NoProgress, Reporter, Task, TaskId, next_task_id};
use ocibench::report::units::human_bytes;
use ocibench::runner::RunningContainer;

/// One status line on stderr; a closed or broken stderr is ignored.
pub fn status(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `interrupted` (SIGINT) or `terminated`, for the line a signal handler prints.
pub fn signal_word(signal: i32) -> &'static str {
    if signal == libc::SIGINT {
        "interrupted"
    } else {
        "terminated"
    }
}

/// One bar per task (layer, blob, output), under a shared `MultiProgress`.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<TaskId, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

/// A bar's prefix and label for a task: `pull sha256:0123456789ab 12.3 MB`.
fn describe(task: &Task<'_>) -> (&'static str, String) {
    let short = |d: &str| {
        let hex = d.split_once(':').map_or(d, |(_, h)| h);
        hex[..hex.len().min(12)].to_string()
    };
    match *task {
        Task::Download { digest, bytes } => {
            ("pull", format!("{} {}", short(digest), human_bytes(bytes)))
        }
        Task::Upload { digest, bytes } => {
            ("push", format!("{} {}", short(digest), human_bytes(bytes)))
        }
        Task::Layer {
            dest: Some(dest), ..
        } => ("layer", format!("layer {dest}")),
        Task::Layer { sources, .. } => ("layer", format!("layer ({sources} sources)")),
        Task::Write { destination, .. } => ("write", destination.to_string()),
    }
}

impl Reporter for Bars {
    fn start(&self, task: Task<'_>) -> TaskId {
        let bar = match task.total_bytes() {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{prefix:>8} {msg:24} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        let (prefix, label) = describe(&task);
        bar.set_prefix(prefix);
        bar.set_message(label);
        let bar = self.multi.add(bar);
        let id = next_task_id();
        self.bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, bar);
        id
    }
    fn advance(&self, id: TaskId, delta: u64) {
        if let Some(b) = self.bars.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            b.inc(delta);
        }
    }
    fn finish(&self, id: TaskId) {
        if let Some(b) = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
        {
            b.finish_and_clear();
        }
    }
}

/// Bars when `show` is true, nothing otherwise.
pub fn reporter(show: bool) -> Box<dyn Reporter> {
    if show {
        Box::new(Bars::new())
    } else {
        Box::new(NoProgress)
    }
}

/// Draws the load's bar on stderr until `done`, polling the library's counter.
fn draw_load_progress(config: &LoadConfig, progress: &Progress, done: &AtomicBool) {
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

/// The library's events as status lines and the load's bar: `progress` lines
/// (containers, podman loads, the bar) on a terminal only, as every bar;
/// `summary` lines (what is built, each round's result) unless `--quiet`.
pub struct CliObserver {
    progress: bool,
    summary: bool,
    bar: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl CliObserver {
    pub fn new(progress: bool, summary: bool) -> Self {
        CliObserver {
            progress,
            summary,
            bar: Mutex::new(None),
        }
    }
}

impl TrialObserver for CliObserver {
    fn container_started(&self, c: &RunningContainer) {
        if self.progress {
            status(format_args!(
                "Started {} (127.0.0.1:{} -> {})",
                c.name(),
                c.host_port(),
                c.container_port()
            ));
        }
    }
    fn container_ready(&self, _c: &RunningContainer, startup: Duration) {
        if self.progress {
            status(format_args!(
                "Ready after {:.1} ms",
                startup.as_secs_f64() * 1000.0
            ));
        }
    }
    fn load_started(&self, config: &LoadConfig, progress: &Progress) {
        if !self.progress {
            return;
        }
        let done = Arc::new(AtomicBool::new(false));
        let (config, progress, flag) = (config.clone(), progress.clone(), done.clone());
        let handle = std::thread::spawn(move || draw_load_progress(&config, &progress, &flag));
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some((done, handle));
    }
    fn load_finished(&self) {
        if let Some((done, handle)) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            done.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

impl ExperimentObserver for CliObserver {
    fn building(&self, c: &Candidate) {
        if self.summary {
            status(format_args!("==> {}: building on {}", c.name, c.base));
        }
    }
    fn installing(&self, c: &Candidate, cold: bool) {
        if self.progress {
            let why = if cold { " (cold start)" } else { "" };
            status(format_args!("Pulling {} into podman{why}", c.name));
        }
    }
    fn prepared(&self, _c: &Candidate, size: &ImageSize) {
        if self.summary {
            let platform = match &size.platforms {
                Some(p) => format!(
                    "{} (one of {} in the base's index), ",
                    size.platform,
                    p.len()
                ),
                None => String::new(),
            };
            status(format_args!(
                "    {platform}{} on disk, {} compressed",
                human_bytes(size.uncompressed_bytes),
                human_bytes(size.compressed_bytes)
            ));
        }
    }
    fn trial_finished(
        &self,
        round: usize,
        rounds: usize,
        c: &Candidate,
        o: &TrialOutcome,
        pull: Option<&Pull>,
    ) {
        if self.summary {
            let startup = o.startup.as_secs_f64() * 1000.0;
            let start = match pull {
                Some(p) => {
                    let pull = p.took.as_secs_f64() * 1000.0;
                    format!(
                        "cold start {:.0} ms: pull {pull:.0} + start-up {startup:.0}",
                        pull + startup
                    )
                }
                None => format!("start-up {startup:.0} ms"),
            };
            match &o.search {
                None => status(format_args!(
                    "    round {round}/{rounds}: {:<20} {:>10.1} req/s  ({start})",
                    c.name, o.bench.requests_per_second,
                )),
                Some(s) => {
                    let found = match s.found_per_second {
                        Some(f) => format!("{f:>10.1} req/s at {}", s.slo.describe()),
                        None => format!("no rate kept {}: capacity 0", s.slo.describe()),
                    };
                    status(format_args!(
                        "    round {round}/{rounds}: {:<20} {found} ({} steps; {start})",
                        c.name,
                        s.steps.len(),
                    ));
                }
            }
        }
    }
}
