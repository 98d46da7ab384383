//! Where an image lives, in skopeo's transport syntax, so users need nothing new:
//! `docker://REF` (or a bare `REF`), `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:REF]`.
//!
//! `ImageLocation` is where an image is read from; `Destination` where one is
//! written, parsed once so a command can reject a bad `--output` before doing any
//! work, and compared (`same_target`) so two outputs cannot overwrite each other.
//! There is one parser, `ImageLocation`'s: `Destination::parse` runs it and adds
//! what writing needs (a local transport, a clean tag, a normalized docker-archive
//! reference).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::oci::reference::{ImageReference, ReferenceError};

/// An image location: a registry reference or a file-system layout/archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    Registry(ImageReference),
    OciDir {
        path: PathBuf,
        tag: Option<String>,
    },
    OciArchive {
        path: PathBuf,
        tag: Option<String>,
    },
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{transport}: needs a path, as in {example}")]
    EmptyPath {
        transport: &'static str,
        example: &'static str,
    },
    #[error("unsupported transport {0:?}: use docker://, oci:, oci-archive: or docker-archive:")]
    Unsupported(String),
}

/// Transports skopeo knows that we do not; naming them gives a better error than
/// trying to parse `containers-storage:x` as a registry reference.
const OTHER_TRANSPORTS: &[&str] = &[
    "containers-storage:",
    "docker-daemon:",
    "dir:",
    "ostree:",
    "sif:",
    "tarball:",
];

impl FromStr for ImageLocation {
    type Err = TransportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn split(rest: &str) -> (PathBuf, Option<String>) {
            match rest.split_once(':') {
                Some((p, t)) if !t.is_empty() => (PathBuf::from(p), Some(t.to_string())),
                Some((p, _)) => (PathBuf::from(p), None),
                None => (PathBuf::from(rest), None),
            }
        }
        let nonempty = |p: PathBuf, transport, example| {
            if p.as_os_str().is_empty() {
                Err(TransportError::EmptyPath { transport, example })
            } else {
                Ok(p)
            }
        };
        if let Some(r) = s.strip_prefix("docker://") {
            return Ok(ImageLocation::Registry(r.parse()?));
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = split(rest);
            let path = nonempty(path, "oci-archive", "oci-archive:image.tar[:TAG]")?;
            return Ok(ImageLocation::OciArchive { path, tag });
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = split(rest);
            let path = nonempty(path, "oci", "oci:DIR[:TAG]")?;
            return Ok(ImageLocation::OciDir { path, tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, reference) = split(rest);
            let path = nonempty(path, "docker-archive", "docker-archive:image.tar[:REF]")?;
            return Ok(ImageLocation::DockerArchive { path, reference });
        }
        if let Some(t) = OTHER_TRANSPORTS.iter().find(|t| s.starts_with(*t)) {
            return Err(TransportError::Unsupported(
                t.trim_end_matches(':').to_string(),
            ));
        }
        Ok(ImageLocation::Registry(s.parse()?))
    }
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |o: &Option<String>| o.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
        match self {
            ImageLocation::Registry(r) => write!(f, "docker://{r}"),
            ImageLocation::OciDir { path, tag } => write!(f, "oci:{}{}", path.display(), opt(tag)),
            ImageLocation::OciArchive { path, tag } => {
                write!(f, "oci-archive:{}{}", path.display(), opt(tag))
            }
            ImageLocation::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}{}", path.display(), opt(reference))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        let p = |s: &str| s.parse::<ImageLocation>().unwrap();
        assert!(
            matches!(p("python:3"), ImageLocation::Registry(r) if r.repository() == "library/python")
        );
        assert!(
            matches!(p("docker://localhost:5000/a:b"), ImageLocation::Registry(r) if r.registry() == "localhost:5000")
        );
        assert!(
            matches!(p("localhost:5000/a:b"), ImageLocation::Registry(r) if r.tag() == Some("b"))
        );
        assert_eq!(
            p("oci:/tmp/lay:v1"),
            ImageLocation::OciDir {
                path: "/tmp/lay".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            p("oci:rel"),
            ImageLocation::OciDir {
                path: "rel".into(),
                tag: None
            }
        );
        assert_eq!(
            p("oci-archive:a.tar:latest"),
            ImageLocation::OciArchive {
                path: "a.tar".into(),
                tag: Some("latest".into())
            }
        );
        assert_eq!(
            p("docker-archive:a.tar:localhost/app:1"),
            ImageLocation::DockerArchive {
                path: "a.tar".into(),
                reference: Some("localhost/app:1".into())
            }
        );
        assert_eq!(p("oci:/x:t").to_string(), "oci:/x:t");
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            "oci:".parse::<ImageLocation>(),
            Err(TransportError::EmptyPath { .. })
        ));
        assert!(matches!(
            "containers-storage:x".parse::<ImageLocation>(),
            Err(TransportError::Unsupported(t)) if t == "containers-storage"
        ));
        assert!("docker://UPPER".parse::<ImageLocation>().is_err());
    }
}

/// Where `export` writes an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An OCI image layout directory, created or updated.
    OciDir { path: PathBuf, tag: Option<String> },
    /// A tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// A `docker save` tar. `reference` is normalized (`app` -> `docker.io/library/app:latest`).
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
}

/// Why a destination string is not one we can write.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DestinationError {
    #[error("destination {0:?} has an empty path")]
    EmptyPath(String),
    #[error("destination {0:?} is not a local image format (oci:, oci-archive:, docker-archive:)")]
    NotLocal(String),
    #[error("invalid image reference {reference:?} in {dest:?}: {reason}")]
    BadReference {
        dest: String,
        reference: String,
        reason: &'static str,
    },
    #[error("invalid tag {tag:?} in {dest:?}: a tag may not contain control characters")]
    BadTag { dest: String, tag: String },
}

impl Destination {
    /// Parses skopeo's syntax with `ImageLocation`'s parser, then checks what
    /// writing needs: a local transport, a tag without control characters, and
    /// for `docker-archive:` a reference normalized as Docker does. The path
    /// ends at the first `:` after the transport; the rest is the tag
    /// (`oci:out:localhost/app:1` has tag `localhost/app:1`). An empty tag means
    /// none, as in skopeo.
    pub fn parse(s: &str) -> Result<Destination, DestinationError> {
        let location = s.parse::<ImageLocation>().map_err(|e| match e {
            TransportError::EmptyPath { .. } => DestinationError::EmptyPath(s.to_string()),
            _ => DestinationError::NotLocal(s.to_string()),
        })?;
        let mut dest = match location {
            ImageLocation::Registry(_) => return Err(DestinationError::NotLocal(s.to_string())),
            ImageLocation::OciDir { path, tag } => Destination::OciDir { path, tag },
            ImageLocation::OciArchive { path, tag } => Destination::OciArchive { path, tag },
            ImageLocation::DockerArchive { path, reference } => {
                Destination::DockerArchive { path, reference }
            }
        };
        let (Destination::OciDir { tag: name, .. }
        | Destination::OciArchive { tag: name, .. }
        | Destination::DockerArchive {
            reference: name, ..
        }) = &dest;
        if let Some(tag) = name.as_deref()
            && tag.chars().any(char::is_control)
        {
            return Err(DestinationError::BadTag {
                dest: s.to_string(),
                tag: tag.to_string(),
            });
        }
        if let Destination::DockerArchive {
            reference: Some(r), ..
        } = &mut dest
        {
            *r =
                normalize_docker_reference(r).map_err(|reason| DestinationError::BadReference {
                    dest: s.to_string(),
                    reference: r.clone(),
                    reason,
                })?;
        }
        Ok(dest)
    }

    pub fn path(&self) -> &Path {
        match self {
            Destination::OciDir { path, .. }
            | Destination::OciArchive { path, .. }
            | Destination::DockerArchive { path, .. } => path,
        }
    }

    /// Whether writing both `self` and `other` would clobber one with the other:
    /// the same file (whatever the formats), or the same layout directory and tag.
    /// Two different tags in one `oci:` layout do not clash.
    pub fn same_target(&self, other: &Destination) -> bool {
        if normalized(self.path()) != normalized(other.path()) {
            return false;
        }
        match (self, other) {
            (Destination::OciDir { tag: a, .. }, Destination::OciDir { tag: b, .. }) => a == b,
            _ => true,
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, name) = match self {
            Destination::OciDir { path, tag } => ("oci", path, tag),
            Destination::OciArchive { path, tag } => ("oci-archive", path, tag),
            Destination::DockerArchive { path, reference } => ("docker-archive", path, reference),
        };
        write!(f, "{transport}:{}", path.display())?;
        if let Some(n) = name {
            write!(f, ":{n}")?;
        }
        Ok(())
    }
}

/// An absolute path with `.`/`..` resolved and, where the parent exists, its
/// symlinks resolved too: two spellings of one file compare equal.
fn normalized(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    match (out.parent(), out.file_name()) {
        (Some(parent), Some(name)) => match fs::canonicalize(parent) {
            Ok(real) => real.join(name),
            Err(_) => out,
        },
        _ => out,
    }
}

/// Docker's reference normalization, as `docker-archive:FILE:REF` needs it for
/// `RepoTags`: `app` -> `docker.io/library/app:latest`, `localhost/app` ->
/// `localhost/app:latest`, `index.docker.io/a/b` -> `docker.io/a/b:latest`.
/// Digests are refused (an archive needs a tag).
pub fn normalize_docker_reference(r: &str) -> Result<String, &'static str> {
    if r.contains('@') {
        return Err("an archive needs a tag, not a digest");
    }
    // The tag follows the last ':' that comes after the last '/'.
    let last_slash = r.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match r[last_slash..].rfind(':') {
        Some(i) => (&r[..last_slash + i], &r[last_slash + i + 1..]),
        None => (r, "latest"),
    };
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !matches!(tag.as_bytes()[0], b'.' | b'-');
    if !tag_ok {
        return Err("a tag is up to 128 letters, digits, '_', '.', '-'");
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        Some(_) => ("docker.io", name.to_string()),
        None => ("docker.io", format!("library/{name}")),
    };
    let domain_ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if !domain_ok {
        return Err("the registry host is not a valid host[:port]");
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if !path.split('/').all(component_ok) {
        return Err("a repository name is lowercase letters, digits and separators");
    }
    let full = format!("{domain}/{path}");
    if full.len() > 255 {
        return Err("the name is longer than 255 characters");
    }
    // The checks above word the common mistakes; the reference parser has the
    // last word (host grammar, Docker Hub's aliases), so RepoTags always read
    // back as the same name.
    match format!("{full}:{tag}").parse::<ImageReference>() {
        Ok(parsed) => Ok(parsed.to_string()),
        Err(_) => Err("the registry host is not a valid host[:port]"),
    }
}

#[cfg(test)]
mod destination_tests {
    use super::*;

    fn p(s: &str) -> Destination {
        Destination::parse(s).unwrap()
    }

    #[test]
    fn parse_transports() {
        assert_eq!(
            p("oci:out"),
            Destination::OciDir {
                path: "out".into(),
                tag: None
            }
        );
        assert_eq!(
            p("oci:/tmp/out:localhost/app:1.0"),
            Destination::OciDir {
                path: "/tmp/out".into(),
                tag: Some("localhost/app:1.0".into())
            }
        );
        assert_eq!(
            p("oci-archive:img.tar:latest"),
            Destination::OciArchive {
                path: "img.tar".into(),
                tag: Some("latest".into())
            }
        );
        assert_eq!(
            p("oci:out:"),
            Destination::OciDir {
                path: "out".into(),
                tag: None
            }
        );
        assert_eq!(
            p("docker-archive:a.tar:localhost/app:latest"),
            Destination::DockerArchive {
                path: "a.tar".into(),
                reference: Some("localhost/app:latest".into())
            }
        );
        assert_eq!(
            p("docker-archive:a.tar:app"),
            Destination::DockerArchive {
                path: "a.tar".into(),
                reference: Some("docker.io/library/app:latest".into())
            }
        );
        assert_eq!(
            p("docker-archive:a.tar"),
            Destination::DockerArchive {
                path: "a.tar".into(),
                reference: None
            }
        );
        assert_eq!(p("oci:/x/y:t").to_string(), "oci:/x/y:t");
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(
            Destination::parse("oci:"),
            Err(DestinationError::EmptyPath(_))
        ));
        assert!(matches!(
            Destination::parse("oci-archive::tag"),
            Err(DestinationError::EmptyPath(_))
        ));
        assert!(matches!(
            Destination::parse("docker://x/y:1"),
            Err(DestinationError::NotLocal(_))
        ));
        assert!(matches!(
            Destination::parse("just-a-path"),
            Err(DestinationError::NotLocal(_))
        ));
        assert!(matches!(
            Destination::parse("dir:/tmp/x"),
            Err(DestinationError::NotLocal(_))
        ));
        for bad in [
            "App:1",
            "app@sha256:00",
            "app:",
            "app:-x",
            "/app:1",
            "ho st/app:1",
        ] {
            let s = format!("docker-archive:a.tar:{bad}");
            assert!(
                matches!(
                    Destination::parse(&s),
                    Err(DestinationError::BadReference { .. })
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn docker_reference_normalization() {
        let n = |s| normalize_docker_reference(s).unwrap();
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("me/app:v1"), "docker.io/me/app:v1");
        assert_eq!(n("localhost/app"), "localhost/app:latest");
        assert_eq!(n("localhost:5000/a/b:x.y"), "localhost:5000/a/b:x.y");
        assert_eq!(n("ghcr.io/o/r:1"), "ghcr.io/o/r:1");
    }

    /// Found by the `reference` fuzz target (tests/fuzz): RepoTags must be what
    /// the reference parser (and Docker) reads back as the same name.
    #[test]
    fn docker_reference_normalization_agrees_with_the_parser() {
        let n = normalize_docker_reference;
        assert_eq!(
            n("index.docker.io/user/app").as_deref(),
            Ok("docker.io/user/app:latest")
        );
        assert_eq!(
            n("docker.io/app:1").as_deref(),
            Ok("docker.io/library/app:1")
        );
        for bad in [
            "docker-archive:img.tar:localhost/app:1",
            "oci:/tmp/lay:v1",
            "a..b/app:1",
            "-a.b/app:1",
            "host:port/app:1",
        ] {
            assert!(n(bad).is_err(), "{bad:?} accepted as {:?}", n(bad));
        }
    }

    #[test]
    fn same_target_rules() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().display();
        let a = p(&format!("oci-archive:{root}/x.tar:a"));
        let b = p(&format!("docker-archive:{root}/./sub/../x.tar"));
        assert!(a.same_target(&b));
        let c = p(&format!("oci:{root}/lay:a"));
        let e = p(&format!("oci:{root}/lay/:b"));
        let f = p(&format!("oci:{root}/lay:a"));
        assert!(!c.same_target(&e), "different tags in one layout");
        assert!(c.same_target(&f));
        assert!(!a.same_target(&c));
        let rel = p("oci-archive:x.tar");
        let abs = p(&format!(
            "oci-archive:{}/x.tar",
            std::env::current_dir().unwrap().display()
        ));
        assert!(rel.same_target(&abs));
    }
}
