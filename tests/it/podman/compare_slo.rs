//! `ocibench compare` with `[load] slo`: each run searches the capacity at
//! the SLO in its own container, and the report ranks by it (real registry,
//! real podman, the busybox fixture bases; short steps, three rounds).

use super::compare::{compare_lock, our_containers, write_config};
use crate::support::{Registry, TestContext, Variant, push_fixture};

#[test]
fn candidates_are_ranked_by_capacity_at_the_slo() {
    let _turn = compare_lock();
    let registry = Registry::start();
    let oci = push_fixture(&registry, "busybox", "oci", Variant::Oci);
    let docker = push_fixture(&registry, "busybox", "docker", Variant::DockerV2s2);
    let ctx = TestContext::new();
    let file = write_config(
        ctx.root(),
        &[
            ("oci-base", &oci.reference),
            ("docker-base", &docker.reference),
        ],
        "/health",
        3,
    );
    // A search per run instead of 300 requests: 300 ms steps, to within 10%.
    let toml = std::fs::read_to_string(&file).unwrap().replace(
        "requests = 300\n",
        "slo = \"p99=100ms\"\nslo_step = \"300ms\"\nslo_precision = \"10%\"\nslo_start = 200\n",
    );
    std::fs::write(&file, toml).unwrap();
    let (json, md) = (ctx.path("r.json"), ctx.path("r.md"));
    let out = ctx
        .run([
            "compare",
            "-f",
            &file.display().to_string(),
            "--no-cold-start",
            "--json",
            &json.display().to_string(),
            "--markdown",
            &md.display().to_string(),
        ])
        .success();
    let header = out.stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("Capacity at p99 <= 100 ms, req/s median [interval]"),
        "{}",
        out.stdout
    );
    assert!(!header.contains("Requests/s"), "{header}");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["ranked_by"], "capacity", "{report:#}");
    assert_eq!(report["load"]["slo"]["percentile"], 99.0);
    assert_eq!(report["load"]["slo"]["latency_ms"], 100.0);
    assert_eq!(report["load"]["slo_step_seconds"], 0.3);
    assert_eq!(report["load"]["slo_precision"], 0.1);
    for c in report["candidates"].as_array().unwrap() {
        let cap = &c["capacity"];
        let runs: Vec<f64> = cap["runs_per_second"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(runs.len(), 3, "a capacity per run: {cap:#}");
        // A static page over loopback keeps p99 under 100 ms at 200 req/s.
        assert!(runs.iter().all(|&r| r > 0.0), "{cap:#}");
        let searches = cap["searches"].as_array().unwrap();
        assert_eq!(searches.len(), 3);
        for (s, &found) in searches.iter().zip(&runs) {
            assert_eq!(s["found_per_second"].as_f64().unwrap(), found, "{s:#}");
            assert_eq!(s["step_seconds"], 0.3);
            let steps = s["steps"].as_array().unwrap();
            assert!(!steps.is_empty() && steps.len() <= 20, "{s:#}");
            // The capacity is a rate the search tried, and it passed there.
            assert!(
                steps
                    .iter()
                    .any(|t| t["rate"].as_f64() == Some(found) && t["passed"] == true),
                "{s:#}"
            );
        }
        let median = cap["median"].as_f64().unwrap();
        assert!(cap["low"].as_f64().unwrap() <= median && median <= cap["high"].as_f64().unwrap());
        assert_eq!(c["runs"].as_array().unwrap().len(), 3, "a run per round");
    }
    // Each search starts where one before ended: rounds run oci-base,
    // docker-base; docker-base, oci-base; oci-base, docker-base.
    let found =
        |i: usize, k: usize| report["candidates"][i]["capacity"]["runs_per_second"][k].clone();
    let start = |i: usize, k: usize| {
        report["candidates"][i]["capacity"]["searches"][k]["steps"][0]["rate"].clone()
    };
    assert_eq!(start(0, 0), 200.0, "the first search starts at slo_start");
    assert_eq!(
        start(1, 0),
        found(0, 0),
        "docker-base's first, at oci-base's capacity"
    );
    for k in 1..3 {
        assert_eq!(start(0, k), found(0, k - 1), "{report:#}");
        assert_eq!(start(1, k), found(1, k - 1), "{report:#}");
    }
    let rec = report["recommendation"]["name"].as_str().unwrap();
    let reason = report["recommendation"]["reason"].as_str().unwrap();
    assert!(reason.contains("capacity"), "{reason}");
    assert!(!reason.contains("throughput"), "{reason}");
    let claims = report["significant"].as_array().unwrap();
    if claims.is_empty() {
        assert_eq!(rec, "docker-base", "the smaller of two tied: {report:#}");
    } else {
        assert_eq!(claims[0]["faster"], rec, "{report:#}");
    }
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.contains("| Capacity at p99 <= 100 ms [req/s] |"),
        "{markdown}"
    );
    assert!(markdown.contains("each a capacity search"), "{markdown}");
    assert!(our_containers(ctx.root()).is_empty());
}

#[test]
fn bad_slo_settings_are_refused_before_any_work() {
    let ctx = TestContext::new();
    let file = write_config(ctx.root(), &[("a", "127.0.0.1:1/x:1")], "/health", 1);
    let original = std::fs::read_to_string(&file).unwrap();
    let with = |load: &str| {
        std::fs::write(&file, original.replace("requests = 300\n", load)).unwrap();
    };
    let f = file.display().to_string();
    with("slo = \"p99\"\n");
    ctx.run(["compare", "-f", &f])
        .failure(2)
        .stderr_contains("error:")
        .stderr_contains("load.slo \"p99\": `p99` has no `=` (write e.g. slo = \"p99=50ms\"");
    with("slo = \"p99=50ms\"\nslo_precision = \"0%\"\n");
    ctx.run(["compare", "-f", &f])
        .failure(2)
        .stderr_contains("load.slo_precision \"0%\" must be a percentage");
    with("slo = \"p99=50ms\"\n");
    ctx.run(["compare", "-f", &f, "-n", "10"])
        .failure(2)
        .stderr_contains("-n/--requests does not apply")
        .stderr_contains("hint: give each step's length with -z DURATION");
}
