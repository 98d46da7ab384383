//! Made-up measurements for the tests of the analysis and of every format.

use super::{CandidateRuns, CompareInput, LoadSummary};
use crate::loadgen::{BenchResult, ErrorCounts, LatencyMs};
use crate::oci::digest::Digest;
use crate::oci::pull::{ImageSize, LayerSize};

const MB: u64 = 1_000_000;

/// A run of 1000 requests at concurrency 100 that reached `rps`.
pub fn bench(rps: f64) -> BenchResult {
    let total = 1000.0 / rps;
    let mean = 100.0 * total; // ms: concurrency × total / completed × 1000
    BenchResult {
        url: "http://127.0.0.1:8080/".into(),
        requests: 1000,
        concurrency: 100,
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
        mean_ms_per_request: Some(mean),
        mean_ms_across_concurrent: Some(total),
        latency_ms: Some(LatencyMs {
            min: mean / 4.0,
            mean,
            p50: mean * 0.9,
            p99: mean * 1.8,
            max: mean * 2.5,
            ..LatencyMs::default()
        }),
        bytes_received: 150_000,
        transfer_kib_per_second: 150.0 * rps / 1024.0,
        uncorrected_latency_ms: None,
        latency_histogram: Vec::new(),
        rate: None,
        http_version: "HTTP/1.1".into(),
        streams: 1,
        connections: 100,
        connect_ms: None,
        tls_error: None,
    }
}

pub fn image(name: &str, uncompressed: u64, compressed: u64) -> ImageSize {
    let digest = Digest::of(name.as_bytes());
    ImageSize {
        reference: format!("oci-archive:{name}.tar"),
        digest: digest.clone(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        platform: "linux/amd64".into(),
        manifest_bytes: 500,
        config_bytes: 1500,
        compressed_bytes: compressed,
        uncompressed_bytes: uncompressed,
        layers: vec![LayerSize {
            digest: digest.clone(),
            diff_id: digest,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            compressed_bytes: compressed,
            uncompressed_bytes: uncompressed,
        }],
        index_digest: None,
        platforms: None,
    }
}

/// A candidate of `uncompressed_mb` / `compressed_mb` whose runs reached `rps`.
pub fn candidate(
    name: &str,
    uncompressed_mb: u64,
    compressed_mb: u64,
    rps: &[f64],
) -> CandidateRuns {
    sized(name, uncompressed_mb * MB, compressed_mb * MB, rps)
}

pub fn sized(name: &str, uncompressed: u64, compressed: u64, rps: &[f64]) -> CandidateRuns {
    CandidateRuns {
        name: name.into(),
        base: format!("localhost:5000/python:{name}"),
        image: image(name, uncompressed, compressed),
        startup_ms: vec![300.0; rps.len()],
        pull_ms: Vec::new(),
        layers_present: Vec::new(),
        peak_memory_bytes: vec![30 * MB; rps.len()],
        service_cpu_percent: vec![95.0; rps.len()],
        generator_cpu_share: vec![0.4; rps.len()],
        runs: rps.iter().map(|&r| bench(r)).collect(),
        capacity_per_second: Vec::new(),
        capacity_searches: Vec::new(),
    }
}

pub fn input(candidates: Vec<CandidateRuns>) -> CompareInput {
    CompareInput {
        candidates,
        load: LoadSummary {
            requests: Some(1000),
            duration_seconds: None,
            concurrency: 100,
            keepalive: true,
            warmup: 100,
            warmup_seconds: None,
            repeats: 5,
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

/// DESIGN.md's Origin experiment, redone with five runs per image.
pub fn origin() -> CompareInput {
    let mut c = vec![
        sized(
            "slim-stretch",
            123_400_000,
            45_600_000,
            &[2177.1, 2151.4, 2196.0, 2168.3, 2185.2],
        ),
        sized(
            "stretch",
            928_300_000,
            341_000_000,
            &[2031.4, 2047.9, 2018.2, 2039.5, 2025.7],
        ),
        sized(
            "slim",
            139_200_000,
            51_200_000,
            &[2187.5, 2203.1, 2164.8, 2192.6, 2175.3],
        ),
        sized(
            "buster",
            903_100_000,
            334_500_000,
            &[2161.2, 2143.7, 2172.4, 2150.9, 2180.6],
        ),
    ];
    for (i, cand) in c.iter_mut().enumerate() {
        cand.startup_ms = vec![410.0 + 20.0 * i as f64, 395.0, 430.0, 402.0, 415.0];
        cand.peak_memory_bytes = vec![31_400_000 + i as u64 * 1_000_000; 5];
        // A pull of ~1.5 s plus ~20 ms per compressed MB, varying by round.
        let mb = cand.image.compressed_bytes as f64 / 1e6;
        cand.pull_ms = [0.0, 35.0, -20.0, 60.0, 10.0]
            .iter()
            .map(|d| (1500.0 + 20.0 * mb + d).round())
            .collect();
        cand.layers_present = vec![0; 5];
    }
    let mut input = input(c);
    input.load.cold_start_rounds = 5;
    input
}

/// A capacity search that found `found` req/s (`None`: no rate kept p99 <= 50 ms),
/// its first failure 4% above it.
pub fn search(found: Option<f64>) -> crate::loadgen::RateSearchResult {
    use crate::loadgen::search::{SearchStep, Slo};
    let step = |rate: f64, passed: bool| SearchStep {
        rate,
        passed,
        percentile_ms: Some(if passed { 31.0 } else { 87.0 }),
        error_rate: 0.0,
        achieved_per_second: rate,
        scheduled: (rate * 2.0) as u64,
        sent: (rate * 2.0) as u64,
        reason: (!passed).then(|| "p99 87.000 ms > 50 ms".to_string()),
        latency_ms: None,
    };
    let failed = step(found.map_or(1.5625, |f| f * 1.04), false);
    let passed = found.map(|f| step(f, true));
    crate::loadgen::RateSearchResult {
        url: "http://127.0.0.1:8080/".into(),
        concurrency: 100,
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

/// `c` as measured by capacity searches that found `capacities` (0: none kept the SLO).
pub fn with_capacity(mut c: CandidateRuns, capacities: &[f64]) -> CandidateRuns {
    c.capacity_per_second = capacities.to_vec();
    c.capacity_searches = capacities
        .iter()
        .map(|&f| search(Some(f).filter(|f| *f > 0.0)))
        .collect();
    c
}

/// `input` with its load searching the capacity at p99 <= 50 ms, 2 s steps, 5%.
pub fn capacity_input(candidates: Vec<CandidateRuns>) -> CompareInput {
    let mut i = input(candidates);
    i.load.requests = None;
    i.load.slo = Some(crate::loadgen::search::Slo::parse("p99=50ms").unwrap());
    i.load.slo_precision = Some(0.05);
    i.load.slo_step_seconds = Some(2.0);
    i
}
