//! A self-contained SVG chart of the comparison: per candidate, a bar of the
//! median requests/s with its interval as an error bar, and beside it bars of
//! the image's size on disk and compressed (lighter) with its cold start when
//! measured; under it each pair's paired
//! difference with its 95% interval, and the recommendation. The recommended base is
//! highlighted. No scripts, no external fonts or styles: it renders the same
//! in a browser, an `<img>` tag or `rsvg-convert`.

use std::fmt::Write as _;
use std::io;

use super::table::{difference_text, noise_text};
use super::units::{self, coverage, rate};
use super::{CandidateSummary, RankedBy, Report, metric};
use crate::report::units::human_bytes;

const WIDTH: f64 = 900.0;
const NAME_X: f64 = 16.0;
const RPS_X: f64 = 210.0;
const RPS_W: f64 = 370.0;
const SIZE_X: f64 = 630.0;
const SIZE_W: f64 = 240.0;
const TOP: f64 = 78.0;
const ROW_H: f64 = 46.0;
/// Longest name shown whole (the full name is in a tooltip).
const NAME_CHARS: usize = 24;

const ACCENT: &str = "#1f6fb5";
const ACCENT_LIGHT: &str = "#a8c8e8";
const PLAIN: &str = "#8c9aa6";
const PLAIN_LIGHT: &str = "#cfd6dc";
const INK: &str = "#1d2328";
const MUTED: &str = "#5c6770";
const GRID: &str = "#e3e7ea";
const BAND: &str = "#edf4fb";

/// Writes the chart.
pub fn write<W: io::Write>(report: &Report, mut out: W) -> io::Result<()> {
    out.write_all(chart(report).as_bytes())?;
    out.flush()
}

/// The chart as bytes.
pub fn render(report: &Report) -> Vec<u8> {
    chart(report).into_bytes()
}

fn chart(report: &Report) -> String {
    let cands = &report.candidates;
    let by = report.ranked_by;
    let n = cands.len();
    let rows_h = ROW_H * n.max(1) as f64;
    let axis_y = TOP + rows_h;
    let footer: Vec<String> = footer(report);
    let height = axis_y + 52.0 + 16.0 * footer.len() as f64 + 12.0;

    let rps_max = cands
        .iter()
        .filter(|c| !c.runs.is_empty())
        .map(|c| c.ranked(by).high.max(c.ranked(by).median))
        .fold(0.0, f64::max);
    // Room to the right of the longest bar for its label.
    let (rps_step, rps_top) = nice_axis(rps_max * 1.18);
    let rps_x = |v: f64| RPS_X + RPS_W * (v / rps_top).clamp(0.0, 1.0);

    let size_max = cands
        .iter()
        .map(|c| c.image.uncompressed_bytes.max(c.image.compressed_bytes))
        .max()
        .unwrap_or(0) as f64;
    let (unit, unit_name) = if size_max >= 1e9 {
        (1e9, "GB")
    } else if size_max >= 1e6 {
        (1e6, "MB")
    } else {
        (1e3, "kB")
    };
    let (size_step, size_top) = nice_axis(size_max / unit * 1.3);
    let size_x = |bytes: u64| SIZE_X + SIZE_W * (bytes as f64 / unit / size_top).clamp(0.0, 1.0);

    let (title, heading, axis) = match &report.load.slo {
        None => (
            "Throughput and size".to_string(),
            "Requests/s (median, interval)".to_string(),
            "requests per second".to_string(),
        ),
        Some(slo) => {
            let bound = metric::latency_bound(slo);
            (
                "Capacity and size".to_string(),
                format!("Capacity at {bound} (median, interval)"),
                format!("requests per second at {bound}"),
            )
        }
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" role="img">
<title>ocibench compare: {} and image size per base image</title>
<rect width="100%" height="100%" fill="white"/>
<text x="{NAME_X}" y="26" font-size="17" font-weight="bold" fill="{INK}">Which base image? {title}</text>
<text x="{NAME_X}" y="46" font-size="12" fill="{MUTED}">{}</text>
"#,
        by.unit(),
        esc(&subtitle(report))
    );
    // Panel headings.
    let _ = write!(
        s,
        r#"<text x="{RPS_X}" y="{y}" font-size="12" font-weight="bold" fill="{INK}">{heading}</text>
<text x="{SIZE_X}" y="{y}" font-size="12" font-weight="bold" fill="{INK}">Image size</text>
<rect x="{lx}" y="{ly}" width="10" height="8" fill="{PLAIN}"/><text x="{tx1}" y="{y}" font-size="10" fill="{MUTED}">on disk</text>
<rect x="{lx2}" y="{ly}" width="10" height="8" fill="{PLAIN_LIGHT}"/><text x="{tx2}" y="{y}" font-size="10" fill="{MUTED}">compressed</text>
"#,
        heading = esc(&heading),
        y = TOP - 10.0,
        lx = SIZE_X + 84.0,
        ly = TOP - 18.0,
        tx1 = SIZE_X + 98.0,
        lx2 = SIZE_X + 146.0,
        tx2 = SIZE_X + 160.0,
    );

    // Grid lines and tick labels.
    let mut tick = 0.0;
    while tick <= rps_top + rps_step * 1e-9 {
        let x = rps_x(tick);
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{axis_y}" stroke="{GRID}"/><text x="{x:.1}" y="{ty}" font-size="10" fill="{MUTED}" text-anchor="middle">{}</text>"#,
            tick_label(tick),
            ty = axis_y + 14.0
        );
        tick += rps_step;
    }
    let mut tick = 0.0;
    while tick <= size_top + size_step * 1e-9 {
        let x = SIZE_X + SIZE_W * tick / size_top;
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{axis_y}" stroke="{GRID}"/><text x="{x:.1}" y="{ty}" font-size="10" fill="{MUTED}" text-anchor="middle">{}</text>"#,
            tick_label(tick),
            ty = axis_y + 14.0
        );
        tick += size_step;
    }
    let _ = write!(
        s,
        r#"<line x1="{RPS_X}" y1="{axis_y}" x2="{rx2}" y2="{axis_y}" stroke="{MUTED}"/>
<line x1="{SIZE_X}" y1="{axis_y}" x2="{sx2}" y2="{axis_y}" stroke="{MUTED}"/>
<text x="{rmid}" y="{ly}" font-size="11" fill="{INK}" text-anchor="middle">{axis}</text>
<text x="{smid}" y="{ly}" font-size="11" fill="{INK}" text-anchor="middle">size ({unit_name}, decimal)</text>
"#,
        axis = esc(&axis),
        rx2 = RPS_X + RPS_W,
        sx2 = SIZE_X + SIZE_W,
        rmid = RPS_X + RPS_W / 2.0,
        smid = SIZE_X + SIZE_W / 2.0,
        ly = axis_y + 30.0,
    );

    if cands.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{RPS_X}" y="{}" font-size="12" fill="{MUTED}">no candidates</text>"#,
            TOP + ROW_H / 2.0
        );
    }
    for (i, c) in cands.iter().enumerate() {
        row(&mut s, report, c, TOP + ROW_H * i as f64, &rps_x, &size_x);
    }

    for (i, line) in footer.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{NAME_X}" y="{}" font-size="11" fill="{INK}">{}</text>"#,
            axis_y + 54.0 + 16.0 * i as f64,
            esc(line)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One candidate's row: name, throughput bar and interval, size bars.
fn row(
    s: &mut String,
    report: &Report,
    c: &CandidateSummary,
    y: f64,
    rps_x: &dyn Fn(f64) -> f64,
    size_x: &dyn Fn(u64) -> f64,
) {
    let recommended = report.is_recommended(&c.name);
    let (bar, light) = if recommended {
        (ACCENT, ACCENT_LIGHT)
    } else {
        (PLAIN, PLAIN_LIGHT)
    };
    let mid = y + ROW_H / 2.0;
    if recommended {
        let _ = writeln!(
            s,
            r#"<rect x="8" y="{}" width="{}" height="{}" rx="4" fill="{BAND}"/>"#,
            y + 2.0,
            WIDTH - 16.0,
            ROW_H - 4.0
        );
    }
    let shown = if c.name.chars().count() > NAME_CHARS {
        c.name.chars().take(NAME_CHARS - 1).collect::<String>() + "…"
    } else {
        c.name.clone()
    };
    let weight = if recommended { "bold" } else { "normal" };
    let name_y = if recommended { mid - 2.0 } else { mid + 4.0 };
    let _ = writeln!(
        s,
        r#"<text x="{NAME_X}" y="{name_y}" font-size="13" font-weight="{weight}" fill="{INK}"><title>{}</title>{}</text>"#,
        esc(&format!("{} ({})", c.name, c.base)),
        esc(&shown)
    );
    if recommended {
        let _ = writeln!(
            s,
            r#"<text x="{NAME_X}" y="{}" font-size="10" font-weight="bold" fill="{ACCENT}">★ recommended</text>"#,
            mid + 12.0
        );
    }

    // Throughput: bar to the median, error bar over the interval, value label.
    if c.runs.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="11" fill="{MUTED}">no runs</text>"#,
            RPS_X + 4.0,
            mid + 4.0
        );
    } else {
        let t = c.ranked(report.ranked_by);
        let (x0, xm) = (RPS_X, rps_x(t.median));
        let (xl, xh) = (rps_x(t.low), rps_x(t.high));
        let _ = writeln!(
            s,
            r#"<rect x="{x0}" y="{:.1}" width="{:.1}" height="20" fill="{bar}"><title>{}</title></rect>"#,
            mid - 10.0,
            (xm - x0).max(0.5),
            esc(&format!(
                "{}: median {} req/s{}, interval {}–{} ({} coverage, {} runs)",
                c.name,
                rate(t.median),
                match &report.load.slo {
                    Some(slo) => format!(" at {}", metric::latency_bound(slo)),
                    None => String::new(),
                },
                rate(t.low),
                rate(t.high),
                coverage(t.coverage),
                c.runs.len()
            ))
        );
        if c.runs.len() > 1 {
            let _ = writeln!(
                s,
                r#"<g stroke="{INK}" stroke-width="1.5"><line x1="{xl:.1}" y1="{mid}" x2="{xh:.1}" y2="{mid}"/><line x1="{xl:.1}" y1="{a}" x2="{xl:.1}" y2="{b}"/><line x1="{xh:.1}" y1="{a}" x2="{xh:.1}" y2="{b}"/></g>"#,
                a = mid - 6.0,
                b = mid + 6.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11" fill="{INK}">{}</text>"#,
            xm.max(xh) + 5.0,
            mid + 4.0,
            rate(t.median)
        );
    }

    // Size: on disk (darker), compressed (lighter) below it.
    let img = &c.image;
    for (bytes, fill, dy, label) in [
        (img.uncompressed_bytes, bar, -11.0, "on disk"),
        (img.compressed_bytes, light, 1.0, "compressed"),
    ] {
        let x1 = size_x(bytes);
        let _ = writeln!(
            s,
            r#"<rect x="{SIZE_X}" y="{}" width="{:.1}" height="10" fill="{fill}"><title>{} {label}</title></rect><text x="{:.1}" y="{}" font-size="10" fill="{INK}">{}</text>"#,
            mid + dy,
            (x1 - SIZE_X).max(0.5),
            esc(&human_bytes(bytes)),
            x1 + 4.0,
            mid + dy + 9.0,
            esc(&human_bytes(bytes))
        );
    }
    // What the size costs a node: the cold start, under the bars.
    if let Some(cold) = &c.cold_start {
        let _ = writeln!(
            s,
            r#"<text x="{SIZE_X}" y="{}" font-size="10" fill="{MUTED}"><title>{}</title>cold start {}</text>"#,
            mid + 21.0,
            esc(&format!(
                "{}: from the image absent to the first 2xx, median of {} runs (pull {})",
                c.name,
                cold.runs_ms.len(),
                units::ms_as_seconds(cold.pull_ms)
            )),
            esc(&units::cold_start(cold))
        );
    }
}

/// What the bars are, in one line.
fn subtitle(report: &Report) -> String {
    let counts: Vec<usize> = report
        .candidates
        .iter()
        .filter(|c| !c.runs.is_empty())
        .map(|c| c.runs.len())
        .collect();
    let (min, max) = (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    let mut covs: Vec<String> = report
        .candidates
        .iter()
        .filter(|c| c.runs.len() > 1)
        .map(|c| coverage(c.ranked(report.ranked_by).coverage))
        .collect();
    covs.dedup();
    let interval = match covs.as_slice() {
        [] => "no interval (single runs)".to_string(),
        [one] => format!("error bars: {one} interval for the median"),
        _ => "error bars: interval for the median (coverage depends on the runs)".to_string(),
    };
    let l = &report.load;
    let runs = if max <= 1 {
        "A single run".to_string()
    } else {
        format!(
            "Median over {}",
            units::runs_each(min, max).trim_end_matches(" each")
        )
    };
    match (report.ranked_by, &l.slo) {
        (RankedBy::Capacity, Some(slo)) => format!(
            "{runs} of the highest open-loop rate keeping {} ({}concurrency {}); {interval}.",
            slo.describe(),
            l.slo_step_seconds.map_or_else(String::new, |s| format!(
                "{} s steps, ",
                crate::loadgen::search::trim_number(s)
            )),
            l.concurrency
        ),
        _ => format!(
            "{runs} of {} at concurrency {}; {interval}.",
            super::markdown::run_length(l),
            l.concurrency
        ),
    }
}

/// Under the chart: each pair's paired difference with its interval, then the
/// recommendation, wrapped.
fn footer(report: &Report) -> Vec<String> {
    let mut lines: Vec<String> = report
        .significant
        .iter()
        .map(|d| format!("{} {}", d.faster, difference_text(d, report.ranked_by)))
        .chain(
            report
                .noise
                .iter()
                .map(|n| format!("{} and {}: {}", n.higher, n.lower, noise_text(n))),
        )
        .flat_map(|l| units::wrap(&l, 140))
        .collect();
    match &report.recommendation {
        Some(r) => lines.extend(units::wrap(&format!("Recommendation: {}", r.reason), 140)),
        None => lines.push("Recommendation: none (no candidate has a run).".into()),
    }
    lines
}

/// A "nice" tick step (1, 2, 2.5 or 5 × 10^k) for about five ticks up to at least
/// `max`, and the axis end (a whole number of steps).
fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (step, (max / step).ceil() * step)
}

/// `0`, `1,000`, `2.5`: separators for whole numbers, no trailing zeros.
fn tick_label(v: f64) -> String {
    if v.fract() == 0.0 && v >= 0.0 {
        units::thousands(v as u64)
    } else {
        trim_number(v)
    }
}

/// `250`, `1.5`, `0.25`: a tick value without trailing zeros.
fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".into() } else { s.into() }
}

/// Escapes text for XML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::analyze;
    use super::super::sample::{candidate, input, origin};
    use super::*;

    /// A small well-formedness check: tags balance, attributes are quoted, `&` starts
    /// a known entity, and no `<` appears in text. Returns the element names seen.
    fn check_xml(doc: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = doc;
        while let Some(lt) = rest.find('<') {
            check_text(&rest[..lt]);
            let gt = rest[lt..].find('>').expect("unclosed tag") + lt;
            let tag = &rest[lt + 1..gt];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name = body
                    .split_whitespace()
                    .next()
                    .expect("empty tag")
                    .to_string();
                check_attributes(&body[name.len()..]);
                seen.push(name.clone());
                if !self_closing {
                    stack.push(name);
                }
            }
            rest = &rest[gt + 1..];
        }
        check_text(rest);
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        seen
    }

    fn check_text(t: &str) {
        assert!(!t.contains('>'), "raw '>' in text: {t}");
        let mut parts = t.split('&');
        parts.next();
        for p in parts {
            assert!(
                ["amp;", "lt;", "gt;", "quot;", "apos;"]
                    .iter()
                    .any(|e| p.starts_with(e)),
                "bare '&' in: {t}"
            );
        }
    }

    fn check_attributes(mut a: &str) {
        loop {
            a = a.trim_start();
            if a.is_empty() {
                return;
            }
            let eq = a.find('=').expect("attribute without value");
            assert!(
                a[..eq]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-:".contains(c))
            );
            assert!(a[eq + 1..].starts_with('"'), "unquoted attribute: {a}");
            let end = a[eq + 2..].find('"').expect("unterminated attribute") + eq + 2;
            check_text(&a[eq + 2..end]);
            a = &a[end + 1..];
        }
    }

    fn svg(report: &Report) -> String {
        String::from_utf8(render(report)).unwrap()
    }

    #[test]
    fn origin_chart_is_well_formed() {
        let report = analyze(origin());
        let doc = svg(&report);
        let tags = check_xml(&doc);
        assert_eq!(tags[0], "svg");
        // One throughput bar with an error bar per candidate, two size bars each.
        assert_eq!(doc.matches("<g stroke=").count(), 4);
        assert_eq!(doc.matches(" on disk</title>").count(), 4);
        assert_eq!(doc.matches(" compressed</title>").count(), 4);
        assert_eq!(doc.matches("★ recommended").count(), 1);
        assert!(doc.contains(">slim-stretch</text>"));
        assert!(doc.contains("93.8% interval for the median"));
        // Each pair's paired interval is under the chart.
        assert!(
            doc.contains("slim is 7.5% faster than stretch (95% interval 7.3–7.7%"),
            "{doc}"
        );
        assert!(doc.contains("slim and slim-stretch: no difference shown: −1.4% to +2.3%"));
        assert!(!doc.contains("NaN") && !doc.contains("inf"));
        assert!(!doc.contains("http") || doc.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(doc.matches("http").count(), 1, "no external references");
    }

    #[test]
    fn names_are_escaped() {
        let mut c = candidate("<a&b\"'>", 100, 40, &[1000.0, 1010.0, 990.0]);
        c.base = "x&y".into();
        let doc = svg(&analyze(input(vec![c])));
        check_xml(&doc);
        assert!(doc.contains("&lt;a&amp;b&quot;&apos;&gt;"));
    }

    #[test]
    fn degenerate_reports_are_well_formed() {
        check_xml(&svg(&analyze(input(vec![]))));
        check_xml(&svg(&analyze(input(vec![
            candidate("a-very-long-candidate-name-indeed", 0, 0, &[]),
            candidate("b", 5, 2, &[0.0]),
        ]))));
    }

    #[test]
    fn a_capacity_chart_is_well_formed() {
        use super::super::sample::{capacity_input, with_capacity};
        let doc = svg(&analyze(capacity_input(vec![
            with_capacity(candidate("a", 100, 40, &[1.0; 3]), &[900.0, 0.0, 910.0]),
            with_capacity(candidate("b", 200, 80, &[1.0; 3]), &[1000.0, 1010.0, 990.0]),
        ])));
        check_xml(&doc);
        assert_eq!(doc.matches("<g stroke=").count(), 2, "an error bar each");
        assert!(
            doc.contains("requests per second at p99 &lt;= 50 ms"),
            "{doc}"
        );
        assert!(!doc.contains("NaN") && !doc.contains("inf"));
    }

    #[test]
    fn nice_axes() {
        assert_eq!(nice_axis(2600.0), (1000.0, 3000.0));
        assert_eq!(nice_axis(1100.0), (250.0, 1250.0));
        assert_eq!(nice_axis(0.0), (0.2, 1.0));
        assert_eq!(trim_number(2.5), "2.5");
        assert_eq!(trim_number(200.0), "200");
        assert_eq!(trim_number(0.0), "0");
        assert_eq!(tick_label(1250.0), "1,250");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.25), "0.25");
    }

    /// Writes the origin chart where a person can look at it:
    /// `OCIBENCH_SVG_OUT=/tmp/chart.svg cargo test --lib report::svg -- --ignored`.
    #[test]
    #[ignore = "writes a file for viewing"]
    fn write_sample_chart() {
        let path = std::env::var("OCIBENCH_SVG_OUT").unwrap_or("/tmp/ocibench-compare.svg".into());
        std::fs::write(path, render(&analyze(origin()))).unwrap();
    }
}
