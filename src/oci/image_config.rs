//! Editing an image config (the JSON a manifest's `config` descriptor points at).
//!
//! The base's config is edited as a `serde_json::Value`, never re-serialized
//! through typed structs: fields we do not model (`Healthcheck`, `Shell`,
//! `OnBuild`, `StopSignal`, `container_config`, `docker_version`, ...) survive
//! untouched. Output is compact JSON with every object's keys sorted, so the same
//! base and edit always give the same bytes (and the same digest). Semantics
//! follow a Dockerfile's instructions (`ENTRYPOINT` resets `CMD`, `ENV` merges by
//! key, `EXPOSE` and `LABEL` merge), and timestamps follow `SOURCE_DATE_EPOCH`.

use serde_json::{Map, Value, json};

use crate::oci::digest::Digest;
use crate::oci::manifest::Platform;

mod run_settings;
pub use run_settings::{normalize_stop_signal, parse_healthcheck};

/// What `build` changes in the base config. Empty fields leave the base's values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigEdit {
    /// Replaces `Entrypoint`; also clears the base's `Cmd` unless `cmd` is given.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `K=V` items merged into `Env` by key (in place when the key exists, else appended).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `8080`, `8080/tcp`, `53/udp`: merged into `ExposedPorts` (no protocol means tcp).
    pub expose: Vec<String>,
    /// Merged into `Labels`.
    pub labels: Vec<(String, String)>,
    pub user: Option<String>,
    /// Absolute paths merged into `Volumes` (a Dockerfile's `VOLUME`).
    pub volumes: Vec<String>,
    /// Replaces `StopSignal` (`SIGTERM`, `SIGRTMIN+3`, `15`).
    pub stop_signal: Option<String>,
    /// Replaces `Healthcheck`: Docker's object (`Test`, `Interval`, `Timeout`,
    /// `StartPeriod`, `StartInterval` in nanoseconds, `Retries`), checked by
    /// `parse_healthcheck`.
    pub healthcheck: Option<Value>,
    /// `SOURCE_DATE_EPOCH` (or 0): the config's `created` and the new history entries.
    pub created_epoch: u64,
}

/// A layer `build` adds on top of the base, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedLayer {
    /// sha256 of the uncompressed layer tar (goes to `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// History text, e.g. `ocibench: COPY layers/app /app`.
    pub created_by: String,
}

/// Why a config could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the base image config is not valid JSON")]
    Parse(#[source] serde_json::Error),
    #[error("the base image config is not a JSON object")]
    NotAnObject,
    #[error("the base image config has a malformed `{field}` (expected {expected})")]
    Malformed {
        field: &'static str,
        expected: &'static str,
    },
    #[error("the base image's rootfs type is {0:?}; only \"layers\" can be extended")]
    RootfsType(String),
    #[error("invalid port {port:?}: {reason}")]
    BadPort { port: String, reason: &'static str },
    #[error("invalid environment variable {0:?}: expected KEY=VALUE")]
    BadEnv(String),
    #[error("invalid label key {0:?}: a label needs a non-empty key")]
    BadLabel(String),
    #[error("SOURCE_DATE_EPOCH {0} is after the year 9999")]
    BadEpoch(u64),
    #[error("invalid volume {0:?}: a volume is an absolute path")]
    BadVolume(String),
    #[error(
        "invalid stop signal {0:?}: expected a signal name (SIGTERM, TERM, SIGRTMIN+3) or number"
    )]
    BadStopSignal(String),
    #[error("invalid healthcheck {text:?}: {reason}")]
    BadHealthcheck { text: String, reason: String },
    #[error("invalid command {text:?}: expected a JSON array of strings or a single word")]
    BadExecForm {
        text: String,
        #[source]
        source: Option<serde_json::Error>,
    },
}

/// The config of `scratch`: an empty image for `platform`, in the same shape
/// `edit_config` produces (sorted keys, compact).
pub fn scratch_config(platform: &Platform) -> Vec<u8> {
    let mut v = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    if let Some(variant) = &platform.variant {
        v["variant"] = Value::String(variant.clone());
    }
    to_canonical_bytes(&v)
}

/// Applies `edit` and appends `layers` to the config `base`; returns the new bytes.
pub fn edit_config(
    base: &[u8],
    edit: &ConfigEdit,
    layers: &[AddedLayer],
) -> Result<Vec<u8>, ConfigError> {
    edit.validate()?;
    let created = rfc3339_utc(edit.created_epoch)?;
    let mut root: Value = serde_json::from_slice(base).map_err(ConfigError::Parse)?;
    let top = root.as_object_mut().ok_or(ConfigError::NotAnObject)?;

    apply_runtime_config(object_field(top, "config")?, edit)?;
    append_layers(top, layers, &created)?;
    top.insert("created".into(), Value::String(created));
    Ok(to_canonical_bytes(&root))
}

impl ConfigEdit {
    /// Checks the user-given parts (ports, env, labels, epoch) without a base,
    /// so a command can reject bad flags before pulling anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for p in &self.expose {
            normalize_port(p)?;
        }
        for e in &self.env {
            env_key(e)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| ConfigError::BadEnv(e.clone()))?;
        }
        if let Some((k, _)) = self.labels.iter().find(|(k, _)| k.is_empty()) {
            return Err(ConfigError::BadLabel(k.clone()));
        }
        if let Some(v) = self.volumes.iter().find(|v| !v.starts_with('/')) {
            return Err(ConfigError::BadVolume(v.clone()));
        }
        if let Some(s) = &self.stop_signal {
            normalize_stop_signal(s)?;
        }
        if let Some(h) = &self.healthcheck {
            run_settings::check_healthcheck(h)?;
        }
        rfc3339_utc(self.created_epoch)?;
        Ok(())
    }
}

/// The `config` object's edits (Entrypoint, Cmd, Env, WorkingDir, ExposedPorts,
/// Labels, User, Volumes, StopSignal, Healthcheck).
fn apply_runtime_config(
    cfg: &mut Map<String, Value>,
    edit: &ConfigEdit,
) -> Result<(), ConfigError> {
    let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    if let Some(ep) = &edit.entrypoint {
        cfg.insert("Entrypoint".into(), strings(ep));
        // As a Dockerfile's ENTRYPOINT: the base's CMD was written for the base's
        // entrypoint, so it no longer applies.
        if edit.cmd.is_none() {
            cfg.remove("Cmd");
        }
    }
    if let Some(cmd) = &edit.cmd {
        cfg.insert("Cmd".into(), strings(cmd));
    }
    if !edit.env.is_empty() {
        let env = array_field(cfg, "Env", "Env", "a list of KEY=VALUE strings")?;
        for item in &edit.env {
            let key = env_key(item).expect("validated");
            let existing = env.iter_mut().find(|v| {
                v.as_str()
                    .is_some_and(|s| s.split_once('=').map_or(s, |(k, _)| k) == key)
            });
            match existing {
                Some(slot) => *slot = Value::String(item.clone()),
                None => env.push(Value::String(item.clone())),
            }
        }
    }
    if let Some(w) = &edit.workdir {
        cfg.insert("WorkingDir".into(), Value::String(w.clone()));
    }
    if !edit.expose.is_empty() {
        let ports = object_field_named(cfg, "ExposedPorts", "ExposedPorts")?;
        for p in &edit.expose {
            ports.insert(normalize_port(p)?, json!({}));
        }
    }
    if !edit.labels.is_empty() {
        let labels = object_field_named(cfg, "Labels", "Labels")?;
        for (k, v) in &edit.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
    }
    if let Some(u) = &edit.user {
        cfg.insert("User".into(), Value::String(u.clone()));
    }
    if !edit.volumes.is_empty() {
        let volumes = object_field_named(cfg, "Volumes", "Volumes")?;
        for v in &edit.volumes {
            volumes.insert(v.clone(), json!({}));
        }
    }
    if let Some(s) = &edit.stop_signal {
        cfg.insert(
            "StopSignal".into(),
            Value::String(normalize_stop_signal(s)?),
        );
    }
    if let Some(h) = &edit.healthcheck {
        cfg.insert("Healthcheck".into(), h.clone());
    }
    Ok(())
}

/// Appends the layers' diff_ids to `rootfs` and one history entry per layer.
fn append_layers(
    top: &mut Map<String, Value>,
    layers: &[AddedLayer],
    created: &str,
) -> Result<(), ConfigError> {
    let rootfs = object_field(top, "rootfs")?;
    match rootfs.get("type") {
        None | Some(Value::Null) => {
            rootfs.insert("type".into(), Value::String("layers".into()));
        }
        Some(Value::String(t)) if t == "layers" => {}
        Some(other) => {
            let t = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return Err(ConfigError::RootfsType(t));
        }
    }
    let diff_ids = array_field(rootfs, "diff_ids", "rootfs.diff_ids", "a list of digests")?;
    diff_ids.extend(layers.iter().map(|l| Value::String(l.diff_id.to_string())));
    let history = array_field(top, "history", "history", "a list of objects")?;
    history.extend(
        layers.iter().map(
            |l| json!({"created": created, "created_by": l.created_by, "comment": "ocibench"}),
        ),
    );
    Ok(())
}

/// `map[key]` as an object, created when missing or null.
fn object_field<'a>(
    map: &'a mut Map<String, Value>,
    key: &'static str,
) -> Result<&'a mut Map<String, Value>, ConfigError> {
    object_field_named(map, key, key)
}

fn object_field_named<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a mut Map<String, Value>, ConfigError> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().ok_or(ConfigError::Malformed {
        field,
        expected: "an object",
    })
}

/// `map[key]` as an array, created when missing or null.
fn array_field<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    field: &'static str,
    expected: &'static str,
) -> Result<&'a mut Vec<Value>, ConfigError> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
        .ok_or(ConfigError::Malformed { field, expected })
}

/// The key of a `K=V` item, or `None` without `=`.
fn env_key(item: &str) -> Option<&str> {
    item.split_once('=').map(|(k, _)| k)
}

/// `8080` -> `8080/tcp`; `53/UDP` -> `53/udp`; rejects ports outside 1..=65535
/// and protocols other than tcp, udp and sctp (Docker's set).
pub fn normalize_port(spec: &str) -> Result<String, ConfigError> {
    let bad = |reason| ConfigError::BadPort {
        port: spec.to_string(),
        reason,
    };
    let (num, proto) = match spec.split_once('/') {
        Some((n, p)) => (n, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the port must be a number"));
    }
    match num.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => {}
        _ => return Err(bad("the port must be between 1 and 65535")),
    }
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("the protocol must be tcp, udp or sctp"));
    }
    let n: u32 = num.parse().expect("checked above");
    Ok(format!("{n}/{proto}"))
}

/// Parses `--entrypoint`/`--cmd`: a JSON array of strings (a Dockerfile's exec
/// form) or, when the text does not start with `[`, a single word.
pub fn parse_exec_form(text: &str) -> Result<Vec<String>, ConfigError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).map_err(|e| ConfigError::BadExecForm {
            text: text.to_string(),
            source: Some(e),
        });
    }
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return Err(ConfigError::BadExecForm {
            text: text.to_string(),
            source: None,
        });
    }
    Ok(vec![text.to_string()])
}

/// Seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339_utc(epoch: u64) -> Result<String, ConfigError> {
    // 9999-12-31T23:59:59Z: RFC 3339 has four-digit years.
    const MAX: u64 = 253_402_300_799;
    if epoch > MAX {
        return Err(ConfigError::BadEpoch(epoch));
    }
    let days = i64::try_from(epoch / 86_400).expect("bounded above");
    let secs = epoch % 86_400;
    let (y, m, d) = civil_from_days(days);
    Ok(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days` (exact for the whole i64 day range we use).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// Compact JSON with every object's keys sorted bytewise, whatever serde_json's
/// map type is (a dependency enabling `preserve_order` must not change digests).
pub fn to_canonical_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(&sorted(v)).expect("a JSON value serializes")
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit() -> ConfigEdit {
        ConfigEdit::default()
    }

    fn run(base: &str, e: &ConfigEdit, layers: &[AddedLayer]) -> Value {
        serde_json::from_slice(&edit_config(base.as_bytes(), e, layers).unwrap()).unwrap()
    }

    const DOCKER_BASE: &str = r#"{
        "architecture": "amd64", "os": "linux", "docker_version": "20.10.7",
        "container_config": {"Hostname": "abc", "Cmd": ["/bin/sh"]},
        "config": {
            "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
            "Cmd": ["python3"],
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000},
            "Shell": ["/bin/bash", "-c"], "OnBuild": null, "StopSignal": "SIGTERM",
            "ArgsEscaped": true,
            "ExposedPorts": {"80/tcp": {}},
            "Labels": {"maintainer": "x"}
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
        "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "ADD rootfs.tar /"}],
        "created": "2020-01-01T00:00:00Z"
    }"#;

    #[test]
    fn unknown_fields_survive() {
        let v = run(DOCKER_BASE, &edit(), &[]);
        let c = &v["config"];
        assert_eq!(c["Healthcheck"]["Interval"], json!(30_000_000_000u64));
        assert_eq!(c["Shell"], json!(["/bin/bash", "-c"]));
        assert_eq!(c["OnBuild"], Value::Null);
        assert_eq!(c["StopSignal"], "SIGTERM");
        assert_eq!(c["ArgsEscaped"], true);
        assert_eq!(v["container_config"]["Hostname"], "abc");
        assert_eq!(v["docker_version"], "20.10.7");
        assert_eq!(v["created"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn env_merges_by_key_in_place() {
        let e = ConfigEdit {
            env: vec![
                "LANG=en_US.UTF-8".into(),
                "PORT=8080".into(),
                "A=b=c".into(),
            ],
            ..edit()
        };
        let v = run(DOCKER_BASE, &e, &[]);
        assert_eq!(
            v["config"]["Env"],
            json!([
                "PATH=/usr/bin:/bin",
                "LANG=en_US.UTF-8",
                "PORT=8080",
                "A=b=c"
            ])
        );
        let bad = ConfigEdit {
            env: vec!["NOEQUALS".into()],
            ..edit()
        };
        assert!(matches!(
            edit_config(DOCKER_BASE.as_bytes(), &bad, &[]),
            Err(ConfigError::BadEnv(_))
        ));
    }

    #[test]
    fn entrypoint_resets_cmd_unless_given() {
        let e = ConfigEdit {
            entrypoint: Some(vec!["/app/run".into()]),
            ..edit()
        };
        let v = run(DOCKER_BASE, &e, &[]);
        assert_eq!(v["config"]["Entrypoint"], json!(["/app/run"]));
        assert!(v["config"].get("Cmd").is_none());

        let e = ConfigEdit {
            entrypoint: Some(vec!["/app/run".into()]),
            cmd: Some(vec!["--port".into(), "8080".into()]),
            ..edit()
        };
        let v = run(DOCKER_BASE, &e, &[]);
        assert_eq!(v["config"]["Cmd"], json!(["--port", "8080"]));

        let e = ConfigEdit {
            cmd: Some(vec!["python3".into(), "-V".into()]),
            workdir: Some("/app".into()),
            user: Some("1000:1000".into()),
            ..edit()
        };
        let v = run(DOCKER_BASE, &e, &[]);
        assert_eq!(v["config"]["Cmd"], json!(["python3", "-V"]));
        assert!(v["config"].get("Entrypoint").is_none());
        assert_eq!(v["config"]["WorkingDir"], "/app");
        assert_eq!(v["config"]["User"], "1000:1000");
    }

    #[test]
    fn exposed_ports_and_labels_merge() {
        let e = ConfigEdit {
            expose: vec![
                "8080".into(),
                "53/udp".into(),
                "9000/TCP".into(),
                "132/sctp".into(),
            ],
            labels: vec![("org.example".into(), "1".into())],
            ..edit()
        };
        let v = run(DOCKER_BASE, &e, &[]);
        assert_eq!(
            v["config"]["ExposedPorts"],
            json!({"80/tcp": {}, "8080/tcp": {}, "53/udp": {}, "9000/tcp": {}, "132/sctp": {}})
        );
        assert_eq!(
            v["config"]["Labels"],
            json!({"maintainer": "x", "org.example": "1"})
        );
    }

    #[test]
    fn volumes_stop_signal_and_healthcheck() {
        let e = ConfigEdit {
            volumes: vec!["/data".into(), "/var/log".into()],
            stop_signal: Some("quit".into()),
            healthcheck: Some(json!({"Test": ["CMD", "/bin/true"], "Retries": 2})),
            ..edit()
        };
        let v = run(DOCKER_BASE, &e, &[]);
        assert_eq!(v["config"]["Volumes"], json!({"/data": {}, "/var/log": {}}));
        assert_eq!(v["config"]["StopSignal"], "SIGQUIT");
        assert_eq!(
            v["config"]["Healthcheck"],
            json!({"Test": ["CMD", "/bin/true"], "Retries": 2})
        );
        let relative = ConfigEdit {
            volumes: vec!["data".into()],
            ..edit()
        };
        assert!(matches!(
            edit_config(DOCKER_BASE.as_bytes(), &relative, &[]),
            Err(ConfigError::BadVolume(v)) if v == "data"
        ));
        let bad_check = ConfigEdit {
            healthcheck: Some(json!({"Test": "true"})),
            ..edit()
        };
        assert!(matches!(
            bad_check.validate(),
            Err(ConfigError::BadHealthcheck { .. })
        ));
    }

    #[test]
    fn bad_ports_error() {
        for p in [
            "0", "65536", "http", "", "80/icmp", "-1", "8080/", "/tcp", "80-90", " 80",
        ] {
            let e = ConfigEdit {
                expose: vec![p.into()],
                ..edit()
            };
            let err = edit_config(DOCKER_BASE.as_bytes(), &e, &[]).unwrap_err();
            assert!(matches!(err, ConfigError::BadPort { .. }), "{p}: {err}");
        }
        assert_eq!(normalize_port("65535").unwrap(), "65535/tcp");
        assert_eq!(normalize_port("0080").unwrap(), "80/tcp");
    }

    #[test]
    fn layers_and_history_append() {
        let layers = [
            AddedLayer {
                diff_id: Digest::of(b"a"),
                created_by: "ocibench: COPY layers/app /app".into(),
            },
            AddedLayer {
                diff_id: Digest::of(b"b"),
                created_by: "ocibench: nix closure".into(),
            },
        ];
        let e = ConfigEdit {
            created_epoch: 1_700_000_000,
            ..edit()
        };
        let v = run(DOCKER_BASE, &e, &layers);
        let ids = v["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[2], Digest::of(b"b").to_string());
        let h = v["history"].as_array().unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(
            h[1],
            json!({"created": "2023-11-14T22:13:20Z", "created_by": "ocibench: COPY layers/app /app", "comment": "ocibench"})
        );
        assert_eq!(v["created"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn missing_sections_are_created() {
        let layer = AddedLayer {
            diff_id: Digest::of(b"a"),
            created_by: "x".into(),
        };
        let e = ConfigEdit {
            cmd: Some(vec!["x".into()]),
            ..edit()
        };
        let v = run(
            r#"{"architecture":"amd64","os":"linux","config":null}"#,
            &e,
            &[layer],
        );
        assert_eq!(v["config"]["Cmd"], json!(["x"]));
        assert_eq!(v["rootfs"]["type"], "layers");
        assert_eq!(v["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(v["history"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn bad_bases_error() {
        let e = edit();
        let wrong_type = r#"{"rootfs":{"type":"snapshot","diff_ids":[]}}"#;
        assert!(matches!(
            edit_config(wrong_type.as_bytes(), &e, &[]),
            Err(ConfigError::RootfsType(t)) if t == "snapshot"
        ));
        assert!(matches!(
            edit_config(b"[]", &e, &[]),
            Err(ConfigError::NotAnObject)
        ));
        assert!(matches!(
            edit_config(b"{", &e, &[]),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            edit_config(
                br#"{"config":{"Env":"X=1"}}"#,
                &ConfigEdit {
                    env: vec!["A=1".into()],
                    ..edit()
                },
                &[]
            ),
            Err(ConfigError::Malformed { field: "Env", .. })
        ));
    }

    #[test]
    fn output_is_sorted_compact_and_stable() {
        let e = ConfigEdit {
            labels: vec![("z".into(), "1".into()), ("a".into(), "2".into())],
            expose: vec!["9090".into(), "1000".into()],
            ..edit()
        };
        let a = edit_config(DOCKER_BASE.as_bytes(), &e, &[]).unwrap();
        let b = edit_config(DOCKER_BASE.as_bytes(), &e, &[]).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        assert!(
            !text.contains(": ") && !text.contains(", "),
            "not compact: {text}"
        );
        assert!(!text.contains('\n'));
        assert!(
            text.starts_with(r#"{"architecture":"amd64","config":{"ArgsEscaped":true,"Cmd""#),
            "{text}"
        );
        assert!(
            text.contains(r#""Labels":{"a":"2","maintainer":"x","z":"1"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""ExposedPorts":{"1000/tcp":{},"80/tcp":{},"9090/tcp":{}}"#),
            "{text}"
        );
        // Recursively sorted: every object's keys in order.
        fn check(v: &Value) {
            if let Value::Object(m) = v {
                let keys: Vec<&String> = m.keys().collect();
                let mut s = keys.clone();
                s.sort();
                assert_eq!(keys, s);
                m.values().for_each(check);
            } else if let Value::Array(a) = v {
                a.iter().for_each(check);
            }
        }
        check(&serde_json::from_str(&text).unwrap());
    }

    #[test]
    fn scratch_has_the_minimal_shape() {
        let amd = scratch_config(&Platform::new("linux", "amd64", None));
        assert_eq!(
            String::from_utf8(amd.clone()).unwrap(),
            r#"{"architecture":"amd64","config":{},"history":[],"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
        let arm = scratch_config(&Platform::new("linux", "arm64", Some("v8")));
        let v: Value = serde_json::from_slice(&arm).unwrap();
        assert_eq!(v["variant"], "v8");
        // A scratch config is a valid base.
        let out = run(
            std::str::from_utf8(&amd).unwrap(),
            &ConfigEdit {
                cmd: Some(vec!["/hello".into()]),
                ..edit()
            },
            &[AddedLayer {
                diff_id: Digest::of(b"x"),
                created_by: "c".into(),
            }],
        );
        assert_eq!(out["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn epoch_to_rfc3339() {
        assert_eq!(rfc3339_utc(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(951_868_799).unwrap(), "2000-02-29T23:59:59Z");
        assert_eq!(rfc3339_utc(4_107_542_400).unwrap(), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_234_567_890).unwrap(), "2009-02-13T23:31:30Z");
        assert_eq!(
            rfc3339_utc(253_402_300_799).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert!(matches!(
            rfc3339_utc(253_402_300_800),
            Err(ConfigError::BadEpoch(_))
        ));
    }

    #[test]
    fn exec_form_parsing() {
        assert_eq!(
            parse_exec_form(r#"["python3", "/app/server.py"]"#).unwrap(),
            vec!["python3", "/app/server.py"]
        );
        assert_eq!(parse_exec_form("/bin/app").unwrap(), vec!["/bin/app"]);
        assert_eq!(parse_exec_form("[]").unwrap(), Vec::<String>::new());
        assert!(parse_exec_form("python3 server.py").is_err());
        assert!(parse_exec_form(r#"["a", 1]"#).is_err());
        assert!(parse_exec_form("").is_err());
    }
}
