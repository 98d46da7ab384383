//! `ocibench build` end to end: reproducible digests, the base's family and
//! Docker-only config fields kept, base layers reused byte for byte, and the
//! built image running under podman.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support;
use crate::support::podman::{LoadedImage, ULIMITS, podman, serve_and_get, unique_name};
use crate::support::{Registry, TestContext, Variant, push_fixture, run};

/// A small application tree; `stamp` varies mtimes (seconds since 1970) on disk.
fn app_tree(dir: &Path, stamp: i64) {
    std::fs::create_dir_all(dir.join("www/sub")).unwrap();
    std::fs::write(dir.join("www/index.html"), "hello from the built layer\n").unwrap();
    std::fs::write(dir.join("www/sub/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        dir.join("www/sub/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("www/empty")).unwrap();
    std::os::unix::fs::symlink("index.html", dir.join("www/link.html")).unwrap();
    run(Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg(format!("@{stamp}"))
        .arg(dir.join("www/index.html"))
        .arg(dir.join("www/sub/run.sh"))
        .arg(dir.join("www/link.html"))
        .arg(dir.join("www")));
}

fn build_json(ctx: &TestContext, args: &[&str], epoch: Option<&str>) -> serde_json::Value {
    let mut cmd = ctx.cmd(["build", "--json"]);
    cmd.args(args);
    match epoch {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    support::Output::of(&mut cmd).success().json()
}

#[test]
fn same_inputs_same_digest_on_any_checkout() {
    let registry = Registry::start();
    let base = push_fixture(&registry, "busybox", "1", Variant::Oci);
    let digests: Vec<String> = [
        (1_000_000_000, "0"),
        (1_700_000_000, "0"),
        (1_700_000_000, "86400"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (stamp, epoch))| {
        // A fresh cache, a fresh directory and different mtimes each time.
        let ctx = TestContext::new();
        let src = ctx.path(&format!("checkout-{i}/app"));
        app_tree(&src, *stamp);
        if i == 1 {
            // Owned by someone else on disk: the layer still says 0/0.
            run(Command::new("chown").args(["-R", "12345:54321"]).arg(&src));
        }
        let out = ctx.path("out");
        let v = build_json(
            &ctx,
            &[
                "--from",
                &base.reference,
                "--layer",
                &format!("{}:/srv/app", src.display()),
                "--entrypoint",
                r#"["/bin/busybox","httpd","-f","-p","8080","-h","/srv/app/www"]"#,
                "--env",
                "MODE=test",
                "--expose",
                "8080",
                "--label",
                "org.example=1",
                "-o",
                &format!("oci:{}:v1", out.display()),
            ],
            Some(epoch),
        );
        // The base layer is the registry's blob, byte for byte.
        assert_eq!(v["image"]["layers"][0]["digest"], base.layers[0].digest);
        v["image"]["digest"].as_str().unwrap().to_string()
    })
    .collect();
    assert_eq!(
        digests[0], digests[1],
        "same inputs on two checkouts must give one digest"
    );
    assert_ne!(
        digests[0], digests[2],
        "SOURCE_DATE_EPOCH is part of the image"
    );
    eprintln!(
        "reproducible digest: {} (twice); with SOURCE_DATE_EPOCH=86400: {}",
        digests[0], digests[2]
    );
}

#[test]
fn docker_family_and_healthcheck_survive() {
    let registry = Registry::start();
    // A Docker schema 2 base whose config carries Docker-only fields.
    let layout = support::fixture_layout(Variant::Oci);
    let ctx = TestContext::new();
    let dir = ctx.path("hc-layout");
    run(support::tools::skopeo()
        .args(["copy", "--quiet", "--format", "v2s2"])
        .arg(layout.oci_ref())
        .arg(format!("dir:{}", dir.display())));
    // Add Healthcheck and Shell to the config and re-point the manifest at it.
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let config_hex = manifest["config"]["digest"].as_str().unwrap()[7..].to_string();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&config_hex)).unwrap()).unwrap();
    config["config"]["Healthcheck"] =
        serde_json::json!({"Test": ["CMD", "/bin/true"], "Interval": 5_000_000_000u64});
    config["config"]["Shell"] = serde_json::json!(["/bin/sh", "-c"]);
    let bytes = serde_json::to_vec(&config).unwrap();
    let hex = support::tools::sha256_bytes(&bytes);
    let hex = hex.trim_start_matches("sha256:").to_string();
    std::fs::remove_file(dir.join(&config_hex)).unwrap();
    std::fs::write(dir.join(&hex), &bytes).unwrap();
    manifest["config"]["digest"] = format!("sha256:{hex}").into();
    manifest["config"]["size"] = bytes.len().into();
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let base = registry.reference("hc:1");
    run(support::tools::skopeo()
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("dir:{}", dir.display()))
        .arg(format!("docker://{base}")));

    let pushed = support::tools::run_stdout(
        support::tools::skopeo()
            .args(["inspect", "--tls-verify=false", "--config", "--raw"])
            .arg(format!("docker://{base}")),
    );
    assert!(
        pushed.contains("Healthcheck"),
        "the base lost its Healthcheck on push: {pushed}"
    );

    let src = ctx.path("app");
    app_tree(&src, 0);
    let out = ctx.path("hc-out");
    let v = build_json(
        &ctx,
        &[
            "--from",
            &base,
            "--layer",
            &format!("{}:/app", src.display()),
            "-o",
            &format!("oci:{}:t", out.display()),
            "-o",
            &format!("docker-archive:{}.tar", out.display()),
        ],
        None,
    );
    assert_eq!(
        v["image"]["media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    for layer in v["image"]["layers"].as_array().unwrap() {
        assert_eq!(
            layer["media_type"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "no mix of families"
        );
    }
    let inspected = support::tools::run_stdout(
        support::tools::skopeo()
            .args(["inspect", "--config", "--raw"])
            .arg(format!("docker-archive:{}.tar", out.display())),
    );
    let cfg: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(
        cfg["config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/bin/true"]),
        "{cfg:#}"
    );
    assert_eq!(cfg["config"]["Shell"], serde_json::json!(["/bin/sh", "-c"]));
}

#[test]
fn the_built_image_runs_under_podman() {
    let registry = Registry::start();
    let base = push_fixture(&registry, "busybox", "1", Variant::Oci);
    let ctx = TestContext::new();
    let src = ctx.path("site");
    app_tree(&src, 0);
    let name = format!("localhost/{}:1", unique_name("build"));
    let archive = ctx.path("app.tar");
    build_json(
        &ctx,
        &[
            "--from",
            &base.reference,
            "--layer",
            &format!("{}:/srv", src.display()),
            "--cmd",
            r#"["/bin/busybox","httpd","-f","-p","8080","-h","/srv/www"]"#,
            "--expose",
            "8080",
            "-o",
            &format!("docker-archive:{}:{name}", archive.display()),
        ],
        None,
    );
    let _image = LoadedImage(name.clone());
    run(podman().args(["load", "-i"]).arg(&archive));
    let (_container, response) = serve_and_get(&name, "build-run");
    assert!(response.contains(" 200 "), "{response}");
    assert!(
        response.ends_with("hello from the built layer\n"),
        "{response}"
    );
}

#[test]
fn scratch_with_one_layer() {
    let ctx = TestContext::new();
    let src = ctx.path("bin");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(support::fixtures::static_busybox(), src.join("busybox")).unwrap();
    let out = ctx.path("scratch.tar");
    let v = build_json(
        &ctx,
        &[
            "--from",
            "scratch",
            "--layer",
            &format!("{}:/bin", src.display()),
            "--entrypoint",
            r#"["/bin/busybox","echo","from scratch"]"#,
            "-o",
            &format!("oci-archive:{}:s", out.display()),
        ],
        None,
    );
    assert_eq!(v["image"]["layers"].as_array().unwrap().len(), 1);
    assert_eq!(v["image"]["platform"], "linux/amd64");
    let name = format!("localhost/{}:1", unique_name("scratch"));
    let _image = LoadedImage(name.clone());
    // podman names an oci-archive by its tag; give it a full one.
    let named = ctx.path("scratch-named.tar");
    run(support::tools::skopeo()
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}:s", out.display()))
        .arg(format!("oci-archive:{}:{name}", named.display())));
    run(podman().args(["load", "-i"]).arg(&named));
    let said = support::tools::run_stdout(podman().args(["run", "--rm"]).args(ULIMITS).arg(&name));
    assert_eq!(said.trim(), "from scratch");
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let ctx = TestContext::new();
    let src = ctx.path("app");
    app_tree(&src, 0);
    let out = ctx.path("never.tar");
    let o = format!("oci-archive:{}", out.display());
    let layer = format!("{}:/app", src.display());
    for (args, needle) in [
        (
            vec!["--from", "scratch", "--layer", "/no/such/dir:/x", "-o", &o],
            "cannot read",
        ),
        (
            vec![
                "--from", "scratch", "--layer", &layer, "--expose", "abc", "-o", &o,
            ],
            "--expose",
        ),
        (
            vec!["--from", "scratch", "--layer", &layer, "-o", &o, "-o", &o],
            "given twice",
        ),
        (
            vec![
                "--from",
                "scratch",
                "--layer",
                &layer,
                "--cmd",
                "python3 -m x",
                "-o",
                &o,
            ],
            "JSON array",
        ),
        (
            vec![
                "--from", "scratch", "--layer", &layer, "--env", "NOEQUALS", "-o", &o,
            ],
            "KEY=VALUE",
        ),
        (
            vec!["--from", "Bad:Ref", "--layer", &layer, "-o", &o],
            "lowercase",
        ),
    ] {
        ctx.run(std::iter::once("build").chain(args.iter().copied()))
            .failure(2)
            .stderr_contains(needle)
            .stderr_contains("error: ");
        assert!(!out.exists(), "{args:?} wrote output");
    }
    // A FIFO in the tree: exit 2 naming it, no output, no blob left in the cache.
    let fifo = src.join("www/pipe");
    run(Command::new("mkfifo").arg(&fifo));
    ctx.run(["build", "--from", "scratch", "--layer", &layer, "-o", &o])
        .failure(2)
        .stderr_contains("pipe");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(ctx.path("cache/blobs/sha256"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn volume_stop_signal_and_healthcheck_flags() {
    let ctx = TestContext::new();
    let src = ctx.path("app");
    app_tree(&src, 0);
    let layer = format!("{}:/app", src.display());
    let out = ctx.path("run-settings.tar");
    let o = format!("oci-archive:{}", out.display());
    let check =
        r#"{"Test":["CMD-SHELL","test -e /app/www/index.html"],"Interval":5000000000,"Retries":2}"#;
    let flags = [
        "--from",
        "scratch",
        "--layer",
        &layer,
        "--volume",
        "/data",
        "--volume",
        "/var/log",
        "--stop-signal",
        "quit",
        "--healthcheck",
        check,
        "-o",
        &o,
    ];
    build_json(&ctx, &flags, Some("0"));
    let config: serde_json::Value = serde_json::from_str(&support::tools::run_stdout(
        support::tools::skopeo()
            .args(["inspect", "--config", "--raw"])
            .arg(&o),
    ))
    .unwrap();
    assert_eq!(
        config["config"],
        serde_json::json!({
            "Volumes": {"/data": {}, "/var/log": {}},
            "StopSignal": "SIGQUIT",
            "Healthcheck": {"Test": ["CMD-SHELL", "test -e /app/www/index.html"], "Interval": 5_000_000_000u64, "Retries": 2},
        })
    );

    let never = ctx.path("never.tar");
    let n = format!("oci-archive:{}", never.display());
    for (flag, value, error, hint) in [
        (
            "--volume",
            "data",
            "must be an absolute path",
            "--volume /data",
        ),
        (
            "--stop-signal",
            "SIG TERM",
            "invalid stop signal",
            "--stop-signal SIGTERM",
        ),
        (
            "--stop-signal",
            "99",
            "invalid stop signal",
            "a number 1-64",
        ),
        (
            "--healthcheck",
            r#"{"Test":"true"}"#,
            r#""Test" must be an array"#,
            "HealthConfig",
        ),
        ("--healthcheck", "curl -f x", "not JSON", "HealthConfig"),
    ] {
        ctx.run([
            "build", "--from", "scratch", "--layer", &layer, flag, value, "-o", &n,
        ])
        .failure(2)
        .stderr_contains(&format!("error: {flag}"))
        .stderr_contains(error)
        .stderr_contains("hint: ")
        .stderr_contains(hint);
        assert!(!never.exists(), "{flag} {value} wrote output");
    }
}
