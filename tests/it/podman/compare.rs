//! `ocibench compare` end to end: real registry, real podman (runc), fixture bases.

use std::path::Path;

use crate::support::snapshot::compare_table_settings;
use crate::support::{Registry, TestContext, Variant, push_fixture};

/// A comparison of busybox httpd serving a page, on the given bases.
pub(super) fn write_config(
    dir: &Path,
    bases: &[(&str, &str)],
    health: &str,
    repeats: u32,
) -> std::path::PathBuf {
    let www = dir.join("site/www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "compare me\n").unwrap();
    std::fs::write(www.join("health"), "ok\n").unwrap();
    let label = test_label(dir);
    let mut toml = format!(
        r#"[app]
layers = ["site:/srv"]
entrypoint = ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/srv/www"]
port = 8080
health = "{health}"
path = "/index.html"
startup_timeout = "20s"
podman_args = ["--label", "{label}"]

[load]
requests = 300
concurrency = 8
warmup = 20
repeats = {repeats}
"#
    );
    for (name, base) in bases {
        toml.push_str(&format!(
            "\n[[candidate]]\nname = \"{name}\"\nbase = \"{base}\"\n"
        ));
    }
    let file = dir.join("ocibench.toml");
    std::fs::write(&file, toml).unwrap();
    file
}

/// The podman compare runs take turns: every compare container is named
/// `ocibench-compare-*`, so one run's before/after count would see the other's
/// containers (a panicking holder does not block the other).
pub(super) fn compare_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The label `write_config` puts on every container of the comparison in `dir`
/// (`[app] podman_args`): other processes' compares (another checkout's suite, a
/// benchmark) also name theirs `ocibench-compare-*`, so a name says nothing.
fn test_label(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("ocibench-test={:016x}", h.finish())
}

/// The containers, running or not, of the comparison configured in `dir`.
pub(super) fn our_containers(dir: &Path) -> Vec<String> {
    let filter = format!("label={}", test_label(dir));
    crate::support::tools::run_stdout(crate::support::tools::command("podman", "podman").args([
        "ps",
        "-a",
        "--filter",
        &filter,
        "--format",
        "{{.Names}}",
    ]))
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn two_busybox_candidates_end_to_end() {
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
    let (json, md, svg) = (ctx.path("r.json"), ctx.path("r.md"), ctx.path("r.svg"));
    let out = ctx
        .run([
            "compare",
            "-f",
            &file.display().to_string(),
            "--json",
            &json.display().to_string(),
            "--markdown",
            &md.display().to_string(),
            "--svg",
            &svg.display().to_string(),
        ])
        .success();
    assert!(
        out.stdout.contains("oci-base") && out.stdout.contains("docker-base"),
        "{}",
        out.stdout
    );
    // The table's header and rows (what follows depends on the measurements: which
    // candidate was faster, which warnings apply; report.rs pins that wording).
    // The `*` of the recommended row is checked against the JSON below: between two
    // identical images a difference is falsely claimed in about 5% of compares (the
    // paired test's stated error rate), and then the faster one is recommended.
    let table: Vec<&str> = out.stdout.lines().take(3).collect();
    let starred: Vec<&str> = table
        .iter()
        .filter(|l| l.starts_with('*'))
        .copied()
        .collect();
    let unstarred: Vec<String> = table
        .iter()
        .map(|l| {
            l.strip_prefix('*')
                .map_or(l.to_string(), |r| format!(" {r}"))
        })
        .collect();
    compare_table_settings().bind(|| insta::assert_snapshot!(unstarred.join("\n"), @"
     Candidate Size (disk / compressed) Cold start [interval] Start-up Memory Requests/s median [interval] Mean latency p[N] latency Total time
     oci-base [SIZE] / [SIZE] [TIME] [[N]–[N]] [TIME] [SIZE] [N] [[N]–[N]] [TIME] [TIME] [TIME]
     docker-base [SIZE] / [SIZE] [TIME] [[N]–[N]] [TIME] [SIZE] [N] [[N]–[N]] [TIME] [TIME] [TIME]
    "));

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let candidates = report["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2);
    for (c, base) in candidates.iter().zip([&oci, &docker]) {
        assert_eq!(c["base"], base.reference);
        // The built image is the base plus one small layer: its base layer is the
        // fixture's, byte for byte, and the sizes add up.
        let layers = c["image"]["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0]["digest"], base.layers[0].digest);
        let sum: u64 = layers
            .iter()
            .map(|l| l["compressed_bytes"].as_u64().unwrap())
            .sum();
        assert_eq!(c["image"]["compressed_bytes"], sum);
        assert_eq!(
            c["image"]["uncompressed_bytes"].as_u64().unwrap(),
            base.uncompressed_bytes() + layers[1]["uncompressed_bytes"].as_u64().unwrap()
        );
        let runs = c["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 3, "one run per round");
        for r in runs {
            assert_eq!(r["completed"], 300);
            assert_eq!(r["successful"], 300);
        }
        let rps = &c["requests_per_second"];
        assert!(rps["low"].as_f64().unwrap() <= rps["median"].as_f64().unwrap());
        assert!(rps["median"].as_f64().unwrap() <= rps["high"].as_f64().unwrap());
        assert!(c["startup_ms"].as_f64().unwrap() > 0.0);
        // Every run started cold: pulled from ocibench's loopback registry, then started.
        let cold = &c["cold_start"];
        let cold_runs: Vec<f64> = cold["runs_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(cold_runs.len(), 3, "one cold start per run: {cold}");
        let pull = cold["pull_ms"].as_f64().unwrap();
        assert!(pull > 0.0, "{cold}");
        // Each cold start is its run's pull plus its start-up, so above either.
        assert!(cold["median_ms"].as_f64().unwrap() > pull, "{cold}");
        assert!(
            cold["median_ms"].as_f64().unwrap() > c["startup_ms"].as_f64().unwrap(),
            "{cold}"
        );
        assert!(cold["low_ms"].as_f64() <= cold["median_ms"].as_f64());
        assert!(cold["median_ms"].as_f64() <= cold["high_ms"].as_f64());
        // (Layers may be present: other tests' busybox images share the base layer.)
        assert!(cold["layers_present"].as_u64().unwrap() <= 2, "{cold}");
        assert!(c["peak_memory_bytes"].as_u64().unwrap() > 0);
        // From the container's cgroup over the load: measured, so never null.
        assert!(c["service_cpu_percent"].as_f64().unwrap() > 0.0, "{c:#}");
        assert!(
            c["latency_ms"]["p99"].as_f64().unwrap()
                >= c["latency_ms"]["mean"].as_f64().unwrap() * 0.5
        );
    }
    assert_eq!(report["load"]["cold_start_rounds"], 3, "every round of 3");
    assert!(report["load"]["cold_start_bandwidth"].is_null());
    // Nothing of the candidates stays in podman's storage: each pull was removed.
    let images = std::process::Command::new("podman")
        .args(["images", "--format", "{{.Repository}}"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&images.stdout);
    assert!(!listed.contains("ocibench/compare/"), "{listed}");
    // Isolation by default: the container and the generator on disjoint CPUs.
    let iso = &report["load"]["isolation"];
    assert_eq!(iso["requested"], true, "{iso}");
    if std::thread::available_parallelism().unwrap().get() >= 2 {
        assert_eq!(iso["applied"], true, "{iso}");
        let cpus = |k: &str| -> Vec<u64> {
            iso[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect()
        };
        let (service, generator) = (cpus("service_cpus"), cpus("generator_cpus"));
        assert!(!service.is_empty() && !generator.is_empty(), "{iso}");
        assert!(service.iter().all(|c| !generator.contains(c)), "{iso}");
        let words = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains("to itself, the load generator CPU"),
            "{words}"
        );
    }
    let rec = report["recommendation"]["name"].as_str().unwrap();
    assert!(rec == "oci-base" || rec == "docker-base", "{report:#}");
    assert!(
        starred.len() == 1 && starred[0].contains(rec),
        "the starred row is the recommendation ({rec}): {starred:?}"
    );
    // Without a claimed difference the smaller image wins, as before the paired test.
    let claims = report["significant"].as_array().unwrap();
    if claims.is_empty() {
        assert_eq!(rec, "docker-base", "{report:#}");
    } else {
        assert_eq!(claims[0]["faster"], rec, "{report:#}");
    }

    let markdown = std::fs::read_to_string(&md).unwrap();
    // A row per candidate (the recommended one in bold, which may be either).
    for name in ["oci-base", "docker-base"] {
        assert!(
            markdown.lines().any(|l| l.starts_with("| ")
                && l.trim_start_matches("| ")
                    .trim_start_matches("**")
                    .starts_with(name)),
            "{markdown}"
        );
    }
    assert!(markdown.contains("Every round started cold"), "{markdown}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") || chart.starts_with("<?xml"),
        "{}",
        &chart[..100.min(chart.len())]
    );
    assert_eq!(chart.matches(">cold start ").count(), 2, "{chart}");
    assert!(
        our_containers(ctx.root()).is_empty(),
        "{:?}",
        our_containers(ctx.root())
    );
}

#[test]
fn a_candidate_that_never_becomes_healthy_fails_with_its_logs() {
    let _turn = compare_lock();
    let registry = Registry::start();
    let oci = push_fixture(&registry, "busybox", "oci", Variant::Oci);
    let ctx = TestContext::new();
    let file = write_config(
        ctx.root(),
        &[("broken", &oci.reference)],
        "/no-such-health-page",
        1,
    );
    let out = ctx
        .run(["compare", "-f", &file.display().to_string()])
        .failure(1)
        .stderr_contains("error:")
        .stderr_contains("broken");
    assert!(
        out.stderr.contains("404") || out.stderr.contains("health"),
        "{}",
        out.stderr
    );
    let left = our_containers(ctx.root());
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[test]
fn bad_comparison_files_are_refused_before_any_work() {
    let ctx = TestContext::new();
    let file = ctx.path("bad.toml");
    std::fs::write(&file, "[app]\nport = 8080\n").unwrap();
    ctx.run(["compare", "-f", &file.display().to_string()])
        .failure(2)
        .stderr_contains("no [[candidate]]");
    ctx.run(["compare", "-f", "/no/such/file.toml"])
        .failure(2)
        .stderr_contains("cannot read");
    let ok = write_config(ctx.root(), &[("a", "127.0.0.1:1/x:1")], "/health", 1);
    ctx.run([
        "compare",
        "-f",
        &ok.display().to_string(),
        "--markdown",
        "/no/such/dir/r.md",
    ])
    .failure(2)
    .stderr_contains("not a directory");
}
