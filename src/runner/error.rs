//! Why running an image failed, with what a user can do about it.
//!
//! Podman's own message is kept (trimmed) in every variant that comes from a
//! podman command, and a container that died or never became healthy carries its
//! last log lines: that is where the reason usually is.

use std::fmt;
use std::time::Duration;

/// The last lines a container wrote (stdout and stderr, interleaved as podman kept them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLogs {
    pub lines: Vec<String>,
}

impl fmt::Display for ContainerLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lines.is_empty() {
            return f.write_str("container logs: (empty)");
        }
        writeln!(
            f,
            "last {} lines of the container's logs:",
            self.lines.len()
        )?;
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  | {l}")?;
        }
        Ok(())
    }
}

/// A container that died or never answered 2xx, and what it said.
#[derive(Debug, Clone)]
pub struct ContainerFailure {
    pub name: String,
    /// `exited with status 3`, `is running`, ...
    pub state: String,
    pub exit_code: Option<i32>,
    /// The health URL probed.
    pub url: String,
    /// The start-up timeout.
    pub timeout: Duration,
    /// What the last probe saw (`connection refused`, `answered "HTTP/1.0 404 Not Found"`).
    pub last_probe: String,
    pub logs: ContainerLogs,
}

/// Everything that can go wrong between `podman load` and `podman rm`.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("podman is not installed (not found on PATH)")]
    PodmanMissing,
    #[error("the OCI runtime `{runtime}` is not installed")]
    RuntimeMissing { runtime: String },
    #[error("cannot start `{what}`")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{what}` failed ({status}): {stderr}")]
    Podman {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("podman's OCI runtime crun cannot run containers here: {stderr}")]
    CgroupsHybrid { stderr: String },
    #[error(
        "`podman run` cannot set up the container's network: /dev/net/tun is not accessible to this user: {stderr}"
    )]
    NoTun { stderr: String },
    #[error("{flag} cannot be applied: {cause}")]
    LimitsUnavailable { flag: String, cause: String },
    #[error("the container's resource limits exceed this machine's hard limits: {stderr}")]
    Ulimit { stderr: String },
    #[error("cannot read `{what}`'s output: {detail}")]
    Output { what: String, detail: String },
    #[error("cannot find a free port on 127.0.0.1")]
    NoFreePort(#[source] std::io::Error),
    #[error("no free host port after {attempts} attempts (another process took each one first)")]
    PortsBusy { attempts: u32 },
    #[error(
        "container {} {} before {} answered (last probe: {})\n{}",
        .0.name, .0.state, .0.url, .0.last_probe, .0.logs
    )]
    Exited(Box<ContainerFailure>),
    #[error(
        "container {} did not answer {} with a 2xx status within {} (last probe: {})\n{}",
        .0.name, .0.url, humantime::format_duration(.0.timeout), .0.last_probe, .0.logs
    )]
    NotReady(Box<ContainerFailure>),
    #[error("interrupted: containers are being removed")]
    Interrupted,
}
