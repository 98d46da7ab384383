//! Where registry credentials come from: `--creds`/`--creds-file`, podman's
//! `auth.json` files, Docker's `config.json`, and the `docker-credential-*`
//! helpers either may name, in the order podman and Docker users expect.
//!
//! A credential from the command line is bound to the registry it is for
//! ([`ScopedCreds`]): offered to any other registry, it would hand a private
//! password to, say, Docker Hub's token realm while a base image is pulled.
//!
//! Every secret is a [`Secret`] from the moment it is read, and no error names
//! a value from a file: a mistyped field, bad base64 or a failing helper is
//! reported by file, key and helper name only.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::oci::registry::auth::{Credential, Secret};
use crate::oci::registry::{CredentialProvider, ProvidedCredential};

mod file;
mod helper;
#[cfg(test)]
mod tests;

use file::AuthFile;

/// The server URL `docker login` stores Docker Hub's credentials under.
pub const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";

/// Credentials given on the command line (`--creds USER:PASS` or `--creds-file FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredsFlag {
    pub username: String,
    pub password: Secret,
    /// Where they came from, for messages (the caller names it: the command line
    /// says `--creds` or `--creds-file PATH`).
    pub origin: String,
}

impl CredsFlag {
    /// These credentials, for `registry` alone (a reference's registry: `docker.io`,
    /// `localhost:5000`) and, if given, only its `repository`.
    pub fn scoped(self, registry: &str, repository: Option<&str>) -> ScopedCreds {
        let (registry, repository) = cache_key(registry, repository);
        ScopedCreds {
            registry,
            repository,
            creds: self,
        }
    }
}

/// Command-line credentials bound to the registry (and maybe repository) they are
/// for; no other registry is ever offered them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedCreds {
    registry: String,
    repository: Option<String>,
    creds: CredsFlag,
}

impl ScopedCreds {
    /// The registry these credentials are for (normalised: `docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// How well they fit (registry, repository): 2 for the very repository,
    /// 1 for any repository of the registry, `None` for another registry.
    fn fit(&self, key: &CacheKey) -> Option<u8> {
        if self.registry != key.0 {
            return None;
        }
        match &self.repository {
            None => Some(1),
            Some(r) if Some(r) == key.1.as_ref() => Some(2),
            Some(_) => None,
        }
    }
}

/// Parses `USER:PASS`, split at the first colon (a password may hold colons).
pub fn parse_creds(s: &str, origin: impl Into<String>) -> Result<CredsFlag, CredentialError> {
    parse_user_pass(s, origin.into())
}

/// Reads `USER:PASS` from a file (one line; a trailing newline is ignored).
pub fn read_creds_file(
    path: &Path,
    origin: impl Into<String>,
) -> Result<CredsFlag, CredentialError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    parse_user_pass(line, origin.into())
}

fn parse_user_pass(s: &str, origin: String) -> Result<CredsFlag, CredentialError> {
    let Some((user, pass)) = s.split_once(':') else {
        return Err(CredentialError::FlagWithoutColon { origin });
    };
    if user.is_empty() {
        return Err(CredentialError::FlagEmptyUser { origin });
    }
    if s.contains(['\n', '\r']) {
        return Err(CredentialError::FlagNotOneLine { origin });
    }
    Ok(CredsFlag {
        username: user.to_string(),
        password: Secret::new(pass),
        origin,
    })
}

/// Where a credential was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `--creds` or `--creds-file PATH`.
    Flag(String),
    /// An `auths` entry of an auth file, under this key (as written in the file).
    AuthFile { path: PathBuf, key: String },
    /// A credential helper (`docker-credential-NAME`) named by this file.
    Helper { helper: String, config: PathBuf },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Flag(origin) => f.write_str(origin),
            CredentialSource::AuthFile { path, key } => {
                write!(f, "{} (key {key:?})", path.display())
            }
            CredentialSource::Helper { helper, config } => {
                write!(f, "{helper} (named in {})", config.display())
            }
        }
    }
}

/// A credential and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCredential {
    pub credential: Credential,
    pub source: CredentialSource,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{origin} must be USER:PASSWORD (no `:` found)")]
    FlagWithoutColon { origin: String },
    #[error("{origin}: the user name before `:` is empty")]
    FlagEmptyUser { origin: String },
    #[error("{origin} must be one line USER:PASSWORD")]
    FlagNotOneLine { origin: String },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("REGISTRY_AUTH_FILE names {}, which does not exist", path.display())]
    MissingAuthFile { path: PathBuf },
    /// A syntax error: serde_json's message gives a line and column, never a value.
    #[error("{} is not valid JSON", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: `{field}` must be {expected}", path.display())]
    Shape {
        path: PathBuf,
        field: String,
        expected: &'static str,
    },
    /// Bad `auth` in an entry. `reason` never quotes the value (base64's own
    /// error would print the offending byte, so it is not kept as a source).
    #[error("{}: the `auth` of {key:?} is invalid: {reason}", path.display())]
    BadAuth {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{}: invalid credential helper name {name:?}", config.display())]
    BadHelperName { name: String, config: PathBuf },
    #[error("{helper} not found in PATH (named in {})", config.display())]
    HelperNotFound {
        helper: String,
        config: PathBuf,
        /// `credsStore` or `credHelpers`, for the hint.
        field: &'static str,
    },
    #[error("cannot run {helper}")]
    HelperIo {
        helper: String,
        #[source]
        source: io::Error,
    },
    #[error("{helper} get for {server} failed ({status}){}", fmt_message(.message))]
    HelperFailed {
        helper: String,
        server: String,
        status: String,
        /// Its stderr (or, as docker-credential-helpers print errors there, stdout), trimmed.
        message: String,
    },
    #[error("{helper} get for {server} answered {reason}")]
    HelperOutput {
        helper: String,
        server: String,
        reason: &'static str,
    },
}

fn fmt_message(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

/// Docker Hub's names (`index.docker.io`, `registry-1.docker.io`) become
/// `docker.io`, as in references; hosts compare case-insensitively.
pub fn normalize_registry(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => name,
    }
}

/// What an `auths` or `credHelpers` key names: a registry and, for podman's
/// namespaced keys (`quay.io/org/repo`), a repository prefix. A key with a
/// scheme is a URL (`https://index.docker.io/v1/`), whose path is dropped.
pub fn normalize_key(key: &str) -> (String, Option<String>) {
    let key = key.trim();
    let lower = key.to_ascii_lowercase();
    let (rest, is_url) = if lower.starts_with("https://") {
        (&key[8..], true)
    } else if lower.starts_with("http://") {
        (&key[7..], true)
    } else {
        (key, false)
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_matches('/');
    let path = (!is_url && !path.is_empty()).then(|| path.to_string());
    (normalize_registry(host), path)
}

/// The server URL a helper is asked about: what `docker login` stored.
pub fn helper_server_url(registry: &str) -> String {
    let r = normalize_registry(registry);
    if r == "docker.io" {
        DOCKER_HUB_SERVER_URL.to_string()
    } else {
        r
    }
}

/// The environment that decides which files are read and where helpers are found.
/// Empty variables count as unset.
#[derive(Debug, Clone, Default)]
pub struct CredentialEnv {
    pub home: Option<PathBuf>,
    pub registry_auth_file: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub docker_config: Option<PathBuf>,
    /// `PATH`, searched for `docker-credential-NAME`.
    pub path: Option<OsString>,
    /// Without `XDG_RUNTIME_DIR`, podman keeps its auth file in `/run/containers/UID/`.
    pub uid: Option<u32>,
}

impl CredentialEnv {
    /// Reads `HOME`, `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME`,
    /// `DOCKER_CONFIG` and `PATH` from the process.
    pub fn from_process() -> Self {
        Self::from_lookup(|k| std::env::var_os(k), Some(current_uid()))
    }

    /// As `from_process`, from any lookup (a test's map).
    pub fn from_lookup(env: impl Fn(&str) -> Option<OsString>, uid: Option<u32>) -> Self {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        CredentialEnv {
            home: var("HOME").map(PathBuf::from),
            registry_auth_file: var("REGISTRY_AUTH_FILE").map(PathBuf::from),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR").map(PathBuf::from),
            xdg_config_home: var("XDG_CONFIG_HOME").map(PathBuf::from),
            docker_config: var("DOCKER_CONFIG").map(PathBuf::from),
            path: var("PATH"),
            uid,
        }
    }

    /// The auth files, highest precedence first: `REGISTRY_AUTH_FILE` alone, or
    /// podman's runtime and config `auth.json`; then Docker's `config.json`.
    pub fn auth_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(f) = &self.registry_auth_file {
            files.push(f.clone());
        } else {
            match (&self.xdg_runtime_dir, self.uid) {
                (Some(dir), _) => files.push(dir.join("containers/auth.json")),
                (None, Some(uid)) => {
                    files.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")))
                }
                (None, None) => {}
            }
            let config_home = self
                .xdg_config_home
                .clone()
                .or_else(|| self.home.as_ref().map(|h| h.join(".config")));
            if let Some(c) = config_home {
                files.push(c.join("containers/auth.json"));
            }
        }
        let docker_dir = self
            .docker_config
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".docker")));
        if let Some(d) = docker_dir {
            files.push(d.join("config.json"));
        }
        files
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Finds credentials for registries. Files are read when a registry is first
/// asked about; answers are cached, so a helper runs once per registry.
#[derive(Debug)]
pub struct CredentialStore {
    /// `--creds` and friends, each for its own registry.
    flags: Vec<ScopedCreds>,
    files: Vec<PathBuf>,
    /// `REGISTRY_AUTH_FILE`: as in podman, naming a missing file is an error.
    required: Option<PathBuf>,
    path: Option<OsString>,
    /// Held while resolving: parallel blob threads wait for one helper run.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    answers: HashMap<CacheKey, Option<ResolvedCredential>>,
}

/// A normalised (registry, repository): Docker Hub's aliases and short
/// names (`python` is `library/python`) share one entry.
type CacheKey = (String, Option<String>);

fn cache_key(registry: &str, repository: Option<&str>) -> CacheKey {
    let registry = normalize_registry(registry);
    let repository = repository
        .map(|r| r.trim_matches('/'))
        .filter(|r| !r.is_empty())
        .map(|r| {
            if registry == "docker.io" && !r.contains('/') {
                format!("library/{r}")
            } else {
                r.to_string()
            }
        });
    (registry, repository)
}

impl CredentialStore {
    /// The process's environment: the files of [`CredentialEnv::auth_files`] and `PATH`.
    pub fn from_env(flags: Vec<ScopedCreds>) -> Self {
        Self::new(flags, &CredentialEnv::from_process())
    }

    pub fn new(flags: Vec<ScopedCreds>, env: &CredentialEnv) -> Self {
        let mut store = Self::with_files(flags, env.auth_files(), env.path.clone());
        store.required = env.registry_auth_file.clone();
        store
    }

    /// Explicit auth files (highest precedence first) and `PATH` for helpers.
    /// Helpers run with this `PATH` and otherwise the process's environment.
    pub fn with_files(
        flags: Vec<ScopedCreds>,
        files: Vec<PathBuf>,
        path: Option<OsString>,
    ) -> Self {
        CredentialStore {
            flags,
            files,
            required: None,
            path,
            state: Mutex::default(),
        }
    }

    /// The files consulted, highest precedence first (they need not exist).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The credential for `registry` (as in a reference: `docker.io`,
    /// `localhost:5000`) and optionally a repository (`org/repo`, for podman's
    /// namespaced keys). `None` means anonymous. The first source with an
    /// entry wins; an unreadable or malformed file reached first is an error.
    pub fn resolve(
        &self,
        registry: &str,
        repository: Option<&str>,
    ) -> Result<Option<ResolvedCredential>, CredentialError> {
        let key = cache_key(registry, repository);
        let mut state = self.lock();
        self.resolve_locked(&mut state, key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn resolve_locked(
        &self,
        state: &mut State,
        key: CacheKey,
    ) -> Result<Option<ResolvedCredential>, CredentialError> {
        if let Some(hit) = state.answers.get(&key) {
            return Ok(hit.clone());
        }
        let found = self.lookup(&key)?;
        state.answers.insert(key, found.clone());
        Ok(found)
    }

    fn lookup(&self, key: &CacheKey) -> Result<Option<ResolvedCredential>, CredentialError> {
        let (registry, repository) = (key.0.as_str(), key.1.as_deref());
        let flag = self
            .flags
            .iter()
            .filter_map(|f| Some((f.fit(key)?, &f.creds)))
            .max_by_key(|(fit, _)| *fit);
        if let Some((_, f)) = flag {
            return Ok(Some(ResolvedCredential {
                credential: Credential::Basic {
                    username: f.username.clone(),
                    password: f.password.clone(),
                },
                source: CredentialSource::Flag(f.origin.clone()),
            }));
        }
        for path in &self.files {
            let Some(file) = AuthFile::load(path)? else {
                if self.required.as_ref() == Some(path) {
                    return Err(CredentialError::MissingAuthFile { path: path.clone() });
                }
                continue;
            };
            if let Some(found) = file.lookup(registry, repository, self.path.as_deref())? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The provider the registry client asks (on a 401) for `registry` and the
    /// repository at hand; podman's repository-specific keys apply. A source that
    /// fails (a malformed file, a broken helper) is an error, not a silent anonymous.
    pub fn provider(self: Arc<Self>) -> CredentialProvider {
        Arc::new(move |registry: &str, repository: &str| {
            match self.resolve(registry, Some(repository)) {
                Ok(found) => Ok(found.map(|r| ProvidedCredential {
                    credential: r.credential,
                    source: r.source.to_string(),
                })),
                Err(e) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}
