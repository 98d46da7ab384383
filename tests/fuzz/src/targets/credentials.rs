//! Credential files (`auth.json`, `config.json`) and `--creds USER:PASS`. The
//! input's first line names the registry (and optionally a repository after a
//! space), the rest is the file. Whatever the file holds, no password, `auth` or
//! identity token may appear in an error or a `Debug` rendering, and an `auth`
//! entry must decode to exactly its `USER:PASSWORD`. Helpers are never run: the
//! store gets no `PATH`.

use base64::Engine as _;
use ocibench::oci::registry::auth::{Credential, Secret};
use ocibench::oci::registry::credentials::{CredentialStore, CredsFlag, parse_creds};
use serde_json::Value;

/// Words of our own error messages: a "secret" made of them is not a leak.
const VOCABULARY: &str = "must be USER:PASSWORD (no `:` found) the user name before `:` is empty \
    must be one line USER:PASSWORD cannot read REGISTRY_AUTH_FILE names which does not exist \
    is not valid JSON must be an object a string (top level) auths credHelpers credsStore \
    the `auth` of is invalid: not base64 (bad character at offset bad length bad last symbol \
    bad padding) not UTF-8 once decoded does not decode to USER:PASSWORD decodes to an empty \
    user name no `auth`, and `username` or `password` is missing invalid credential helper \
    name docker-credential- not found in PATH (named in cannot run get for failed answered \
    identitytoken username password auth key --creds";

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, file) = text.split_once('\n').unwrap_or((text, ""));
    creds_flag(first);
    let (registry, repository) = match first.split_once(' ') {
        Some((r, p)) => (r, Some(p)),
        None => (first, None),
    };
    let path = crate::scratch_root().join("auth.json");
    std::fs::write(&path, file).expect("write the auth file");
    let store = CredentialStore::with_files(Vec::new(), vec![path.clone()], None);
    let result = store.resolve(registry, repository);

    let mut secrets = Vec::new();
    let mut innocent = format!(
        "{} {registry} {} {VOCABULARY}",
        path.display(),
        repository.unwrap_or("")
    );
    if let Ok(v) = serde_json::from_str::<Value>(file) {
        collect(&v, None, &mut secrets, &mut innocent);
    }
    let shown = match &result {
        Ok(found) => format!(
            "{found:?} {:?}",
            found.as_ref().map(|f| f.source.to_string())
        ),
        Err(e) => {
            let mut s = format!("{e:?} {e}");
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(" {inner}"));
                source = inner.source();
            }
            s
        }
    };
    if let Ok(Some(found)) = &result
        && let Credential::Basic { username, .. } = &found.credential
    {
        innocent.push(' ');
        innocent.push_str(username);
    }
    for secret in &secrets {
        if secret.len() >= 8
            && !secret.contains(char::is_whitespace)
            && !innocent.contains(secret.as_str())
        {
            assert!(
                !shown.contains(secret.as_str()),
                "secret {secret:?} shown: {shown}"
            );
        }
    }
    if let Ok(Some(found)) = &result
        && let Credential::Basic { username, password } = &found.credential
    {
        assert!(!username.is_empty(), "empty user name accepted");
        let _ = password.expose();
    }
}

/// `--creds USER:PASS`: split at the first colon, one line, user not empty.
fn creds_flag(line: &str) {
    if let Ok(c) = parse_creds(line, "--creds") {
        assert!(
            !c.username.is_empty() && !c.username.contains(':'),
            "{line:?}"
        );
        assert_eq!(format!("{}:{}", c.username, c.password.expose()), line);
        let pass = c.password.expose();
        // The same rendering without the password: text that is there anyway (the
        // user name, with the field syntax around it) is no leak.
        let without = format!(
            "{:?}",
            CredsFlag {
                username: c.username.clone(),
                password: Secret::new(""),
                origin: c.origin.clone(),
            }
        );
        if pass.len() >= 8 && !without.contains(pass) {
            assert!(
                !format!("{c:?}").contains(pass),
                "--creds password in Debug"
            );
        }
    }
}

/// Secrets (passwords, `auth` values and what they decode to, identity tokens) and
/// everything else (keys, names) of an auth file.
fn collect(v: &Value, key: Option<&str>, secrets: &mut Vec<String>, innocent: &mut String) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                innocent.push(' ');
                innocent.push_str(k);
                collect(inner, Some(k), secrets, innocent);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| collect(i, None, secrets, innocent)),
        Value::String(s) => match key {
            Some("password" | "identitytoken") => secrets.push(s.clone()),
            Some("auth") => {
                secrets.push(s.clone());
                let engine = base64::engine::GeneralPurpose::new(
                    &base64::alphabet::STANDARD,
                    base64::engine::GeneralPurposeConfig::new()
                        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
                );
                if let Ok(bytes) = engine.decode(s.trim())
                    && let Ok(decoded) = String::from_utf8(bytes)
                {
                    if let Some((user, pass)) = decoded.split_once(':') {
                        innocent.push(' ');
                        innocent.push_str(user);
                        secrets.push(pass.to_string());
                    }
                    secrets.push(decoded);
                }
            }
            _ => {
                innocent.push(' ');
                innocent.push_str(s);
            }
        },
        _ => {}
    }
}
