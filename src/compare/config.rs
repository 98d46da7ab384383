//! `ocibench.toml`: the application, the load and the candidate bases of a
//! comparison, validated once into `CompareConfig`. Paths are relative to the
//! file; base references may use `${VAR}` / `${VAR:-default}` so one file serves
//! any registry address.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::loadgen::search::{
    DEFAULT_MAX_STEPS, DEFAULT_PRECISION, DEFAULT_START, RateSearch, Slo, parse_percent,
};

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
    #[serde(default)]
    cold_start: RawColdStart,
    #[serde(default, rename = "candidate")]
    candidates: Vec<RawCandidate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColdStart {
    #[serde(default = "d_cold_rounds")]
    rounds: u32,
    #[serde(default)]
    bandwidth: Option<String>,
}

fn d_cold_rounds() -> u32 {
    ColdStartSettings::default().rounds
}

impl Default for RawColdStart {
    fn default() -> Self {
        RawColdStart {
            rounds: d_cold_rounds(),
            bandwidth: None,
        }
    }
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
    /// Under host networking, the variable that gives the service its port.
    #[serde(default)]
    port_env: Option<String>,
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
    #[serde(default)]
    cpus: Option<f64>,
    #[serde(default)]
    memory: Option<String>,
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
    /// `None`: the default count, unless `duration` is given.
    #[serde(default)]
    requests: Option<u64>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default = "d_concurrency")]
    concurrency: u64,
    #[serde(default = "d_true")]
    keepalive: bool,
    #[serde(default)]
    warmup: Option<RawWarmup>,
    #[serde(default = "d_repeats")]
    repeats: u32,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default = "d_true")]
    isolate: bool,
    /// `network = "auto" | "host" | "published"`.
    #[serde(default)]
    network: Option<String>,
    /// `slo = "p99=50ms"`: rank by capacity at this SLO (`bench --slo`'s syntax).
    #[serde(default)]
    slo: Option<String>,
    /// `slo_precision = "5%"`.
    #[serde(default)]
    slo_precision: Option<String>,
    /// `slo_step = "2s"`: each search step's length.
    #[serde(default)]
    slo_step: Option<String>,
    /// `slo_start = 100`: the first search's first rate, requests/s.
    #[serde(default)]
    slo_start: Option<f64>,
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
            requests: None,
            duration: None,
            concurrency: d_concurrency(),
            keepalive: true,
            warmup: None,
            repeats: d_repeats(),
            timeout: None,
            isolate: true,
            network: None,
            slo: None,
            slo_precision: None,
            slo_step: None,
            slo_start: None,
        }
    }
}

/// `warmup = 100` (requests) or `warmup = "1s"` (a time).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawWarmup {
    Count(u64),
    Time(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCandidate {
    name: String,
    base: String,
    #[serde(default)]
    cpus: Option<f64>,
    #[serde(default)]
    memory: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    layers: Option<Vec<String>>,
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
    /// Under host networking, the service's port variable (`[app] port_env`,
    /// default `PORT`; `""`: none, the service keeps `port`).
    pub port_env: Option<String>,
    pub health: String,
    pub path: String,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub podman_args: Vec<String>,
    pub startup_timeout: std::time::Duration,
    /// `[app]`'s limits, the default of every candidate.
    pub resources: Resources,
}

/// CPU and memory limits of the service's container, as Kubernetes limits
/// (podman `--cpus`, `--memory`); `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// CPUs (1.5 = one and a half cores of CPU time per second).
    pub cpus: Option<f64>,
    /// As podman writes it: `512m`, `1g`, `268435456`.
    pub memory: Option<String>,
}

impl Resources {
    /// `other`'s values where it sets them, else these.
    pub fn overridden_by(&self, other: &Resources) -> Resources {
        Resources {
            cpus: other.cpus.or(self.cpus),
            memory: other.memory.clone().or_else(|| self.memory.clone()),
        }
    }

    /// The `podman run` arguments for these limits.
    pub fn podman_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(c) = self.cpus {
            args.push(format!("--cpus={c}"));
        }
        if let Some(m) = &self.memory {
            args.push(format!("--memory={m}"));
        }
        args
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadSettings {
    /// Requests per measured run; ignored when `duration` is set.
    pub requests: u64,
    /// Each measured run lasts this long instead of a request count.
    pub duration: Option<std::time::Duration>,
    pub concurrency: u64,
    pub keepalive: bool,
    /// Warm-up requests before each measured run (0 when warming up by time).
    pub warmup: u64,
    /// Warm-up by time instead: a load of this long before each measured run.
    pub warmup_duration: Option<std::time::Duration>,
    pub repeats: u32,
    pub timeout: std::time::Duration,
    /// The container and the load generator on separate CPUs (`[load] isolate`,
    /// default true; `compare --no-isolate` turns it off).
    pub isolate: bool,
    /// `[load] network`: how the load reaches the service (default auto).
    pub network: crate::runner::NetworkChoice,
    /// `[load] slo`: each run searches the capacity at this SLO, and the
    /// candidates are ranked by it; `None`: by closed-loop throughput.
    pub slo: Option<SloSettings>,
}

/// The step length of a capacity search when neither `slo_step` nor
/// `duration` gives one: long enough for a p99 of a few hundred requests at
/// the rates a small service takes, short enough for a search per run.
pub const DEFAULT_SLO_STEP: Duration = Duration::from_secs(2);

/// `[load] slo` and its knobs: how each run searches its capacity
/// (`loadgen::find_rate`, as `bench --find-rate`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloSettings {
    pub slo: Slo,
    /// The lowest failing rate within this fraction above the highest passing
    /// one (`slo_precision`, default 5%).
    pub precision: f64,
    /// Each step's length (`slo_step`); `None`: `[load] duration`, else
    /// `DEFAULT_SLO_STEP`.
    pub step: Option<Duration>,
    /// The first search's first rate, requests/s (`slo_start`, default 100).
    pub start: f64,
}

impl SloSettings {
    /// Each step's length under `load`.
    pub fn step_length(&self, load: &LoadSettings) -> Duration {
        self.step.or(load.duration).unwrap_or(DEFAULT_SLO_STEP)
    }

    /// One run's search. `previous`: a capacity found before (this
    /// candidate's last run, else another's): the search starts there with a
    /// gentle ramp (1 + 2 × precision), so it brackets an unchanged capacity
    /// in two steps and bisects once; without one it doubles from `start`.
    pub fn search(&self, previous: Option<f64>) -> RateSearch {
        let mut s = RateSearch::new(self.slo);
        s.precision = self.precision;
        s.max_steps = DEFAULT_MAX_STEPS;
        s.start = self.start;
        if let Some(p) = previous.filter(|p| p.is_finite() && *p >= 1.0) {
            s.start = p.min(crate::loadgen::config::MAX_RATE);
            s.ramp = (1.0 + 2.0 * self.precision).min(2.0);
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: String,
    /// The base reference with `${VAR}`s expanded.
    pub base: String,
    /// `[app]`'s limits with the candidate's own over them.
    pub resources: Resources,
    /// What the candidate changes of `[app]`'s image.
    pub overrides: Overrides,
}

/// A candidate's changes to `[app]`'s image: `env` merges by key (a candidate's
/// `K=V` replaces `[app]`'s `K`, other keys stay); `entrypoint`, `cmd` and
/// `layers` replace `[app]`'s whole when given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub layers: Option<Vec<AppLayer>>,
}

impl Candidate {
    /// A candidate with `[app]`'s image and limits, as before overrides existed.
    pub fn plain(name: impl Into<String>, base: impl Into<String>) -> Candidate {
        Candidate {
            name: name.into(),
            base: base.into(),
            resources: Resources::default(),
            overrides: Overrides::default(),
        }
    }

    /// `[app]` with this candidate's overrides applied.
    pub fn app(&self, app: &AppConfig) -> AppConfig {
        let mut out = app.clone();
        out.env = merge_env(&app.env, &self.overrides.env);
        if let Some(e) = &self.overrides.entrypoint {
            out.entrypoint = Some(e.clone());
        }
        if let Some(c) = &self.overrides.cmd {
            out.cmd = Some(c.clone());
        }
        if let Some(l) = &self.overrides.layers {
            out.layers = l.clone();
        }
        out.resources = self.resources.clone();
        out
    }
}

/// `base` with each `K=V` (or `K`) of `over` replacing the entry of the same key,
/// new keys appended in their order.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        match out.iter_mut().find(|b| key(b) == key(e)) {
            Some(b) => *b = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// A validated comparison.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// The file it came from (or `(embedded default)`).
    pub source: String,
    pub app: AppConfig,
    pub load: LoadSettings,
    pub cold_start: ColdStartSettings,
    pub candidates: Vec<Candidate>,
}

/// `[cold_start]`: how many rounds start from images absent from podman's
/// storage (pulled from a registry ocibench serves on loopback), and how fast
/// that registry answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdStartSettings {
    /// The first `rounds` rounds start cold (default 3; at most `[load]
    /// repeats` count); 0 (`compare --no-cold-start`): every round starts warm.
    pub rounds: u32,
    /// The node's bandwidth to the registry in bytes per second
    /// (`bandwidth = "100Mbit/s"`); `None`: as fast as loopback goes.
    pub bandwidth: Option<u64>,
}

impl Default for ColdStartSettings {
    fn default() -> Self {
        ColdStartSettings {
            rounds: 3,
            bandwidth: None,
        }
    }
}

/// A rate as people write it: `100Mbit/s`, `1 Gbit/s`, `100mbps`, `12.5MB/s`,
/// `50MiB/s` (`/s` optional), in bytes per second. Bits are decimal (k, M, G);
/// `B` is bytes, decimal with `kB`/`MB`/`GB`, binary with `KiB`/`MiB`/`GiB`.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} must start with a number, as in 100Mbit/s"))?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("/s")
        .or_else(|| unit.strip_suffix("ps"))
        .unwrap_or(unit);
    let per_byte = match unit {
        "bit" | "b" => 1.0 / 8.0,
        "kbit" | "Kbit" | "kb" | "Kb" => 1e3 / 8.0,
        "Mbit" | "mbit" | "Mb" | "mb" => 1e6 / 8.0,
        "Gbit" | "gbit" | "Gb" | "gb" => 1e9 / 8.0,
        "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (write e.g. 100Mbit/s, 1Gbit/s or 50MB/s)"
            ));
        }
    };
    let bytes = value * per_byte;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("{s:?} must be at least 1 byte per second"));
    }
    Ok(bytes.round() as u64)
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
        let parse_layers = |what: &str, layers: &[String]| {
            layers
                .iter()
                .map(|l| {
                    let (src, dest) = match crate::oci::build::layer::split_spec(l) {
                        (src, Some(dest)) => (src, dest),
                        _ => {
                            return Err(bad(format!(
                                "{what} entry {l:?} must be SRC:DEST (DEST absolute)"
                            )));
                        }
                    };
                    let src = dir.join(src);
                    if !src.exists() {
                        return Err(bad(format!("{what}: {} does not exist", src.display())));
                    }
                    Ok(AppLayer {
                        src,
                        dest: dest.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let layers = parse_layers("app.layers", &raw.app.layers)?;
        let resources = |what: &str, cpus: Option<f64>, memory: &Option<String>| {
            if let Some(c) = cpus
                && !(c.is_finite() && c > 0.0)
            {
                return Err(bad(format!(
                    "{what}cpus = {c} must be a positive number of CPUs (e.g. 1, 0.5, 2)"
                )));
            }
            if let Some(m) = memory
                && !valid_memory(m)
            {
                return Err(bad(format!(
                    "{what}memory = {m:?} must be a size such as 512m, 1g or 268435456 (bytes)"
                )));
            }
            Ok(Resources {
                cpus,
                memory: memory.clone(),
            })
        };
        let app_resources = resources("app.", raw.app.cpus, &raw.app.memory)?;
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
        if raw.load.requests.is_some() && raw.load.duration.is_some() {
            return Err(bad(
                "load.requests and load.duration exclude each other (give one: a count or a time)"
                    .into(),
            ));
        }
        let duration = match &raw.load.duration {
            None => None,
            Some(s) => match humantime::parse_duration(s) {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => return Err(bad("load.duration must be longer than 0".into())),
                Err(e) => {
                    return Err(bad(format!(
                        "load.duration {s:?}: {e} (write e.g. 500ms, 5s, 1m)"
                    )));
                }
            },
        };
        let (warmup, warmup_duration) = match &raw.load.warmup {
            None => (d_warmup(), None),
            Some(RawWarmup::Count(n)) => (*n, None),
            Some(RawWarmup::Time(s)) => match humantime::parse_duration(s) {
                Ok(d) => (0, Some(d).filter(|d| !d.is_zero())),
                Err(e) => {
                    return Err(bad(format!(
                        "load.warmup {s:?}: {e} (a request count, or a time such as 500ms, 1s)"
                    )));
                }
            },
        };
        let slo = slo_settings(&raw.load).map_err(bad)?;
        if slo.is_some() && raw.load.requests.is_some() {
            return Err(bad(
                "load.requests and load.slo exclude each other (a capacity search runs each \
                 step for a time: set load.slo_step or load.duration)"
                    .into(),
            ));
        }
        let load = LoadSettings {
            requests: raw.load.requests.unwrap_or_else(d_requests),
            duration,
            concurrency: raw.load.concurrency,
            keepalive: raw.load.keepalive,
            warmup,
            warmup_duration,
            repeats: raw.load.repeats,
            timeout: dur("load.timeout", &raw.load.timeout, 30)?,
            isolate: raw.load.isolate,
            network: match &raw.load.network {
                None => Default::default(),
                Some(n) => n.parse().map_err(|e| bad(format!("load.network: {e}")))?,
            },
            slo,
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
            let what = format!("candidate {}", c.name);
            let layers = match &c.layers {
                Some(l) => Some(parse_layers(&format!("{what}: layers"), l)?),
                None => None,
            };
            candidates.push(Candidate {
                name: c.name.clone(),
                base: expand(&c.base, env).map_err(|e| bad(format!("{what}: {e}")))?,
                resources: app_resources.overridden_by(&resources(
                    &format!("{what}: "),
                    c.cpus,
                    &c.memory,
                )?),
                overrides: Overrides {
                    env: c.env.clone().unwrap_or_default(),
                    entrypoint: c.entrypoint.clone(),
                    cmd: c.cmd.clone(),
                    layers,
                },
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
                port_env: match raw.app.port_env {
                    None => Some("PORT".into()),
                    Some(e) if e.is_empty() => None,
                    Some(e) => Some(e),
                },
                health: raw.app.health,
                path: raw.app.path,
                workdir: raw.app.workdir,
                user: raw.app.user,
                podman_args: raw.app.podman_args,
                startup_timeout: dur("app.startup_timeout", &raw.app.startup_timeout, 60)?,
                resources: app_resources,
            },
            load,
            cold_start: ColdStartSettings {
                rounds: raw.cold_start.rounds,
                bandwidth: match &raw.cold_start.bandwidth {
                    None => None,
                    Some(b) => Some(
                        parse_bandwidth(b).map_err(|e| bad(format!("cold_start.bandwidth {e}")))?,
                    ),
                },
            },
            candidates,
        })
    }
}

/// `[load] slo` and its knobs, checked; `None` without `slo` (then no knob
/// may be set: it would be silently ignored).
fn slo_settings(load: &RawLoad) -> Result<Option<SloSettings>, String> {
    let Some(raw) = &load.slo else {
        let knobs = [
            ("slo_precision", load.slo_precision.is_some()),
            ("slo_step", load.slo_step.is_some()),
            ("slo_start", load.slo_start.is_some()),
        ];
        return match knobs.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!(
                "load.{key} needs load.slo (the objective to search, such as slo = \"p99=50ms\")"
            )),
            None => Ok(None),
        };
    };
    let slo = Slo::parse(raw).map_err(|e| {
        let reason = match e {
            crate::loadgen::ConfigError::BadSlo { reason, .. } => reason,
            other => other.to_string(),
        };
        format!(
            "load.slo {raw:?}: {reason} (write e.g. slo = \"p99=50ms\" or \
             slo = \"p99.9=200ms,errors=0.1%\")"
        )
    })?;
    let precision = match &load.slo_precision {
        None => DEFAULT_PRECISION,
        Some(p) => parse_percent(p)
            .filter(|f| *f > 0.0 && *f < 1.0)
            .ok_or_else(|| {
                format!("load.slo_precision {p:?} must be a percentage above 0 and below 100%, such as \"5%\"")
            })?,
    };
    let step = match &load.slo_step {
        None => None,
        Some(s) => match humantime::parse_duration(s) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => return Err("load.slo_step must be longer than 0".into()),
            Err(e) => {
                return Err(format!(
                    "load.slo_step {s:?}: {e} (write e.g. 1s, 2s, 500ms)"
                ));
            }
        },
    };
    let start = load.slo_start.unwrap_or(DEFAULT_START);
    let max = crate::loadgen::config::MAX_RATE;
    if !(start.is_finite() && (1.0..=max).contains(&start)) {
        return Err(format!(
            "load.slo_start = {start} must be a rate from 1 to 10000000 requests per second"
        ));
    }
    Ok(Some(SloSettings {
        slo,
        precision,
        step,
        start,
    }))
}

/// A memory size as podman takes it: digits, then an optional unit b, k, m or g.
fn valid_memory(m: &str) -> bool {
    let digits = m.trim_end_matches(['b', 'k', 'm', 'g', 'B', 'K', 'M', 'G']);
    m.len() - digits.len() <= 1
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
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
mod tests;
