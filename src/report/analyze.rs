//! From measurements to judgements: per-candidate medians and intervals, and
//! for every pair a paired comparison over the rounds (`paired`: the per-round
//! ratios, their interval, a paired t-test, Holm across pairs); `recommend` and
//! `warnings` (sibling modules) word the conclusions.

use super::paired::{self, PairedRatio};
use super::stats::{median, median_interval, median_u64};
use super::{
    ALPHA, CandidateRuns, CandidateSummary, Capacity, ColdStart, CompareInput, Difference,
    INTERVAL_CONFIDENCE, LatencySummary, MIN_RUNS_FOR_SIGNIFICANCE, Method, Noise, NoiseReason,
    PRACTICAL_THRESHOLD, RankedBy, Report, Throughput,
};

/// Analyses finished measurements: medians, intervals, significance, warnings,
/// and the recommendation (the smallest image among those tied for the best
/// throughput, or, with `load.slo`, the best capacity at the SLO).
pub fn analyze(input: CompareInput) -> Report {
    let CompareInput { candidates, load } = input;
    let by = RankedBy::of(&load);
    // The per-run values compared (`rps` by its first meaning: throughput).
    let rps: Vec<Vec<f64>> = candidates.iter().map(|c| by.per_run(c)).collect();
    let candidates: Vec<CandidateSummary> =
        candidates.into_iter().map(|c| summarize(c, by)).collect();
    let med: Vec<f64> = candidates.iter().map(|c| c.ranked(by).median).collect();

    // Candidates with runs, highest median first (a stable sort: ties keep input order).
    let mut ranked: Vec<usize> = (0..candidates.len())
        .filter(|&i| !rps[i].is_empty())
        .collect();
    ranked.sort_by(|&a, &b| med[b].total_cmp(&med[a]));

    let mut pairs = Vec::new();
    for (x, &hi) in ranked.iter().enumerate() {
        for &lo in &ranked[x + 1..] {
            pairs.push(judge(hi, lo, &rps, &med));
        }
    }
    // Family-wise error control: Holm over every tested pair.
    let tested: Vec<usize> = (0..pairs.len())
        .filter(|&k| pairs[k].paired.is_some())
        .collect();
    let raw: Vec<f64> = tested
        .iter()
        .filter_map(|&k| pairs[k].paired.map(|t| t.p_value))
        .collect();
    for (&k, adjusted) in tested.iter().zip(paired::holm(&raw)) {
        let pair = &mut pairs[k];
        pair.p_value = Some(adjusted);
        pair.verdict = if adjusted >= ALPHA {
            Some(NoiseReason::NotSignificant)
        } else if pair.ratio - 1.0 < PRACTICAL_THRESHOLD {
            Some(NoiseReason::BelowThreshold)
        } else {
            None
        };
    }

    let name = |i: usize| candidates[i].name.clone();
    let mut significant = Vec::new();
    let mut noise = Vec::new();
    for p in &pairs {
        match (p.verdict, p.paired) {
            (None, Some(t)) => significant.push(Difference {
                faster: name(p.hi),
                slower: name(p.lo),
                ratio: p.ratio,
                ratio_low: t.low,
                ratio_high: t.high,
                rounds: t.rounds,
                p_value: p.p_value.unwrap_or(1.0),
                p_value_unadjusted: t.p_value,
            }),
            (reason, t) => noise.push(Noise {
                higher: name(p.hi),
                lower: name(p.lo),
                ratio: p.ratio,
                ratio_low: t.map(|t| t.low),
                ratio_high: t.map(|t| t.high),
                rounds: t.map_or(0, |t| t.rounds),
                p_value: p.p_value,
                p_value_unadjusted: t.map(|t| t.p_value),
                reason: reason.unwrap_or(NoiseReason::NotSignificant),
            }),
        }
    }

    let recommendation = super::recommend::recommend(&candidates, &ranked, &pairs, &rps, by);
    let mut warnings = super::warnings::warnings(&candidates, &ranked, &rps);
    warnings.extend(super::warnings::capacities(&candidates));
    // A search drives the service past its capacity and back: CPU over it
    // says nothing of what limited a run (the SLO did).
    let judged = match by {
        RankedBy::Throughput => &candidates[..],
        RankedBy::Capacity => &[],
    };
    warnings.extend(super::warnings::limits(judged, &load.isolation));
    warnings.extend(super::warnings::cold_starts(&candidates));
    Report {
        candidates,
        significant,
        recommendation,
        noise,
        warnings,
        load,
        method: Method::default(),
        ranked_by: by,
    }
}

/// The median of `values` and its distribution-free interval (zeros without values).
fn median_with_interval(values: &[f64]) -> Throughput {
    match (median(values), median_interval(values, INTERVAL_CONFIDENCE)) {
        (Some(m), Some(iv)) => Throughput {
            median: m,
            low: iv.low,
            high: iv.high,
            coverage: iv.coverage,
        },
        _ => Throughput {
            median: 0.0,
            low: 0.0,
            high: 0.0,
            coverage: 0.0,
        },
    }
}

fn summarize(c: CandidateRuns, by: RankedBy) -> CandidateSummary {
    let rps: Vec<f64> = c.runs.iter().map(|r| r.requests_per_second).collect();
    let requests_per_second = median_with_interval(&rps);
    let capacity = (by == RankedBy::Capacity).then(|| Capacity {
        interval: median_with_interval(&c.capacity_per_second),
        runs_per_second: c.capacity_per_second.clone(),
        searches: c.capacity_searches.clone(),
    });
    let of_runs = |f: fn(&crate::loadgen::BenchResult) -> f64| {
        median(&c.runs.iter().map(f).collect::<Vec<_>>())
    };
    // Runs without any latency (nothing answered) have no say in the medians.
    let of_latency = |f: fn(&crate::loadgen::LatencyMs) -> f64| {
        median(
            &c.runs
                .iter()
                .filter_map(|r| r.latency_ms.as_ref().map(f))
                .collect::<Vec<_>>(),
        )
    };
    CandidateSummary {
        startup_ms: median(&c.startup_ms),
        cold_start: cold_start(&c),
        peak_memory_bytes: median_u64(&c.peak_memory_bytes),
        requests_per_second,
        latency_ms: LatencySummary {
            mean: of_latency(|l| l.mean).unwrap_or(0.0),
            p99: of_latency(|l| l.p99).unwrap_or(0.0),
        },
        total_seconds: of_runs(|r| r.total_seconds),
        service_cpu_percent: median(&c.service_cpu_percent),
        generator_cpu_share: median(&c.generator_cpu_share),
        name: c.name,
        base: c.base,
        image: c.image,
        runs: c.runs,
        capacity,
    }
}

/// The cold starts of `c`'s runs: each cold run's pull plus its start-up (the
/// cold runs are the first ones: `compare` starts its first rounds cold);
/// `None` without cold starts (or with more pulls than runs).
fn cold_start(c: &CandidateRuns) -> Option<ColdStart> {
    if c.pull_ms.is_empty() || c.pull_ms.len() > c.startup_ms.len() {
        return None;
    }
    let runs_ms: Vec<f64> = c
        .pull_ms
        .iter()
        .zip(&c.startup_ms)
        .map(|(p, s)| p + s)
        .collect();
    let median_ms = median(&runs_ms)?;
    let iv = median_interval(&runs_ms, INTERVAL_CONFIDENCE)?;
    let (low_ms, high_ms, coverage) = (iv.low, iv.high, iv.coverage);
    Some(ColdStart {
        median_ms,
        low_ms,
        high_ms,
        coverage,
        pull_ms: median(&c.pull_ms)?,
        runs_ms,
        layers_present: c.layers_present.iter().copied().max().unwrap_or(0),
    })
}

/// One pair's judgement: `hi` has the higher estimate (the paired one when
/// tested, else the median).
pub(super) struct Pair {
    pub(super) hi: usize,
    pub(super) lo: usize,
    /// hi / lo: the geometric mean of the per-round ratios, or of the medians when untested.
    pub(super) ratio: f64,
    /// The paired comparison of hi against lo; `None` when not tested.
    pub(super) paired: Option<PairedRatio>,
    /// Holm-adjusted (set by `analyze` once every pair is tested).
    pub(super) p_value: Option<f64>,
    /// `None`: significant.
    pub(super) verdict: Option<NoiseReason>,
}

fn judge(hi: usize, lo: usize, rps: &[Vec<f64>], med: &[f64]) -> Pair {
    let ratio = if med[lo] > 0.0 {
        med[hi] / med[lo]
    } else if med[hi] > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let untested = Pair {
        hi,
        lo,
        ratio,
        paired: None,
        p_value: None,
        verdict: Some(NoiseReason::TooFewRuns),
    };
    // Round k of one candidate is round k of the other (`compare` runs every
    // candidate once per round, and a failed trial ends the experiment).
    let Some(t) = paired::paired_ratio(&rps[hi], &rps[lo], 1.0 - ALPHA)
        .filter(|t| t.rounds >= MIN_RUNS_FOR_SIGNIFICANCE)
    else {
        return untested;
    };
    // The median order and the paired estimate can disagree on small gaps:
    // `hi` is the one the rounds favour.
    if t.ratio < 1.0 {
        let flipped = PairedRatio {
            ratio: 1.0 / t.ratio,
            low: 1.0 / t.high,
            high: 1.0 / t.low,
            ..t
        };
        return Pair {
            hi: lo,
            lo: hi,
            ratio: flipped.ratio,
            paired: Some(flipped),
            ..untested
        };
    }
    Pair {
        ratio: t.ratio,
        paired: Some(t),
        ..untested
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::{candidate, input, origin};
    use super::*;

    fn names(v: &[Difference]) -> Vec<(&str, &str)> {
        v.iter()
            .map(|d| (d.faster.as_str(), d.slower.as_str()))
            .collect()
    }

    #[test]
    fn medians_and_intervals() {
        let r = analyze(input(vec![candidate(
            "a",
            100,
            40,
            &[2000.0, 2100.0, 1900.0, 2050.0, 1950.0, 2020.0],
        )]));
        let c = &r.candidates[0];
        assert_eq!(c.requests_per_second.median, 2010.0);
        assert_eq!(
            (c.requests_per_second.low, c.requests_per_second.high),
            (1900.0, 2100.0)
        );
        assert_eq!(c.requests_per_second.coverage, 0.968_75);
        assert_eq!(c.startup_ms, Some(300.0));
        assert_eq!(c.peak_memory_bytes, Some(30_000_000));
        assert!(c.service_cpu_percent.is_some());
        assert!(c.total_seconds.is_some());
    }

    #[test]
    fn ties_pick_the_smallest() {
        // Three candidates within noise of each other; "slim" is the smallest.
        let r = analyze(input(vec![
            candidate("big", 900, 300, &[2000.0, 2010.0, 1990.0, 2005.0, 1995.0]),
            candidate("slim", 120, 45, &[1995.0, 2008.0, 1992.0, 2003.0, 2001.0]),
            candidate("mid", 140, 50, &[2002.0, 1998.0, 2006.0, 1993.0, 2004.0]),
        ]));
        assert!(r.significant.is_empty(), "{:?}", r.significant);
        assert_eq!(r.noise.len(), 3);
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.name, "slim");
        assert!(
            rec.reason.starts_with(
                "slim: smallest image (120.0 MB on disk, 45.0 MB compressed) among all 3 \
                 candidates, whose throughput is within noise of the best"
            ),
            "{}",
            rec.reason
        );
        assert!(rec.reason.contains("over 5 runs each"), "{}", rec.reason);
    }

    #[test]
    fn clear_winner_that_is_not_the_smallest() {
        let r = analyze(input(vec![
            candidate("alpine", 50, 20, &[1500.0, 1510.0, 1490.0, 1505.0, 1495.0]),
            candidate("slim", 120, 45, &[2000.0, 2010.0, 1990.0, 2005.0, 1995.0]),
            candidate("full", 900, 300, &[1800.0, 1810.0, 1790.0, 1805.0, 1795.0]),
        ]));
        assert_eq!(
            names(&r.significant),
            vec![("slim", "full"), ("slim", "alpine"), ("full", "alpine")]
        );
        // The same offset in every round: the paired test is decisive.
        assert!(r.significant[0].p_value < 0.001);
        assert!((r.significant[0].ratio - 2000.0 / 1800.0).abs() < 1e-3);
        let d = &r.significant[0];
        assert!(d.ratio_low < d.ratio && d.ratio < d.ratio_high && d.rounds == 5);
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.name, "slim");
        assert_eq!(
            rec.reason,
            "slim: the fastest, significantly: 11.1% more requests/s than the runner-up, full \
             (95% interval 11.1–11.2%, p < 0.001 Holm-adjusted, paired over 5 rounds; 2,000 vs \
             1,800 req/s median over 5 runs each). It is not the smallest image (120.0 MB on \
             disk, 45.0 MB compressed): alpine is 58.3% smaller on disk (50.0 MB) but has 25% \
             fewer requests/s. This run could resolve differences of about ±0.05% (half the \
             width of the 95% interval between slim and full); a smaller one could not be told \
             from noise."
        );
    }

    #[test]
    fn clear_winner_that_is_also_the_smallest() {
        let r = analyze(input(vec![
            candidate("slim", 120, 45, &[2000.0, 2010.0, 1990.0, 2005.0, 1995.0]),
            candidate("full", 900, 300, &[1800.0, 1810.0, 1790.0, 1805.0, 1795.0]),
        ]));
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.name, "slim");
        assert!(
            rec.reason
                .contains("It is also the smallest image (120.0 MB on disk, 45.0 MB compressed)."),
            "{}",
            rec.reason
        );
    }

    #[test]
    fn smaller_but_slower_is_named() {
        let r = analyze(input(vec![
            candidate("tiny", 50, 20, &[1500.0, 1510.0, 1490.0, 1505.0, 1495.0]),
            candidate("slim", 120, 45, &[2000.0, 2010.0, 1990.0, 2005.0, 1995.0]),
            candidate("full", 900, 300, &[2003.0, 2008.0, 1992.0, 2001.0, 1997.0]),
        ]));
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.name, "slim");
        assert!(
            rec.reason
                .contains("among the 2 candidates whose throughput"),
            "{}",
            rec.reason
        );
        assert!(
            rec.reason.contains(
                "tiny is smaller (50.0 MB on disk) but significantly slower: full has 33.3% \
                 more requests/s (95% interval 32.9–33.8%, p < 0.001 Holm-adjusted, paired over \
                 5 rounds)."
            ),
            "{}",
            rec.reason
        );
    }

    #[test]
    fn below_the_practical_threshold_is_noise_even_if_significant() {
        let r = analyze(input(vec![
            candidate("a", 100, 40, &[2010.0, 2011.0, 2012.0, 2013.0, 2014.0]),
            candidate("b", 200, 80, &[2000.0, 2001.0, 2002.0, 2003.0, 2004.0]),
        ]));
        assert!(r.significant.is_empty());
        assert_eq!(r.noise[0].reason, NoiseReason::BelowThreshold);
        assert!(r.noise[0].p_value.unwrap() < ALPHA);
        assert_eq!(r.recommendation.unwrap().name, "a");
    }

    #[test]
    fn fewer_than_three_runs_is_never_significant() {
        let r = analyze(input(vec![
            candidate("fast", 900, 300, &[3000.0, 3010.0]),
            candidate("slow", 100, 40, &[1000.0, 1010.0]),
        ]));
        assert!(r.significant.is_empty());
        assert_eq!(r.noise[0].reason, NoiseReason::TooFewRuns);
        assert_eq!(r.noise[0].p_value, None);
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.name, "slow");
        assert!(
            rec.reason.contains(
                "With 2 runs per candidate, no throughput difference is judged significant \
                 (3 or more runs each are needed); all 2 candidates count as tied"
            ),
            "{}",
            rec.reason
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.starts_with("fast: only 2 runs"))
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.starts_with("with 2 runs per candidate, the interval"))
        );
    }

    #[test]
    fn three_rounds_can_reach_significance() {
        // With the Mann–Whitney test, 3 runs each could never reach p < 0.05
        // (smallest p = 0.1); the paired t-test on 3 rounds can.
        let r = analyze(input(vec![
            candidate("fast", 900, 300, &[3000.0, 3010.0, 3020.0]),
            candidate("slow", 100, 40, &[1000.0, 1010.0, 1020.0]),
        ]));
        assert_eq!(names(&r.significant), vec![("fast", "slow")]);
        assert!(r.significant[0].p_value < ALPHA);
        assert_eq!(r.recommendation.unwrap().name, "fast");
        assert!(!r.warnings.iter().any(|w| w.contains("Mann–Whitney")));
    }

    #[test]
    fn rounds_as_blocks_see_through_drift() {
        // The machine drifts by ±10% from round to round; "a" is 2% faster than
        // "b" in every round. Unpaired, the runs overlap (Mann–Whitney p = 0.69,
        // the old verdict: noise); paired, the 2% is plain.
        let drift = [1.0, 1.1, 0.9, 1.05, 0.95];
        let b: Vec<f64> = drift.iter().map(|d| 2000.0 * d).collect();
        let a: Vec<f64> = [1.021, 1.019, 1.020, 1.022, 1.018]
            .iter()
            .zip(&b)
            .map(|(r, y)| r * y)
            .collect();
        let unpaired = crate::report::stats::mann_whitney(&a, &b).unwrap();
        assert!(unpaired.p_value >= ALPHA, "{}", unpaired.p_value);
        let r = analyze(input(vec![
            candidate("a", 900, 300, &a),
            candidate("b", 100, 40, &b),
        ]));
        assert_eq!(names(&r.significant), vec![("a", "b")]);
        let d = &r.significant[0];
        assert!(d.ratio_low > 1.015 && d.ratio_high < 1.025, "{d:?}");
        assert!((d.ratio - 1.02).abs() < 1e-3);
        assert_eq!(r.recommendation.unwrap().name, "a");
    }

    #[test]
    fn holm_adjusts_across_pairs() {
        // Raw paired p-values 0.034 (a, b) and 0.025 (a, c) are under 0.05, but with
        // 3 pairs Holm makes them 0.075 (python3 reference): no difference is shown.
        let r = analyze(input(vec![
            candidate("a", 900, 300, &[2045.0, 2025.0, 2065.0, 2000.0, 2035.0]),
            candidate("b", 100, 40, &[2000.0; 5]),
            candidate("c", 200, 40, &[2001.0, 1998.0, 2003.0, 1997.0, 2002.0]),
        ]));
        assert!(r.significant.is_empty(), "{:?}", r.significant);
        let raw: Vec<f64> = r
            .noise
            .iter()
            .filter_map(|n| n.p_value_unadjusted)
            .collect();
        let adjusted: Vec<f64> = r.noise.iter().filter_map(|n| n.p_value).collect();
        assert_eq!(adjusted, crate::report::paired::holm(&raw));
        let ab = r
            .noise
            .iter()
            .find(|n| (n.higher.as_str(), n.lower.as_str()) == ("a", "b"));
        let ab = ab.unwrap();
        assert!((ab.p_value_unadjusted.unwrap() - 0.033_870_6).abs() < 1e-6);
        assert!((ab.p_value.unwrap() - 3.0 * 0.025_066_18).abs() < 1e-6);
        assert_eq!(ab.reason, NoiseReason::NotSignificant);
        // The rule: the smallest image not shown slower than the best.
        assert_eq!(r.recommendation.unwrap().name, "b");
    }

    #[test]
    fn untested_candidates_are_named() {
        let r = analyze(input(vec![
            candidate("a", 900, 300, &[2000.0, 2010.0, 1990.0, 2005.0, 1995.0]),
            candidate("b", 800, 300, &[1500.0, 1510.0, 1490.0, 1505.0, 1495.0]),
            candidate("c", 100, 40, &[1000.0]),
        ]));
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.name, "c");
        assert!(
            rec.reason
                .ends_with("c had too few runs to be tested against a and counts as tied."),
            "{}",
            rec.reason
        );
    }

    #[test]
    fn identical_samples_are_noise() {
        let runs = [2000.0; 5];
        let r = analyze(input(vec![
            candidate("b", 100, 40, &runs),
            candidate("a", 100, 40, &runs),
        ]));
        assert!(r.significant.is_empty());
        assert_eq!(r.noise[0].p_value, Some(1.0));
        assert_eq!(r.noise[0].ratio, 1.0);
        // Same sizes: the name breaks the tie.
        assert_eq!(r.recommendation.unwrap().name, "a");
    }

    #[test]
    fn single_candidate() {
        let r = analyze(input(vec![candidate(
            "only",
            100,
            40,
            &[2000.0, 2100.0, 1900.0],
        )]));
        assert!(r.significant.is_empty() && r.noise.is_empty());
        assert_eq!(
            r.recommendation.unwrap().reason,
            "only: the only candidate (2,000 req/s median over 3 runs; 100.0 MB on disk, \
             40.0 MB compressed)."
        );
    }

    #[test]
    fn single_run_per_candidate() {
        let r = analyze(input(vec![
            candidate("a", 100, 40, &[2000.0]),
            candidate("b", 200, 40, &[2100.0]),
        ]));
        let a = &r.candidates[0].requests_per_second;
        assert_eq!(
            (a.low, a.median, a.high, a.coverage),
            (2000.0, 2000.0, 2000.0, 0.0)
        );
        assert!(r.warnings[0].starts_with("a single run per candidate"));
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.name, "a");
        assert!(
            rec.reason.contains(
                "With a single run per candidate, no throughput difference is judged significant"
            ),
            "{}",
            rec.reason
        );
    }

    #[test]
    fn no_candidates_or_no_runs() {
        let r = analyze(input(vec![]));
        assert!(r.recommendation.is_none());
        let r = analyze(input(vec![candidate("a", 100, 40, &[])]));
        assert!(r.recommendation.is_none());
        assert_eq!(
            r.warnings,
            vec!["a: no runs; it is left out of the comparison"]
        );
    }

    #[test]
    fn warnings_for_generator_limit_and_failures() {
        let mut a = candidate("a", 100, 40, &[2000.0, 2010.0, 1990.0, 2005.0, 1995.0]);
        a.generator_cpu_share = vec![0.95, 0.92, 0.97, 0.5, 0.91];
        a.runs[1].failed = 3;
        a.runs[2].non_2xx = 7;
        a.runs[3].non_2xx = 5;
        let r = analyze(input(vec![a]));
        assert!(
            r.warnings.contains(
                &"the load generator, not the service, may have been the limit for a (it used \
              92% of its CPU time, median over runs); results may understate a"
                    .to_string()
            )
        );
        assert!(r.warnings.contains(
            &"a: 1 of 5 runs had failed requests (3 in all; not counted in requests/s); 2 of 5 \
              runs had non-2xx responses (12 in all; counted in requests/s)"
                .to_string()
        ));
    }

    #[test]
    fn origin_table_with_five_runs() {
        let r = analyze(origin());
        // slim and slim-stretch are within noise; stretch is significantly slower.
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.name, "slim-stretch", "{}", rec.reason);
        assert!(
            names(&r.significant).contains(&("slim", "stretch")),
            "{:?}",
            r.significant
        );
    }
}
