//! The warnings a careful reader would add to a comparison: too few runs
//! for an interval or a test, a load generator that may have been the limit,
//! failed requests and non-2xx responses.

use std::collections::BTreeSet;

use super::stats;
use super::units::{coverage, percent};
use super::{
    CandidateSummary, GENERATOR_LIMIT_SHARE, INTERVAL_CONFIDENCE, MIN_RUNS_FOR_SIGNIFICANCE,
};

/// Warnings about `cands`; `ranked` are those with runs, `rps` each one's requests/s.
pub(super) fn warnings(
    cands: &[CandidateSummary],
    ranked: &[usize],
    rps: &[Vec<f64>],
) -> Vec<String> {
    let mut w = Vec::new();
    for c in cands.iter().filter(|c| c.runs.is_empty()) {
        w.push(format!(
            "{}: no runs; it is left out of the comparison",
            c.name
        ));
    }
    let n_of = |i: usize| rps[i].len();
    let all_same = |n: usize| ranked.iter().all(|&i| n_of(i) == n);
    let names_with = |n: usize| {
        ranked
            .iter()
            .filter(|&&i| n_of(i) == n)
            .map(|&i| cands[i].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };

    // Too few runs for an interval or a test.
    if !ranked.is_empty() && all_same(1) {
        w.push(
            "a single run per candidate: no interval for the median and no significance \
             test; set repeats to 5 or more"
                .into(),
        );
    } else {
        for &i in ranked {
            match n_of(i) {
                1 => w.push(format!(
                    "{}: a single run: no interval for its median and no significance test",
                    cands[i].name
                )),
                n if n < MIN_RUNS_FOR_SIGNIFICANCE => w.push(format!(
                    "{}: only {n} runs; with fewer than {MIN_RUNS_FOR_SIGNIFICANCE}, no \
                     difference is judged significant",
                    cands[i].name
                )),
                _ => {}
            }
        }
    }

    // Intervals below the coverage sought.
    let counts: BTreeSet<usize> = ranked.iter().map(|&i| n_of(i)).collect();
    for &n in &counts {
        let (_, cov) = stats::order_statistic_rank(n, INTERVAL_CONFIDENCE);
        if n >= 2 && cov < INTERVAL_CONFIDENCE {
            let who = if all_same(n) {
                format!("with {n} runs per candidate")
            } else {
                format!("{}: with {n} runs", names_with(n))
            };
            w.push(format!(
                "{who}, the interval for the median is the range of the runs and covers it \
                 with only {} confidence (6 runs give 96.9%)",
                coverage(cov)
            ));
        }
    }

    for c in cands {
        if let Some(share) = c
            .generator_cpu_share
            .filter(|&s| s >= GENERATOR_LIMIT_SHARE)
        {
            w.push(format!(
                "the load generator, not the service, may have been the limit for {0} \
                 (it used {1} of its CPU time, median over runs); results may understate {0}",
                c.name,
                percent(share)
            ));
        }
    }

    for c in cands {
        let n = c.runs.len();
        let failed: Vec<u64> = c.runs.iter().map(|r| r.failed).filter(|&f| f > 0).collect();
        let non2xx: Vec<u64> = c
            .runs
            .iter()
            .map(|r| r.non_2xx)
            .filter(|&f| f > 0)
            .collect();
        let mut parts = Vec::new();
        if !failed.is_empty() {
            parts.push(format!(
                "{} of {n} runs had failed requests ({} in all; not counted in requests/s)",
                failed.len(),
                failed.iter().sum::<u64>()
            ));
        }
        if !non2xx.is_empty() {
            parts.push(format!(
                "{} of {n} runs had non-2xx responses ({} in all; counted in requests/s)",
                non2xx.len(),
                non2xx.iter().sum::<u64>()
            ));
        }
        if !parts.is_empty() {
            w.push(format!("{}: {}", c.name, parts.join("; ")));
        }
    }
    w
}
