//! Every renderer of finished results. Mostly the comparison report: from
//! finished measurements (`CompareInput`, filled by `compare`) to statistics and
//! a recommendation (`analyze` -> `Report`), and from a `Report` to each output
//! format; also the text of one load (`bench`, ab's layout) and of one
//! `ocibench run` (`run`).
//!
//! Everything here is a pure function of its input: no clock, no I/O but the
//! writer handed in, no randomness. Measurement never prints; formats never
//! measure (hyperfine's exporters, ripgrep's printers).
//!
//! Each format is one small file with `write(&Report, impl io::Write)` and
//! `render(&Report) -> Vec<u8>`: `table` (the terminal), `markdown` (the table
//! people paste in their docs), `json` (`compare --json`, DESIGN.md's schema),
//! `svg` (a self-contained chart). `bench` and `run` render a `BenchResult` and
//! a `RunReport` the same way.

mod analyze;
pub mod bench;
pub mod capacity;
pub mod copy;
pub mod image;
pub mod inspect;
pub mod json;
pub mod markdown;
pub mod metric;
pub mod paired;
mod recommend;
pub mod referrers;
pub mod run;
pub mod stats;
pub mod svg;
pub mod table;
pub mod units;
mod warnings;

#[cfg(test)]
mod capacity_mode;
#[cfg(test)]
pub(crate) mod sample;

use std::io;

use serde::{Deserialize, Serialize};

use crate::loadgen::BenchResult;
use crate::loadgen::search::{RateSearchResult, Slo};
use crate::oci::pull::ImageSize;

pub use analyze::analyze;
pub use metric::RankedBy;

/// Family-wise significance level of the pairwise paired t-tests (Holm-adjusted
/// across all pairs); the per-pair intervals are at `1 - ALPHA`.
pub const ALPHA: f64 = 0.05;
/// Relative throughput differences under this (1%) are noise even when the test
/// says significant: nobody picks a base image for 1% of requests/s.
pub const PRACTICAL_THRESHOLD: f64 = 0.01;
/// With fewer rounds than this in common (both candidates measured), no
/// difference is judged significant.
pub const MIN_RUNS_FOR_SIGNIFICANCE: usize = 3;
/// The coverage sought for the interval of the median (reached from 6 runs on).
pub const INTERVAL_CONFIDENCE: f64 = 0.95;
/// A median share of its CPU time at or above this means the load generator,
/// not the service, may have been the limit.
pub const GENERATOR_LIMIT_SHARE: f64 = 0.9;

// ---------------------------------------------------------------- input

/// One candidate base image: what was built on it and every run's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRuns {
    pub name: String,
    /// The base image reference.
    pub base: String,
    /// The built image's sizes.
    pub image: ImageSize,
    /// One per run (a fresh container per run): from `podman run` to the
    /// first 2xx of the health path.
    pub startup_ms: Vec<f64>,
    /// One per cold run (the first `load.cold_start_rounds` runs; else empty):
    /// the pull that put the image on the node before the run's container started.
    #[serde(default)]
    pub pull_ms: Vec<f64>,
    /// One per run with cold starts: how many of the image's layers were in
    /// podman's storage already (0: a truly cold start).
    #[serde(default)]
    pub layers_present: Vec<usize>,
    /// One per run (may be empty if not measured).
    pub peak_memory_bytes: Vec<u64>,
    /// Per run: the container's CPU over the load in % of one core (100 = one
    /// core; from its cgroup, else `podman stats`), may be empty.
    pub service_cpu_percent: Vec<f64>,
    /// Per run: CPU time the load generator used / (its threads × wall time), 0..1.
    pub generator_cpu_share: Vec<f64>,
    /// Per run; with a capacity search (`load.slo`), the step at the capacity found.
    pub runs: Vec<BenchResult>,
    /// With `load.slo`, one per run: the capacity its search found, requests/s
    /// (0 when no rate kept the SLO); else empty.
    #[serde(default)]
    pub capacity_per_second: Vec<f64>,
    /// With `load.slo`, one per run: its search, every step.
    #[serde(default)]
    pub capacity_searches: Vec<RateSearchResult>,
}

/// Everything `compare` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareInput {
    pub candidates: Vec<CandidateRuns>,
    pub load: LoadSummary,
}

/// The load each run applied (`[load]` of `ocibench.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// Requests per run; `None` (null) when runs last `duration_seconds` instead.
    pub requests: Option<u64>,
    /// Each run lasted this long (`[load] duration`) instead of `requests`.
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    pub concurrency: u64,
    pub keepalive: bool,
    /// Warm-up requests before each run (0 when it warmed up by time).
    pub warmup: u64,
    /// A warm-up of this long before each run (`[load] warmup = "1s"`).
    #[serde(default)]
    pub warmup_seconds: Option<f64>,
    pub repeats: u32,
    pub path: String,
    /// Which CPUs the service and the load generator had (absent in reports
    /// written before isolation existed: then unknown).
    #[serde(default)]
    pub isolation: Isolation,
    /// The first this many rounds started from images absent from the node
    /// (`[cold_start] rounds`); 0: every round started warm.
    #[serde(default)]
    pub cold_start_rounds: u32,
    /// The bandwidth the node's pulls were limited to, in bytes per second;
    /// `None`: unlimited (loopback).
    #[serde(default)]
    pub cold_start_bandwidth: Option<u64>,
    /// `[load] slo`: each run searched the capacity at this SLO and the
    /// candidates are ranked by it; `None`: ranked by throughput.
    #[serde(default)]
    pub slo: Option<Slo>,
    /// The searches' precision (0.05: the lowest failing rate within 5% above
    /// the capacity found); `None` without `slo`.
    #[serde(default)]
    pub slo_precision: Option<f64>,
    /// Each search step's length, seconds; `None` without `slo`.
    #[serde(default)]
    pub slo_step_seconds: Option<f64>,
    /// How the load reached the service (`published port (root, netavark)`,
    /// `host network, a free port per container in $PORT`); `None`: unknown.
    #[serde(default)]
    pub network: Option<String>,
    /// Figures the host could not measure (null in the report) and what
    /// else the reader must know about the host, each said once.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Which CPUs each side of the measurement had: the service's container
/// (`--cpuset-cpus`) and the load generator's worker threads (pinned).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// Separate CPUs were asked for (`[load] isolate`).
    pub requested: bool,
    /// The service and the generator ran on separate CPUs.
    pub applied: bool,
    /// The CPUs the container could use; empty when unknown.
    pub service_cpus: Vec<usize>,
    /// The CPUs the generator's threads ran on; empty when unknown.
    pub generator_cpus: Vec<usize>,
}

impl Isolation {
    /// The sentence the method notes carry, `None` when nothing is known.
    pub fn describe(&self) -> Option<String> {
        if self.service_cpus.is_empty() || self.generator_cpus.is_empty() {
            return None;
        }
        let list = |c: &[usize]| {
            let s: Vec<String> = c.iter().map(usize::to_string).collect();
            format!("CPU{} {}", if c.len() == 1 { "" } else { "s" }, s.join(","))
        };
        Some(if self.applied {
            format!(
                "The service had {} to itself, the load generator {}.",
                list(&self.service_cpus),
                list(&self.generator_cpus)
            )
        } else {
            format!(
                "The service and the load generator shared {}{}.",
                list(&self.service_cpus),
                if self.requested {
                    " (too few CPUs to isolate them)"
                } else {
                    " (isolation turned off)"
                }
            )
        })
    }
}

// ---------------------------------------------------------------- output

/// The analysed comparison; serializes as DESIGN.md's `compare --json`
/// (`candidates`, `significant`, `recommendation`), plus `noise`, `warnings`,
/// `load` and `method`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// In the order of the input.
    pub candidates: Vec<CandidateSummary>,
    /// Pairs whose throughput differs significantly (p < `ALPHA`) and by at least
    /// `PRACTICAL_THRESHOLD`; fastest pairs first.
    pub significant: Vec<Difference>,
    /// `None` only when no candidate has a run.
    pub recommendation: Option<Recommendation>,
    /// Every other pair: judged noise, and why.
    pub noise: Vec<Noise>,
    pub warnings: Vec<String>,
    pub load: LoadSummary,
    pub method: Method,
    /// What `significant`, `noise` and `recommendation` compare: `throughput`
    /// (requests/s of closed-loop runs) or `capacity` (at `load.slo`).
    #[serde(default)]
    pub ranked_by: RankedBy,
}

/// One candidate's summary. Every figure is a median over its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateSummary {
    pub name: String,
    pub base: String,
    pub image: ImageSize,
    /// Median start-up time (`podman run` to the first 2xx); `None` if not measured.
    pub startup_ms: Option<f64>,
    /// From the image absent from the node to the first 2xx (pull, unpack,
    /// start, ready); `None` without cold starts.
    pub cold_start: Option<ColdStart>,
    /// Median of the runs' peak memory; `None` if not measured.
    pub peak_memory_bytes: Option<u64>,
    pub requests_per_second: Throughput,
    pub latency_ms: LatencySummary,
    /// Median of the runs' wall times (`None` without runs).
    pub total_seconds: Option<f64>,
    /// Median over runs of the container's CPU during the load (100 = one core);
    /// `None` if not measured.
    pub service_cpu_percent: Option<f64>,
    /// Median share of its CPU the load generator used; `None` if not measured.
    pub generator_cpu_share: Option<f64>,
    pub runs: Vec<BenchResult>,
    /// With `load.slo`: the capacity at the SLO, median over runs; `None`
    /// when ranked by throughput.
    #[serde(default)]
    pub capacity: Option<Capacity>,
}

/// A candidate's capacity at the SLO: the median over runs of each run's
/// search result, with the same interval as `requests_per_second`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// `median`, `low`, `high`, `coverage`, requests/s at the SLO.
    #[serde(flatten)]
    pub interval: Throughput,
    /// Every run's capacity, in round order (0: no rate kept the SLO).
    pub runs_per_second: Vec<f64>,
    /// Every run's search, steps and all.
    pub searches: Vec<RateSearchResult>,
}

/// Requests per second: the median over runs and a distribution-free interval for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub median: f64,
    pub low: f64,
    pub high: f64,
    /// The interval's exact coverage: 0.969 with 6 runs; below 0.95 with 5 or fewer
    /// (then the interval is the range of the runs); 0 with a single run.
    pub coverage: f64,
}

/// A candidate's cold starts: per run, the pull of its image onto a node that
/// had none of the candidates, then its container's start-up to the first 2xx.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdStart {
    /// The median over runs, and the distribution-free interval for it (as
    /// `requests_per_second`).
    pub median_ms: f64,
    pub low_ms: f64,
    pub high_ms: f64,
    pub coverage: f64,
    /// The median pull alone (fetch and unpack into podman's storage).
    pub pull_ms: f64,
    /// Every run's cold start (pull + start-up), in round order.
    pub runs_ms: Vec<f64>,
    /// The most of the image's layers any run found in podman's storage
    /// already (0: every run was truly cold).
    pub layers_present: usize,
}

/// Medians over runs of each run's mean and p99 latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub mean: f64,
    pub p99: f64,
}

/// A significant difference: `faster` has `ratio` times the requests/s (or,
/// ranked by capacity, the capacity) of `slower`, the geometric mean of the per-round ratios (each round measures every
/// candidate back to back), with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub faster: String,
    pub slower: String,
    pub ratio: f64,
    /// The `1 - ALPHA` (95%) t-interval for `ratio`, from the per-round log-ratios.
    pub ratio_low: f64,
    pub ratio_high: f64,
    /// Rounds paired (both measured more than 0 req/s).
    pub rounds: usize,
    /// Two-sided paired t-test on the log-ratios, Holm-adjusted across all pairs.
    pub p_value: f64,
    /// The same test before the adjustment.
    pub p_value_unadjusted: f64,
}

/// A difference judged noise: `higher` has `ratio` (>= 1) times the requests/s of
/// `lower` (the geometric mean of the per-round ratios, or of the medians when
/// not tested).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    pub higher: String,
    pub lower: String,
    pub ratio: f64,
    /// The 95% interval for `ratio`; `None` when not tested (too few rounds).
    pub ratio_low: Option<f64>,
    pub ratio_high: Option<f64>,
    /// Rounds paired (0 when not tested).
    pub rounds: usize,
    /// Holm-adjusted; `None` when the test was not run (too few rounds).
    pub p_value: Option<f64>,
    pub p_value_unadjusted: Option<f64>,
    pub reason: NoiseReason,
}

/// Why a difference is noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseReason {
    /// Fewer than `MIN_RUNS_FOR_SIGNIFICANCE` rounds in common: not tested.
    TooFewRuns,
    /// Holm-adjusted p >= `ALPHA`.
    NotSignificant,
    /// Adjusted p < `ALPHA` but the difference is under `PRACTICAL_THRESHOLD`.
    BelowThreshold,
}

/// The recommended base and why, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub name: String,
    pub reason: String,
}

/// How the figures were obtained, for readers of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub statistic: String,
    pub interval: String,
    pub comparison: String,
    pub test: String,
    pub alpha: f64,
    pub practical_threshold: f64,
    pub min_runs_for_significance: usize,
}

impl Default for Method {
    fn default() -> Self {
        Method {
            statistic: "median over runs".into(),
            interval: "distribution-free order-statistic interval for the median".into(),
            comparison: "per-round ratios between candidates (rounds as blocks), geometric \
                         mean with a 95% t-interval on the log-ratios"
                .into(),
            test: "two-sided paired t-test on the log-ratios, Holm-adjusted across all pairs"
                .into(),
            alpha: ALPHA,
            practical_threshold: PRACTICAL_THRESHOLD,
            min_runs_for_significance: MIN_RUNS_FOR_SIGNIFICANCE,
        }
    }
}

impl Report {
    /// The summary of the candidate called `name`.
    pub fn candidate(&self, name: &str) -> Option<&CandidateSummary> {
        self.candidates.iter().find(|c| c.name == name)
    }

    /// Whether `name` is the recommended candidate.
    pub fn is_recommended(&self, name: &str) -> bool {
        self.recommendation.as_ref().is_some_and(|r| r.name == name)
    }
}

/// A median and interval of no runs.
const NO_RUNS: Throughput = Throughput {
    median: 0.0,
    low: 0.0,
    high: 0.0,
    coverage: 0.0,
};

impl CandidateSummary {
    /// The median and interval of what the candidates are ranked by.
    pub fn ranked(&self, by: RankedBy) -> &Throughput {
        match by {
            RankedBy::Throughput => &self.requests_per_second,
            RankedBy::Capacity => self.capacity.as_ref().map_or(&NO_RUNS, |c| &c.interval),
        }
    }
}

/// The output formats of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Json,
    Svg,
}

impl Format {
    /// Writes `report` in this format.
    pub fn write<W: io::Write>(self, report: &Report, out: W) -> io::Result<()> {
        match self {
            Format::Table => table::write(report, out),
            Format::Markdown => markdown::write(report, out),
            Format::Json => json::write(report, out),
            Format::Svg => svg::write(report, out),
        }
    }

    /// `report` in this format, as bytes.
    pub fn render(self, report: &Report) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(report, &mut out)
            .expect("writing to a Vec<u8> cannot fail");
        out
    }
}
