//! `ocibench.toml`: the application, the load and the candidate bases of a
//! comparison, validated once into `CompareConfig`. Paths are relative to the
//! file; base references may use `${VAR}` / `${VAR:-default}` so one file serves
//! any registry address.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a comparison file cannot be used. All of them are the input's fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Not TOML, or not the shape of a comparison; `line` where the parser knows it.
    #[error("{file} is not a valid comparison: {message}")]
    Syntax {
        file: String,
        message: String,
        line: Option<usize>,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: no [[candidate]] given")]
    NoCandidates { file: String },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    app: RawApp,
    #[serde(default)]
    load: RawLoad,
    #[serde(default, rename = "candidate")]
    candidates: Vec<RawCandidate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    #[serde(default)]
    layers: Vec<String>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Vec<String>,
    port: u16,
    #[serde(default = "default_health")]
    health: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    podman_args: Vec<String>,
    #[serde(default)]
    startup_timeout: Option<String>,
}

fn default_health() -> String {
    "/".to_string()
}
fn default_path() -> String {
    "/".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    #[serde(default = "d_requests")]
    requests: u64,
    #[serde(default = "d_concurrency")]
    concurrency: u64,
    #[serde(default = "d_true")]
    keepalive: bool,
    #[serde(default = "d_warmup")]
    warmup: u64,
    #[serde(default = "d_repeats")]
    repeats: u32,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default = "d_true")]
    isolate: bool,
}

fn d_requests() -> u64 {
    1000
}
fn d_concurrency() -> u64 {
    100
}
fn d_true() -> bool {
    true
}
fn d_warmup() -> u64 {
    100
}
fn d_repeats() -> u32 {
    5
}

impl Default for RawLoad {
    fn default() -> Self {
        RawLoad {
            requests: d_requests(),
            concurrency: d_concurrency(),
            keepalive: true,
            warmup: d_warmup(),
            repeats: d_repeats(),
            timeout: None,
            isolate: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCandidate {
    name: String,
    base: String,
}

/// One `SRC:DEST` layer of the application, SRC resolved against the file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLayer {
    pub src: PathBuf,
    pub dest: String,
}

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub layers: Vec<AppLayer>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub port: u16,
    pub health: String,
    pub path: String,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub podman_args: Vec<String>,
    pub startup_timeout: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadSettings {
    pub requests: u64,
    pub concurrency: u64,
    pub keepalive: bool,
    pub warmup: u64,
    pub repeats: u32,
    pub timeout: std::time::Duration,
    /// The container and the load generator on separate CPUs (`[load] isolate`,
    /// default true; `compare --no-isolate` turns it off).
    pub isolate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    /// The base reference with `${VAR}`s expanded.
    pub base: String,
}

/// A validated comparison.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// The file it came from (or `(embedded default)`).
    pub source: String,
    pub app: AppConfig,
    pub load: LoadSettings,
    pub candidates: Vec<Candidate>,
}

/// The embedded default: the demo service of `layers/`, four Python bases.
pub const DEFAULT_TOML: &str = include_str!("../../ocibench.toml");
/// The demo service itself, written out when the embedded default is used.
pub const DEFAULT_APP_SERVER: &str = include_str!("../../layers/app/server.py");

impl CompareConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, dir, &path.display().to_string(), &|k| {
            std::env::var(k).ok()
        })
    }

    /// Parses `text`, resolving layer sources against `dir`.
    pub fn parse(
        text: &str,
        dir: &Path,
        source: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // By position and kind: toml would quote the line (it may hold a secret).
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let e = crate::oci::parse_error::ParseError::toml(&e, text);
            ConfigError::Syntax {
                file: source.to_string(),
                message: e.to_string(),
                line: e.line,
            }
        })?;
        let bad = |message: String| ConfigError::Invalid {
            file: source.to_string(),
            message,
        };
        let layers = raw
            .app
            .layers
            .iter()
            .map(|l| {
                let (src, dest) = match crate::oci::build::layer::split_spec(l) {
                    (src, Some(dest)) => (src, dest),
                    _ => {
                        return Err(bad(format!(
                            "app.layers entry {l:?} must be SRC:DEST (DEST absolute)"
                        )));
                    }
                };
                let src = dir.join(src);
                if !src.exists() {
                    return Err(bad(format!("app.layers: {} does not exist", src.display())));
                }
                Ok(AppLayer {
                    src,
                    dest: dest.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if raw.app.port == 0 {
            return Err(bad("app.port must be a port number (1..65535)".into()));
        }
        for (what, p) in [("app.health", &raw.app.health), ("app.path", &raw.app.path)] {
            if !p.starts_with('/') {
                return Err(bad(format!("{what} {p:?} must start with /")));
            }
        }
        let dur = |what: &str, s: &Option<String>, default: u64| match s {
            None => Ok(std::time::Duration::from_secs(default)),
            Some(s) => humantime::parse_duration(s)
                .map_err(|e| bad(format!("{what} {s:?}: {e} (write e.g. 500ms, 3s, 2m)"))),
        };
        let load = LoadSettings {
            requests: raw.load.requests,
            concurrency: raw.load.concurrency,
            keepalive: raw.load.keepalive,
            warmup: raw.load.warmup,
            repeats: raw.load.repeats,
            timeout: dur("load.timeout", &raw.load.timeout, 30)?,
            isolate: raw.load.isolate,
        };
        if load.requests == 0 || load.concurrency == 0 || load.repeats == 0 {
            return Err(bad(
                "load.requests, load.concurrency and load.repeats must be at least 1".into(),
            ));
        }
        if raw.candidates.is_empty() {
            return Err(ConfigError::NoCandidates {
                file: source.to_string(),
            });
        }
        let mut candidates = Vec::new();
        for c in &raw.candidates {
            if c.name.is_empty() || candidates.iter().any(|x: &Candidate| x.name == c.name) {
                return Err(bad(format!(
                    "candidate name {:?} is empty or used twice",
                    c.name
                )));
            }
            candidates.push(Candidate {
                name: c.name.clone(),
                base: expand(&c.base, env)
                    .map_err(|e| bad(format!("candidate {}: {e}", c.name)))?,
            });
        }
        Ok(CompareConfig {
            source: source.to_string(),
            app: AppConfig {
                layers,
                entrypoint: raw.app.entrypoint,
                cmd: raw.app.cmd,
                env: raw.app.env,
                port: raw.app.port,
                health: raw.app.health,
                path: raw.app.path,
                workdir: raw.app.workdir,
                user: raw.app.user,
                podman_args: raw.app.podman_args,
                startup_timeout: dur("app.startup_timeout", &raw.app.startup_timeout, 60)?,
            },
            load,
            candidates,
        })
    }
}

/// Expands `${NAME}` and `${NAME:-default}`; an unset `${NAME}` without default is an error.
pub fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "${{{name}}} is not set (write ${{{name}:-default}} for a default)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "REGISTRY").then(|| "127.0.0.1:5999".to_string())
    }

    #[test]
    fn expands_variables() {
        assert_eq!(
            expand("${REGISTRY}/py:1", &env).unwrap(),
            "127.0.0.1:5999/py:1"
        );
        assert_eq!(
            expand("${NOPE:-localhost:5000}/py", &env).unwrap(),
            "localhost:5000/py"
        );
        assert!(expand("${NOPE}/py", &env).is_err());
        assert!(expand("${REGISTRY/py", &env).is_err());
        assert_eq!(expand("plain:1", &env).unwrap(), "plain:1");
    }

    #[test]
    fn the_embedded_default_parses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("layers/app")).unwrap();
        let c = CompareConfig::parse(DEFAULT_TOML, dir.path(), "default", &env).unwrap();
        assert_eq!(c.candidates.len(), 4);
        assert!(
            c.candidates[0].base.starts_with("127.0.0.1:5999/"),
            "{:?}",
            c.candidates
        );
        assert_eq!(c.app.port, 8080);
        assert_eq!(c.app.layers[0].dest, "/app");
        assert!(c.load.isolate, "isolation is the default");
    }

    #[test]
    fn isolation_can_be_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
        let t = format!("[app]\nport = 8080\n[load]\nisolate = false\n{cand}");
        let c = CompareConfig::parse(&t, dir.path(), "x.toml", &env).unwrap();
        assert!(!c.load.isolate);
    }

    #[test]
    fn rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = |t: &str| {
            CompareConfig::parse(t, dir.path(), "x.toml", &env)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert!(p("[app]\nport = 8080\n").contains("no [[candidate]]"));
        assert!(p("[app]\nport = 8080\nbogus = 1\n").contains("unknown field"));
        let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
        assert!(
            p(&format!(
                "[app]\nport = 8080\nlayers = [\"missing:/app\"]\n{cand}"
            ))
            .contains("does not exist")
        );
        assert!(
            p(&format!("[app]\nport = 8080\nhealth = \"h\"\n{cand}")).contains("must start with /")
        );
        assert!(
            p(&format!("[app]\nport = 8080\n[load]\nrepeats = 0\n{cand}")).contains("at least 1")
        );
        assert!(p(&format!("[app]\nport = 8080\n{cand}{cand}")).contains("used twice"));
    }
}
