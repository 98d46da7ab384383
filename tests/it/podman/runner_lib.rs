//! `PodmanRunner` as `compare` uses it (through `compare::trial`): load an image
//! once, start a fresh container per round, measure, and leave nothing behind. Real podman; the
//! busybox fixture (its `httpd` serves `INDEX_HTML` on 8080) exported to a
//! docker-archive by skopeo, not by ocibench.

use std::process::Command;
use std::time::Duration;

use crate::support::podman::{busybox_image_lock, unique_name};
use crate::support::tools::run_stdout;
use crate::support::{Variant, export_fixture, require};
use ocibench::compare::trial::{NoObserver, TrialError, TrialSpec, run_trial};
use ocibench::loadgen::LoadConfig;
use ocibench::runner::{PodmanRunner, RunnerError, RunnerOptions, StartOptions, limits};

fn runner() -> PodmanRunner {
    require("podman", "podman");
    require("runc", "runc");
    PodmanRunner::new(RunnerOptions::default()).expect("podman is usable")
}

/// The fixture as a docker-archive named `localhost/NAME:1`; returns (dir, archive, name).
fn archive(what: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("localhost/{}:1", unique_name(what));
    let path = dir.path().join("image.tar");
    export_fixture(
        Variant::Oci,
        &format!("docker-archive:{}:{name}", path.display()),
    );
    (dir, path, name)
}

fn image_exists(name: &str) -> bool {
    Command::new("podman")
        .args(["image", "exists", name])
        .status()
        .unwrap()
        .success()
}

fn container_exists(name: &str) -> bool {
    Command::new("podman")
        .args(["container", "exists", name])
        .status()
        .unwrap()
        .success()
}

fn podman_stdout(args: &[&str]) -> String {
    run_stdout(Command::new("podman").args(args))
        .trim()
        .to_string()
}

#[test]
fn one_load_many_rounds_each_in_a_fresh_container() {
    let _store = busybox_image_lock();
    let runner = runner();
    let (_dir, path, name) = archive("rounds");
    let image = runner.load(&path).unwrap();
    assert_eq!(image.name, name);
    assert!(!image.existed);
    assert_eq!(image.id.len(), 64, "{image:?}");

    let spec = TrialSpec {
        name_prefix: Some(unique_name("rounds")),
        startup_timeout: Duration::from_secs(60),
        ..TrialSpec::new(8080)
    };
    let load = |url: &str| {
        LoadConfig::builder(url)
            .requests(100)
            .concurrency(2)
            .build()
    };
    let mut names = Vec::new();
    for _ in 0..2 {
        let o = run_trial(&runner, &image, &spec, &load, &NoObserver).unwrap();
        assert_eq!((o.bench.completed, o.bench.successful), (100, 100));
        assert!(o.startup > Duration::ZERO);
        assert!(o.peak_memory_bytes.unwrap() > 0, "{o:?}");
        assert!(o.container.starts_with("ocibench-"), "{}", o.container);
        assert!(!container_exists(&o.container), "{} left", o.container);
        names.push(o.container);
    }
    assert_ne!(names[0], names[1]);

    drop(image);
    assert!(!image_exists(&name), "{name} left after drop");
}

#[test]
fn an_image_that_existed_before_is_kept() {
    let _store = busybox_image_lock();
    let runner = runner();
    let (_dir, path, name) = archive("kept");
    let first = runner.load(&path).unwrap();
    let second = runner.load(&path).unwrap();
    assert!(!first.existed && second.existed);
    drop(second);
    assert!(image_exists(&name));
    drop(first);
    assert!(!image_exists(&name));
}

#[test]
fn containers_get_ulimits_within_the_hard_limits_unless_given() {
    let _store = busybox_image_lock();
    let runner = runner();
    let (_dir, path, _name) = archive("ulimit");
    let image = runner.load(&path).unwrap();

    let c = runner
        .start(&image, 8080, &StartOptions::default())
        .unwrap();
    assert!(c.name().starts_with("ocibench-"));
    let labels = podman_stdout(&["inspect", "--format", "{{.Config.Labels}}", c.name()]);
    assert!(labels.contains("ocibench:1"), "{labels}");
    let hard = limits::hard_limits();
    let expected = hard
        .nofile
        .map_or(limits::NOFILE_CAP, |h| h.min(limits::NOFILE_CAP));
    let nofile = podman_stdout(&["exec", c.name(), "sh", "-c", "ulimit -n"]);
    assert_eq!(nofile, expected.to_string());
    let name = c.name().to_string();
    drop(c);
    assert!(!container_exists(&name));

    let opts = StartOptions {
        extra_args: vec!["--ulimit=nofile=512:512".into()],
        env: vec!["GREETING=hello there".into()],
        name_prefix: Some("ulimit".into()),
        cpuset_cpus: None,
        port_env: None,
    };
    let c = runner.start(&image, 8080, &opts).unwrap();
    assert!(c.name().starts_with("ocibench-ulimit-"), "{}", c.name());
    assert_eq!(
        podman_stdout(&["exec", c.name(), "sh", "-c", "ulimit -n"]),
        "512"
    );
    assert_eq!(
        podman_stdout(&["exec", c.name(), "sh", "-c", "echo $GREETING"]),
        "hello there"
    );
    let ready = c.wait_ready("/", Duration::from_secs(30)).unwrap();
    assert!(ready > Duration::ZERO);
    let sampler = c.sample_memory_every(Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(350));
    let usage = sampler.stop();
    assert!(usage.samples >= 2, "{usage:?}");
    assert!(usage.peak_memory_bytes.unwrap() > 0, "{usage:?}");
    assert!(usage.cpu_percent_mean.is_some(), "{usage:?}");
    c.remove().unwrap();
}

#[test]
fn a_wrong_port_is_not_ready_with_the_logs() {
    let _store = busybox_image_lock();
    let runner = runner();
    let (_dir, path, _name) = archive("port");
    let image = runner.load(&path).unwrap();
    let spec = TrialSpec {
        // Nothing listens on 9999 inside the container.
        startup_timeout: Duration::from_secs(2),
        name_prefix: Some(unique_name("port")),
        ..TrialSpec::new(9999)
    };
    let load = |url: &str| LoadConfig::builder(url).requests(1).build();
    let err = run_trial(&runner, &image, &spec, &load, &NoObserver).unwrap_err();
    match &err {
        TrialError::Runner(RunnerError::NotReady(f)) => {
            assert!(f.url.ends_with('/'), "{err}");
            assert_eq!(f.state, "is running", "{err}");
            assert!(!container_exists(&f.name), "{} left", f.name);
        }
        other => panic!("expected NotReady, got {other}"),
    }
    // Its hint (naming --port): app::explain::tests::not_ready_hint_names_port.
}

/// A `podman` wrapper for a host where crun is podman's runtime and fails as on
/// Debian 12 CI machines: `podman info` reports crun on cgroup `CGROUP`, and a
/// `podman run` without `--runtime runc` fails with crun's hybrid-cgroups error;
/// everything else goes to the real podman.
fn crun_host(dir: &std::path::Path, cgroup: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = require("podman", "podman");
    let script = format!(
        r#"#!/bin/sh
if [ "$1 $2 $3" = "info --format json" ]; then
  echo '{{"host": {{"cgroupVersion": "{cgroup}", "ociRuntime": {{"name": "crun"}}}}}}'
  exit 0
fi
if [ "$1" = "run" ]; then
  echo 'Error: OCI runtime error: crun: cgroups in hybrid mode not supported, drop all controllers from cgroupv2' >&2
  exit 126
fi
exec {real} "$@"
"#,
        real = real.display()
    );
    let path = dir.join("podman");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn crun_on_cgroup_v1_is_replaced_by_runc_up_front() {
    let _store = busybox_image_lock();
    require("runc", "runc");
    let dir = tempfile::tempdir().unwrap();
    let runner = PodmanRunner::new(RunnerOptions {
        podman: Some(crun_host(dir.path(), "v1")),
        runtime: None,
        network: Default::default(),
    })
    .unwrap();
    assert_eq!(runner.runtime().as_deref(), Some("runc"));
    let (_d, path, _name) = archive("crun-v1");
    let image = runner.load(&path).unwrap();
    let c = runner
        .start(&image, 8080, &StartOptions::default())
        .unwrap();
    c.wait_ready("/", Duration::from_secs(30)).unwrap();
}

#[test]
fn crun_failing_at_run_time_switches_to_runc() {
    let _store = busybox_image_lock();
    require("runc", "runc");
    let dir = tempfile::tempdir().unwrap();
    let runner = PodmanRunner::new(RunnerOptions {
        podman: Some(crun_host(dir.path(), "v2")),
        runtime: None,
        network: Default::default(),
    })
    .unwrap();
    assert_eq!(runner.runtime(), None, "crun on v2 is podman's business");
    let (_d, path, _name) = archive("crun-v2");
    let image = runner.load(&path).unwrap();
    let c = runner
        .start(&image, 8080, &StartOptions::default())
        .unwrap();
    assert_eq!(runner.runtime().as_deref(), Some("runc"));
    c.wait_ready("/", Duration::from_secs(30)).unwrap();
}

#[test]
fn an_explicit_runtime_is_honoured_or_reported_missing() {
    let err = PodmanRunner::new(RunnerOptions {
        podman: None,
        runtime: Some("no-such-runtime".into()),
        network: Default::default(),
    })
    .unwrap_err();
    assert!(
        matches!(&err, RunnerError::RuntimeMissing { runtime } if runtime == "no-such-runtime"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let runner = PodmanRunner::new(RunnerOptions {
        podman: Some(crun_host(dir.path(), "v1")),
        runtime: Some("runc".into()),
        network: Default::default(),
    })
    .unwrap();
    assert_eq!(runner.runtime().as_deref(), Some("runc"));
}

/// `[app]`/`[[candidate]]` `cpus` and `memory` reach the container as podman's
/// own limits (what `compare` passes through `Resources::podman_args`).
#[test]
fn a_candidates_cpus_and_memory_become_the_containers_limits() {
    let _store = busybox_image_lock();
    let runner = runner();
    let (_dir, path, _name) = archive("limits");
    let image = runner.load(&path).unwrap();
    let resources = ocibench::compare::config::Resources {
        cpus: Some(0.5),
        memory: Some("256m".into()),
    };
    let opts = StartOptions {
        extra_args: resources.podman_args(),
        name_prefix: Some("limits".into()),
        ..StartOptions::default()
    };
    let c = runner.start(&image, 8080, &opts).unwrap();
    let limits = podman_stdout(&[
        "inspect",
        "--format",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
        c.name(),
    ]);
    assert_eq!(limits, "500000000 268435456");
}
