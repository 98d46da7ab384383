//! Isolation as `compare` applies it, with real podman and runc: the container on
//! its own CPUs (`--cpuset-cpus`, read back from its cgroup while it runs), the
//! load generator pinned to the others, and the service's CPU time read from
//! the container's cgroup (not `podman stats`). The busybox fixture's `httpd`
//! is the service.

use std::process::Command;

use crate::support::podman::{busybox_image_lock, unique_name};
use crate::support::tools::run_stdout;
use crate::support::{Variant, export_fixture, require};
use ocibench::compare::lab::plan_isolation;
use ocibench::compare::trial::{NoObserver, TrialSpec, run_trial};
use ocibench::loadgen::{LoadConfig, current_thread_cpus};
use ocibench::runner::{PodmanRunner, RunnerOptions};

#[test]
fn the_container_runs_on_its_own_cpus_and_its_cpu_time_is_measured() {
    require("podman", "podman");
    require("runc", "runc");
    let _store = busybox_image_lock();
    let runner = PodmanRunner::new(RunnerOptions::default()).expect("podman is usable");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("localhost/{}:1", unique_name("isolate"));
    let archive = dir.path().join("image.tar");
    export_fixture(
        Variant::Oci,
        &format!("docker-archive:{}:{name}", archive.display()),
    );
    let image = runner.load(&archive).unwrap();

    let plan = plan_isolation(&current_thread_cpus().unwrap(), true);
    let spec = TrialSpec {
        name_prefix: Some(unique_name("isolate")),
        service_cpus: plan.applied.then(|| plan.service_cpus.clone()),
        ..TrialSpec::new(8080)
    };
    let generator = plan.generator_cpus.clone();
    let applied = plan.applied;
    let load = move |url: &str| {
        let b = LoadConfig::builder(url).requests(2000).concurrency(4);
        let b = if applied {
            b.cpus(generator.clone())
        } else {
            b
        };
        b.build()
    };
    let o = run_trial(&runner, &image, &spec, &load, &NoObserver).unwrap();
    assert_eq!(o.bench.successful, 2000, "{o:?}");

    // The cgroup was found and read: the service's CPU is reported, not null.
    let secs = o
        .service_cpu_seconds
        .expect("service CPU read from the cgroup");
    assert!(secs > 0.0, "{o:?}");
    assert!(o.service_cpu_percent().unwrap() > 0.0);
    assert!(o.generator_cpu_seconds.unwrap() > 0.0);
    if applied {
        // The cpuset the container really had, read back from its cgroup.
        assert_eq!(
            o.service_cpus.as_deref(),
            Some(&plan.service_cpus[..]),
            "{o:?}"
        );
        assert_eq!(o.load_threads, plan.generator_cpus.len());
    }
}

#[test]
fn podman_inspect_shows_the_cpuset_given() {
    require("podman", "podman");
    require("runc", "runc");
    let cpus = current_thread_cpus().unwrap();
    let last = *cpus.last().unwrap();
    let _store = busybox_image_lock();
    let runner = PodmanRunner::new(RunnerOptions::default()).expect("podman is usable");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("localhost/{}:1", unique_name("cpuset"));
    let archive = dir.path().join("image.tar");
    export_fixture(
        Variant::Oci,
        &format!("docker-archive:{}:{name}", archive.display()),
    );
    let image = runner.load(&archive).unwrap();
    let opts = ocibench::runner::StartOptions {
        name_prefix: Some(unique_name("cpuset")),
        cpuset_cpus: Some(vec![last]),
        ..Default::default()
    };
    let c = runner.start(&image, 8080, &opts).unwrap();
    let inspected = run_stdout(Command::new("podman").args([
        "inspect",
        "--format",
        "{{.HostConfig.CpusetCpus}}",
        c.name(),
    ]));
    assert_eq!(inspected.trim(), last.to_string());
    assert_eq!(c.cgroup().unwrap().cpus(), Some(vec![last]));
    // Inside the container, the kernel lets its processes run on that CPU only.
    let inside = run_stdout(Command::new("podman").args([
        "exec",
        c.name(),
        "sh",
        "-c",
        "grep Cpus_allowed_list /proc/self/status",
    ]));
    assert!(inside.trim().ends_with(&format!("\t{last}")), "{inside}");
}
