//! Running images with podman: load or pull, start, wait until healthy, sample memory
//! and CPU, and always remove what was created. It knows nothing of the load
//! generator: a trial (`compare::trial`) puts the two together.
//!
//! `PodmanRunner` wraps the `podman` command (daemonless, no API socket). It
//! works where podman's defaults fail (see ENVIRONMENT.md): it picks runc when
//! crun cannot run containers, and passes ulimits within this process's hard
//! limits. Every container is named `ocibench-...` and labelled `ocibench=1`
//! (`podman ps -a --filter label=ocibench=1` shows them), removed on drop, on
//! errors, on panics (drop runs on unwind) and on SIGINT/SIGTERM (`cleanup`).
//! Rootless podman is detected from `podman info`: containers then get host
//! networking with a free port in `$PORT` (`network`), CPU time is read from
//! their processes where they have no cgroup of their own (`proctree`), and
//! limits that cannot be applied are refused (`PodmanRunner::refuse_limits`).
//! This module never prints.
//!
//! ```no_run
//! use ocibench::runner::{PodmanRunner, RunnerOptions, StartOptions};
//! # use std::time::Duration;
//! # fn main() -> Result<(), ocibench::runner::RunnerError> {
//! let runner = PodmanRunner::new(RunnerOptions::default())?;
//! let image = runner.load("app.tar".as_ref())?; // a docker-archive; removed on drop
//! let container = runner.start(&image, 8080, &StartOptions::default())?;
//! let startup = container.wait_ready("/health", Duration::from_secs(60))?;
//! let sampler = container.sample_memory();
//! // ... load http://127.0.0.1:PORT/ (container.url("/")) ...
//! let usage = sampler.stop();
//! container.remove()?; // also done on drop
//! println!("up in {startup:?}, peak memory {:?} bytes", usage.peak_memory_bytes);
//! # Ok(()) }
//! ```

pub mod cgroup;
pub mod cleanup;
pub mod container;
pub mod error;
pub mod image;
pub mod limits;
pub mod network;
pub mod podman;
pub mod probe;
pub mod proctree;
pub mod pull;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

pub use cgroup::ContainerCgroup;
pub use container::{ContainerState, RunningContainer};
pub use error::{ContainerFailure, ContainerLogs, RunnerError};
pub use image::LoadedImage;
pub use network::{NetworkChoice, NetworkPath};
pub use podman::HostInfo;
pub use pull::Pulled;
pub use stats::{ResourceUsage, StatsSampler};

use cleanup::Resource;
use podman::{HYBRID_CGROUPS, detached, output, raw_output};

/// Host ports tried when another process takes the free port first.
const PORT_ATTEMPTS: u32 = 5;

/// How to find podman and which OCI runtime to use.
#[derive(Debug, Clone, Default)]
pub struct RunnerOptions {
    /// The podman executable [default: `podman` on PATH].
    pub podman: Option<PathBuf>,
    /// The OCI runtime (`runc`, `crun`, a path) [default: probed, see `podman`].
    pub runtime: Option<String>,
    /// How the load reaches the service (see `network`).
    pub network: NetworkChoice,
}

/// How to start one container.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// `K=V` (or `K`, taken from ocibench's environment), as `podman run -e`.
    pub env: Vec<String>,
    /// More `podman run` arguments, placed before the image (`--memory=512m`,
    /// `--entrypoint=...`, `--ulimit=...` replaces ocibench's choice).
    pub extra_args: Vec<String>,
    /// Inserted in the name: `ocibench-PREFIX-IMAGEID-RANDOM`.
    pub name_prefix: Option<String>,
    /// The CPUs the container may use (`--cpuset-cpus`); `None`: all.
    pub cpuset_cpus: Option<Vec<usize>>,
    /// Under host networking, the variable that tells the service its port
    /// (`PORT`): set to a free host port. `None`: the service keeps its own
    /// port, which must then be free on the host.
    pub port_env: Option<String>,
}

/// `podman run` flags that need a cgroup of the container's own.
const LIMIT_FLAGS: &[&str] = &[
    "--memory",
    "-m",
    "--memory-swap",
    "--memory-reservation",
    "--cpus",
    "--cpu-shares",
    "-c",
    "--cpu-quota",
    "--cpu-period",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--pids-limit",
    "--blkio-weight",
];

/// The first of `args` that asks for a resource limit (`--memory=512m`, `--cpus`).
pub fn limit_flag(args: &[String]) -> Option<String> {
    args.iter()
        .find(|a| {
            let flag = a.split('=').next().unwrap_or(a);
            LIMIT_FLAGS.contains(&flag)
        })
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
}

/// podman, found and probed; see the module header.
#[derive(Debug)]
pub struct PodmanRunner {
    podman: PathBuf,
    /// `--runtime` for `podman run`; may switch to runc once if crun fails.
    runtime: Mutex<Option<String>>,
    explicit_runtime: bool,
    hard_limits: limits::HardLimits,
    info: HostInfo,
    network: NetworkPath,
}

impl PodmanRunner {
    /// Finds podman and chooses the runtime (one `podman info`, cached per process).
    pub fn new(opts: RunnerOptions) -> Result<PodmanRunner, RunnerError> {
        let podman = match opts.podman {
            Some(p) if p.is_file() => p,
            Some(_) => return Err(RunnerError::PodmanMissing),
            None => podman::find_executable("podman", &[]).ok_or(RunnerError::PodmanMissing)?,
        };
        let explicit = opts.runtime.filter(|r| !r.is_empty());
        if let Some(r) = &explicit
            && !podman::runtime_installed(r)
        {
            return Err(RunnerError::RuntimeMissing { runtime: r.clone() });
        }
        let info = podman::host_info(&podman)?;
        let runtime = match &explicit {
            Some(r) => Some(r.clone()),
            None => podman::choose_runtime(None, &info, podman::runtime_installed("runc")),
        };
        Ok(PodmanRunner {
            podman,
            runtime: Mutex::new(runtime),
            explicit_runtime: explicit.is_some(),
            hard_limits: limits::hard_limits(),
            network: NetworkPath::choose(opts.network, &info),
            info,
        })
    }

    /// What `podman info` said (rootless, cgroups, storage driver).
    pub fn host(&self) -> &HostInfo {
        &self.info
    }

    /// How containers are reached (host network or a published port).
    pub fn network(&self) -> &NetworkPath {
        &self.network
    }

    /// `LimitsUnavailable` when `podman_args` ask for a resource limit
    /// (`--memory`, `--cpus`, ...) that this podman cannot apply (no cgroup per
    /// container): a limit silently ignored would make the figures lie.
    pub fn refuse_limits(&self, podman_args: &[String]) -> Result<(), RunnerError> {
        match (self.info.cgroup_limitation(), limit_flag(podman_args)) {
            (Some(cause), Some(flag)) => Err(RunnerError::LimitsUnavailable { flag, cause }),
            _ => Ok(()),
        }
    }

    /// Figures this podman cannot measure, each with why, for a report's notes
    /// (said once per report, never as 0). Empty as root.
    pub fn unmeasured(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(cause) = self.info.cgroup_limitation() {
            notes.push(format!(
                "Peak memory is not measured (null): {cause}, so `podman stats` cannot \
                 read the container; CPU is the container's processes' CPU time from /proc."
            ));
        }
        if self.info.graph_driver == "vfs" {
            notes.push(
                "podman's storage driver is vfs: each image load copies whole layers \
                 (loads are slower, images take more space on disk than Size says); \
                 install fuse-overlayfs for overlay storage."
                    .into(),
            );
        }
        notes
    }

    /// The `--runtime` given to `podman run` (`None`: podman's default).
    pub fn runtime(&self) -> Option<String> {
        self.runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn podman_path(&self) -> &Path {
        &self.podman
    }

    /// `podman load -i ARCHIVE` (a docker-archive or oci-archive). The image is
    /// removed when the returned value drops, unless its name existed before.
    pub fn load(&self, archive: &Path) -> Result<LoadedImage, RunnerError> {
        image::load(&self.podman, archive)
    }

    /// `podman pull` of `reference` (`tls_verify` false allows plain HTTP), removed
    /// on drop as a load is (unless the image was already in podman's storage: then
    /// `image.existed` is true and it is kept, with the name this pull gave it).
    /// Also says how many layers podman copied and how many it already had.
    pub fn pull(&self, reference: &str, tls_verify: bool) -> Result<Pulled, RunnerError> {
        pull::pull(&self.podman, reference, tls_verify)
    }

    /// An image already in podman's store, by name or ID; never removed.
    pub fn existing(&self, reference: &str) -> Result<LoadedImage, RunnerError> {
        let out = output(
            detached(&self.podman).args(["image", "inspect", "--format", "{{.Id}}", reference]),
            "podman image inspect",
        )?;
        Ok(image::existing(
            &self.podman,
            reference,
            String::from_utf8_lossy(&out.stdout).trim(),
        ))
    }

    /// `podman run -d` of `image`, publishing `container_port` on a free port of
    /// 127.0.0.1, with ulimits and runtime chosen for this machine.
    pub fn start(
        &self,
        image: &LoadedImage,
        container_port: u16,
        opts: &StartOptions,
    ) -> Result<RunningContainer, RunnerError> {
        if opts.cpuset_cpus.as_ref().is_some_and(|c| !c.is_empty()) {
            self.refuse_limits(&["--cpuset-cpus".to_string()])?;
        }
        self.refuse_limits(&opts.extra_args)?;
        let host_network = self.network == NetworkPath::Host;
        let port_env = opts.port_env.as_deref().filter(|e| !e.is_empty());
        let mut attempts = 0;
        let mut switched = false;
        while attempts < PORT_ATTEMPTS {
            attempts += 1;
            let host_port = match (host_network, port_env) {
                (true, None) => container_port,
                _ => free_port()?,
            };
            let name = container_name(opts.name_prefix.as_deref(), image.short_id());
            let creating = cleanup::creating()?;
            let registration = creating.record(Resource::Container {
                podman: self.podman.clone(),
                name: name.clone(),
            });
            let runtime = self.runtime();
            let mut cmd = detached(&self.podman);
            if let Some(r) = &runtime {
                cmd.args(["--runtime", r]);
            }
            cmd.args(["run", "-d", "--pull", "never", "--name", &name])
                .args(["--label", "ocibench=1"]);
            if host_network {
                cmd.args(["--network", "host"]);
                if let Some(var) = port_env {
                    cmd.arg("-e").arg(format!("{var}={host_port}"));
                }
            } else {
                cmd.arg("-p")
                    .arg(format!("127.0.0.1:{host_port}:{container_port}"));
            }
            cmd.args(limits::ulimit_args(self.hard_limits, &opts.extra_args));
            if let Some(cpus) = opts.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
                cmd.arg("--cpuset-cpus").arg(cgroup::format_cpu_list(cpus));
            }
            for e in &opts.env {
                cmd.arg("-e").arg(e);
            }
            cmd.args(&opts.extra_args).arg(&image.name);
            let started_at = Instant::now();
            let out = raw_output(&mut cmd, "podman run")?;
            drop(creating);
            if out.status.success() {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let id = stdout.lines().last().unwrap_or("").trim().to_string();
                return Ok(RunningContainer {
                    id: if id.is_empty() { name.clone() } else { id },
                    name,
                    host_port,
                    container_port: if host_network {
                        host_port
                    } else {
                        container_port
                    },
                    own_cgroup: self.info.own_cgroups(),
                    network: self.network.describe(Some(host_port)),
                    started_at,
                    podman: self.podman.clone(),
                    registration: Some(registration),
                });
            }
            // A failed `podman run` may leave a created container behind.
            let _ = detached(&self.podman)
                .args(["rm", "-f", "-t", "0", "--ignore", &name])
                .output();
            drop(registration);
            let stderr = podman::trim_stderr(&out.stderr);
            if stderr.contains("address already in use") {
                continue;
            }
            if stderr.contains(HYBRID_CGROUPS) {
                let can_switch = !self.explicit_runtime
                    && !switched
                    && runtime.as_deref() != Some("runc")
                    && podman::runtime_installed("runc");
                if can_switch {
                    *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = Some("runc".into());
                    switched = true;
                    attempts -= 1;
                    continue;
                }
                return Err(RunnerError::CgroupsHybrid { stderr });
            }
            if stderr.contains("/dev/net/tun") {
                return Err(RunnerError::NoTun { stderr });
            }
            if stderr.contains("setrlimit") && stderr.contains("not permitted") {
                return Err(RunnerError::Ulimit { stderr });
            }
            return Err(podman::failed("podman run", &out));
        }
        Err(RunnerError::PortsBusy { attempts })
    }
}

/// A port on 127.0.0.1 free right now (bound to 0, then released).
fn free_port() -> Result<u16, RunnerError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(RunnerError::NoFreePort)
}

/// `ocibench-[PREFIX-]SHORTID-RANDOM`; the prefix keeps only name-safe characters.
pub fn container_name(prefix: Option<&str>, short_id: &str) -> String {
    let mut name = String::from("ocibench-");
    if let Some(p) = prefix {
        let clean: String = p
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let clean = clean.trim_matches('-');
        let clean = clean.strip_prefix("ocibench-").unwrap_or(clean);
        if !clean.is_empty() {
            name.push_str(clean);
            name.push('-');
        }
    }
    if !short_id.is_empty() {
        name.push_str(short_id);
        name.push('-');
    }
    name.push_str(&random_suffix());
    name
}

/// 8 hex digits, different for every call (process-random hasher keys, pid,
/// counter and clock).
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names() {
        let n = container_name(None, "95601b9651bd");
        assert!(n.starts_with("ocibench-95601b9651bd-"), "{n}");
        assert_eq!(n.len(), "ocibench-95601b9651bd-".len() + 8);
        let n = container_name(Some("ci run/7"), "abc");
        assert!(n.starts_with("ocibench-ci-run-7-abc-"), "{n}");
        let n = container_name(Some("ocibench-x"), "abc");
        assert!(n.starts_with("ocibench-x-abc-"), "{n}");
        assert_ne!(container_name(None, "a"), container_name(None, "a"));
    }

    #[test]
    fn limit_flags_are_found() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            limit_flag(&args(&["--entrypoint=/x", "--memory=512m"])).as_deref(),
            Some("--memory")
        );
        assert_eq!(
            limit_flag(&args(&["--cpus", "1"])).as_deref(),
            Some("--cpus")
        );
        assert_eq!(
            limit_flag(&args(&["--ulimit=nofile=10:10", "-e", "A"])),
            None
        );
    }
}
