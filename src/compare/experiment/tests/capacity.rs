//! The loop with `[load] slo`: each trial's capacity lands with its
//! candidate, a trial that found none counts 0 (not an error), and each
//! search starts at a capacity found before.

use super::*;
use crate::loadgen::search::{RateSearchResult, SearchStep, Slo};

/// A search that found `found` (`None`: no rate kept the SLO).
pub(super) fn searched(found: Option<f64>) -> RateSearchResult {
    let step = |rate: f64, passed: bool| SearchStep {
        rate,
        passed,
        percentile_ms: Some(if passed { 10.0 } else { 80.0 }),
        error_rate: 0.0,
        achieved_per_second: rate,
        scheduled: rate as u64,
        sent: rate as u64,
        reason: (!passed).then(|| "p99 80 ms > 50 ms".to_string()),
        latency_ms: None,
    };
    let failed = step(found.map_or(1.0, |f| f * 1.04), false);
    let passed = found.map(|f| step(f, true));
    RateSearchResult {
        url: "http://127.0.0.1:1/".into(),
        concurrency: 1,
        slo: Slo::parse("p99=50ms").unwrap(),
        precision: 0.05,
        step_seconds: 2.0,
        found_per_second: found,
        at_found: passed.clone(),
        first_failed: Some(failed.clone()),
        converged: found.is_some(),
        steps: passed.into_iter().chain([failed]).collect(),
    }
}

fn slo_config(names: &[&str], repeats: u32) -> CompareConfig {
    let mut c = config(names, repeats);
    c.load.slo = Some(crate::compare::config::SloSettings {
        slo: Slo::parse("p99=50ms").unwrap(),
        precision: 0.05,
        step: Some(Duration::from_millis(500)),
        start: 100.0,
    });
    c
}

/// a finds 1000 + the trial's number, b nothing in its second run.
fn capacities(name: &str, trial: u32) -> Option<f64> {
    match (name, trial) {
        ("b", 3) => None,
        ("b", n) => Some(500.0 + f64::from(n)),
        (_, n) => Some(1000.0 + f64::from(n)),
    }
}

#[test]
fn each_run_keeps_its_capacity_and_none_found_counts_zero() {
    let log = Log::default();
    let mut lab = MockLab::new(&log);
    lab.capacity = Some(capacities);
    let input = measure_with(&lab, &slo_config(&["a", "b"], 3)).unwrap();
    // Rounds: ab, ba, ab: trials 1..6.
    let (a, b) = (&input.candidates[0], &input.candidates[1]);
    assert_eq!(a.capacity_per_second, [1001.0, 1004.0, 1005.0]);
    assert_eq!(b.capacity_per_second, [502.0, 0.0, 506.0]);
    assert_eq!(b.capacity_searches.len(), 3);
    assert_eq!(b.capacity_searches[1].found_per_second, None);
    assert_eq!(b.runs.len(), 3, "a run per trial, capacity or not");
    let l = &input.load;
    assert_eq!(l.slo.map(|s| s.latency_ms), Some(50.0));
    assert_eq!(
        (l.slo_precision, l.slo_step_seconds),
        (Some(0.05), Some(0.5))
    );
    assert_eq!(l.requests, None, "a search runs by time");
}

#[test]
fn a_search_starts_at_the_candidates_last_capacity_else_anyones() {
    let log = Log::default();
    let mut lab = MockLab::new(&log);
    lab.capacity = Some(capacities);
    measure_with(&lab, &slo_config(&["a", "b"], 3)).unwrap();
    let hints = log.capacity_hints.borrow().clone();
    let h = |n: &str, c: Option<f64>| (n.to_string(), c);
    assert_eq!(
        hints,
        [
            h("a", None),         // the very first search: from [load] slo_start
            h("b", Some(1001.0)), // b's first: where a's ended
            h("b", Some(502.0)),  // its own last
            h("a", Some(1001.0)), // its own last
            h("a", Some(1004.0)),
            h("b", Some(502.0)), // b's second run found nothing: its last found
        ]
    );
}

#[test]
fn without_an_slo_no_capacity_is_recorded() {
    let log = Log::default();
    let input = measure_with(&MockLab::new(&log), &config(&["a"], 2)).unwrap();
    assert!(input.candidates[0].capacity_per_second.is_empty());
    assert_eq!(input.load.slo, None);
    assert_eq!(
        log.capacity_hints.borrow().as_slice(),
        [("a".to_string(), None), ("a".to_string(), None)]
    );
}
