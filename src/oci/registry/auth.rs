//! Registry authentication: `WWW-Authenticate` challenges and the answer to a 401
//! (a Bearer token fetched from realm/service/scope, or Basic), credentials that
//! never print themselves, and authorisations cached per host and scope until they
//! expire. It needs only the agents it is handed (`Hosts`: the token realm may be
//! another host, with its own TLS and proxy), never the client.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Method, Request};

use super::exchange::{Pending, Tracer};
use super::{CredentialSourceError, Deadline, RegistryError, SpeedLimit};
use crate::oci::reference::ImageReference;

/// A secret string: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for building a header. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What we can present to a registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credential {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken` in Docker's config.json).
    IdentityToken(Secret),
}

impl Credential {
    /// `Authorization: Basic ...` value, when these are username/password credentials.
    pub fn basic_header(&self) -> Option<String> {
        use base64::Engine as _;
        match self {
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            )),
            _ => None,
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased scheme: `bearer`, `basic`.
    pub scheme: String,
    /// Parameters with lowercased names (`realm`, `service`, `scope`, `error`).
    pub params: HashMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses the challenges in a `WWW-Authenticate` value (RFC 7235). Quoted values may
/// hold commas (`scope="repository:a:pull,push"`) and backslash escapes.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && !matches!(b[*i], b' ' | b'\t' | b',' | b'=') {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        // `name=` after a scheme means a parameter of the current challenge.
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = header[i..].chars().next().map_or(1, char::len_utf8);
                    v.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1; // closing quote
                v
            } else {
                token(&mut i)
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: HashMap::new(),
            });
        }
    }
    out
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: Secret,
    pub expires: Instant,
}

/// The authorisation to send to a (registry host, scope) pair.
#[derive(Debug, Clone)]
pub enum Authorization {
    Bearer(Token),
    Basic(Secret),
}

impl Authorization {
    pub fn header(&self) -> String {
        match self {
            Authorization::Bearer(t) => format!("Bearer {}", t.value.expose()),
            Authorization::Basic(b) => b.expose().to_string(),
        }
    }
    fn valid(&self) -> bool {
        match self {
            Authorization::Bearer(t) => t.expires > Instant::now(),
            Authorization::Basic(_) => true,
        }
    }
}

/// Authorisations cached per (host, scope); a scope is `repository:NAME:ACTIONS`.
#[derive(Debug, Default)]
pub struct AuthCache {
    map: Mutex<HashMap<(String, String), Authorization>>,
}

impl AuthCache {
    pub fn get(&self, host: &str, scope: &str) -> Option<Authorization> {
        let map = self.map.lock().expect("auth cache lock");
        map.get(&(host.to_string(), scope.to_string()))
            .filter(|a| a.valid())
            .cloned()
    }
    pub fn put(&self, host: &str, scope: &str, auth: Authorization) {
        self.map
            .lock()
            .expect("auth cache lock")
            .insert((host.to_string(), scope.to_string()), auth);
    }
}

/// Token endpoint answer (Docker's token spec; `access_token` is the OAuth2 name).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token, valid for `expires_in` (default 60 s, per the spec), minus a margin.
    pub fn into_token(self) -> Option<Token> {
        let value = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let life = Duration::from_secs(self.expires_in.unwrap_or(60).max(10));
        Some(Token {
            value: Secret::new(value),
            expires: Instant::now() + life - Duration::from_secs(5),
        })
    }
}

/// A credential and where it came from (named in errors, never its value).
#[derive(Debug, Clone)]
pub struct ProvidedCredential {
    pub credential: Credential,
    pub source: String,
}

/// Supplies the credential for (registry, repository): `None` is anonymous.
pub type CredentialProvider = Arc<
    dyn Fn(&str, &str) -> Result<Option<ProvidedCredential>, CredentialSourceError> + Send + Sync,
>;

/// Answers challenges for one client: whom to ask for credentials, the
/// authorisations got so far, and where each host's credential came from.
pub(super) struct Authenticator {
    credentials: CredentialProvider,
    auth: AuthCache,
    /// Per host: where the credential last presented came from, for error messages.
    sources: Mutex<HashMap<String, String>>,
    /// Told of each token request (`-v`), as the client's own requests are.
    trace: Option<Tracer>,
}

impl Authenticator {
    pub(super) fn new(credentials: CredentialProvider) -> Self {
        Authenticator {
            credentials,
            auth: AuthCache::default(),
            sources: Default::default(),
            trace: None,
        }
    }

    /// This authenticator, telling `trace` of its token requests.
    pub(super) fn traced(mut self, trace: Option<Tracer>) -> Self {
        self.trace = trace;
        self
    }

    /// The cached authorisation for (host, scope), if still valid.
    pub(super) fn get(&self, host: &str, scope: &str) -> Option<Authorization> {
        self.auth.get(host, scope)
    }

    /// Where the credential last presented to `host` came from, for error messages.
    pub(super) fn source_of(&self, host: &str) -> String {
        self.sources
            .lock()
            .expect("sources lock")
            .get(host)
            .cloned()
            .unwrap_or_else(|| "none (anonymous)".to_string())
    }

    /// Answers a challenge: fetches a bearer token (anonymously, with Basic
    /// credentials, or by an OAuth2 refresh-token grant) or prepares Basic credentials.
    /// `home` is the registry's base URL. The token realm may be another host (Docker
    /// Hub's is `auth.docker.io`): the protocol sends it the registry's credentials,
    /// so it must be HTTPS when the registry is; a plain-HTTP realm is refused before
    /// anything is sent.
    pub(super) fn authenticate(
        &self,
        hosts: &super::hosts::Hosts,
        image: &ImageReference,
        home: &str,
        scopes: &[String],
        challenge: &Challenge,
        (deadline, speed): (Deadline, Option<SpeedLimit>),
    ) -> Result<(), RegistryError> {
        let host = image.api_host();
        let scope = scopes.join(" ");
        let scope = scope.as_str();
        let provided =
            (self.credentials)(image.registry(), image.repository()).map_err(|source| {
                RegistryError::Credentials {
                    registry: image.registry().to_string(),
                    source,
                }
            })?;
        let source_name = provided
            .as_ref()
            .map(|p| p.source.clone())
            .unwrap_or_else(|| "none (anonymous)".to_string());
        self.sources
            .lock()
            .expect("sources lock")
            .insert(host.to_string(), source_name.clone());
        let credential = provided.map(|p| p.credential).unwrap_or_default();
        if challenge.scheme == "basic" {
            return match credential.basic_header() {
                Some(h) => {
                    self.auth
                        .put(host, scope, Authorization::Basic(Secret::new(h)));
                    Ok(())
                }
                None => Err(RegistryError::Unauthorized {
                    host: host.to_string(),
                    repository: image.repository().to_string(),
                    detail: "the registry requires a username and password".into(),
                    credentials: source_name,
                }),
            };
        }
        let realm = challenge.param("realm").unwrap_or_default().to_string();
        let mut token_url = url::Url::parse(&realm).map_err(|e| RegistryError::BadRedirect {
            url: realm.clone().into(),
            detail: format!("bad token realm: {e}"),
        })?;
        let downgrade = home.starts_with("https://") && token_url.scheme() != "https";
        if downgrade {
            return Err(RegistryError::InsecureRealm {
                host: host.to_string(),
                realm: realm.into(),
            });
        }
        if !matches!(token_url.scheme(), "http" | "https") {
            return Err(RegistryError::BadRedirect {
                url: realm.into(),
                detail: "a token realm must be an http(s) URL".into(),
            });
        }
        let service = challenge.param("service").unwrap_or_default().to_string();
        let req = if let Credential::IdentityToken(refresh) = &credential {
            // OAuth2 refresh-token grant (what `docker login` stores as identitytoken).
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("service", &service)
                .append_pair("client_id", "ocibench")
                .append_pair("refresh_token", refresh.expose());
            for sc in scopes {
                form.append_pair("scope", sc);
            }
            Request::builder()
                .method(Method::POST)
                .uri(token_url.as_str())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form.finish().into_bytes())
        } else {
            {
                let mut q = token_url.query_pairs_mut();
                if !service.is_empty() {
                    q.append_pair("service", &service);
                }
                for sc in scopes {
                    q.append_pair("scope", sc);
                }
            }
            let mut req = Request::builder()
                .method(Method::GET)
                .uri(token_url.as_str());
            if let Some(h) = credential.basic_header() {
                req = req.header("Authorization", h);
            }
            req.body(Vec::new())
        };
        let req = req.expect("token request builds");
        let mut pending = Pending::start(self.trace.as_ref(), req.method(), &req.uri().to_string())
            .token_request();
        pending.sent(req.body().len() as u64);
        let agent = hosts.agent(token_url.as_str())?;
        let resp = match super::limits::run(&agent, req, deadline) {
            Ok(resp) => pending.attach(resp),
            Err(source) => {
                pending.failed(&source);
                if deadline.passed() {
                    return Err(RegistryError::TimedOut {
                        host: host.to_string(),
                        after: deadline.timeout().unwrap_or_default(),
                    });
                }
                return Err(RegistryError::Unreachable {
                    host: token_url.host_str().unwrap_or("").to_string(),
                    url: realm.clone().into(),
                    source,
                });
            }
        };
        if !resp.status().is_success() {
            return Err(RegistryError::TokenRefused {
                realm: realm.into(),
                status: resp.status().as_u16(),
                credentials: source_name,
            });
        }
        // Tokens are a few KiB; the answer is read under the same time limits.
        let body = super::limits::read_capped(resp.into_body(), 1024 * 1024, speed, deadline)
            .and_then(|b| b.ok_or_else(|| std::io::Error::other("token answer over 1 MiB")))
            .map_err(|source| RegistryError::Body {
                url: (&realm).into(),
                source,
            })?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Body {
                url: (&realm).into(),
                source: std::io::Error::other(e),
            })?;
        let token = parsed.into_token().ok_or(RegistryError::TokenRefused {
            realm: realm.into(),
            status: 200,
            credentials: source_name,
        })?;
        self.auth.put(host, scope, Authorization::Bearer(token));
        Ok(())
    }
}

/// Bearer is preferred over Basic when a registry offers both.
pub(super) fn pick_challenge(cs: Vec<Challenge>) -> Option<Challenge> {
    let mut cs = cs;
    cs.sort_by_key(|c| match c.scheme.as_str() {
        "bearer" => 0,
        "basic" => 1,
        _ => 2,
    });
    cs.into_iter()
        .find(|c| c.scheme == "bearer" || c.scheme == "basic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_comma_scope() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            c[0].param("scope"),
            Some("repository:library/python:pull,push")
        );
    }

    #[test]
    fn basic_and_multiple_and_escapes() {
        let c = parse_challenges(
            r#"Basic realm="Registry \"Realm\"", Bearer realm=x , error="invalid_token""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some(r#"Registry "Realm""#));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("realm"), Some("x"));
        assert_eq!(c[1].param("error"), Some("invalid_token"));
        assert!(parse_challenges("").is_empty());
        let c = parse_challenges("BEARER REALM=\"r\"");
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("r"));
    }

    #[test]
    fn distribution_token_challenges() {
        // What Distribution 2.8 (`auth: token`) answers a mount POST without a token:
        // two scopes in one quoted value, space-separated (tests/auth_token.rs).
        let c = parse_challenges(
            r#"Bearer realm="http://127.0.0.1:4000/token?x=1,y=2",service="ocibench-test",scope="repository:alice/copy:pull,push repository:alice/app:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].param("realm"),
            Some("http://127.0.0.1:4000/token?x=1,y=2")
        );
        assert_eq!(
            c[0].param("scope"),
            Some("repository:alice/copy:pull,push repository:alice/app:pull")
        );
        // A token without the access asked for: the same challenge plus an error.
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token", service="registry.docker.io", scope="repository:bob/app:pull,push", error="insufficient_scope""#,
        );
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
        assert_eq!(c[0].params.len(), 4);
        // Empty quoted values and spaces around `=`.
        let c = parse_challenges(r#"Bearer realm = "r" , service="""#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), Some("r"));
        assert_eq!(c[0].param("service"), Some(""));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credential::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert_eq!(c.basic_header().unwrap(), "Basic dTpodW50ZXIy");
        let t = Authorization::Bearer(Token {
            value: Secret::new("tok"),
            expires: Instant::now(),
        });
        assert!(!format!("{t:?}").contains("tok"));
    }

    #[test]
    fn token_response_names_and_expiry() {
        let r: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":300}"#).unwrap();
        let t = r.into_token().unwrap();
        assert_eq!(t.value.expose(), "a");
        assert!(t.expires > Instant::now() + Duration::from_secs(200));
        let r: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(r.into_token().is_none());
    }

    #[test]
    fn an_https_registry_never_sends_credentials_to_a_plain_http_realm() {
        // A listener that would see the token request (Basic credentials and all).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let hosts = super::super::hosts::Hosts::direct();
        let provider: CredentialProvider = Arc::new(|_, _| {
            Ok(Some(ProvidedCredential {
                credential: Credential::Basic {
                    username: "u".into(),
                    password: Secret::new("hunter2"),
                },
                source: "--creds".into(),
            }))
        });
        let auth = Authenticator::new(provider);
        let image: ImageReference = "registry.example/app:1".parse().unwrap();
        let challenge = parse_challenges(&format!(r#"Bearer realm="{realm}",service="s""#))
            .pop()
            .unwrap();
        let scopes = ["repository:app:pull".to_string()];
        let err = auth
            .authenticate(
                &hosts,
                &image,
                &image.base_url(crate::oci::reference::TlsMode::Auto),
                &scopes,
                &challenge,
                (Deadline::default(), None),
            )
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::InsecureRealm { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&realm), "{err}");
        assert!(
            listener.accept().is_err(),
            "the plain-HTTP realm was contacted"
        );
    }

    #[test]
    fn bearer_preferred() {
        let cs = parse_challenges(r#"Basic realm="x", Bearer realm="y""#);
        assert_eq!(pick_challenge(cs).unwrap().scheme, "bearer");
    }
}
