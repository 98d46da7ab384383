//! `ocibench run` as users run it: the built binary, real podman (runc where crun
//! cannot run), the busybox fixture whose `httpd` serves `INDEX_HTML` on 8080.
//!
//! Tests run in parallel, so each gives ocibench its own `--name-prefix` and
//! checks that no container with that prefix is left, however the run ended.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::podman::busybox_image_lock;
use crate::support::{Registry, TestContext, Variant, fixture_layout, push_fixture, require};

/// A name prefix unique to this test and process.
fn prefix(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

/// Containers whose name starts with `ocibench-PREFIX-`, any state.
fn containers(prefix: &str) -> Vec<String> {
    let start = format!("ocibench-{prefix}-");
    support::podman::ocibench_containers()
        .into_iter()
        .filter(|n| n.starts_with(&start))
        .collect()
}

/// Images ocibench loaded for the process `pid` (`localhost/ocibench/run:*-PID`).
fn images_of(pid: u32) -> Vec<String> {
    let out = std::process::Command::new("podman")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .expect("podman images");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with("localhost/ocibench/run:") && n.ends_with(&format!("-{pid}")))
        .map(str::to_string)
        .collect()
}

/// The status of `GET /` on 127.0.0.1:`port`, `None` without an answer.
fn status(port: u16) -> Option<u16> {
    support::http::request_with_timeout(
        &format!("127.0.0.1:{port}"),
        "GET",
        "/",
        &[],
        &[],
        Duration::from_secs(2),
    )
    .ok()
    .map(|r| r.status)
}

fn tools() {
    require("podman", "podman");
    require("runc", "runc");
}

#[test]
fn run_json_reports_bench_startup_and_memory() {
    tools();
    let _store = busybox_image_lock();
    let registry = Registry::start();
    let image = push_fixture(&registry, "busybox", "run", Variant::Oci);
    let ctx = TestContext::new();
    let p = prefix("json");
    let child = ctx
        .cmd([
            "run",
            image.reference.as_str(),
            "--port",
            "8080",
            "-n",
            "200",
            "-c",
            "4",
            "--json",
            "--name-prefix",
            &p,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ocibench");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for ocibench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert!(
        stderr.is_empty(),
        "--json prints nothing on stderr: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let bench = &v["bench"];
    assert_eq!(bench["completed"], 200, "{v:#}");
    assert_eq!(bench["successful"], 200, "{v:#}");
    assert_eq!(bench["failed"], 0, "{v:#}");
    assert_eq!(bench["concurrency"], 4, "{v:#}");
    assert!(
        bench["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(v["startup_ms"].as_f64().unwrap() > 0.0, "{v:#}");
    assert!(v["peak_memory_bytes"].as_u64().unwrap() > 0, "{v:#}");
    assert_eq!(
        v["image"]["digest"],
        image.manifest_digest.as_str(),
        "{v:#}"
    );
    assert_eq!(
        v["image"]["compressed_bytes"],
        image.compressed_bytes(),
        "{v:#}"
    );
    assert!(containers(&p).is_empty(), "left: {:?}", containers(&p));
    assert!(images_of(pid).is_empty(), "left: {:?}", images_of(pid));
}

#[test]
fn run_prints_the_bench_summary_startup_and_memory() {
    tools();
    let _store = busybox_image_lock();
    let ctx = TestContext::new();
    let p = prefix("text");
    let layout = fixture_layout(Variant::Oci);
    let out = ctx
        .run([
            "run",
            layout.oci_ref().as_str(),
            "--port",
            "8080",
            "--path",
            "/index.html",
            "--health",
            "/",
            "-n",
            "50",
            "-c",
            "2",
            "--env",
            "GREETING=hi",
            "--podman-arg=--memory=64m",
            "--name-prefix",
            &p,
        ])
        .success()
        .stdout_contains("Complete requests:      50")
        .stdout_contains("Document Path:          /index.html")
        .stdout_contains("Requests per second:")
        .stdout_contains("Start-up time:")
        .stdout_contains("Peak memory:");
    assert!(out.stdout.contains("Successful (2xx):       50"), "{out:?}");
    assert!(containers(&p).is_empty(), "left: {:?}", containers(&p));
}

#[test]
fn unhealthy_service_fails_and_leaves_no_container() {
    tools();
    let _store = busybox_image_lock();
    let ctx = TestContext::new();
    let p = prefix("health");
    let layout = fixture_layout(Variant::Oci);
    let started = Instant::now();
    ctx.run([
        "run",
        layout.oci_ref().as_str(),
        "--port",
        "8080",
        "--health",
        "/missing",
        "--startup-timeout",
        "3s",
        "-n",
        "10",
        "--name-prefix",
        &p,
    ])
    .failure(1)
    .stderr_contains("did not answer")
    .stderr_contains("/missing")
    .stderr_contains("404 Not Found")
    .stderr_contains("container logs")
    .stderr_contains("hint: ");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(containers(&p).is_empty(), "left: {:?}", containers(&p));
}

#[test]
fn service_that_exits_fails_with_its_logs() {
    tools();
    let _store = busybox_image_lock();
    let ctx = TestContext::new();
    let p = prefix("exits");
    let layout = fixture_layout(Variant::Oci);
    let out = ctx
        .run([
            "run",
            layout.oci_ref().as_str(),
            "--port",
            "8080",
            r#"--podman-arg=--entrypoint=["sh","-c","echo starting up; echo this service crashed >&2; exit 3"]"#,
            "-n",
            "10",
            "--name-prefix",
            &p,
        ])
        .failure(1)
        .stderr_contains("exited with status 3")
        .stderr_contains("| starting up")
        .stderr_contains("| this service crashed")
        .stderr_contains("hint: ");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    assert!(containers(&p).is_empty(), "left: {:?}", containers(&p));
}

/// Starts a `-z 30s` run, waits until its container answers, then sends `signal`.
fn interrupt_during_load(test: &str, signal: libc::c_int, expected_code: i32) {
    tools();
    let _store = busybox_image_lock();
    let ctx = TestContext::new();
    let p = prefix(test);
    let layout = fixture_layout(Variant::Oci);
    let mut child: Child = ctx
        .cmd([
            "run",
            layout.oci_ref().as_str(),
            "--port",
            "8080",
            "-z",
            "30s",
            "-c",
            "2",
            "--name-prefix",
            &p,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ocibench");
    let pid = child.id();

    // The container is up and answering: the load starts right after.
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ocibench ended early: {:?}",
            child.wait_with_output()
        );
        assert!(Instant::now() < deadline, "no container answered in 60 s");
        if let Some(name) = containers(&p).first() {
            let out = std::process::Command::new("podman")
                .args(["port", name, "8080"])
                .output()
                .unwrap();
            let mapping = String::from_utf8_lossy(&out.stdout);
            let port = mapping
                .trim()
                .rsplit(':')
                .next()
                .and_then(|p| p.parse::<u16>().ok());
            if let Some(port) = port.filter(|p| status(*p) == Some(200)) {
                break port;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(1));
    assert!(child.try_wait().unwrap().is_none(), "still loading");

    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
    let sent = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("ocibench did not exit within 15 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = sent.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(exit.code(), Some(expected_code), "{exit}: {stderr}");
    assert!(stderr.contains("removing the container"), "{stderr}");
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
    assert!(containers(&p).is_empty(), "left: {:?}", containers(&p));
    assert!(images_of(pid).is_empty(), "left: {:?}", images_of(pid));
    let refused = status(port);
    assert_eq!(refused, None, "the published port still answers");
}

#[test]
fn sigint_during_load_exits_130_and_removes_the_container() {
    interrupt_during_load("sigint", libc::SIGINT, 130);
}

#[test]
fn sigterm_during_load_exits_143_and_removes_the_container() {
    interrupt_during_load("sigterm", libc::SIGTERM, 143);
}

/// Starts `run` on a container that never answers (its entrypoint only sleeps),
/// sends SIGINT once `ready` (given the prefix, the pid and the time since the
/// spawn) says the start-up reached the phase under test, and
/// checks: exit 130, and no container or image of this run is left.
fn interrupt_during_startup(test: &str, ready: &dyn Fn(&str, u32, Duration) -> bool) {
    tools();
    let _store = busybox_image_lock();
    let ctx = TestContext::new();
    let p = prefix(test);
    let layout = fixture_layout(Variant::Oci);
    let mut child: Child = ctx
        .cmd([
            "run",
            layout.oci_ref().as_str(),
            "--port",
            "8080",
            r#"--podman-arg=--entrypoint=["sh","-c","sleep 120"]"#,
            "--startup-timeout",
            "120s",
            "-n",
            "10",
            "--name-prefix",
            &p,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ocibench");
    let pid = child.id();
    let spawned = Instant::now();
    let deadline = spawned + Duration::from_secs(90);
    while !ready(&p, pid, spawned.elapsed()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ocibench ended early: {:?}",
            child.wait_with_output()
        );
        assert!(Instant::now() < deadline, "the phase was never reached");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) }, 0);
    let sent = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("ocibench did not exit within 90 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(exit.code(), Some(130), "{exit}: {stderr}");
    assert!(containers(&p).is_empty(), "left: {:?}", containers(&p));
    assert!(images_of(pid).is_empty(), "left: {:?}", images_of(pid));
}

#[test]
fn sigint_while_waiting_for_the_service_exits_130_and_leaves_nothing() {
    // The container exists: `run` is waiting for it to answer.
    interrupt_during_startup("sigint-wait", &|p, _, _| !containers(p).is_empty());
}

#[test]
fn sigint_once_the_image_is_loaded_exits_130_and_leaves_nothing() {
    // podman has the image: `run` is between the load and the start.
    interrupt_during_startup("sigint-load", &|_, pid, _| !images_of(pid).is_empty());
}

#[test]
fn sigint_before_podman_has_anything_exits_130() {
    // Early: probing podman (`podman info`), reading and exporting the image.
    interrupt_during_startup("sigint-early", &|_, _, since| {
        since > Duration::from_millis(150)
    });
}

#[test]
fn bad_flags_fail_before_podman_with_usage() {
    let ctx = TestContext::new();
    ctx.run(["run", "busybox", "--port", "8080", "--path", "index.html"])
        .failure(2)
        .stderr_contains("hint: ");
    ctx.run(["run", "busybox", "--port", "8080", "-n", "5", "-z", "1s"])
        .failure(2)
        .stderr_contains("hint: ");
    ctx.run(["run", "busybox", "--port", "99999"]).failure(2);
    // More connections than the hard fd limit allows: refused before podman.
    let hard = ocibench::runner::limits::hard_limits()
        .nofile
        .unwrap_or(1 << 20);
    let c = (hard + 1).to_string();
    ctx.run(["run", "busybox", "--port", "8080", "-z", "1s", "-c", &c])
        .failure(2)
        .stderr_contains("hint: lower -c");
}

#[test]
fn missing_podman_names_the_package() {
    let ctx = TestContext::new();
    let empty = ctx.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = support::Output::of(
        ctx.cmd(["run", "busybox", "--port", "8080"])
            .env("PATH", &empty),
    )
    .failure(1)
    .stderr_contains("podman is not installed")
    .stderr_contains("apt-get install podman");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
}
