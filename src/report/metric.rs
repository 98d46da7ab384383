//! What `compare` ranks candidates by: the requests/s of closed-loop runs
//! (throughput), or, with `[load] slo`, each run's capacity at the SLO (the
//! highest open-loop rate that kept it). The analysis is the same for both
//! (per-round ratios, t-interval, Holm, the practical threshold, the
//! smallest of the tied); this is the one place that says which per-run
//! values it reads and how every format names them.

use serde::{Deserialize, Serialize};

use super::{CandidateRuns, LoadSummary};
use crate::loadgen::search::{Slo, trim_number};

/// The measure candidates are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankedBy {
    /// Requests/s of each closed-loop run (reports written before capacity
    /// existed say nothing, and meant this).
    #[default]
    Throughput,
    /// Each run's capacity at `load.slo`.
    Capacity,
}

impl RankedBy {
    /// Capacity when the load searched one (`load.slo`), else throughput.
    pub fn of(load: &LoadSummary) -> RankedBy {
        match load.slo {
            Some(_) => RankedBy::Capacity,
            None => RankedBy::Throughput,
        }
    }

    /// The per-run values the analysis compares, in round order.
    pub fn per_run(self, c: &CandidateRuns) -> Vec<f64> {
        match self {
            RankedBy::Throughput => c.runs.iter().map(|r| r.requests_per_second).collect(),
            RankedBy::Capacity => c.capacity_per_second.clone(),
        }
    }

    /// `throughput`, `capacity`: "whose {} is within noise of the best".
    pub fn quantity(self) -> &'static str {
        match self {
            RankedBy::Throughput => "throughput",
            RankedBy::Capacity => "capacity",
        }
    }

    /// `requests/s`, `capacity`: "7% more {}", "25% fewer {}".
    pub fn unit(self) -> &'static str {
        match self {
            RankedBy::Throughput => "requests/s",
            RankedBy::Capacity => "capacity",
        }
    }

    /// `fewer requests/s`, `less capacity`.
    pub fn less(self) -> &'static str {
        match self {
            RankedBy::Throughput => "fewer requests/s",
            RankedBy::Capacity => "less capacity",
        }
    }

    /// `the fastest`, `the highest capacity`.
    pub fn best(self) -> &'static str {
        match self {
            RankedBy::Throughput => "the fastest",
            RankedBy::Capacity => "the highest capacity",
        }
    }

    /// `slower`, `lower in capacity`: "smaller but significantly {}".
    pub fn worse(self) -> &'static str {
        match self {
            RankedBy::Throughput => "slower",
            RankedBy::Capacity => "lower in capacity",
        }
    }

    /// The verb of a difference: `is 7% faster than`, `has 7% more capacity than`.
    pub fn comparison(self, percent: &str) -> String {
        match self {
            RankedBy::Throughput => format!("is {percent} faster than"),
            RankedBy::Capacity => format!("has {percent} more capacity than"),
        }
    }
}

/// `p99 <= 50 ms`: the latency bound of an SLO, as column headings give it.
pub fn latency_bound(slo: &Slo) -> String {
    format!(
        "p{} <= {} ms",
        trim_number(slo.percentile),
        trim_number(slo.latency_ms)
    )
}

/// The heading of the ranked column, without the interval: `Requests/s`, or
/// `Capacity at p99 <= 50 ms [req/s]`.
pub fn heading(load: &LoadSummary) -> String {
    match &load.slo {
        None => "Requests/s".into(),
        Some(slo) => format!("Capacity at {} [req/s]", latency_bound(slo)),
    }
}

/// How each run's capacity was measured, a sentence for the method notes:
/// the SLO, open-loop steps, their length, the precision, where each search
/// started; empty when ranked by throughput.
pub fn capacity_method(load: &LoadSummary) -> String {
    let Some(slo) = &load.slo else {
        return String::new();
    };
    let step = load
        .slo_step_seconds
        .map_or_else(String::new, |s| format!(" of {} s", trim_number(s)));
    let precision = load.slo_precision.map_or_else(String::new, |p| {
        format!(
            " to within {}% (the lowest rate that failed at most that much above it)",
            trim_number(p * 100.0)
        )
    });
    format!(
        "Each run's capacity is the highest rate that kept {} (latency measured from \
         each request's scheduled time, so stalls count), searched in open-loop steps{step} \
         over {} connections: doubling from the first rate until a step failed, then \
         bisecting{precision}; later runs started at a capacity found before with a smaller \
         ramp. A run in which no rate kept it counts 0 (in the median; a round without a ratio \
         in the paired comparison).",
        slo.describe(),
        load.concurrency
    )
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn the_slo_decides_the_measure_and_its_words() {
        let mut load = sample::input(vec![]).load;
        assert_eq!(RankedBy::of(&load), RankedBy::Throughput);
        assert_eq!(heading(&load), "Requests/s");
        assert_eq!(capacity_method(&load), "");
        load.slo = Some(Slo::parse("p99.9=250ms").unwrap());
        load.slo_precision = Some(0.05);
        load.slo_step_seconds = Some(2.0);
        assert_eq!(RankedBy::of(&load), RankedBy::Capacity);
        assert_eq!(heading(&load), "Capacity at p99.9 <= 250 ms [req/s]");
        let m = capacity_method(&load);
        assert!(
            m.starts_with(
                "Each run's capacity is the highest rate that kept p99.9 <= 250 ms, errors <= 1% \
                 (latency measured from each request's scheduled time"
            ),
            "{m}"
        );
        assert!(
            m.contains("open-loop steps of 2 s over 100 connections"),
            "{m}"
        );
        assert!(m.contains("bisecting to within 5%"), "{m}");
        assert_eq!(
            RankedBy::Capacity.comparison("7%"),
            "has 7% more capacity than"
        );
        assert_eq!(RankedBy::Throughput.comparison("7%"), "is 7% faster than");
    }

    #[test]
    fn per_run_values_come_from_the_measure() {
        let mut c = sample::candidate("a", 1, 1, &[100.0, 200.0]);
        c.capacity_per_second = vec![50.0, 0.0];
        assert_eq!(RankedBy::Throughput.per_run(&c), [100.0, 200.0]);
        assert_eq!(RankedBy::Capacity.per_run(&c), [50.0, 0.0]);
    }
}
