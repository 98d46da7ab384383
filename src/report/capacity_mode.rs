//! The report ranked by capacity at an SLO (`[load] slo`): the same analysis
//! as throughput on each run's capacity, and every format naming the measure
//! truthfully. Sample candidates whose closed-loop requests/s and capacities
//! disagree, so a test can tell which one ranked.

use super::sample::{candidate, capacity_input, with_capacity};
use super::*;

/// `closed` wins on requests/s, `open` on capacity; `small` ties `open` and
/// is the smallest image; `stalls` keeps the SLO in no run but one.
fn measured() -> CompareInput {
    capacity_input(vec![
        with_capacity(
            candidate(
                "closed",
                300,
                100,
                &[3000.0, 3010.0, 2990.0, 3005.0, 2995.0],
            ),
            &[800.0, 810.0, 790.0, 805.0, 795.0],
        ),
        with_capacity(
            candidate("open", 200, 80, &[2000.0, 2010.0, 1990.0, 2005.0, 1995.0]),
            &[1000.0, 1012.0, 990.0, 1004.0, 996.0],
        ),
        with_capacity(
            candidate("small", 100, 40, &[1000.0, 1010.0, 990.0, 1005.0, 995.0]),
            &[1001.0, 1008.0, 992.0, 1006.0, 994.0],
        ),
    ])
}

fn text(format: Format, report: &Report) -> String {
    String::from_utf8(format.render(report)).unwrap()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn capacity_ranks_with_the_paired_statistics() {
    let r = analyze(measured());
    assert_eq!(r.ranked_by, RankedBy::Capacity);
    let names: Vec<(&str, &str)> = r
        .significant
        .iter()
        .map(|d| (d.faster.as_str(), d.slower.as_str()))
        .collect();
    // By requests/s, closed would lead by 50%; by capacity it is last.
    assert_eq!(names, [("small", "closed"), ("open", "closed")]);
    let d = &r.significant[0];
    assert!((d.ratio - 1000.0 / 800.0).abs() < 0.01, "{d:?}");
    assert!(d.p_value < ALPHA && d.rounds == 5);
    // open and small: within noise, so the smaller image is recommended.
    assert_eq!(r.noise.len(), 1);
    assert_eq!(r.noise[0].reason, NoiseReason::NotSignificant);
    let rec = r.recommendation.as_ref().unwrap();
    assert_eq!(rec.name, "small");
    let c = r.candidate("small").unwrap();
    let cap = c.capacity.as_ref().unwrap();
    assert_eq!(cap.interval.median, 1001.0);
    assert_eq!((cap.interval.low, cap.interval.high), (992.0, 1008.0));
    assert_eq!(cap.runs_per_second, [1001.0, 1008.0, 992.0, 1006.0, 994.0]);
    assert_eq!(cap.searches.len(), 5);
    // Throughput is still summarized, only not ranked.
    assert_eq!(c.requests_per_second.median, 1000.0);
}

#[test]
fn the_recommendation_speaks_of_capacity() {
    let r = analyze(measured());
    let reason = &r.recommendation.unwrap().reason;
    assert!(
        reason.starts_with(
            "small: smallest image (100.0 MB on disk, 40.0 MB compressed) among the 2 \
             candidates whose capacity is within noise of the best"
        ),
        "{reason}"
    );
    assert!(
        !reason.contains("throughput") && !reason.contains("requests/s"),
        "{reason}"
    );
    // A clear winner: "the highest capacity".
    let r = analyze(capacity_input(vec![
        with_capacity(
            candidate("a", 100, 40, &[1.0; 5]),
            &[1500.0, 1510.0, 1490.0, 1505.0, 1495.0],
        ),
        with_capacity(
            candidate("b", 900, 300, &[9.0; 5]),
            &[1000.0, 1010.0, 990.0, 1005.0, 995.0],
        ),
    ]));
    let reason = r.recommendation.unwrap().reason;
    assert!(
        reason.starts_with(
            "a: the highest capacity, significantly: 50% more capacity than the runner-up, b"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("1,500 vs 1,000 req/s median over 5 runs each"),
        "{reason}"
    );
}

#[test]
fn a_run_without_capacity_counts_zero_and_is_warned_about() {
    let r = analyze(capacity_input(vec![
        with_capacity(
            candidate("flaky", 100, 40, &[1000.0; 5]),
            &[900.0, 0.0, 910.0, 905.0, 895.0],
        ),
        with_capacity(
            candidate("steady", 200, 80, &[1000.0; 5]),
            &[1000.0, 1010.0, 990.0, 1005.0, 995.0],
        ),
    ]));
    let flaky = r.candidate("flaky").unwrap().capacity.as_ref().unwrap();
    assert_eq!(flaky.interval.median, 900.0, "the 0 counts in the median");
    assert_eq!(flaky.interval.low, 0.0);
    assert!(
        r.warnings.contains(
            &"flaky: in 1 of 5 runs no rate kept p99 <= 50 ms, errors <= 1% (the lowest rate \
              tried: 1.56 req/s); those runs count a capacity of 0"
                .to_string()
        ),
        "{:?}",
        r.warnings
    );
    // The round without a ratio leaves 4 paired rounds.
    assert_eq!(r.significant[0].rounds, 4, "{:?}", r.significant);
    assert_eq!(r.significant[0].faster, "steady");
}

#[test]
fn starved_connections_and_short_searches_are_warned_about() {
    let mut c = with_capacity(
        candidate("a", 100, 40, &[1000.0; 3]),
        &[4000.0, 4100.0, 3900.0],
    );
    // 100 connections at 4160/s with a 50 ms bound need 208 in flight.
    for s in &mut c.capacity_searches {
        let f = s.first_failed.as_mut().unwrap();
        f.sent = f.scheduled / 2;
    }
    c.capacity_searches[2].converged = false;
    let w = analyze(capacity_input(vec![c])).warnings;
    assert!(
        w.iter().any(|w| w.starts_with(
            "a: in 3 of 3 runs the first rate that failed could not be sent: all 100 \
             connections were busy, and at 4,160 req/s the SLO's latency needs up to 208 in flight"
        )),
        "{w:?}"
    );
    assert!(
        w.contains(
            &"a: 1 of 3 capacity searches stopped before reaching their precision; their \
              capacity is a lower bound"
                .to_string()
        ),
        "{w:?}"
    );
    // A search spans loads below and above capacity: no CPU-limit verdict.
    assert!(
        !w.iter().any(|w| w.contains("neither side was saturated")),
        "{w:?}"
    );
}

#[test]
fn table_snapshot() {
    let got = text(Format::Table, &analyze(measured()));
    let want = "  Candidate  Size (disk / compressed)  Start-up   Memory  Capacity at p99 <= 50 ms, req/s median [interval]  Mean latency  p99 latency
  closed          300.0 MB / 100.0 MB    300 ms  30.0 MB                                    800 [790–  810]       33.3 ms      60.0 ms
  open            200.0 MB /  80.0 MB    300 ms  30.0 MB                                  1,000 [990–1,012]       50.0 ms      90.0 ms
* small           100.0 MB /  40.0 MB    300 ms  30.0 MB                                  1,001 [992–1,008]        100 ms       180 ms
Medians over 5 runs each; [interval]: distribution-free interval for the median of capacity
(93.8% with 5 runs, the range of the runs). * recommended. Capacity: the highest open-loop
rate that kept p99 <= 50 ms, errors <= 1% (2 s steps, to within 5%); latencies are those of
the step at that rate.

Significant differences (paired over rounds, Holm-adjusted p < 0.05, at least 1%):
  small has 25% more capacity than closed (95% interval 24.5–25.5%, p < 0.001 Holm-adjusted, 5 rounds)
  open has 25.1% more capacity than closed (95% interval 24.7–25.4%, p < 0.001 Holm-adjusted, 5 rounds)
Not shown to differ:
  open and small: no difference shown: −0.3% to +0.4% (p = 0.88 Holm-adjusted, not significant, 5 rounds)

Warnings:
  - with 5 runs per candidate, the interval for the median is the range of the runs and
    covers it with only 93.8% confidence (6 runs give 96.9%)

Recommendation: small: smallest image (100.0 MB on disk, 40.0 MB compressed) among the 2
candidates whose capacity is within noise of the best (it has the highest median itself,
1,001 req/s; differences under 1% or not significant at p < 0.05, Holm-adjusted, over 5 runs
each). This run could resolve differences of about ±0.33% (half the width of the 95%
interval between small and open); a smaller one could not be told from noise.
";
    assert_eq!(got, want);
    assert!(!got.contains("Total time"), "{got}");
}

#[test]
fn markdown_names_the_measure_and_how_it_was_measured() {
    let got = text(Format::Markdown, &analyze(measured()));
    let header = got.lines().next().unwrap();
    assert!(
        header.contains("| Capacity at p99 <= 50 ms [req/s] | Interval (93.8%) |"),
        "{header}"
    );
    assert!(
        !header.contains("Requests/s") && !header.contains("Total time"),
        "{header}"
    );
    assert!(got.contains("| **small** |"), "{got}");
    assert!(
        got.contains("- small has 25% more capacity than closed"),
        "{got}"
    );
    let method = one_line(got.lines().last().unwrap());
    for part in [
        "*Method:* 5 runs per image, each in a fresh container, each a capacity search \
         (keep-alive, 100 warm-up requests first) to `/`.",
        "Each run's capacity is the highest rate that kept p99 <= 50 ms, errors <= 1% \
         (latency measured from each request's scheduled time, so stalls count), searched in \
         open-loop steps of 2 s over 100 connections: doubling from the first rate until a step \
         failed, then bisecting to within 5%",
        "Capacity is the median over the runs;",
        "the ratio of two candidates' capacity in the same round",
    ] {
        assert!(method.contains(part), "{part}\n{method}");
    }
}

#[test]
fn the_chart_labels_its_axis_with_the_slo() {
    let got = text(Format::Svg, &analyze(measured()));
    assert!(
        got.contains(">Which base image? Capacity and size</text>"),
        "{got}"
    );
    assert!(
        got.contains(">Capacity at p99 &lt;= 50 ms (median, interval)</text>"),
        "{got}"
    );
    assert!(
        got.contains(">requests per second at p99 &lt;= 50 ms</text>"),
        "{got}"
    );
    assert!(got.contains("small: median 1,001 req/s at p99 &lt;= 50 ms, interval 992–1,008"));
    assert!(
        got.contains("small has 25% more capacity than closed"),
        "{got}"
    );
    assert!(!got.contains("Requests/s"), "{got}");
}

#[test]
fn json_says_what_ranked_and_keeps_every_runs_capacity() {
    let report = analyze(measured());
    let v: serde_json::Value = serde_json::from_slice(&Format::Json.render(&report)).unwrap();
    assert_eq!(v["ranked_by"], "capacity");
    assert_eq!(v["load"]["slo"]["percentile"], 99.0);
    assert_eq!(v["load"]["slo"]["latency_ms"], 50.0);
    assert_eq!(v["load"]["slo_precision"], 0.05);
    let cap = &v["candidates"][2]["capacity"];
    assert_eq!(cap["median"], 1001.0);
    assert_eq!(cap["runs_per_second"].as_array().unwrap().len(), 5);
    assert_eq!(cap["searches"][0]["found_per_second"], 1001.0);
    // (Latencies are rounded in JSON: compare what the two documents say.)
    let back: Report = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), v);
    assert_eq!(back.ranked_by, RankedBy::Capacity);
    assert_eq!(back.candidates[2].capacity, report.candidates[2].capacity);
}

#[test]
fn reports_and_measurements_from_before_capacity_still_read() {
    // Throughput reports: `capacity: null`, `ranked_by` throughput, and the
    // same document parses without the new keys at all.
    let report = analyze(sample::origin());
    let full: serde_json::Value = serde_json::from_slice(&Format::Json.render(&report)).unwrap();
    let mut v = full.clone();
    assert_eq!(v["ranked_by"], "throughput");
    assert!(v["candidates"][0]["capacity"].is_null());
    v.as_object_mut().unwrap().remove("ranked_by");
    for key in ["slo", "slo_precision", "slo_step_seconds"] {
        v["load"].as_object_mut().unwrap().remove(key);
    }
    for c in v["candidates"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("capacity");
    }
    let old: Report = serde_json::from_value(v).unwrap();
    assert_eq!(old.ranked_by, RankedBy::Throughput);
    assert_eq!(serde_json::to_value(&old).unwrap(), full);
    let mut input = serde_json::to_value(sample::origin()).unwrap();
    for c in input["candidates"].as_array_mut().unwrap() {
        let c = c.as_object_mut().unwrap();
        c.remove("capacity_per_second");
        c.remove("capacity_searches");
    }
    let old: CompareInput = serde_json::from_value(input).unwrap();
    assert!(
        old.candidates
            .iter()
            .all(|c| c.capacity_per_second.is_empty())
    );
    assert_eq!(old.candidates.len(), 4);
}
