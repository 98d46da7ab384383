//! The auth files: Docker's `config.json` and podman's `auth.json` share
//! `auths`, `credHelpers` and `credsStore`; this reads them without ever
//! quoting a value in an error, and picks the entry for a registry.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::helper::run_helper;
use super::{CredentialError, CredentialSource, ResolvedCredential, normalize_key};
use crate::oci::registry::auth::{Credential, Secret};

/// One `auths` entry, secrets already wrapped.
#[derive(Debug, Default)]
struct AuthEntry {
    auth: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
    identity_token: Option<Secret>,
}

/// What both file formats share: `auths`, `credHelpers`, `credsStore`.
/// Maps are ordered so that ambiguous keys resolve the same way every run.
#[derive(Debug, Default)]
pub(super) struct AuthFile {
    path: PathBuf,
    auths: BTreeMap<String, AuthEntry>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

impl AuthFile {
    /// `None` when the file does not exist.
    pub(super) fn load(path: &Path) -> Result<Option<AuthFile>, CredentialError> {
        match std::fs::read_to_string(path) {
            Ok(text) => AuthFile::parse(path, &text).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CredentialError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses by hand from a `Value`: serde's typed errors would quote values.
    fn parse(path: &Path, text: &str) -> Result<AuthFile, CredentialError> {
        let mut file = AuthFile {
            path: path.to_path_buf(),
            ..AuthFile::default()
        };
        if text.trim().is_empty() {
            return Ok(file); // Docker and podman accept an empty file
        }
        let value: Value = serde_json::from_str(text).map_err(|source| CredentialError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        let shape = |field: String, expected| CredentialError::Shape {
            path: path.to_path_buf(),
            field,
            expected,
        };
        let Value::Object(top) = value else {
            return Err(shape("(top level)".into(), "an object"));
        };
        let string = |v: &Value, field: &dyn Fn() -> String| match v {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(shape(field(), "a string")),
        };
        match top.get("auths") {
            None | Some(Value::Null) => {}
            Some(Value::Object(auths)) => {
                for (key, entry) in auths {
                    let entry = match entry {
                        Value::Null => continue,
                        Value::Object(e) => e,
                        _ => return Err(shape(format!("auths.{key}"), "an object")),
                    };
                    let field = |name: &str| {
                        entry
                            .get(name)
                            .map_or(Ok(None), |v| string(v, &|| format!("auths.{key}.{name}")))
                    };
                    let parsed = AuthEntry {
                        auth: field("auth")?.map(Secret::new),
                        username: field("username")?,
                        password: field("password")?.map(Secret::new),
                        identity_token: field("identitytoken")?.map(Secret::new),
                    };
                    file.auths.insert(key.clone(), parsed);
                }
            }
            Some(_) => return Err(shape("auths".into(), "an object")),
        }
        match top.get("credHelpers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(helpers)) => {
                for (key, name) in helpers {
                    if let Some(name) = string(name, &|| format!("credHelpers.{key}"))? {
                        file.cred_helpers.insert(key.clone(), name);
                    }
                }
            }
            Some(_) => return Err(shape("credHelpers".into(), "an object")),
        }
        if let Some(v) = top.get("credsStore") {
            file.creds_store = string(v, &|| "credsStore".into())?;
        }
        Ok(file)
    }

    /// This file's answer: `credHelpers` for the registry, then the most
    /// specific `auths` entry holding credentials, then `credsStore`.
    pub(super) fn lookup(
        &self,
        registry: &str,
        repository: Option<&str>,
        path_var: Option<&std::ffi::OsStr>,
    ) -> Result<Option<ResolvedCredential>, CredentialError> {
        if let Some(name) = best_key(&self.cred_helpers, registry, None) {
            let helper = &self.cred_helpers[name];
            return self.ask_helper(helper, "credHelpers", registry, path_var);
        }
        let mut scopes: Vec<Option<&str>> = Vec::new();
        if let Some(repo) = repository {
            let mut prefix = repo;
            loop {
                scopes.push(Some(prefix));
                match prefix.rfind('/') {
                    Some(i) => prefix = &prefix[..i],
                    None => break,
                }
            }
        }
        scopes.push(None);
        let with_credentials: BTreeMap<&String, &AuthEntry> = self
            .auths
            .iter()
            .filter(|(_, e)| e.has_credentials())
            .collect();
        for scope in scopes {
            if let Some(key) = best_key(&with_credentials, registry, scope) {
                let credential = self.decode(key, &self.auths[key])?;
                return Ok(Some(ResolvedCredential {
                    credential,
                    source: CredentialSource::AuthFile {
                        path: self.path.clone(),
                        key: key.to_string(),
                    },
                }));
            }
        }
        match &self.creds_store {
            Some(store) => self.ask_helper(store, "credsStore", registry, path_var),
            None => Ok(None),
        }
    }

    fn decode(&self, key: &str, e: &AuthEntry) -> Result<Credential, CredentialError> {
        if let Some(token) = &e.identity_token {
            return Ok(Credential::IdentityToken(token.clone()));
        }
        let bad = |reason: &str| CredentialError::BadAuth {
            path: self.path.clone(),
            key: key.to_string(),
            reason: reason.to_string(),
        };
        if let Some(auth) = &e.auth {
            use base64::Engine as _;
            use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
            let engine = GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                GeneralPurposeConfig::new()
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent),
            );
            let bytes = engine
                .decode(auth.expose().trim())
                .map_err(|e| bad(&base64_reason(&e)))?;
            let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 once decoded"))?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| bad("does not decode to USER:PASSWORD"))?;
            if user.is_empty() {
                return Err(bad("decodes to an empty user name"));
            }
            return Ok(Credential::Basic {
                username: user.to_string(),
                password: Secret::new(pass),
            });
        }
        match (&e.username, &e.password) {
            (Some(u), Some(p)) => Ok(Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => Err(bad("no `auth`, and `username` or `password` is missing")),
        }
    }

    fn ask_helper(
        &self,
        name: &str,
        field: &'static str,
        registry: &str,
        path_var: Option<&std::ffi::OsStr>,
    ) -> Result<Option<ResolvedCredential>, CredentialError> {
        if name.contains('/') || name.contains('\0') {
            return Err(CredentialError::BadHelperName {
                name: name.to_string(),
                config: self.path.clone(),
            });
        }
        let helper = format!("docker-credential-{name}");
        let credential = run_helper(&helper, &self.path, field, registry, path_var)?;
        Ok(credential.map(|credential| ResolvedCredential {
            credential,
            source: CredentialSource::Helper {
                helper,
                config: self.path.clone(),
            },
        }))
    }
}

impl AuthEntry {
    /// Docker leaves `{}` entries behind when credentials live in a store.
    fn has_credentials(&self) -> bool {
        self.identity_token.is_some()
            || self.auth.is_some()
            || (self.username.is_some() && self.password.is_some())
    }
}

/// The key of `map` naming `registry` (and exactly `scope`, a repository
/// prefix, when given); a key written exactly as the name beats its aliases.
fn best_key<'a, V>(
    map: &'a BTreeMap<impl AsRef<str> + Ord, V>,
    registry: &str,
    scope: Option<&str>,
) -> Option<&'a str> {
    let exact = match scope {
        Some(s) => format!("{registry}/{s}"),
        None => registry.to_string(),
    };
    let mut matching = map.keys().map(AsRef::as_ref).filter(|k| {
        let (r, p) = normalize_key(k);
        r == registry && p.as_deref() == scope
    });
    let first = matching.next()?;
    Some(
        std::iter::once(first)
            .chain(matching)
            .find(|k| *k == exact)
            .unwrap_or(first),
    )
}

fn base64_reason(e: &base64::DecodeError) -> String {
    use base64::DecodeError as D;
    match e {
        D::InvalidByte(offset, _) => format!("not base64 (bad character at offset {offset})"),
        D::InvalidLength(_) => "not base64 (bad length)".into(),
        D::InvalidLastSymbol(offset, _) => {
            format!("not base64 (bad last symbol at offset {offset})")
        }
        D::InvalidPadding => "not base64 (bad padding)".into(),
    }
}
