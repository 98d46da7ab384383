//! `ocibench compare --push` end to end: the recommended candidate's image lands
//! in the registry with the digest the report gives; runs by time, per-candidate
//! limits and overrides and a warm-up by time go through real podman on the way.

use crate::support::{Registry, TestContext, Variant, push_fixture};

use super::compare::{compare_lock, write_config};

#[test]
fn compare_pushes_the_recommended_image() {
    let _turn = compare_lock();
    let registry = Registry::start();
    let base = push_fixture(&registry, "busybox", "pushbase", Variant::Oci);
    let ctx = TestContext::new();
    let file = write_config(
        ctx.root(),
        &[("plain", &base.reference), ("limited", &base.reference)],
        "/health",
        2,
    );
    // Runs by time; one candidate with its own limits and environment.
    let toml = std::fs::read_to_string(&file)
        .unwrap()
        .replace("requests = 300", "duration = \"1s\"")
        .replace("warmup = 20", "warmup = \"200ms\"")
        .replace("port = 8080\n", "port = 8080\nmemory = \"256m\"\n")
        + "cpus = 0.5\nenv = [\"GREETING=hi\"]\n";
    std::fs::write(&file, toml).unwrap();
    let json = ctx.path("r.json");
    let dest = registry.docker_ref("chosen/app:1");
    let out = ctx
        .run([
            "compare",
            "-f",
            &file.display().to_string(),
            "--json",
            &json.display().to_string(),
            "--push",
            &dest,
        ])
        .success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rec = report["recommendation"]["name"].as_str().unwrap();
    let pushed = &report["pushed"];
    assert_eq!(pushed["candidate"], rec, "{report:#}");
    assert_eq!(pushed["reference"], dest);
    let digest = pushed["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    registry.assert_holds("chosen/app:1", digest);
    assert!(
        out.stdout
            .contains(&format!("Pushed {rec} to {dest} ({digest})")),
        "{}",
        out.stdout
    );
    assert_eq!(report["load"]["duration_seconds"], 1.0);
    assert_eq!(report["load"]["warmup_seconds"], 0.2);
    for c in report["candidates"].as_array().unwrap() {
        for r in c["runs"].as_array().unwrap() {
            assert!(r["successful"].as_u64().unwrap() > 0, "{r:#}");
        }
    }
}

#[test]
fn push_destination_is_checked_before_any_work() {
    let ctx = TestContext::new();
    let file = write_config(ctx.root(), &[("a", "127.0.0.1:1/x:1")], "/health", 1);
    ctx.run([
        "compare",
        "-f",
        &file.display().to_string(),
        "--push",
        "oci:/tmp/somewhere",
    ])
    .failure(2)
    .stderr_contains("push writes to registries");
}
