//! External tools the integration tests drive, and the small helpers around them.
//!
//! A missing tool is a loud failure naming the Debian package, never a silent skip: a
//! test that quietly does nothing on a bare CI machine proves nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where tools are looked for besides `$PATH` (debootstrap and runc live in sbin, which a
/// non-login shell may not have on its PATH).
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// Returns the path of `tool`, or panics naming the Debian package that provides it.
pub fn require(tool: &str, debian_package: &str) -> PathBuf {
    find(tool).unwrap_or_else(|| {
        panic!(
            "missing tool {tool}: install the Debian package {debian_package} \
             (scripts/install-deps.sh does)"
        )
    })
}

/// The path of `tool` on `$PATH` (or an sbin directory), if any.
pub fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `Command::new(tool)` after [`require`]: the usual way to start an external tool.
pub fn command(tool: &str, debian_package: &str) -> Command {
    Command::new(require(tool, debian_package))
}

/// `skopeo`, checked.
pub fn skopeo() -> Command {
    command("skopeo", "skopeo")
}

/// A free TCP port on 127.0.0.1 (bound then released: a race with other processes is
/// possible, so servers started on it must retry on "address in use").
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Renders a command line for messages: program and arguments, shell-quoted enough to
/// copy and paste.
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        s.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$\\*?".contains(c)) {
            s.push_str(&format!("'{}'", arg.replace('\'', r"'\''")));
        } else {
            s.push_str(&arg);
        }
    }
    s
}

/// Runs `cmd` to completion with captured output; panics with both streams unless it
/// exits 0.
pub fn run(cmd: &mut Command) -> Output {
    let out = output(cmd);
    if !out.status.success() {
        panic!("{}", failure_message(cmd, &out, "failed"));
    }
    out
}

/// Runs `cmd` and returns its stdout as a string (panics as [`run`]).
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("stdout is UTF-8")
}

/// Runs `cmd` with `input` on stdin; panics as [`run`].
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", display(cmd)));
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(input)
            .unwrap_or_else(|e| panic!("writing stdin of `{}`: {e}", display(cmd)));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for `{}`: {e}", display(cmd)));
    if !out.status.success() {
        panic!("{}", failure_message(cmd, &out, "failed"));
    }
    out
}

/// Runs `cmd` expecting a non-zero exit; returns the output for further checks.
pub fn run_fails(cmd: &mut Command) -> Output {
    let out = output(cmd);
    if out.status.success() {
        panic!(
            "{}",
            failure_message(cmd, &out, "succeeded but was expected to fail")
        );
    }
    out
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", display(cmd)))
}

fn failure_message(cmd: &Command, out: &Output, what: &str) -> String {
    format!(
        "`{}` {what} ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        display(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end(),
    )
}

/// `sha256:<hex>` of a file, computed by coreutils' `sha256sum` (independent of the crate).
pub fn sha256_file(path: &Path) -> String {
    let out = run_stdout(command("sha256sum", "coreutils").arg(path));
    format!("sha256:{}", first_word(&out))
}

/// `sha256:<hex>` of bytes, computed by `sha256sum`.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    let out = run_with_stdin(&mut command("sha256sum", "coreutils"), bytes);
    format!(
        "sha256:{}",
        first_word(&String::from_utf8_lossy(&out.stdout))
    )
}

/// `(sha256 digest, byte count)` of a gzip file's decompressed stream, the way a human
/// checks it: `gzip -dc FILE | sha256sum` and `gzip -dc FILE | wc -c`.
pub fn gunzip_digest_and_len(path: &Path) -> (String, u64) {
    require("gzip", "gzip");
    let script = r#"set -o pipefail; gzip -dc -- "$1" | sha256sum; gzip -dc -- "$1" | wc -c"#;
    let out = run_stdout(
        Command::new("bash")
            .args(["-c", script, "gunzip-digest"])
            .arg(path),
    );
    let mut lines = out.lines();
    let digest = first_word(lines.next().unwrap_or_default()).to_string();
    let len = lines.next().unwrap_or_default().trim();
    let len: u64 = len.parse().unwrap_or_else(|_| panic!("wc -c said {len:?}"));
    (format!("sha256:{digest}"), len)
}

fn first_word(s: &str) -> &str {
    s.split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("empty sha256sum output"))
}

/// Names of the entries directly in `dir`, sorted (panics if `dir` cannot be read).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
