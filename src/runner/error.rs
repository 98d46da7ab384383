//! Why running an image failed, with what a user can do about it.
//!
//! Podman's own message is kept (trimmed) in every variant that comes from a
//! podman command, and a container that died or never became healthy carries its
//! last log lines: that is where the reason usually is.

use std::fmt;
use std::time::Duration;

use crate::error::{ExitKind, Explain};
use crate::loadgen::{ConfigError, LoadError};

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
    #[error("the load configuration is invalid")]
    LoadConfig(#[source] ConfigError),
    #[error("the load could not run")]
    Load(#[source] LoadError),
    #[error("interrupted: containers are being removed")]
    Interrupted,
}

impl Explain for RunnerError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            RunnerError::PodmanMissing => {
                "install podman (Debian/Ubuntu: apt-get install podman), or put it on PATH".into()
            }
            RunnerError::RuntimeMissing { runtime } if runtime == "runc" => {
                "install runc (Debian/Ubuntu: apt-get install runc)".into()
            }
            RunnerError::RuntimeMissing { runtime } => format!(
                "install {runtime}, or choose another runtime with --runtime (runc works almost everywhere)"
            ),
            RunnerError::CgroupsHybrid { .. } => {
                "install runc (Debian/Ubuntu: apt-get install runc); ocibench then uses it instead of crun".into()
            }
            RunnerError::Ulimit { .. } => format!(
                "pass limits within `ulimit -Hn` ({}) and `ulimit -Hu`, e.g. --podman-arg=--ulimit=nofile=1024:1024",
                super::limits::hard_limits().nofile.map_or("?".into(), |n| n.to_string())
            ),
            RunnerError::Spawn { .. } | RunnerError::Podman { .. } | RunnerError::Output { .. } => {
                "check that `podman info` works for this user".into()
            }
            RunnerError::NoFreePort(_) | RunnerError::PortsBusy { .. } => {
                "free some ports on 127.0.0.1, then try again".into()
            }
            RunnerError::Exited(_) => {
                "the service crashed or exited: check its command, environment (--env) and the logs above".into()
            }
            RunnerError::NotReady(f) if f.last_probe.starts_with("answered") => {
                "the service answers, but not with a 2xx status: point --health at a path that does".into()
            }
            RunnerError::NotReady(_) => {
                "check --port (the port the service listens on inside the container) and --health; or raise --startup-timeout".into()
            }
            RunnerError::LoadConfig(e) => e.hint(),
            RunnerError::Load(e) => e.hint(),
            RunnerError::Interrupted => return None,
        })
    }
    fn exit_kind(&self) -> ExitKind {
        match self {
            RunnerError::LoadConfig(_) => ExitKind::Usage,
            _ => ExitKind::Runtime,
        }
    }
}
