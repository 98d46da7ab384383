//! The Markdown report: a table like the one people paste in their design
//! docs (DESIGN.md's Origin), with the compressed size and the interval added,
//! then the recommendation, the significance and noise lines, the warnings,
//! and a note on method.

use std::collections::BTreeMap;
use std::io;

use super::table::{difference_text, noise_text, significance_heading};
use super::units::{self, coverage, ms, rate, seconds, thousands};
use super::{ALPHA, PRACTICAL_THRESHOLD, RankedBy, Report, metric};
use crate::report::units::human_bytes;

/// Writes the Markdown report.
pub fn write<W: io::Write>(report: &Report, mut out: W) -> io::Result<()> {
    let c = &report.candidates;
    let by = report.ranked_by;
    // One coverage for every row goes in the header; otherwise each cell says its own.
    let mut coverages: Vec<f64> = c
        .iter()
        .filter(|c| c.runs.len() > 1)
        .map(|c| c.ranked(by).coverage)
        .collect();
    coverages.dedup();
    let shared = (coverages.len() == 1).then(|| coverages[0]);
    let interval_header = shared.map_or_else(
        || "Interval".to_string(),
        |cov| format!("Interval ({})", coverage(cov)),
    );
    let cold = c.iter().any(|c| c.cold_start.is_some());
    let mut header = vec![
        "Image".to_string(),
        "Size".into(),
        "Compressed".into(),
        metric::heading(&report.load),
        interval_header,
        "Mean time per request".into(),
        "p99".into(),
        "Total time".into(),
    ];
    if cold {
        header.insert(3, "Cold start [interval]".into());
    }
    // Each run's wall time is one search step's: not worth a column.
    let total_time = by == RankedBy::Throughput;
    if !total_time {
        header.pop();
    }
    let rows: Vec<Vec<String>> = c
        .iter()
        .map(|c| {
            let name = escape(&c.name);
            let t = c.ranked(by);
            let has_runs = !c.runs.is_empty();
            let interval = if c.runs.len() < 2 {
                "–".to_string()
            } else if shared.is_some() {
                format!("{}–{}", rate(t.low), rate(t.high))
            } else {
                format!(
                    "{}–{} ({})",
                    rate(t.low),
                    rate(t.high),
                    coverage(t.coverage)
                )
            };
            let dash_unless = |ok: bool, s: String| if ok { s } else { "–".into() };
            let mut row = vec![
                if report.is_recommended(&c.name) {
                    format!("**{name}**")
                } else {
                    name
                },
                human_bytes(c.image.uncompressed_bytes),
                human_bytes(c.image.compressed_bytes),
                dash_unless(has_runs, rate(t.median)),
                interval,
                dash_unless(has_runs, ms(c.latency_ms.mean)),
                dash_unless(has_runs, ms(c.latency_ms.p99)),
                c.total_seconds.map_or_else(|| "–".into(), seconds),
            ];
            if !total_time {
                row.pop();
            }
            if cold {
                let cell = c.cold_start.as_ref().map(units::cold_start);
                row.insert(3, cell.unwrap_or_else(|| "–".into()));
            }
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| &r[i])
                .chain([&header[i]])
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(3)
        })
        .collect();
    let row = |cells: &[String]| {
        let mut s = String::from("|");
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let fill = " ".repeat(w - cell.chars().count());
            if i == 0 {
                s += &format!(" {cell}{fill} |");
            } else {
                s += &format!(" {fill}{cell} |");
            }
        }
        s
    };
    writeln!(out, "{}", row(&header))?;
    // The delimiter row spans each cell and its padding: `|:-----|-----:|`.
    let rule: String = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                format!(":{}|", "-".repeat(w + 1))
            } else {
                format!("{}:|", "-".repeat(w + 1))
            }
        })
        .collect();
    writeln!(out, "|{rule}")?;
    for r in &rows {
        writeln!(out, "{}", row(r))?;
    }

    writeln!(out)?;
    match &report.recommendation {
        Some(r) => writeln!(out, "**Recommendation:** {}", escape(&r.reason))?,
        None => writeln!(out, "**Recommendation:** none (no candidate has a run).")?,
    }

    writeln!(out)?;
    let heading = significance_heading();
    if report.significant.is_empty() {
        writeln!(out, "{heading}: none.")?;
    } else {
        writeln!(out, "{heading}:")?;
        writeln!(out)?;
        for d in &report.significant {
            writeln!(
                out,
                "- {} {}",
                escape(&d.faster),
                escape(&difference_text(d, by))
            )?;
        }
    }
    if !report.noise.is_empty() {
        writeln!(out)?;
        writeln!(out, "Not shown to differ:")?;
        writeln!(out)?;
        for n in &report.noise {
            writeln!(
                out,
                "- {} and {}: {}",
                escape(&n.higher),
                escape(&n.lower),
                escape(&noise_text(n))
            )?;
        }
    }
    if !report.warnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "Warnings:")?;
        writeln!(out)?;
        for w in &report.warnings {
            writeln!(out, "- {}", escape(w))?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", method(report))?;
    out.flush()
}

/// The Markdown report as bytes.
pub fn render(report: &Report) -> Vec<u8> {
    let mut out = Vec::new();
    write(report, &mut out).expect("writing to a Vec<u8> cannot fail");
    out
}

/// The note on method: runs, load, and what each figure is.
fn method(report: &Report) -> String {
    let by = report.ranked_by;
    let mut by_runs: BTreeMap<usize, f64> = BTreeMap::new();
    for c in report.candidates.iter().filter(|c| !c.runs.is_empty()) {
        by_runs.insert(c.runs.len(), c.ranked(by).coverage);
    }
    let counts: Vec<usize> = by_runs.keys().copied().collect();
    let runs = match (counts.first(), counts.last()) {
        (Some(&a), Some(&b)) if a == b => {
            format!("{a} run{} per image", if a == 1 { "" } else { "s" })
        }
        (Some(&a), Some(&b)) => format!("{a} to {b} runs per image"),
        _ => "no runs".into(),
    };
    let l = &report.load;
    let path = if l.path.contains('`') {
        escape(&l.path)
    } else {
        format!("`{}`", l.path)
    };
    let cov: Vec<String> = by_runs
        .iter()
        .rev()
        .filter(|(n, _)| **n > 1)
        .map(|(n, c)| format!("{} with {n} runs", coverage(*c)))
        .collect();
    let interval = if cov.is_empty() {
        String::new()
    } else {
        format!(
            " The interval is a distribution-free interval for the median of {} \
             (its coverage: {}; with up to 8 runs it is the range of the runs).",
            by.unit(),
            cov.join(", ")
        )
    };
    let (load, medians) = match by {
        RankedBy::Throughput => (
            format!(
                "of {} at concurrency {}",
                run_length(l),
                thousands(l.concurrency)
            ),
            "Requests/s and total time are medians over the runs; mean time per request and \
             p99 are the medians of each run's mean and 99th-percentile latency.",
        ),
        RankedBy::Capacity => (
            "each a capacity search".to_string(),
            "Capacity is the median over the runs; mean time per request and p99 are the \
             medians of each run's mean and 99th-percentile latency at its capacity.",
        ),
    };
    let capacity = metric::capacity_method(l);
    let capacity = if capacity.is_empty() {
        capacity
    } else {
        format!(" {capacity}")
    };
    format!(
        "*Method:* {runs}, each in a fresh container, {load} \
         ({}, {} first) to {path}.{capacity} Size is the uncompressed size of the \
         layers (on disk), Compressed what a pull transfers. {medians}{interval} Candidates \
         are compared round by round: each round runs every candidate back to back, so the \
         ratio of two candidates' {} in the same round cancels what the round shared; a \
         difference is the geometric mean of these ratios with a 95% t-interval on their \
         logs, tested with a two-sided paired t-test, Holm-adjusted across all pairs, at \
         p < {ALPHA}; differences under {} count as noise.{}{}{}{}",
        if l.keepalive {
            "keep-alive"
        } else {
            "a new connection per request"
        },
        warmup_length(l),
        by.unit(),
        units::percent(PRACTICAL_THRESHOLD),
        l.isolation
            .describe()
            .map_or_else(String::new, |cpus| format!(" {cpus}")),
        cold_start_method(l),
        l.network
            .as_ref()
            .map_or_else(String::new, |n| format!(" Network: {n}.")),
        l.notes
            .iter()
            .map(|n| format!(" {}", escape(n)))
            .collect::<String>(),
    )
}

/// The sentence on cold starts, empty without them.
pub(crate) fn cold_start_method(l: &super::LoadSummary) -> String {
    if l.cold_start_rounds == 0 {
        return String::new();
    }
    let rounds = match l.cold_start_rounds.min(l.repeats) {
        1 => "The first round".to_string(),
        n if n >= l.repeats => "Every round".to_string(),
        n => format!("The first {n} rounds"),
    };
    let network = match l.cold_start_bandwidth {
        Some(b) => format!("limited to {}/s", human_bytes(b)),
        None => "over loopback, unthrottled".into(),
    };
    format!(
        " {rounds} started cold: each run's image was pulled from a registry ocibench \
         served ({network}) onto a node holding no image that shares a layer with it, then \
         started; the cold start is that pull plus the start-up to the first 2xx, its median \
         over those runs with the same kind of interval as requests/s (with 3 runs, their \
         range)."
    )
}

/// Escapes what Markdown would otherwise read as markup (a `|` would end a cell).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        // `<` only opens HTML before a letter, `/`, `!` or `?`: `p < 0.05` stays as it is.
        let tag = ch == '<'
            && chars
                .peek()
                .is_some_and(|c| c.is_ascii_alphabetic() || "/!?".contains(*c));
        if tag || matches!(ch, '\\' | '|' | '*' | '_' | '`' | '[' | ']') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The warm-up before each run: `100 warm-up requests`, or `1 s of warm-up`.
fn warmup_length(l: &super::LoadSummary) -> String {
    match l.warmup_seconds {
        Some(s) => format!("{s} s of warm-up"),
        None => format!("{} warm-up requests", thousands(l.warmup)),
    }
}

/// What one run was: `1,000 requests`, or `5 s` of requests.
pub(crate) fn run_length(l: &super::LoadSummary) -> String {
    match l.duration_seconds {
        Some(s) => format!("{s} s of requests"),
        None => format!("{} requests", l.requests.map_or("–".into(), thousands)),
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
    fn the_method_says_which_cpus_each_side_had() {
        let mut shared = origin();
        shared.load.isolation = crate::report::Isolation {
            requested: true,
            applied: false,
            service_cpus: vec![0],
            generator_cpus: vec![0],
        };
        let t = text(&analyze(shared));
        assert!(
            t.contains(
                "count as noise. The service and the load generator shared CPU 0 (too few \
                 CPUs to isolate them)."
            ),
            "{t}"
        );
    }

    #[test]
    fn the_method_names_the_network_path_and_the_notes() {
        let mut input = origin();
        input.load.network = Some("published port (root, netavark)".into());
        input.load.notes = vec!["Peak memory is not measured (null).".into()];
        let t = text(&analyze(input));
        assert!(
            t.contains(
                " Network: published port (root, netavark). Peak memory is not measured (null)."
            ),
            "{t}"
        );
    }

    #[test]
    fn origin_snapshot() {
        let got = text(&analyze(origin()));
        println!("{got}");
        let want = "\
| Image            |     Size | Compressed | Cold start [interval] | Requests/s | Interval (93.8%) | Mean time per request |     p99 | Total time |
|:-----------------|---------:|-----------:|----------------------:|-----------:|-----------------:|----------------------:|--------:|-----------:|
| **slim-stretch** | 123.4 MB |    45.6 MB |    2.84 s [2.82–2.87] |      2,177 |      2,151–2,196 |               45.9 ms | 82.7 ms |    0.459 s |
";
        assert!(got.starts_with(want), "{got}");
    }

    #[test]
    fn names_are_escaped() {
        let got = text(&analyze(input(vec![candidate(
            "a|b_c",
            100,
            40,
            &[1000.0, 1100.0, 1050.0],
        )])));
        assert!(got.contains("| **a\\|b\\_c** |"), "{got}");
        assert!(
            got.contains("**Recommendation:** a\\|b\\_c: the only candidate"),
            "{got}"
        );
        assert_eq!(escape("p < 0.05 <b>"), "p < 0.05 \\<b>");
    }
}
