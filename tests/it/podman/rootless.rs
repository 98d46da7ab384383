//! `ocibench run` and `compare` as an unprivileged user with rootless podman
//! (support/rootless.rs makes the user): on this machine kind that is cgroup v1,
//! cgroupfs, vfs storage, and no `/dev/net/tun` for slirp4netns, so the runner
//! must choose host networking, read CPU from /proc, and say that memory is not
//! measured. Small loads: the point is that it works and says so, not speed.

use crate::support::rootless;
use crate::support::{Registry, TestContext, Variant, push_fixture};

/// busybox httpd listening on the port ocibench gives it in `$PORT`.
const HTTPD_ON_PORT: &str = r#"exec /bin/busybox httpd -f -p "$PORT" -h "$0""#;

fn output(cmd: &mut std::process::Command) -> (bool, String, String) {
    let out = cmd.output().expect("run as the rootless user");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rootless_run_uses_host_network_and_says_what_it_cannot_measure() {
    let user = rootless::user();
    let registry = Registry::start();
    let image = push_fixture(&registry, "busybox", "rootless-run", Variant::Oci);
    let ctx = TestContext::new();
    user.own(&ctx);
    let entrypoint = format!(r#"--entrypoint=["/bin/sh","-c",{HTTPD_ON_PORT:?},"/www"]"#);
    let (ok, stdout, stderr) = output(&mut user.ocibench(
        &ctx,
        &[
            "run",
            &image.reference,
            "--port",
            "8080",
            "-n",
            "100",
            "-c",
            "2",
            "--json",
            "--podman-arg",
            &entrypoint,
        ],
    ));
    assert!(ok, "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(v["bench"]["successful"], 100, "{v:#}");
    let network = v["network"].as_str().unwrap();
    let port: u16 = network
        .strip_prefix("host network, port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("network: {network}"));
    assert_eq!(
        v["bench"]["url"],
        format!("http://127.0.0.1:{port}/"),
        "{v:#}"
    );
    assert!(v["peak_memory_bytes"].is_null(), "{v:#}");
    assert!(v["service_cpu_percent"].as_f64().is_some(), "{v:#}");
    assert_eq!(v["storage_driver"], "vfs", "{v:#}");
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        notes[0],
        "Peak memory is not measured (null): rootless podman on cgroup v1 with the cgroupfs \
         manager has no cgroup per container (cgroup v2 with the systemd manager and \
         delegation is needed), so `podman stats` cannot read the container; CPU is the \
         container's processes' CPU time from /proc.",
        "{v:#}"
    );
    assert!(
        notes[1].starts_with("podman's storage driver is vfs"),
        "{v:#}"
    );
    assert_eq!(user.containers(&ctx), Vec::<String>::new());

    // A limit cannot be applied here: a clear error, before any container.
    let (ok, _, stderr) = output(&mut user.ocibench(
        &ctx,
        &[
            "run",
            &image.reference,
            "--port",
            "8080",
            "-n",
            "10",
            "--podman-arg=--memory=64m",
        ],
    ));
    assert!(!ok);
    assert!(
        stderr.contains(
            "error: --memory cannot be applied: rootless podman on cgroup v1 with the \
             cgroupfs manager has no cgroup per container"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("hint: drop the limit"), "{stderr}");

    // The published port needs slirp4netns and /dev/net/tun, which this user lacks.
    if !std::fs::metadata("/dev/net/tun").is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o006 == 0o006
    }) {
        let (ok, _, stderr) = output(&mut user.ocibench(
            &ctx,
            &[
                "run",
                &image.reference,
                "--port",
                "8080",
                "-n",
                "10",
                "--network",
                "published",
            ],
        ));
        assert!(!ok);
        assert!(
            stderr.contains("/dev/net/tun is not accessible to this user"),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: use host networking (--network host"),
            "{stderr}"
        );
    }
    assert_eq!(user.containers(&ctx), Vec::<String>::new());
}

#[test]
fn rootless_compare_of_two_candidates() {
    let user = rootless::user();
    let registry = Registry::start();
    let oci = push_fixture(&registry, "busybox", "rootless-oci", Variant::Oci);
    let docker = push_fixture(&registry, "busybox", "rootless-docker", Variant::DockerV2s2);
    let ctx = TestContext::new();
    let dir = ctx.work_dir.clone();
    std::fs::create_dir_all(dir.join("site/www")).unwrap();
    std::fs::write(dir.join("site/www/index.html"), "rootless\n").unwrap();
    let toml = format!(
        r#"[app]
layers = ["site:/srv"]
entrypoint = ["/bin/sh", "-c", {HTTPD_ON_PORT:?}, "/srv/www"]
port = 8080
path = "/index.html"
startup_timeout = "30s"

[load]
requests = 100
concurrency = 2
warmup = 5
repeats = 2

[[candidate]]
name = "oci-base"
base = "{}"

[[candidate]]
name = "docker-base"
base = "{}"
"#,
        oci.reference, docker.reference
    );
    std::fs::write(dir.join("ocibench.toml"), toml).unwrap();
    user.own(&ctx);
    let json = ctx.path("r.json").display().to_string();
    let (ok, stdout, stderr) =
        output(&mut user.ocibench(&ctx, &["compare", "-f", "ocibench.toml", "--json", &json]));
    assert!(ok, "{stdout}\n{stderr}");
    println!("{stdout}");
    assert!(
        stdout.contains("Network: host network, a free port per container in $PORT.\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Note: Peak memory is not measured (null)"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        v["load"]["network"],
        "host network, a free port per container in $PORT"
    );
    for c in v["candidates"].as_array().unwrap() {
        assert!(c["peak_memory_bytes"].is_null(), "{c:#}");
        assert_eq!(c["runs"].as_array().unwrap().len(), 2, "{c:#}");
    }
    let notes = v["load"]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert_eq!(
        notes[2],
        "CPU isolation was not applied: a CPU set needs a cgroup per container."
    );
    assert_eq!(user.containers(&ctx), Vec::<String>::new());

    // A memory limit cannot be applied rootless here: refused before any build.
    let limited = std::fs::read_to_string(dir.join("ocibench.toml"))
        .unwrap()
        .replace("port = 8080\n", "port = 8080\nmemory = \"64m\"\n");
    std::fs::write(dir.join("limited.toml"), limited).unwrap();
    user.own(&ctx);
    let (ok, _, stderr) = output(&mut user.ocibench(&ctx, &["compare", "-f", "limited.toml"]));
    assert!(!ok);
    assert!(
        stderr.contains("error: --memory cannot be applied: rootless podman on cgroup v1"),
        "{stderr}"
    );
}
