//! `TestContext`: runs the real `ocibench` binary in a sealed environment (temp cache,
//! HOME and XDG dirs, no colour, no user credentials), after uv's integration tests.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use super::registry::Registry;
use super::tools::display;

/// Environment variables that would let the developer's own setup leak into a test.
const SCRUBBED_ENV: &[&str] = &[
    "REGISTRY_AUTH_FILE",
    "CONTAINERS_REGISTRIES_CONF",
    "DOCKER_CONFIG",
    "SOURCE_DATE_EPOCH",
    "OCIBENCH_CACHE",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "CLICOLOR_FORCE",
    "FORCE_COLOR",
    "RUST_LOG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// Temp dirs for one test and a way to run `ocibench` inside them.
#[derive(Debug)]
pub struct TestContext {
    root: tempfile::TempDir,
    /// `OCIBENCH_CACHE`: the blob store.
    pub cache_dir: PathBuf,
    /// `HOME` (with `.docker/` and `.config/` under it).
    pub home: PathBuf,
    /// The working directory commands run in (for relative paths, `ocibench.toml`).
    pub work_dir: PathBuf,
    /// `XDG_RUNTIME_DIR` (where podman-style `containers/auth.json` lives).
    pub runtime_dir: PathBuf,
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TestContext {
    pub fn new() -> TestContext {
        let root = tempfile::Builder::new()
            .prefix("ocibench-test-")
            .tempdir()
            .expect("temp dir for the test context");
        let sub = |name: &str| {
            let p = root.path().join(name);
            std::fs::create_dir_all(&p).expect("mkdir test context dir");
            p
        };
        let ctx = TestContext {
            cache_dir: sub("cache"),
            home: sub("home"),
            work_dir: sub("work"),
            runtime_dir: sub("run"),
            root,
        };
        for d in [".cache", ".config", ".local/share", ".docker"] {
            std::fs::create_dir_all(ctx.home.join(d)).expect("mkdir home subdir");
        }
        ctx
    }

    /// The temp dir holding everything of this context.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A path inside the working directory (not created).
    pub fn path(&self, relative: &str) -> PathBuf {
        self.work_dir.join(relative)
    }

    /// Writes the user's registries.conf (`$XDG_CONFIG_HOME/containers/`): with it
    /// present, containers/image's rules read neither /etc/containers/registries.conf
    /// nor its drop-ins, so the machine's own files stay out of the test.
    pub fn registries_conf(&self, text: &str) -> PathBuf {
        let dir = self.home.join(".config/containers");
        std::fs::create_dir_all(&dir).expect("mkdir .config/containers");
        let path = dir.join("registries.conf");
        std::fs::write(&path, text).expect("write registries.conf");
        path
    }

    /// `ocibench ARGS` with the sealed environment; add more with `.env(...)`.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocibench"));
        cmd.args(args)
            .current_dir(&self.work_dir)
            .stdin(Stdio::null());
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("OCIBENCH_CACHE", &self.cache_dir)
            .env("NO_COLOR", "1")
            .env("HOME", &self.home)
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            .env("NO_PROXY", "127.0.0.1,localhost,::1")
            .env("no_proxy", "127.0.0.1,localhost,::1");
        cmd
    }

    /// Runs `ocibench ARGS` to completion; check the result with [`Output`]'s methods.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Output::of(&mut self.cmd(args))
    }

    /// Writes `$DOCKER_CONFIG/config.json` with the registry's credentials (base64
    /// `auth`, as `docker login` does); returns its path.
    pub fn docker_login(&self, registry: &Registry) -> PathBuf {
        let path = self.home.join(".docker/config.json");
        write_auth_file(&path, registry);
        path
    }

    /// Writes `$XDG_RUNTIME_DIR/containers/auth.json` (podman's and skopeo's login file)
    /// with the registry's credentials; returns its path.
    pub fn containers_login(&self, registry: &Registry) -> PathBuf {
        let path = self.runtime_dir.join("containers/auth.json");
        write_auth_file(&path, registry);
        path
    }
}

/// Writes a Docker/containers auth file (`{"auths": {ADDR: {"auth": base64(u:p)}}}`)
/// for the registry's credentials at `path`.
pub fn write_auth_file(path: &Path, registry: &Registry) {
    use base64::Engine;
    let (user, pass) = registry.credentials().expect("registry has credentials");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let config = serde_json::json!({"auths": {registry.addr(): {"auth": auth}}});
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir for auth file");
    }
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).expect("write auth file");
}

/// A finished command: status and both streams as text, with assertions whose panic
/// messages show the command line and everything it printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Runs `cmd` (stdin closed) and captures its output.
    pub fn of(cmd: &mut Command) -> Output {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", display(cmd)));
        Output {
            command: display(cmd),
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The exit code (`None` if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts exit status 0.
    #[track_caller]
    pub fn success(self) -> Output {
        if !self.status.success() {
            panic!("{}", self.describe("expected success"));
        }
        self
    }

    /// Asserts exit status `code` (1 runtime failure, 2 bad usage or input).
    #[track_caller]
    pub fn failure(self, code: i32) -> Output {
        if self.code() != Some(code) {
            panic!("{}", self.describe(&format!("expected exit status {code}")));
        }
        self
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn stderr_contains(self, needle: &str) -> Output {
        if !self.stderr.contains(needle) {
            panic!(
                "{}",
                self.describe(&format!("expected stderr to contain {needle:?}"))
            );
        }
        self
    }

    /// Asserts stdout contains `needle`.
    #[track_caller]
    pub fn stdout_contains(self, needle: &str) -> Output {
        if !self.stdout.contains(needle) {
            panic!(
                "{}",
                self.describe(&format!("expected stdout to contain {needle:?}"))
            );
        }
        self
    }

    /// Asserts that none of `secrets` was printed, on stdout or stderr.
    #[track_caller]
    pub fn assert_hides(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(
                !self.stdout.contains(secret) && !self.stderr.contains(secret),
                "a secret was printed by `{}`:\n{}\n{}",
                self.command,
                self.stdout,
                self.stderr
            );
        }
    }

    /// Parses stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{}",
                self.describe(&format!("stdout is not one JSON document: {e}"))
            )
        })
    }

    fn describe(&self, what: &str) -> String {
        format!(
            "{what}, got {} from\n  {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.command,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}
