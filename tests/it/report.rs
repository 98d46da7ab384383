//! The report's public API as `compare` uses it: measurements in (also read
//! back from JSON), `analyze`, and every output format.

use ocibench::loadgen::{BenchResult, ErrorCounts, LatencyMs};
use ocibench::oci::digest::Digest;
use ocibench::oci::pull::ImageSize;
use ocibench::report::{self, CandidateRuns, CompareInput, Format, LoadSummary};
use serde_json::Value;

fn run(rps: f64) -> BenchResult {
    let total = 1000.0 / rps;
    BenchResult {
        url: "http://127.0.0.1:40000/".into(),
        requests: 1000,
        concurrency: 50,
        keepalive: true,
        completed: 1000,
        successful: 1000,
        non_2xx: 0,
        failed: 0,
        unfinished: 0,
        status_codes: [("200".to_string(), 1000)].into(),
        errors: ErrorCounts::default(),
        total_seconds: total,
        requests_per_second: rps,
        mean_ms_per_request: Some(50.0 * total),
        mean_ms_across_concurrent: Some(total),
        latency_ms: Some(LatencyMs {
            mean: 50.0 * total,
            p99: 90.0 * total,
            ..LatencyMs::default()
        }),
        bytes_received: 120_000,
        transfer_kib_per_second: 120.0 * rps / 1024.0,
        uncorrected_latency_ms: None,
        latency_histogram: Vec::new(),
        rate: None,
        http_version: "HTTP/1.1".into(),
        streams: 1,
        connections: 50,
        connect_ms: None,
        tls_error: None,
    }
}

fn candidate(name: &str, uncompressed: u64, compressed: u64, rps: &[f64]) -> CandidateRuns {
    CandidateRuns {
        name: name.into(),
        base: format!("localhost:5000/python:3.11-{name}"),
        image: ImageSize {
            reference: format!("oci-archive:/tmp/{name}.tar"),
            digest: Digest::of(name.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            platform: "linux/amd64".into(),
            manifest_bytes: 700,
            config_bytes: 2000,
            compressed_bytes: compressed,
            uncompressed_bytes: uncompressed,
            layers: vec![],
            index_digest: None,
            platforms: None,
        },
        startup_ms: rps.iter().map(|_| 250.0).collect(),
        pull_ms: vec![],
        layers_present: vec![],
        peak_memory_bytes: rps.iter().map(|_| 25_000_000).collect(),
        service_cpu_percent: vec![],
        generator_cpu_share: rps.iter().map(|_| 0.3).collect(),
        runs: rps.iter().map(|&r| run(r)).collect(),
        capacity_per_second: Vec::new(),
        capacity_searches: Vec::new(),
    }
}

fn input() -> CompareInput {
    CompareInput {
        candidates: vec![
            candidate(
                "bookworm",
                1_020_000_000,
                380_000_000,
                &[3120.0, 3090.0, 3150.0, 3105.0, 3131.0, 3098.0],
            ),
            candidate(
                "slim-bookworm",
                131_000_000,
                47_500_000,
                &[3110.0, 3142.0, 3087.0, 3125.0, 3101.0, 3133.0],
            ),
            candidate(
                "alpine",
                58_000_000,
                19_000_000,
                &[2710.0, 2690.0, 2735.0, 2702.0, 2721.0, 2698.0],
            ),
        ],
        load: LoadSummary {
            requests: Some(1000),
            duration_seconds: None,
            concurrency: 50,
            keepalive: true,
            warmup: 100,
            warmup_seconds: None,
            repeats: 6,
            path: "/".into(),
            isolation: Default::default(),
            cold_start_rounds: 0,
            cold_start_bandwidth: None,
            slo: None,
            slo_precision: None,
            slo_step_seconds: None,
            network: None,
            notes: Vec::new(),
        },
    }
}

#[test]
fn measurements_read_back_from_json() {
    let text = serde_json::to_string(&input()).unwrap();
    let back: CompareInput = serde_json::from_str(&text).unwrap();
    assert_eq!(back.candidates.len(), 3);
    assert_eq!(back.load, input().load);
}

#[test]
fn json_has_the_design_schema() {
    let report = report::analyze(input());
    let v: Value = serde_json::from_slice(&Format::Json.render(&report)).unwrap();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    for k in ["candidates", "significant", "recommendation"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    let c = &v["candidates"][1];
    for k in [
        "name",
        "base",
        "image",
        "startup_ms",
        "peak_memory_bytes",
        "requests_per_second",
        "latency_ms",
        "runs",
    ] {
        assert!(keys(c).contains(&k.to_string()), "candidate lacks {k}");
    }
    assert_eq!(c["startup_ms"], 250.0);
    assert_eq!(c["peak_memory_bytes"], 25_000_000);
    assert_eq!(c["service_cpu_percent"], Value::Null, "not measured: null");
    // Six runs: the order-statistic interval is the range, covering 96.9%.
    assert_eq!(c["requests_per_second"]["low"], 3087.0);
    assert_eq!(c["requests_per_second"]["high"], 3142.0);
    assert_eq!(c["requests_per_second"]["coverage"], 0.968_75);
    for d in v["significant"].as_array().unwrap() {
        assert_eq!(
            keys(d),
            [
                "faster",
                "p_value",
                "p_value_unadjusted",
                "ratio",
                "ratio_high",
                "ratio_low",
                "rounds",
                "slower"
            ]
        );
        assert_eq!(d["slower"], "alpine");
        assert_eq!(d["rounds"], 6);
        assert!(d["ratio_low"].as_f64() < d["ratio"].as_f64());
        assert!(d["ratio"].as_f64() < d["ratio_high"].as_f64());
        assert!(d["p_value"].as_f64() >= d["p_value_unadjusted"].as_f64());
    }
    assert_eq!(keys(&v["recommendation"]), ["name", "reason"]);
    assert_eq!(v["recommendation"]["name"], "slim-bookworm");
}

/// The terminal table of a fixed comparison, as reviewed: columns, units, the
/// significance and noise paragraphs and the recommendation (`report` has no
/// randomness, so nothing is hidden).
#[test]
fn the_table_reads_as_reviewed() {
    let report = report::analyze(input());
    let table = String::from_utf8(Format::Table.render(&report)).unwrap();
    insta::assert_snapshot!(table, @"
      Candidate      Size (disk / compressed)  Start-up   Memory  Requests/s median [interval]  Mean latency  p99 latency  Total time
      bookworm              1.0 GB / 380.0 MB    250 ms  25.0 MB           3,113 [3,090–3,150]       16.1 ms      28.9 ms     0.321 s
    * slim-bookworm       131.0 MB /  47.5 MB    250 ms  25.0 MB           3,118 [3,087–3,142]       16.0 ms      28.9 ms     0.321 s
      alpine               58.0 MB /  19.0 MB    250 ms  25.0 MB           2,706 [2,690–2,735]       18.5 ms      33.3 ms     0.370 s
    Medians over 6 runs each; [interval]: distribution-free interval for the median of
    requests/s (96.9% with 6 runs, the range of the runs). * recommended.

    Significant differences (paired over rounds, Holm-adjusted p < 0.05, at least 1%):
      slim-bookworm is 15% faster than alpine (95% interval 13.5–16.6%, p < 0.001 Holm-adjusted, 6 rounds)
      bookworm is 15% faster than alpine (95% interval 14.8–15.1%, p < 0.001 Holm-adjusted, 6 rounds)
    Not shown to differ:
      slim-bookworm and bookworm: no difference shown: −1.4% to +1.5% (p = 0.97 Holm-adjusted, not significant, 6 rounds)

    Recommendation: slim-bookworm: smallest image (131.0 MB on disk, 47.5 MB compressed) among
    the 2 candidates whose throughput is within noise of the best (it has the highest median
    itself, 3,118 req/s; differences under 1% or not significant at p < 0.05, Holm-adjusted,
    over 6 runs each). alpine is smaller (58.0 MB on disk) but significantly slower:
    slim-bookworm has 15% more requests/s (95% interval 13.5–16.6%, p < 0.001 Holm-adjusted,
    paired over 6 rounds). This run could resolve differences of about ±1.5% (half the width of
    the 95% interval between slim-bookworm and bookworm); a smaller one could not be told from
    noise.
    ");
}

/// Three runs each: the rounds still pair, so the paired test can separate
/// alpine (the old Mann–Whitney verdict called all three tied: its smallest
/// p-value with 3 runs each is 0.1); the intervals are wide.
#[test]
fn the_table_of_three_runs_warns_as_reviewed() {
    let mut three = input();
    for c in &mut three.candidates {
        c.runs.truncate(3);
        c.startup_ms.truncate(3);
        c.peak_memory_bytes.truncate(3);
        c.generator_cpu_share.truncate(3);
    }
    three.load.repeats = 3;
    let table = String::from_utf8(Format::Table.render(&report::analyze(three))).unwrap();
    insta::assert_snapshot!(table, @"
      Candidate      Size (disk / compressed)  Start-up   Memory  Requests/s median [interval]  Mean latency  p99 latency  Total time
      bookworm              1.0 GB / 380.0 MB    250 ms  25.0 MB           3,120 [3,090–3,150]       16.0 ms      28.8 ms     0.321 s
    * slim-bookworm       131.0 MB /  47.5 MB    250 ms  25.0 MB           3,110 [3,087–3,142]       16.1 ms      28.9 ms     0.322 s
      alpine               58.0 MB /  19.0 MB    250 ms  25.0 MB           2,710 [2,690–2,735]       18.5 ms      33.2 ms     0.369 s
    Medians over 3 runs each; [interval]: distribution-free interval for the median of
    requests/s (75% with 3 runs, the range of the runs). * recommended.

    Significant differences (paired over rounds, Holm-adjusted p < 0.05, at least 1%):
      bookworm is 15.1% faster than alpine (95% interval 14.7–15.5%, p < 0.001 Holm-adjusted, 3 rounds)
      slim-bookworm is 14.8% faster than alpine (95% interval 10.0–19.8%, p = 0.010 Holm-adjusted, 3 rounds)
    Not shown to differ:
      bookworm and slim-bookworm: no difference shown: −4.3% to +4.9% (p = 0.85 Holm-adjusted, not significant, 3 rounds)

    Warnings:
      - with 3 runs per candidate, the interval for the median is the range of the runs and
        covers it with only 75% confidence (6 runs give 96.9%)

    Recommendation: slim-bookworm: smallest image (131.0 MB on disk, 47.5 MB compressed) among
    the 2 candidates whose throughput is within noise of the best (bookworm, 3,120 req/s median,
    vs 3,110 for slim-bookworm; differences under 1% or not significant at p < 0.05,
    Holm-adjusted, over 3 runs each). bookworm vs slim-bookworm: 0.22% apart (95% interval −4.3%
    to +4.9%, p = 0.85 Holm-adjusted, paired over 3 rounds). alpine is smaller (58.0 MB on disk)
    but significantly slower: bookworm has 15.1% more requests/s (95% interval 14.7–15.5%, p <
    0.001 Holm-adjusted, paired over 3 rounds). This run could resolve differences of about
    ±4.7% (half the width of the 95% interval between bookworm and slim-bookworm); a smaller one
    could not be told from noise.
    ");
}

#[test]
fn every_format_renders() {
    let report = report::analyze(input());
    let table = String::from_utf8(Format::Table.render(&report)).unwrap();
    assert!(table.contains("* slim-bookworm"), "{table}");
    assert!(
        table.contains(
            "Recommendation: slim-bookworm: smallest image (131.0 MB on disk, 47.5 MB compressed)"
        ),
        "{table}"
    );
    let md = String::from_utf8(Format::Markdown.render(&report)).unwrap();
    assert!(md.starts_with("| Image "), "{md}");
    assert!(md.contains("| **slim-bookworm** |"), "{md}");
    assert!(md.contains("Interval (96.9%)"), "{md}");
    let svg = String::from_utf8(Format::Svg.render(&report)).unwrap();
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
    // A writer other than a Vec: through a BufWriter into a file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.md");
    Format::Markdown
        .write(
            &report,
            std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
        )
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), md);
    if let Ok(out) = std::env::var("OCIBENCH_SVG_OUT") {
        std::fs::write(out, svg).unwrap();
    }
}
