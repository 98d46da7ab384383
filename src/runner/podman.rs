//! Finding podman, choosing its OCI runtime, and running its commands.
//!
//! The runtime choice: an explicit one is honoured. Otherwise `podman info` says
//! which runtime podman would use and which cgroup version the host has (one
//! call, ~0.3 s, cached for the process). crun on cgroup v1 is the known broken
//! combination (`cgroups in hybrid mode not supported` on Debian 12 CI machines
//! and nested containers), so there runc is used when installed. Should crun
//! still fail that way at `podman run`, the runner switches to runc and retries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use serde::Deserialize;

use super::RunnerError;

/// Where podman looks for runtimes besides PATH (its `runtimes` table in
/// containers.conf), so a runc in sbin is found from a non-login shell.
const RUNTIME_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/sbin",
    "/bin",
    "/usr/lib/cri-o-runc/sbin",
    "/run/current-system/sw/bin",
];

/// The stderr crun prints when it cannot work with the host's cgroups.
pub(crate) const HYBRID_CGROUPS: &str = "cgroups in hybrid mode not supported";

/// The executable `name` on PATH (or in a runtime directory).
pub(crate) fn find_executable(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `podman` with stdin closed, in its own process group: a Ctrl-C on the
/// terminal reaches ocibench (which then cleans up), not a half-done `podman run`.
///
/// Registry credentials are not passed on: podman pulls only from ocibench's own
/// credential-less loopback registry (`pull`; `run` has `--pull never`), and
/// podman 4.3 refuses to run at all when
/// `DOCKER_CONFIG` names a directory without a `config.json` (`stat
/// .../config.json: no such file or directory`), as on CI runners that set it.
pub(crate) fn detached(podman: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(podman);
    c.stdin(Stdio::null())
        .process_group(0)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    c
}

/// What `podman info` tells us about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The OCI runtime podman uses by default (`crun`, `runc`, ...).
    pub default_runtime: String,
    /// `v1` or `v2`.
    pub cgroup_version: String,
    pub rootless: bool,
    /// `systemd` or `cgroupfs`.
    pub cgroup_manager: String,
    /// The storage driver (`overlay`, `vfs`, ...).
    pub graph_driver: String,
    /// `netavark` or `cni` (podman 4); empty where podman does not say.
    pub network_backend: String,
}

#[derive(Deserialize)]
struct InfoJson {
    host: InfoHost,
    #[serde(default)]
    store: Option<InfoStore>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoStore {
    #[serde(default)]
    graph_driver_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoHost {
    #[serde(default)]
    cgroup_version: String,
    #[serde(default)]
    cgroup_manager: String,
    #[serde(default)]
    network_backend: String,
    #[serde(default)]
    oci_runtime: Option<InfoRuntime>,
    #[serde(default)]
    security: Option<InfoSecurity>,
}

#[derive(Deserialize)]
struct InfoRuntime {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct InfoSecurity {
    #[serde(default)]
    rootless: bool,
}

impl HostInfo {
    /// Parses `podman info --format json`.
    pub fn parse(json: &[u8]) -> Result<HostInfo, String> {
        let info: InfoJson = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        Ok(HostInfo {
            default_runtime: info.host.oci_runtime.map(|r| r.name).unwrap_or_default(),
            cgroup_version: info.host.cgroup_version,
            rootless: info.host.security.is_some_and(|s| s.rootless),
            cgroup_manager: info.host.cgroup_manager,
            graph_driver: info.store.map(|s| s.graph_driver_name).unwrap_or_default(),
            network_backend: info.host.network_backend,
        })
    }

    /// Whether podman can put this container in a cgroup of its own, so that
    /// limits apply and `podman stats` reads it: always as root; rootless only
    /// on cgroup v2 with the systemd manager (delegation). Rootless on cgroup v1,
    /// or with cgroupfs, podman runs the container in the caller's cgroup.
    pub fn own_cgroups(&self) -> bool {
        !self.rootless || (self.cgroup_version == "v2" && self.cgroup_manager == "systemd")
    }

    /// Why `own_cgroups` is false, for errors and report notes.
    pub fn cgroup_limitation(&self) -> Option<String> {
        (!self.own_cgroups()).then(|| {
            format!(
                "rootless podman on cgroup {} with the {} manager has no cgroup per container \
                 (cgroup v2 with the systemd manager and delegation is needed)",
                if self.cgroup_version.is_empty() {
                    "?"
                } else {
                    &self.cgroup_version
                },
                if self.cgroup_manager.is_empty() {
                    "?"
                } else {
                    &self.cgroup_manager
                },
            )
        })
    }
}

/// The `--runtime` to pass: `None` keeps podman's default.
pub fn choose_runtime(
    explicit: Option<&str>,
    info: &HostInfo,
    runc_installed: bool,
) -> Option<String> {
    if let Some(r) = explicit {
        return Some(r.to_string());
    }
    let crun_on_v1 = info.default_runtime == "crun" && info.cgroup_version == "v1";
    (crun_on_v1 && runc_installed).then(|| "runc".to_string())
}

/// `podman info`, once per process and podman executable.
pub(crate) fn host_info(podman: &Path) -> Result<HostInfo, RunnerError> {
    static CACHE: OnceLock<Mutex<Vec<(PathBuf, HostInfo)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some((_, info)) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(p, _)| p == podman)
    {
        return Ok(info.clone());
    }
    let out = output(
        detached(podman).args(["info", "--format", "json"]),
        "podman info",
    )?;
    let info = HostInfo::parse(&out.stdout).map_err(|detail| RunnerError::Output {
        what: "podman info --format json".into(),
        detail,
    })?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((podman.to_path_buf(), info.clone()));
    Ok(info)
}

/// Whether the runtime `name` (or path) is installed where podman looks.
pub(crate) fn runtime_installed(name: &str) -> bool {
    if name.contains('/') {
        return Path::new(name).is_file();
    }
    find_executable(name, RUNTIME_DIRS).is_some()
}

/// Runs `cmd`, capturing both streams; a non-zero exit is `RunnerError::Podman`
/// with podman's stderr (trimmed).
pub(crate) fn output(cmd: &mut Command, what: &str) -> Result<Output, RunnerError> {
    let out = raw_output(cmd, what)?;
    if !out.status.success() {
        return Err(failed(what, &out));
    }
    Ok(out)
}

/// Runs `cmd`, capturing both streams, whatever its exit status.
pub(crate) fn raw_output(cmd: &mut Command, what: &str) -> Result<Output, RunnerError> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| RunnerError::Spawn {
            what: what.to_string(),
            source,
        })
}

/// The error for a podman command that exited non-zero.
pub(crate) fn failed(what: &str, out: &Output) -> RunnerError {
    RunnerError::Podman {
        what: what.to_string(),
        status: out.status.code().map_or_else(
            || "killed by a signal".into(),
            |c| format!("exit status {c}"),
        ),
        stderr: trim_stderr(&out.stderr),
    }
}

/// podman's stderr without progress chatter, at most a few lines.
pub(crate) fn trim_stderr(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(6);
    let joined = lines[start..].join("\n");
    if joined.is_empty() {
        "(no message)".into()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"{"host": {"arch": "amd64", "cgroupManager": "cgroupfs", "cgroupVersion": "v1",
        "ociRuntime": {"name": "crun", "path": "/usr/bin/crun"},
        "networkBackend": "netavark",
        "security": {"rootless": false}}, "store": {"graphDriverName": "overlay"}}"#;

    const ROOTLESS_INFO: &str = r#"{"host": {"cgroupManager": "cgroupfs", "cgroupVersion": "v1",
        "networkBackend": "cni", "ociRuntime": {"name": "runc"},
        "security": {"rootless": true}}, "store": {"graphDriverName": "vfs"}}"#;

    #[test]
    fn parses_podman_info() {
        let info = HostInfo::parse(INFO.as_bytes()).unwrap();
        assert_eq!(
            info,
            HostInfo {
                default_runtime: "crun".into(),
                cgroup_version: "v1".into(),
                rootless: false,
                cgroup_manager: "cgroupfs".into(),
                graph_driver: "overlay".into(),
                network_backend: "netavark".into(),
            }
        );
        assert!(info.own_cgroups());
        assert_eq!(info.cgroup_limitation(), None);
        assert!(HostInfo::parse(b"not json").is_err());
    }

    #[test]
    fn rootless_on_cgroup_v1_has_no_cgroups_of_its_own() {
        let info = HostInfo::parse(ROOTLESS_INFO.as_bytes()).unwrap();
        assert!(info.rootless);
        assert_eq!(info.graph_driver, "vfs");
        assert!(!info.own_cgroups());
        assert_eq!(
            info.cgroup_limitation().unwrap(),
            "rootless podman on cgroup v1 with the cgroupfs manager has no cgroup per container \
             (cgroup v2 with the systemd manager and delegation is needed)"
        );
        let delegated = HostInfo {
            cgroup_version: "v2".into(),
            cgroup_manager: "systemd".into(),
            ..info
        };
        assert!(delegated.own_cgroups());
    }

    #[test]
    fn runtime_choice() {
        let crun_v1 = HostInfo::parse(INFO.as_bytes()).unwrap();
        let crun_v2 = HostInfo {
            cgroup_version: "v2".into(),
            ..crun_v1.clone()
        };
        let runc_v1 = HostInfo {
            default_runtime: "runc".into(),
            ..crun_v1.clone()
        };
        assert_eq!(
            choose_runtime(Some("crun"), &crun_v1, true).as_deref(),
            Some("crun")
        );
        assert_eq!(
            choose_runtime(None, &crun_v1, true).as_deref(),
            Some("runc")
        );
        assert_eq!(choose_runtime(None, &crun_v1, false), None);
        assert_eq!(choose_runtime(None, &crun_v2, true), None);
        assert_eq!(choose_runtime(None, &runc_v1, true), None);
    }

    #[test]
    fn stderr_is_trimmed_to_the_last_lines() {
        let s = b"Getting image source signatures\n\n1\n2\n3\n4\n5\nError: boom\n";
        assert_eq!(trim_stderr(s), "1\n2\n3\n4\n5\nError: boom");
        assert_eq!(trim_stderr(b"  \n"), "(no message)");
    }
}
