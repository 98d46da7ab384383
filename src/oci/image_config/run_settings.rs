//! The config fields that steer how a container is run and stopped rather than
//! what it runs (`StopSignal`, `Healthcheck`): checked here so `build` refuses a
//! signal or healthcheck podman would reject at `run` time, long after the build.

use serde_json::Value;

use super::ConfigError;

/// `TERM`, `sigterm`, `SIGTERM` -> `SIGTERM`; `SIGRTMIN+3` kept; `15` kept.
/// Numbers must be 1..=64 (Linux's signals); names are letters, digits, `+`, `-`.
pub fn normalize_stop_signal(text: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::BadStopSignal(text.to_string());
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n.to_string()),
            _ => Err(bad()),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let well_formed = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-');
    if !well_formed {
        return Err(bad());
    }
    Ok(format!("SIG{name}"))
}

/// The keys of Docker's `HealthConfig` that hold nanoseconds.
const DURATION_KEYS: [&str; 4] = ["Interval", "Timeout", "StartPeriod", "StartInterval"];

/// Parses `--healthcheck`'s JSON (Docker's `HealthConfig`, as `docker inspect`
/// shows it): `{"Test":["CMD","curl","-f","http://localhost/"],"Interval":30000000000}`.
pub fn parse_healthcheck(text: &str) -> Result<Value, ConfigError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ConfigError::BadHealthcheck {
        text: text.to_string(),
        reason: format!("not JSON ({e})"),
    })?;
    check(&v).map_err(|reason| ConfigError::BadHealthcheck {
        text: text.to_string(),
        reason,
    })?;
    Ok(v)
}

/// `parse_healthcheck`'s checks on a value already parsed (a library caller's).
pub(super) fn check_healthcheck(v: &Value) -> Result<(), ConfigError> {
    check(v).map_err(|reason| ConfigError::BadHealthcheck {
        text: v.to_string(),
        reason,
    })
}

fn check(v: &Value) -> Result<(), String> {
    let obj = v
        .as_object()
        .ok_or("expected a JSON object with a \"Test\" array")?;
    for (key, value) in obj {
        match key.as_str() {
            "Test" => {}
            k if DURATION_KEYS.contains(&k) || k == "Retries" => {
                if value.as_u64().is_none() {
                    return Err(format!(
                        "\"{k}\" must be a whole number >= 0 (durations in nanoseconds)"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "unknown key \"{other}\" (expected Test, Interval, Timeout, StartPeriod, StartInterval, Retries)"
                ));
            }
        }
    }
    let test = obj
        .get("Test")
        .and_then(Value::as_array)
        .ok_or("\"Test\" must be an array of strings")?;
    let words: Vec<&str> = test.iter().filter_map(Value::as_str).collect();
    if words.len() != test.len() {
        return Err("\"Test\" must be an array of strings".into());
    }
    match words.as_slice() {
        ["NONE"] => Ok(()),
        ["CMD" | "CMD-SHELL", _, ..] => Ok(()),
        _ => Err(
            "\"Test\" must be [\"NONE\"], [\"CMD\", PROGRAM, ARGS...] or [\"CMD-SHELL\", COMMAND]"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stop_signals() {
        assert_eq!(normalize_stop_signal("TERM").unwrap(), "SIGTERM");
        assert_eq!(normalize_stop_signal("sigquit").unwrap(), "SIGQUIT");
        assert_eq!(normalize_stop_signal("SIGRTMIN+3").unwrap(), "SIGRTMIN+3");
        assert_eq!(normalize_stop_signal("15").unwrap(), "15");
        for bad in ["", "0", "65", "SIG", "SIG TERM", "9x", "+3"] {
            assert!(
                matches!(
                    normalize_stop_signal(bad),
                    Err(ConfigError::BadStopSignal(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn healthchecks() {
        let h = parse_healthcheck(
            r#"{"Test":["CMD-SHELL","test -e /x"],"Interval":5000000000,"Retries":3}"#,
        )
        .unwrap();
        assert_eq!(
            h,
            json!({"Test": ["CMD-SHELL", "test -e /x"], "Interval": 5_000_000_000u64, "Retries": 3})
        );
        assert_eq!(
            parse_healthcheck(r#"{"Test":["NONE"]}"#).unwrap()["Test"][0],
            "NONE"
        );
        for (bad, why) in [
            ("not json", "not JSON"),
            ("[]", "expected a JSON object"),
            (r#"{"Interval":1}"#, "\"Test\" must be an array"),
            (r#"{"Test":["CMD"]}"#, "\"Test\" must be [\"NONE\"]"),
            (r#"{"Test":["RUN","x"]}"#, "\"Test\" must be [\"NONE\"]"),
            (r#"{"Test":["CMD",1]}"#, "array of strings"),
            (
                r#"{"Test":["NONE"],"Interval":"5s"}"#,
                "\"Interval\" must be a whole number",
            ),
            (
                r#"{"Test":["NONE"],"Retries":-1}"#,
                "\"Retries\" must be a whole number",
            ),
            (
                r#"{"Test":["NONE"],"interval":1}"#,
                "unknown key \"interval\"",
            ),
        ] {
            let e = parse_healthcheck(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
