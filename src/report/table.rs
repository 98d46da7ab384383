//! The terminal report: one row per candidate (sizes, start-up, memory,
//! requests/s, or the capacity at the SLO, with its interval, latency, total
//! time), then which differences are significant and which are noise, the
//! warnings, and the recommendation.

use std::collections::BTreeMap;
use std::io;

use super::metric;
use super::units::{self, coverage, ms, p_value, pct_more, rate, seconds};
use super::{
    ALPHA, CandidateSummary, Difference, INTERVAL_CONFIDENCE, Noise, NoiseReason,
    PRACTICAL_THRESHOLD, RankedBy, Report, stats,
};
use crate::report::units::human_bytes;

/// Paragraphs below the table wrap at this width.
const WRAP: usize = 92;

/// Which platform the candidates built on a multi-platform base (an index) were
/// built for, and how many the index has: each candidate is one image, the host's.
fn platform_note(c: &[CandidateSummary]) -> Option<String> {
    let chosen: Vec<String> = c
        .iter()
        .filter_map(|c| {
            let platforms = c.image.platforms.as_ref()?;
            Some(format!(
                "{} is {}, one of the {} platforms of its base's index",
                c.name,
                c.image.platform,
                platforms.len()
            ))
        })
        .collect();
    (!chosen.is_empty()).then(|| {
        format!(
            "Platforms: images are built for this host's platform; {}.",
            chosen.join("; ")
        )
    })
}

/// Writes the terminal report.
pub fn write<W: io::Write>(report: &Report, mut out: W) -> io::Result<()> {
    let c = &report.candidates;
    let by = report.ranked_by;
    let names: Vec<String> = c
        .iter()
        .map(|c| {
            let mark = if report.is_recommended(&c.name) {
                "*"
            } else {
                " "
            };
            format!("{mark} {}", c.name)
        })
        .collect();
    let size = compose(
        &[
            c.iter()
                .map(|c| human_bytes(c.image.uncompressed_bytes))
                .collect(),
            c.iter()
                .map(|c| human_bytes(c.image.compressed_bytes))
                .collect(),
        ],
        &[" / "],
    );
    let medians: Vec<String> = c.iter().map(|c| rate(c.ranked(by).median)).collect();
    let median_width = medians.iter().map(|s| width(s)).max().unwrap_or(0);
    let rps = compose(
        &[
            medians,
            c.iter().map(|c| rate(c.ranked(by).low)).collect(),
            c.iter().map(|c| rate(c.ranked(by).high)).collect(),
        ],
        &[" [", "–"],
    )
    .into_iter()
    .zip(c)
    .map(|(s, c)| match c.runs.len() {
        0 => "–".to_string(),
        // No interval from a single run: its value alone.
        1 => s.chars().take(median_width).collect(),
        _ => s + "]",
    })
    .collect();
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".into());
    let has_runs = |c: &CandidateSummary| !c.runs.is_empty();
    let ranked_heading = match &report.load.slo {
        Some(slo) => format!(
            "Capacity at {}, req/s median [interval]",
            metric::latency_bound(slo)
        ),
        None => "Requests/s median [interval]".into(),
    };
    let mut columns: Vec<(&str, Vec<String>, bool)> = vec![
        ("  Candidate", names, false),
        ("Size (disk / compressed)", size, true),
        (
            "Start-up",
            c.iter().map(|c| or_dash(c.startup_ms.map(ms))).collect(),
            true,
        ),
        (
            "Memory",
            c.iter()
                .map(|c| or_dash(c.peak_memory_bytes.map(human_bytes)))
                .collect(),
            true,
        ),
        (ranked_heading.as_str(), rps, true),
        (
            "Mean latency",
            c.iter()
                .map(|c| or_dash(has_runs(c).then(|| ms(c.latency_ms.mean))))
                .collect(),
            true,
        ),
        (
            "p99 latency",
            c.iter()
                .map(|c| or_dash(has_runs(c).then(|| ms(c.latency_ms.p99))))
                .collect(),
            true,
        ),
        (
            "Total time",
            c.iter()
                .map(|c| or_dash(c.total_seconds.map(seconds)))
                .collect(),
            true,
        ),
    ];
    // Each run's wall time is one search step's: not worth a column.
    if by == RankedBy::Capacity {
        columns.retain(|(h, _, _)| *h != "Total time");
    }
    // Beside the sizes, what they cost a node: only when measured.
    if c.iter().any(|c| c.cold_start.is_some()) {
        let cells = c
            .iter()
            .map(|c| or_dash(c.cold_start.as_ref().map(units::cold_start)))
            .collect();
        columns.insert(2, ("Cold start [interval]", cells, true));
    }
    let widths: Vec<usize> = columns
        .iter()
        .map(|(h, cells, _)| {
            cells
                .iter()
                .chain([&h.to_string()])
                .map(|s| width(s))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<(&str, bool)>| {
        let mut s = String::new();
        for (i, ((cell, right), w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&pad(cell, *w, *right));
        }
        s.trim_end().to_string()
    };
    writeln!(
        out,
        "{}",
        line(columns.iter().map(|(h, _, r)| (*h, *r)).collect())
    )?;
    for row in 0..c.len() {
        writeln!(
            out,
            "{}",
            line(
                columns
                    .iter()
                    .map(|(_, cells, r)| (cells[row].as_str(), *r))
                    .collect()
            )
        )?;
    }
    let legend = match report.load.isolation.describe() {
        Some(cpus) => format!("{} {cpus}", legend(report)),
        None => legend(report),
    };
    for l in units::wrap(&legend, WRAP) {
        writeln!(out, "{l}")?;
    }
    if let Some(note) = platform_note(c) {
        for l in units::wrap(&note, WRAP) {
            writeln!(out, "{l}")?;
        }
    }
    if let Some(network) = &report.load.network {
        writeln!(out, "Network: {network}.")?;
    }
    for note in &report.load.notes {
        for l in units::wrap(&format!("Note: {note}"), WRAP) {
            writeln!(out, "{l}")?;
        }
    }

    writeln!(out)?;
    let heading = format!("{}:", significance_heading());
    if report.significant.is_empty() {
        writeln!(out, "{heading} none")?;
    } else {
        writeln!(out, "{heading}")?;
        for d in &report.significant {
            writeln!(out, "  {} {}", d.faster, difference_text(d, by))?;
        }
    }
    if !report.noise.is_empty() {
        writeln!(out, "Not shown to differ:")?;
        for n in &report.noise {
            writeln!(out, "  {} and {}: {}", n.higher, n.lower, noise_text(n))?;
        }
    }
    if !report.warnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "Warnings:")?;
        for w in &report.warnings {
            for (i, l) in units::wrap(w, WRAP - 4).iter().enumerate() {
                writeln!(out, "  {} {l}", if i == 0 { "-" } else { " " })?;
            }
        }
    }
    writeln!(out)?;
    match &report.recommendation {
        Some(r) => {
            for l in units::wrap(&format!("Recommendation: {}", r.reason), WRAP) {
                writeln!(out, "{l}")?;
            }
        }
        None => writeln!(out, "Recommendation: none (no candidate has a run)")?,
    }
    out.flush()
}

/// The terminal report as bytes.
pub fn render(report: &Report) -> Vec<u8> {
    let mut out = Vec::new();
    write(report, &mut out).expect("writing to a Vec<u8> cannot fail");
    out
}

/// The heading of the significance lines (no trailing colon).
pub(super) fn significance_heading() -> String {
    format!(
        "Significant differences (paired over rounds, Holm-adjusted p < {ALPHA}, at least {})",
        units::percent(PRACTICAL_THRESHOLD)
    )
}

/// `is 2.0% faster than b (95% interval 1.1–3.0%, p = 0.004 Holm-adjusted, 5
/// rounds)`; ranked by capacity, `has 2.0% more capacity than b (...)`.
pub(super) fn difference_text(d: &Difference, by: RankedBy) -> String {
    format!(
        "{} {} (95% interval {}, {} Holm-adjusted, {} rounds)",
        by.comparison(&pct_more(d.ratio)),
        d.slower,
        units::ratio_interval(d.ratio_low, d.ratio_high),
        p_value(d.p_value),
        d.rounds
    )
}

/// `no difference shown: −0.8% to +1.2% (p = 0.42, not significant)` and its kin.
pub(super) fn noise_text(n: &Noise) -> String {
    let p = n
        .p_value
        .map_or_else(String::new, |p| p_value(p) + " Holm-adjusted, ");
    let iv = match (n.ratio_low, n.ratio_high) {
        (Some(l), Some(h)) => units::ratio_interval(l, h),
        _ => "–".into(),
    };
    match n.reason {
        NoiseReason::NotSignificant => {
            format!(
                "no difference shown: {iv} ({p}not significant, {} rounds)",
                n.rounds
            )
        }
        NoiseReason::BelowThreshold => format!(
            "{} apart, 95% interval {iv} ({p}under the {} threshold, {} rounds)",
            pct_more(n.ratio),
            units::percent(PRACTICAL_THRESHOLD),
            n.rounds
        ),
        NoiseReason::TooFewRuns => format!(
            "{} apart by the medians (not tested: fewer than {} rounds in common)",
            pct_more(n.ratio),
            super::MIN_RUNS_FOR_SIGNIFICANCE
        ),
    }
}

/// What the figures are: medians over how many runs, and the interval's coverage.
pub(super) fn legend(report: &Report) -> String {
    let by = report.ranked_by;
    let mut by_runs: BTreeMap<usize, f64> = BTreeMap::new();
    for c in report.candidates.iter().filter(|c| !c.runs.is_empty()) {
        by_runs.insert(c.runs.len(), c.ranked(by).coverage);
    }
    let counts: Vec<usize> = by_runs.keys().copied().collect();
    let runs = match (counts.first(), counts.last()) {
        (Some(a), Some(b)) => units::runs_each(*a, *b),
        _ => "no runs".into(),
    };
    let cov: Vec<String> = by_runs
        .iter()
        .rev()
        .filter(|(n, _)| **n > 1)
        .map(|(n, c)| {
            let range = if stats::order_statistic_rank(*n, INTERVAL_CONFIDENCE).0 == 1 {
                ", the range of the runs"
            } else {
                ""
            };
            format!("{} with {n} runs{range}", coverage(*c))
        })
        .collect();
    let interval = if cov.is_empty() {
        "no interval with a single run".to_string()
    } else {
        format!(
            "[interval]: distribution-free interval for the median of {} ({})",
            by.unit(),
            cov.join("; ")
        )
    };
    // What a capacity is, and which latency stands beside it.
    let capacity = match &report.load.slo {
        None => String::new(),
        Some(slo) => format!(
            " Capacity: the highest open-loop rate that kept {}{}; latencies are those \
             of the step at that rate.",
            slo.describe(),
            match (report.load.slo_step_seconds, report.load.slo_precision) {
                (Some(s), Some(p)) => format!(
                    " ({} s steps, to within {}%)",
                    crate::loadgen::search::trim_number(s),
                    crate::loadgen::search::trim_number(p * 100.0)
                ),
                _ => String::new(),
            }
        ),
    };
    let mark = if report.recommendation.is_some() {
        " * recommended."
    } else {
        ""
    };
    if counts.is_empty() {
        return "No runs.".into();
    }
    if counts == [1] {
        return format!("A single run each: no medians over runs, no interval.{mark}{capacity}");
    }
    format!("Medians over {runs}; {interval}.{mark}{capacity}")
}

/// Right-aligns each part of composite cells (`123.4 MB / 45.6 MB`) so the parts line up.
fn compose(parts: &[Vec<String>], seps: &[&str]) -> Vec<String> {
    let rows = parts.first().map_or(0, Vec::len);
    let widths: Vec<usize> = parts
        .iter()
        .map(|p| p.iter().map(|s| width(s)).max().unwrap_or(0))
        .collect();
    (0..rows)
        .map(|r| {
            let mut s = String::new();
            for (i, (p, w)) in parts.iter().zip(&widths).enumerate() {
                if i > 0 {
                    s.push_str(seps[i - 1]);
                }
                s.push_str(&pad(&p[r], *w, true));
            }
            s
        })
        .collect()
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    if right {
        fill + s
    } else {
        s.to_string() + &fill
    }
}

#[cfg(test)]
mod tests {
    use super::super::analyze;
    use super::super::sample::{candidate, input, origin};
    use super::*;

    fn text(report: &Report) -> String {
        String::from_utf8(render(report)).unwrap()
    }

    #[test]
    fn origin_snapshot() {
        let got = text(&analyze(origin()));
        let want = "  Candidate     Size (disk / compressed)  Cold start [interval]  Start-up   Memory  Requests/s median [interval]  Mean latency  p99 latency  Total time
* slim-stretch       123.4 MB /  45.6 MB     2.84 s [2.82–2.87]    410 ms  31.4 MB           2,177 [2,151–2,196]       45.9 ms      82.7 ms     0.459 s
  stretch            928.3 MB / 341.0 MB     8.75 s [8.73–8.78]    415 ms  32.4 MB           2,031 [2,018–2,048]       49.2 ms      88.6 ms     0.492 s
  slim               139.2 MB /  51.2 MB     2.95 s [2.93–2.99]    415 ms  33.4 MB           2,188 [2,165–2,203]       45.7 ms      82.3 ms     0.457 s
  buster             903.1 MB / 334.5 MB     8.62 s [8.60–8.66]    415 ms  34.4 MB           2,161 [2,144–2,181]       46.3 ms      83.3 ms     0.463 s
Medians over 5 runs each; [interval]: distribution-free interval for the median of
requests/s (93.8% with 5 runs, the range of the runs). * recommended.

Significant differences (paired over rounds, Holm-adjusted p < 0.05, at least 1%):
  slim is 7.5% faster than stretch (95% interval 7.3–7.7%, p < 0.001 Holm-adjusted, 5 rounds)
  slim-stretch is 7% faster than stretch (95% interval 5.3–8.8%, p = 0.002 Holm-adjusted, 5 rounds)
  buster is 6.4% faster than stretch (95% interval 4.7–8.0%, p = 0.002 Holm-adjusted, 5 rounds)
Not shown to differ:
  slim and slim-stretch: no difference shown: −1.4% to +2.3% (p = 0.56 Holm-adjusted, not significant, 5 rounds)
  slim and buster: no difference shown: −0.6% to +2.8% (p = 0.31 Holm-adjusted, not significant, 5 rounds)
  slim-stretch and buster: 0.64% apart, 95% interval 0.2–1.1% (p = 0.046 Holm-adjusted, under the 1% threshold, 5 rounds)

Warnings:
  - with 5 runs per candidate, the interval for the median is the range of the runs and
    covers it with only 93.8% confidence (6 runs give 96.9%)

Recommendation: slim-stretch: smallest image (123.4 MB on disk, 45.6 MB compressed) among
the 3 candidates whose throughput is within noise of the best (slim, 2,188 req/s median, vs
2,177 for slim-stretch; differences under 1% or not significant at p < 0.05, Holm-adjusted,
over 5 runs each). slim vs slim-stretch: 0.42% apart (95% interval −1.4% to +2.3%, p = 0.56
Holm-adjusted, paired over 5 rounds). This run could resolve differences of about ±1.8%
(half the width of the 95% interval between slim and slim-stretch); a smaller one could not
be told from noise.
";
        assert_eq!(got, want);
    }

    #[test]
    fn the_footer_says_which_cpus_each_side_had() {
        let mut input = origin();
        input.load.isolation = crate::report::Isolation {
            requested: true,
            applied: true,
            service_cpus: vec![1],
            generator_cpus: vec![0],
        };
        let t = text(&analyze(input))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            t.contains("* recommended. The service had CPU 1 to itself, the load generator CPU 0."),
            "{t}"
        );
    }

    #[test]
    fn the_footer_names_the_network_path_and_the_notes() {
        let mut input = origin();
        input.load.network = Some("host network, a free port per container in $PORT".into());
        input.load.notes = vec!["Peak memory is not measured (null).".into()];
        let t = text(&analyze(input));
        assert!(
            t.contains(
                "\nNetwork: host network, a free port per container in $PORT.\n\
                 Note: Peak memory is not measured (null).\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn a_candidate_built_on_an_index_says_which_platform_of_how_many() {
        let mut c = candidate("multi", 100, 40, &[2000.0]);
        c.image.index_digest = Some(crate::oci::digest::Digest::of(b"index"));
        c.image.platforms = Some(vec!["linux/amd64".into(), "linux/arm64/v8".into()]);
        let got = text(&analyze(input(vec![
            c,
            candidate("single", 100, 40, &[2000.0]),
        ])))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
        assert!(
            got.contains("Platforms: images are built for this host's platform; multi is linux/amd64, one of the 2 platforms of its base's index."),
            "{got}"
        );
        let plain = text(&analyze(input(vec![candidate(
            "single",
            100,
            40,
            &[2000.0],
        )])));
        assert!(!plain.contains("Platforms:"), "{plain}");
    }

    #[test]
    fn empty_report() {
        let got = text(&analyze(input(vec![])));
        assert!(got.contains("Recommendation: none"), "{got}");
    }

    #[test]
    fn missing_measurements_show_dashes() {
        let mut c = candidate("a", 100, 40, &[2000.0]);
        c.startup_ms.clear();
        c.peak_memory_bytes.clear();
        let got = text(&analyze(input(vec![c, candidate("b", 100, 40, &[])])));
        assert!(
            got.contains("A single run each: no medians over runs, no interval."),
            "{got}"
        );
        let rows: Vec<&str> = got.lines().skip(1).take(2).collect();
        assert!(rows[0].contains("  2,000  "), "{got}");
        assert!(!rows[0].contains('['), "{got}");
        assert!(rows[0].contains("  –  "), "{got}");
        assert!(rows[1].ends_with("–"), "{got}");
    }
}
