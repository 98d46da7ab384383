//! A container ocibench started: readiness, logs, stats, and removal on drop.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::RunnerError;
use super::cleanup::Registration;
use super::error::{ContainerFailure, ContainerLogs};
use super::podman::{detached, output, raw_output};
use super::probe::{ProbeResult, probe};
use super::stats::{DEFAULT_INTERVAL, StatsSampler};

/// Log lines kept for error messages.
pub const LOG_TAIL: usize = 20;

/// A running (or exited) container, removed with `podman rm -f` when dropped.
#[derive(Debug)]
pub struct RunningContainer {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) host_port: u16,
    pub(crate) container_port: u16,
    /// Whether podman gave the container a cgroup of its own (see `HostInfo::own_cgroups`).
    pub(crate) own_cgroup: bool,
    /// How the load reaches it (`NetworkPath::describe`).
    pub(crate) network: String,
    /// When `podman run` was called: start-up time counts from here.
    pub(crate) started_at: Instant,
    pub(crate) podman: PathBuf,
    pub(crate) registration: Option<Registration>,
}

/// `podman inspect`'s view of a container's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// `running`, `exited`, `created`, `stopped`, ...
    pub status: String,
    pub exit_code: Option<i32>,
}

impl ContainerState {
    fn parse(s: &str) -> ContainerState {
        let mut it = s.split_whitespace();
        ContainerState {
            status: it.next().unwrap_or("unknown").to_string(),
            exit_code: it.next().and_then(|c| c.parse().ok()),
        }
    }

    /// Whether the service may still come up.
    pub fn is_alive(&self) -> bool {
        matches!(
            self.status.as_str(),
            "running" | "created" | "configured" | "initialized"
        )
    }

    fn describe(&self) -> String {
        match (self.status.as_str(), self.exit_code) {
            ("exited" | "stopped", Some(c)) => format!("exited with status {c}"),
            (s, _) => format!("is {s}"),
        }
    }
}

impl RunningContainer {
    /// `ocibench-...`: what `podman ps` shows.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// podman's full container ID.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The port on 127.0.0.1 published to the container's port.
    pub fn host_port(&self) -> u16 {
        self.host_port
    }
    pub fn container_port(&self) -> u16 {
        self.container_port
    }
    /// `published port (root, netavark)`, `host network, port 41234`.
    pub fn network(&self) -> &str {
        &self.network
    }
    /// `http://127.0.0.1:HOSTPORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.host_port, path)
    }

    /// What a failed wait reports: the container's state, the last probe, its logs.
    fn failure(
        &self,
        state: &ContainerState,
        path: &str,
        timeout: Duration,
        last: &ProbeResult,
    ) -> Box<ContainerFailure> {
        Box::new(ContainerFailure {
            name: self.name.clone(),
            state: state.describe(),
            exit_code: state.exit_code,
            url: self.url(path),
            timeout,
            last_probe: last.describe(),
            logs: self.logs(LOG_TAIL),
        })
    }

    /// Polls `GET path` until it answers 2xx; returns the time from the `podman
    /// run` call to that answer. Fails, with the container's last log lines, if
    /// the container stops or `timeout` (counted from `podman run`) passes.
    pub fn wait_ready(&self, path: &str, timeout: Duration) -> Result<Duration, RunnerError> {
        let deadline = self.started_at + timeout;
        let mut last_state_check = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last: ProbeResult = probe(
                self.host_port,
                path,
                left.clamp(Duration::from_millis(50), Duration::from_secs(2)),
            );
            if last.is_success() {
                return Ok(self.started_at.elapsed());
            }
            attempt += 1;
            // inspect costs podman ~40 ms of CPU: a few times per second is enough.
            if last_state_check.elapsed() >= Duration::from_millis(300) || attempt == 1 {
                last_state_check = Instant::now();
                let state = self.state()?;
                if !state.is_alive() {
                    return Err(RunnerError::Exited(
                        self.failure(&state, path, timeout, &last),
                    ));
                }
            }
            if Instant::now() >= deadline {
                let state = self.state()?;
                return Err(RunnerError::NotReady(
                    self.failure(&state, path, timeout, &last),
                ));
            }
            // Fine-grained at first (start-up time is measured), coarser later.
            let pause = if self.started_at.elapsed() < Duration::from_secs(2) {
                Duration::from_millis(10)
            } else {
                Duration::from_millis(100)
            };
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// `podman inspect` of the container's state.
    pub fn state(&self) -> Result<ContainerState, RunnerError> {
        let out = output(
            detached(&self.podman).args([
                "inspect",
                "--type",
                "container",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                &self.id,
            ]),
            "podman inspect",
        )?;
        Ok(ContainerState::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// The container's cgroup (CPU time, CPU set), found through the PID of its
    /// first process; its files are `None` where this host has none.
    pub fn cgroup(&self) -> Result<super::ContainerCgroup, RunnerError> {
        let out = output(
            detached(&self.podman).args([
                "inspect",
                "--type",
                "container",
                "--format",
                "{{.State.Pid}}",
                &self.id,
            ]),
            "podman inspect",
        )?;
        let pid = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>();
        Ok(match pid {
            Ok(pid) if pid > 0 && !self.own_cgroup => super::ContainerCgroup::process_tree(pid),
            Ok(pid) if pid > 0 => super::ContainerCgroup::of_pid(pid),
            _ => super::ContainerCgroup::default(),
        })
    }

    /// The last `n` lines the container wrote (stdout and stderr); empty if
    /// podman cannot say.
    pub fn logs(&self, n: usize) -> ContainerLogs {
        // One file for both streams keeps podman's interleaving.
        let run = || -> Option<Vec<u8>> {
            use std::io::{Read, Seek};
            let mut f = tempfile::tempfile().ok()?;
            let err = f.try_clone().ok()?;
            let out = f.try_clone().ok()?;
            detached(&self.podman)
                .args(["logs", "--tail", &n.to_string(), &self.id])
                .stdout(out)
                .stderr(err)
                .status()
                .ok()?;
            f.rewind().ok()?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).ok()?;
            Some(buf)
        };
        let text = run().unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let start = lines.len().saturating_sub(n);
        ContainerLogs {
            lines: lines[start..].to_vec(),
        }
    }

    /// Starts sampling memory (and CPU) in the background; `stop()` returns
    /// the peak memory in `ResourceUsage::peak_memory_bytes` (see `stats`).
    pub fn sample_memory(&self) -> StatsSampler {
        self.sample_memory_every(DEFAULT_INTERVAL)
    }

    pub fn sample_memory_every(&self, interval: Duration) -> StatsSampler {
        // Without a cgroup of its own, `podman stats` fails on every sample.
        if !self.own_cgroup {
            return StatsSampler::idle();
        }
        StatsSampler::start(self.podman.clone(), self.id.clone(), interval)
    }

    /// Removes the container now (also done on drop), reporting failure.
    pub fn remove(mut self) -> Result<(), RunnerError> {
        let r = remove(&self.podman, &self.id);
        drop(self.registration.take());
        self.id.clear();
        r
    }
}

fn remove(podman: &std::path::Path, id: &str) -> Result<(), RunnerError> {
    let out = raw_output(
        detached(podman).args(["rm", "-f", "-t", "0", "--ignore", id]),
        "podman rm",
    )?;
    if out.status.success() {
        Ok(())
    } else {
        Err(super::podman::failed("podman rm", &out))
    }
}

impl Drop for RunningContainer {
    fn drop(&mut self) {
        if !self.id.is_empty() {
            let _ = remove(&self.podman, &self.id);
        }
        drop(self.registration.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let s = ContainerState::parse("running 0\n");
        assert!(s.is_alive());
        let s = ContainerState::parse("exited 3");
        assert!(!s.is_alive());
        assert_eq!(s.describe(), "exited with status 3");
        assert_eq!(s.exit_code, Some(3));
        assert_eq!(ContainerState::parse("").status, "unknown");
    }
}
