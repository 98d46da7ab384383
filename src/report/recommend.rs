//! The recommendation: the smallest image among the candidates whose
//! throughput (or capacity at the SLO) is not shown to be below the best (paired over the rounds,
//! Holm-adjusted), and its reason worded as a person would write it in a
//! design document, honest about what the runs can and cannot tell: it states
//! the interval of the decisive difference and the smallest difference this
//! run could resolve.

use super::analyze::Pair;
use super::units::{p_value, pct_more, percent, rate, ratio_interval, runs_each};
use super::{
    ALPHA, CandidateSummary, MIN_RUNS_FOR_SIGNIFICANCE, NoiseReason, PRACTICAL_THRESHOLD, RankedBy,
    Recommendation,
};
use crate::report::units::human_bytes;

/// Whether any pair of these candidates was tested at all.
fn any_tested(pairs: &[Pair]) -> bool {
    pairs.iter().any(|p| p.paired.is_some())
}

/// The pair of `a` and `b`, whichever is `hi`.
fn pair_of(pairs: &[Pair], a: usize, b: usize) -> Option<&Pair> {
    pairs
        .iter()
        .find(|p| (p.hi, p.lo) == (a, b) || (p.hi, p.lo) == (b, a))
}

/// " This run could resolve differences of about ±1.2% (...)": half the width
/// of the 95% interval of the pair `a`, `b`, on the log scale; empty if untested.
fn resolution(pairs: &[Pair], a: usize, b: usize, cands: &[CandidateSummary]) -> String {
    pair_of(pairs, a, b)
        .and_then(|p| p.paired)
        .map_or_else(String::new, |t| {
            format!(
                " This run could resolve differences of about ±{} (half the width of the 95% \
                 interval between {} and {}); a smaller one could not be told from noise.",
                percent((t.high / t.low).sqrt() - 1.0),
                cands[a].name,
                cands[b].name
            )
        })
}

/// "95% interval 1.1–3.0%, p = 0.004 Holm-adjusted" for a tested pair.
fn evidence(p: &Pair) -> String {
    match (p.paired, p.p_value) {
        (Some(t), Some(adj)) => format!(
            "95% interval {}, {} Holm-adjusted, paired over {} rounds",
            ratio_interval(t.low, t.high),
            p_value(adj),
            t.rounds
        ),
        _ => "not tested".into(),
    }
}

fn sizes(c: &CandidateSummary) -> String {
    format!(
        "{} on disk, {} compressed",
        human_bytes(c.image.uncompressed_bytes),
        human_bytes(c.image.compressed_bytes)
    )
}

/// Smallest first: uncompressed, then compressed bytes, then name.
fn size_key(c: &CandidateSummary) -> (u64, u64, &str) {
    (
        c.image.uncompressed_bytes,
        c.image.compressed_bytes,
        c.name.as_str(),
    )
}

/// The smallest image (by `size_key`) among the candidates not significantly
/// slower than the one with the highest median, and why; `None` without runs.
/// `ranked`: candidates with runs, highest median first; `pairs`: every judged
/// pair; `rps`: each one's per-run values of `by`.
pub(super) fn recommend(
    cands: &[CandidateSummary],
    ranked: &[usize],
    pairs: &[Pair],
    rps: &[Vec<f64>],
    by: RankedBy,
) -> Option<Recommendation> {
    let &best = ranked.first()?;
    let significant = |a: usize, b: usize| {
        pairs
            .iter()
            .find(|p| p.hi == a && p.lo == b)
            .filter(|p| p.verdict.is_none())
    };
    let tied: Vec<usize> = ranked
        .iter()
        .copied()
        .filter(|&c| c == best || significant(best, c).is_none())
        .collect();
    let smallest_of =
        |set: &[usize]| -> usize { *set.iter().min_by_key(|&&i| size_key(&cands[i])).unwrap() };
    let chosen = smallest_of(&tied);
    let c = &cands[chosen];
    let counts: Vec<usize> = ranked.iter().map(|&i| rps[i].len()).collect();
    let (nmin, nmax) = (*counts.iter().min()?, *counts.iter().max()?);
    let runs = runs_each(nmin, nmax);
    let med = |i: usize| cands[i].ranked(by).median;
    let (quantity, unit) = (by.quantity(), by.unit());

    let reason = if ranked.len() == 1 {
        let only = if cands.len() == 1 {
            "the only candidate"
        } else {
            "the only candidate with measurements"
        };
        format!(
            "{}: {only} ({} req/s median over {}; {}).",
            c.name,
            rate(med(chosen)),
            runs_each(nmax, nmax).trim_end_matches(" each"),
            sizes(c)
        )
    } else if !any_tested(pairs) {
        let why = format!(
            "no {quantity} difference is judged significant \
             ({MIN_RUNS_FOR_SIGNIFICANCE} or more runs each are needed)"
        );
        let lowest = *ranked.last()?;
        let mut s = format!(
            "{}: smallest image ({}). With {}, {why}; all {} candidates count as tied \
             (medians {}–{} req/s). Run more repeats (5 or more) to tell them apart.",
            c.name,
            sizes(c),
            if nmax == 1 {
                "a single run per candidate".to_string()
            } else {
                runs.trim_end_matches(" each").to_string() + " per candidate"
            },
            ranked.len(),
            rate(med(lowest)),
            rate(med(best)),
        );
        // The rule ties them, but a reader must not take a large gap for noise.
        if chosen != best && med(best) / med(chosen) - 1.0 >= PRACTICAL_THRESHOLD {
            s += &format!(
                " Beware: {}'s median is {} higher, a difference these few runs can \
                 neither confirm nor rule out.",
                cands[best].name,
                pct_more(med(best) / med(chosen)),
            );
        }
        s
    } else if tied.len() == 1 {
        let runner_up = ranked[1];
        let pair = significant(best, runner_up);
        let mut s = format!(
            "{}: {}, significantly: {} more {unit} than the runner-up, {} \
             ({}; {} vs {} req/s median over {runs}).",
            c.name,
            by.best(),
            pct_more(pair.map_or(med(best) / med(runner_up), |p| p.ratio)),
            cands[runner_up].name,
            pair.map_or_else(|| "not tested".into(), evidence),
            rate(med(best)),
            rate(med(runner_up)),
        );
        let smallest = smallest_of(ranked);
        if smallest == best {
            s += &format!(" It is also the smallest image ({}).", sizes(c));
        } else {
            let sm = &cands[smallest];
            s += &format!(
                " It is not the smallest image ({}): {} is {} smaller on disk ({}) \
                 but has {} {}.",
                sizes(c),
                sm.name,
                percent(
                    1.0 - sm.image.uncompressed_bytes as f64 / c.image.uncompressed_bytes as f64
                ),
                human_bytes(sm.image.uncompressed_bytes),
                percent(1.0 - med(smallest) / med(best)),
                by.less(),
            );
        }
        s
    } else {
        let among = if tied.len() == ranked.len() {
            format!(
                "all {} candidates, whose {quantity} is within noise of the best",
                tied.len()
            )
        } else {
            format!(
                "the {} candidates whose {quantity} is within noise of the best",
                tied.len()
            )
        };
        let best_part = if chosen == best {
            format!(
                "it has the highest median itself, {} req/s",
                rate(med(best))
            )
        } else {
            format!(
                "{}, {} req/s median, vs {} for {}",
                cands[best].name,
                rate(med(best)),
                rate(med(chosen)),
                c.name
            )
        };
        let mut s = format!(
            "{}: smallest image ({}) among {among} ({best_part}; differences under {} \
             or not significant at p < {ALPHA}, Holm-adjusted, over {runs}).",
            c.name,
            sizes(c),
            percent(PRACTICAL_THRESHOLD),
        );
        if chosen != best {
            if let Some(p) = pair_of(pairs, best, chosen).filter(|p| p.paired.is_some()) {
                let (faster, slower) = (&cands[p.hi].name, &cands[p.lo].name);
                s += &format!(
                    " {faster} vs {slower}: {} apart ({}).",
                    pct_more(p.ratio),
                    evidence(p)
                );
            }
        }
        // Candidates tied only because they could not be tested.
        let untested: Vec<&str> = tied
            .iter()
            .filter(|&&i| {
                pairs.iter().any(|p| {
                    p.hi == best && p.lo == i && p.verdict == Some(NoiseReason::TooFewRuns)
                })
            })
            .map(|&i| cands[i].name.as_str())
            .collect();
        if !untested.is_empty() {
            s += &format!(
                " {} had too few runs to be tested against {} and count{} as tied.",
                untested.join(", "),
                cands[best].name,
                if untested.len() == 1 { "s" } else { "" }
            );
        }
        // Say so when a smaller image was left out for being slower.
        let smaller_but_slower: Vec<usize> = ranked
            .iter()
            .copied()
            .filter(|&i| !tied.contains(&i) && size_key(&cands[i]) < size_key(c))
            .collect();
        if !smaller_but_slower.is_empty() {
            let i = smallest_of(&smaller_but_slower);
            let pair = significant(best, i);
            s += &format!(
                " {} is smaller ({} on disk) but significantly {}: {} has {} more \
                 {unit} ({}).",
                cands[i].name,
                human_bytes(cands[i].image.uncompressed_bytes),
                by.worse(),
                cands[best].name,
                pct_more(pair.map_or(med(best) / med(i), |p| p.ratio)),
                pair.map_or_else(|| "not tested".into(), evidence),
            );
        }
        s
    };
    // The smallest difference this run could have told apart, against the best.
    let reason = match (ranked.len(), chosen == best) {
        (1, _) => reason,
        (_, true) => reason + &resolution(pairs, best, ranked[1], cands),
        (_, false) => reason + &resolution(pairs, best, chosen, cands),
    };
    Some(Recommendation {
        name: c.name.clone(),
        reason,
    })
}
