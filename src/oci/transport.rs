//! Where an image lives, in skopeo's transport syntax, so users need nothing new:
//! `docker://REF` (or a bare `REF`), `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:REF]`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::reference::{ImageReference, ReferenceError};

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
