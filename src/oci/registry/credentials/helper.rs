//! Docker's credential-helper protocol: `docker-credential-NAME get` reads a
//! server URL on stdin and answers `{"ServerURL","Username","Secret"}`.

use std::io::{self, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{CredentialError, helper_server_url};
use crate::oci::registry::auth::{Credential, Secret};

/// Helper answer (docker-credential-helpers' `credentials.Credentials`).
#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `HELPER get` with the server URL on stdin. `None`: the helper has no entry.
pub(super) fn run_helper(
    helper: &str,
    config: &Path,
    field: &'static str,
    registry: &str,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<Option<Credential>, CredentialError> {
    let server = helper_server_url(registry);
    let program = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        // As Go's exec.LookPath: never run a helper found through `.` or "".
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(helper))
        .find(|p| is_executable(p))
        .ok_or_else(|| CredentialError::HelperNotFound {
            helper: helper.to_string(),
            config: config.to_path_buf(),
            field,
        })?;
    let io_err = |source| CredentialError::HelperIo {
        helper: helper.to_string(),
        source,
    };
    let mut cmd = Command::new(&program);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = path_var {
        cmd.env("PATH", p);
    }
    let mut child = spawn(&mut cmd).map_err(io_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading stdin: a broken pipe is its business.
        match stdin.write_all(server.as_bytes()) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_err(e));
            }
            _ => {}
        }
    }
    let out = child.wait_with_output().map_err(io_err)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stdout
            .to_ascii_lowercase()
            .contains("credentials not found")
            || stderr
                .to_ascii_lowercase()
                .contains("credentials not found")
        {
            return Ok(None);
        }
        // docker-credential-helpers print errors on stdout; never echo what
        // looks like an answer, which would hold the secret.
        let message = match stderr.trim() {
            "" if !stdout.contains("Secret") => stdout.trim(),
            s => s,
        };
        return Err(CredentialError::HelperFailed {
            helper: helper.to_string(),
            server,
            status: out.status.to_string(),
            message: truncate(message, 500),
        });
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&out.stdout).map_err(|_| CredentialError::HelperOutput {
            helper: helper.to_string(),
            server: server.clone(),
            reason: "something other than {\"Username\",\"Secret\"} JSON",
        })?;
    Ok(match (answer.username.as_str(), answer.secret) {
        (_, s) if s.is_empty() => None,
        ("<token>", s) => Some(Credential::IdentityToken(Secret::new(s))),
        ("", _) => {
            return Err(CredentialError::HelperOutput {
                helper: helper.to_string(),
                server,
                reason: "a secret without a user name",
            });
        }
        (u, s) => Some(Credential::Basic {
            username: u.to_string(),
            password: Secret::new(s),
        }),
    })
}

/// Spawns, retrying `ETXTBSY`: a helper script written a moment ago (a test's,
/// or a fresh install) may still be open for writing in a child forked by
/// another thread, until that child execs.
fn spawn(cmd: &mut Command) -> io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            r => return r,
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}
