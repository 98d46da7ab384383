//! Image references in Docker's grammar (`python:3.12-slim` is
//! `docker.io/library/python:3.12-slim`), parsed by oci-spec's port of Docker's
//! own normaliser, plus what it takes to talk to the registry behind one:
//! the API host (`registry-1.docker.io` for Docker Hub) and plain HTTP on loopback.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use oci_spec::distribution::Reference;

use super::digest::Digest;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    inner: Reference,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ReferenceError {
            input: s.to_string(),
            reason,
        };
        // oci-spec's grammar predates IPv6 literals (`[::1]:5000/app`); parse the rest
        // under a stand-in host and put the literal back.
        if let Some((host, rest)) = ipv6_host(s) {
            let stand_in: ImageReference = format!("ipv6.invalid/{rest}")
                .parse()
                .map_err(|e: ReferenceError| err(e.reason))?;
            let (reg, repo) = (host.to_string(), stand_in.repository().to_string());
            let inner = match (stand_in.inner.tag(), stand_in.inner.digest()) {
                (Some(t), Some(d)) => Reference::with_tag_and_digest(reg, repo, t.into(), d.into()),
                (None, Some(d)) => Reference::with_digest(reg, repo, d.into()),
                (Some(t), None) => Reference::with_tag(reg, repo, t.into()),
                (None, None) => Reference::with_tag(reg, repo, "latest".into()),
            };
            return Ok(ImageReference { inner });
        }
        let inner = Reference::try_from(s).map_err(|e| {
            let reason = match e.to_string().as_str() {
                r if r.contains("invalid reference format")
                    && s.chars().any(|c| c.is_ascii_uppercase()) =>
                {
                    "repository names must be lowercase".to_string()
                }
                r => r.to_string(),
            };
            err(reason)
        })?;
        if let Some(d) = inner.digest() {
            d.parse::<Digest>().map_err(|e| err(e.to_string()))?;
        }
        Ok(ImageReference { inner })
    }
}

impl ImageReference {
    /// The registry as named (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The host the API is served at: Docker Hub's is `registry-1.docker.io`.
    pub fn api_host(&self) -> &str {
        match self.inner.registry() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            r => r,
        }
    }

    /// `library/python`, `a/b`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.inner.digest().and_then(|d| d.parse().ok())
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (self.inner.digest(), self.inner.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository at another tag or digest (`None` keeps none).
    pub fn with_tag(&self, tag: &str) -> Self {
        ImageReference {
            inner: Reference::with_tag(
                self.registry().to_string(),
                self.repository().to_string(),
                tag.to_string(),
            ),
        }
    }

    /// Loopback registries are spoken to over plain HTTP, as Docker does.
    pub fn is_loopback(&self) -> bool {
        host_is_loopback(self.api_host())
    }

    /// `https://HOST` or, on loopback, `http://HOST` (unless TLS is forced).
    pub fn base_url(&self, tls: TlsMode) -> String {
        let scheme = match tls {
            TlsMode::Auto if self.is_loopback() => "http",
            TlsMode::Insecure if self.is_loopback() => "http",
            _ => "https",
        };
        format!("{scheme}://{}", self.api_host())
    }
}

/// How to reach a registry: the default rule (HTTPS except loopback), or with
/// certificate checks off (`--tls-verify=false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    #[default]
    Auto,
    Insecure,
}

/// Splits `[v6addr]:port/rest` (port optional) into host and rest.
fn ipv6_host(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('[')?;
    let close = body.find(']')?;
    body[..close].parse::<std::net::Ipv6Addr>().ok()?;
    let after = &body[close + 1..];
    let slash = after.find('/')?;
    let port = &after[..slash];
    if !(port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    {
        return None;
    }
    Some((&s[..close + 2 + slash], &after[slash + 1..]))
}

/// Whether `host[:port]` names the loopback interface.
pub fn host_is_loopback(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ImageReference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn normalises_like_docker() {
        let h = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let table: &[(&str, &str, &str, Option<&str>, Option<&str>)] = &[
            (
                "python:3.7-slim",
                "docker.io",
                "library/python",
                Some("3.7-slim"),
                None,
            ),
            (
                "python",
                "docker.io",
                "library/python",
                Some("latest"),
                None,
            ),
            ("library/x", "docker.io", "library/x", Some("latest"), None),
            ("user/app:1", "docker.io", "user/app", Some("1"), None),
            (
                "docker.io/python:3",
                "docker.io",
                "library/python",
                Some("3"),
                None,
            ),
            (
                "index.docker.io/python:3",
                "docker.io",
                "library/python",
                Some("3"),
                None,
            ),
            (
                "localhost:5000/a/b:t",
                "localhost:5000",
                "a/b",
                Some("t"),
                None,
            ),
            ("localhost/app", "localhost", "app", Some("latest"), None),
            ("ghcr.io/o/r:v1.2", "ghcr.io", "o/r", Some("v1.2"), None),
            ("127.0.0.1:5000/x:y", "127.0.0.1:5000", "x", Some("y"), None),
            ("[::1]:5000/x:y", "[::1]:5000", "x", Some("y"), None),
        ];
        for (input, reg, repo, tag, digest) in table {
            let r = parse(input);
            assert_eq!(r.registry(), *reg, "{input}");
            assert_eq!(r.repository(), *repo, "{input}");
            assert_eq!(r.tag(), *tag, "{input}");
            assert_eq!(
                r.digest().map(|d| d.to_string()).as_deref(),
                *digest,
                "{input}"
            );
        }
        let pinned = parse(&format!("host:5000/x@{h}"));
        assert_eq!(pinned.registry(), "host:5000");
        assert_eq!(pinned.digest().unwrap().to_string(), h);
        assert_eq!(pinned.manifest_reference(), h);
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "Python:3",
            "docker.io/UPPER/case",
            "[::1]:x/a",
            "",
            "a:b:c",
            "x@sha256:abc",
            "x@md5:0123",
            ":tag",
            "a//b",
        ] {
            assert!(bad.parse::<ImageReference>().is_err(), "{bad:?} accepted");
        }
        let e = "Python:3"
            .parse::<ImageReference>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("lowercase"), "{e}");
    }

    #[test]
    fn docker_hub_api_host_and_schemes() {
        let r = parse("python:3.12-slim");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.base_url(TlsMode::Auto), "https://registry-1.docker.io");
        assert_eq!(r.to_string(), "docker.io/library/python:3.12-slim");
        assert_eq!(
            parse("localhost:5000/a").base_url(TlsMode::Auto),
            "http://localhost:5000"
        );
        assert_eq!(
            parse("127.0.0.2:80/a").base_url(TlsMode::Auto),
            "http://127.0.0.2:80"
        );
        assert_eq!(
            parse("[::1]:5000/a").base_url(TlsMode::Auto),
            "http://[::1]:5000"
        );
        assert_eq!(
            parse("example.com/a").base_url(TlsMode::Auto),
            "https://example.com"
        );
    }
}
