//! Per-registry certificates as containers-certs.d(5) has them: a directory per
//! `HOST[:PORT]` under `$XDG_CONFIG_HOME/containers/certs.d` (what rootless podman
//! reads), `/etc/containers/certs.d` and `/etc/docker/certs.d`, the first that
//! exists; or one `--cert-dir` for every registry. In it, `*.crt` are extra trusted
//! roots (added to the system's) and each `NAME.cert` with `NAME.key` is a client
//! certificate. A half pair is an error, as containers/image makes it.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where to look for a registry's certificates.
#[derive(Debug, Clone, Default)]
pub struct CertDirs {
    /// `--cert-dir`: used for every host, instead of the per-host lookup.
    pub cert_dir: Option<PathBuf>,
    /// Parents of `HOST[:PORT]` directories, in the order they are tried.
    pub per_host_parents: Vec<PathBuf>,
}

impl CertDirs {
    /// The user's, then the system's certs.d parents (containers-certs.d(5)).
    pub fn from_env(cert_dir: Option<PathBuf>) -> Self {
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        let mut per_host_parents: Vec<PathBuf> = config_home
            .map(|c| c.join("containers/certs.d"))
            .into_iter()
            .collect();
        per_host_parents.push("/etc/containers/certs.d".into());
        per_host_parents.push("/etc/docker/certs.d".into());
        CertDirs {
            cert_dir,
            per_host_parents,
        }
    }

    /// The directory holding `host_port`'s certificates, if any exists.
    pub fn dir_for(&self, host_port: &str) -> Option<PathBuf> {
        if let Some(d) = &self.cert_dir {
            return Some(d.clone());
        }
        self.per_host_parents
            .iter()
            .map(|p| p.join(host_port))
            .find(|d| d.is_dir())
    }

    /// Where a user would put `host_port`'s CA (the first per-host parent), for hints.
    pub fn suggested_dir(&self, host_port: &str) -> Option<PathBuf> {
        self.per_host_parents.first().map(|p| p.join(host_port))
    }
}

/// What a cert directory holds for one registry.
#[derive(Default)]
pub struct HostCerts {
    /// Extra trusted roots (`*.crt`).
    pub roots: Vec<CertificateDer<'static>>,
    /// The client certificate chain and key (`*.cert` + `*.key`); the first pair
    /// by name when there are several (the server picks none of them by name).
    pub client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl std::fmt::Debug for HostCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCerts")
            .field("roots", &self.roots.len())
            .field("client", &self.client.as_ref().map(|_| "<key redacted>"))
            .finish()
    }
}

/// A cert directory that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a PEM {what}: {detail}", path.display())]
    BadPem {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("client certificate {} has no key {}", cert.display(), key.display())]
    MissingKey { cert: PathBuf, key: PathBuf },
    #[error("client key {} has no certificate {}", key.display(), cert.display())]
    MissingCert { key: PathBuf, cert: PathBuf },
    #[error("client certificate {} and key {} do not go together: {detail}", cert.display(), key.display())]
    BadPair {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

/// Reads `dir` as containers/image does: `*.crt`, `*.cert`, `*.key`, other files
/// ignored. A missing directory is nothing to add, unless it `must_exist` (a
/// `--cert-dir` that is not there is a mistake).
pub fn load_dir(dir: &Path, must_exist: bool) -> Result<HostCerts, CertError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Read { path, source }
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
            return Ok(HostCerts::default());
        }
        Err(e) => return Err(read_err(dir)(e)),
    };
    let mut names: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()).map_err(read_err(dir)))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut out = HostCerts::default();
    for path in &names {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => out.roots.extend(read_certs(path)?),
            Some("cert") => {
                let key = path.with_extension("key");
                if !key.exists() {
                    return Err(CertError::MissingKey {
                        cert: path.clone(),
                        key,
                    });
                }
                if out.client.is_none() {
                    let chain = read_certs(path)?;
                    let k = read_key(&key)?;
                    check_pair(path, &key, &chain, &k)?;
                    out.client = Some((chain, k));
                }
            }
            Some("key") => {
                let cert = path.with_extension("cert");
                if !cert.exists() {
                    return Err(CertError::MissingCert {
                        key: path.clone(),
                        cert,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |detail: String| CertError::BadPem {
        path: path.to_path_buf(),
        what: "certificate",
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| CertError::BadPem {
        path: path.to_path_buf(),
        what: "private key",
        detail: e.to_string(),
    })
}

/// rustls's own check of a client certificate and key (ureq would panic on a pair
/// rustls refuses, so it is refused here first, naming the files).
fn check_pair(
    cert: &Path,
    key: &Path,
    chain: &[CertificateDer<'static>],
    k: &PrivateKeyDer<'static>,
) -> Result<(), CertError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let bad = |detail: String| CertError::BadPair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        detail,
    };
    let signing = provider
        .key_provider
        .load_private_key(k.clone_key())
        .map_err(|e| bad(e.to_string()))?;
    rustls::sign::CertifiedKey::new(chain.to_vec(), signing)
        .keys_match()
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn per_host_lookup_takes_the_first_existing_dir_and_cert_dir_overrides() {
        let t = tempfile::tempdir().unwrap();
        let (user, etc) = (t.path().join("user"), t.path().join("etc"));
        std::fs::create_dir_all(etc.join("reg.lan:5000")).unwrap();
        std::fs::create_dir_all(etc.join("other.lan")).unwrap();
        std::fs::create_dir_all(user.join("other.lan")).unwrap();
        let dirs = CertDirs {
            cert_dir: None,
            per_host_parents: vec![user.clone(), etc.clone()],
        };
        assert_eq!(dirs.dir_for("reg.lan:5000"), Some(etc.join("reg.lan:5000")));
        assert_eq!(dirs.dir_for("other.lan"), Some(user.join("other.lan")));
        // HOST and HOST:PORT are different directories.
        assert_eq!(dirs.dir_for("reg.lan"), None);
        assert_eq!(dirs.suggested_dir("reg.lan"), Some(user.join("reg.lan")));
        let flag = CertDirs {
            cert_dir: Some(t.path().join("flag")),
            ..dirs
        };
        assert_eq!(flag.dir_for("reg.lan:5000"), Some(t.path().join("flag")));
    }

    #[test]
    fn roots_and_a_client_pair_load() {
        let t = tempfile::tempdir().unwrap();
        let (ca, _) = pair();
        let (cert, key) = pair();
        std::fs::write(t.path().join("ca.crt"), format!("{ca}{ca}")).unwrap();
        std::fs::write(t.path().join("client.cert"), &cert).unwrap();
        std::fs::write(t.path().join("client.key"), &key).unwrap();
        std::fs::write(t.path().join("README"), "ignored").unwrap();
        let got = load_dir(t.path(), false).unwrap();
        assert_eq!(got.roots.len(), 2);
        assert!(got.client.is_some());
        assert!(!format!("{got:?}").contains("PRIVATE"));
        // A missing directory adds nothing.
        let none = load_dir(&t.path().join("absent"), false).unwrap();
        assert!(none.roots.is_empty() && none.client.is_none());
        assert!(matches!(
            load_dir(&t.path().join("absent"), true),
            Err(CertError::Read { .. })
        ));
    }

    #[test]
    fn half_pairs_bad_pem_and_mismatched_keys_name_the_files() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("c.cert"), &cert).unwrap();
        let e = load_dir(t.path(), false).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "client certificate {} has no key {}",
                t.path().join("c.cert").display(),
                t.path().join("c.key").display()
            )
        );

        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("c.key"), &key).unwrap();
        let e = load_dir(t.path(), false).unwrap_err();
        assert!(matches!(e, CertError::MissingCert { .. }), "{e}");

        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("ca.crt"), "not pem at all").unwrap();
        let e = load_dir(t.path(), false).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{} is not a PEM certificate",
                t.path().join("ca.crt").display()
            )),
            "{e}"
        );

        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("c.cert"), &cert).unwrap();
        std::fs::write(t.path().join("c.key"), &other_key).unwrap();
        let e = load_dir(t.path(), false).unwrap_err();
        assert!(matches!(e, CertError::BadPair { .. }), "{e}");
    }
}
