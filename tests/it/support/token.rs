//! A token issuer speaking Docker's token spec (what Docker Hub's `auth.docker.io` does),
//! for a Distribution registry configured with `auth: token`.
//!
//! `GET /token?service=S&scope=repository:NAME:ACTIONS` (scope repeatable), optionally
//! with Basic credentials, answers `{"token": JWT, "expires_in": 300}`. The JWT is signed
//! RS256 by `openssl dgst -sha256 -sign` with a key and self-signed certificate made once
//! per test process; its header carries the certificate in `x5c`, which Distribution 2.8
//! verifies against `auth.token.rootcertbundle`. What a token grants follows a [`Policy`]
//! written in the test; a wrong password is a 401, as on Docker Hub. Every request is
//! logged ([`TokenIssuer::requests`]) so tests can check the scopes a client asked for.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::http_server::{Reply, Request, Server};
use super::registry::Registry;
use super::tools;

/// `service` in the registry's challenge and the tokens' `aud`.
pub const SERVICE: &str = "ocibench-test";
/// `iss` of the tokens, as the registry is told to expect.
pub const ISSUER: &str = "ocibench-test-issuer";

/// Who may do what: users with passwords, and grants by repository prefix.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    users: Vec<(String, String)>,
    grants: Vec<Grant>,
}

#[derive(Debug, Clone)]
struct Grant {
    /// `None`: anyone, anonymous included.
    user: Option<String>,
    /// A repository name prefix (`alice/`), or a whole name.
    prefix: String,
    actions: Vec<String>,
}

impl Policy {
    pub fn new() -> Policy {
        Policy::default()
    }

    /// A user the issuer knows (Basic auth on the token request).
    pub fn user(mut self, name: &str, password: &str) -> Policy {
        self.users.push((name.into(), password.into()));
        self
    }

    /// `user` may do `actions` (`"pull"`, `"push"`) on repositories starting with `prefix`.
    pub fn allow(mut self, user: &str, prefix: &str, actions: &[&str]) -> Policy {
        self.grants.push(Grant {
            user: Some(user.into()),
            prefix: prefix.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        });
        self
    }

    /// Anyone, anonymous included, may do `actions` on repositories starting with `prefix`.
    pub fn allow_anyone(mut self, prefix: &str, actions: &[&str]) -> Policy {
        self.grants.push(Grant {
            user: None,
            prefix: prefix.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        });
        self
    }

    /// The requested actions on `repo` that `user` may do, in the requested order.
    fn granted(&self, user: Option<&str>, repo: &str, requested: &[String]) -> Vec<String> {
        requested
            .iter()
            .filter(|action| {
                self.grants.iter().any(|g| {
                    (g.user.is_none() || g.user.as_deref() == user)
                        && repo.starts_with(&g.prefix)
                        && g.actions.iter().any(|a| a == *action)
                })
            })
            .cloned()
            .collect()
    }

    fn check_password(&self, user: &str, password: &str) -> bool {
        self.users.iter().any(|(u, p)| u == user && p == password)
    }
}

/// One token request as the issuer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The Basic user, if any (whatever the password).
    pub user: Option<String>,
    /// Whether the password was right (false for anonymous requests).
    pub authenticated: bool,
    pub service: Option<String>,
    /// The `scope` parameters, in order.
    pub scopes: Vec<String>,
    /// The issuer's status: 200, or 401 for a wrong password.
    pub status: u16,
    /// What the token granted: `(repository, actions)`.
    pub granted: Vec<(String, Vec<String>)>,
}

/// A running token issuer on a free loopback port (serves until the test process ends).
#[derive(Debug)]
pub struct TokenIssuer {
    server: Server,
    log: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenIssuer {
    /// Starts an issuer applying `policy`.
    pub fn start(policy: Policy) -> TokenIssuer {
        let keys = keys();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        let server = Server::start(Arc::new(move |req: &Request| {
            let (status, body) =
                answer(&req.path, req.header("authorization"), keys, &policy, &log2);
            Reply::new(status, body).header("Content-Type", "application/json")
        }));
        TokenIssuer { server, log }
    }

    /// `http://127.0.0.1:PORT/token`, the registry's `auth.token.realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr())
    }

    /// The certificate the registry trusts (`auth.token.rootcertbundle`).
    pub fn root_cert(&self) -> &'static Path {
        &keys().cert
    }

    /// A registry that requires this issuer's tokens.
    pub fn registry(&self) -> Registry {
        Registry::builder()
            .token_auth(&self.realm(), SERVICE, ISSUER, self.root_cert())
            .start()
    }

    /// Every token request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.log.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

struct Keys {
    key: PathBuf,
    cert: PathBuf,
    /// The certificate, DER, standard base64 (the `x5c` entry).
    x5c: String,
}

/// The signing key and certificate, made once per test process by `openssl`.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("ocibench-token-keys-")
            .tempdir()
            .expect("temp dir for token keys")
            .keep();
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        tools::run(
            tools::command("openssl", "openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .args(["-days", "1", "-subj", "/CN=ocibench-test-token"]),
        );
        let der = Command::new(tools::require("openssl", "openssl"))
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("run openssl x509");
        assert!(der.status.success(), "openssl x509 -outform DER failed");
        Keys {
            key,
            cert,
            x5c: base64::engine::general_purpose::STANDARD.encode(der.stdout),
        }
    })
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign_jwt(keys: &Keys, subject: Option<&str>, access: &[(String, Vec<String>)]) -> String {
    static JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [keys.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject.unwrap_or(""),
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{}-{}", std::process::id(),
            JTI.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        "access": access.iter().map(|(name, actions)| serde_json::json!({
            "type": "repository", "name": name, "actions": actions,
        })).collect::<Vec<_>>(),
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new(tools::require("openssl", "openssl"))
        .args(["dgst", "-sha256", "-sign"])
        .arg(&keys.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl dgst");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl dgst");
    assert!(out.status.success(), "openssl dgst -sign failed");
    format!("{signing_input}.{}", b64url(&out.stdout))
}

fn answer(
    target: &str,
    authorization: Option<&str>,
    keys: &Keys,
    policy: &Policy,
    log: &Mutex<Vec<TokenRequest>>,
) -> (u16, String) {
    let url = url::Url::parse(&format!("http://issuer{target}")).expect("request target");
    if url.path() != "/token" {
        return (404, r#"{"details":"not found"}"#.into());
    }
    let mut service = None;
    let mut scopes = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "service" => service = Some(v.into_owned()),
            "scope" => scopes.push(v.into_owned()),
            _ => {}
        }
    }
    let basic = authorization
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    let authenticated = basic
        .as_ref()
        .is_some_and(|(u, p)| policy.check_password(u, p));
    let mut entry = TokenRequest {
        user: basic.as_ref().map(|(u, _)| u.clone()),
        authenticated,
        service,
        scopes: scopes.clone(),
        status: 200,
        granted: Vec::new(),
    };
    if basic.is_some() && !authenticated {
        entry.status = 401;
        log.lock().unwrap().push(entry);
        return (
            401,
            r#"{"details":"incorrect username or password"}"#.into(),
        );
    }
    let user = if authenticated {
        basic.as_ref().map(|(u, _)| u.as_str())
    } else {
        None
    };
    // A scope is `repository:NAME:ACTIONS`; NAME may hold no colon in this issuer.
    for scope in &scopes {
        let mut parts = scope.splitn(3, ':');
        let (Some("repository"), Some(name), Some(actions)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let requested: Vec<String> = actions.split(',').map(str::to_string).collect();
        let granted = policy.granted(user, name, &requested);
        entry.granted.push((name.to_string(), granted));
    }
    let token = sign_jwt(keys, user, &entry.granted);
    log.lock().unwrap().push(entry);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
    });
    (200, body.to_string())
}
