//! Hints for the ways a connection to a registry fails before HTTP starts: TLS
//! verification, a registry without TLS, client certificates, the proxy, and the
//! certs.d files themselves. Apart from `explain.rs` to keep each file short.

use ocibench::oci::registry::ConnectFailure;
use ocibench::oci::registry::certs_d::{CertDirs, CertError};

/// What to do about `cause` when connecting to `host` (`HOST[:PORT]`).
pub(super) fn connect_hint(host: &str, cause: &ConnectFailure) -> String {
    let dirs = CertDirs::from_env(None);
    let user_dir = dirs
        .suggested_dir(host)
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| format!("$HOME/.config/containers/certs.d/{host}"));
    match cause {
        ConnectFailure::UnknownCa => format!(
            "trust the registry's CA: put its certificate (PEM) in {user_dir}/ca.crt or /etc/containers/certs.d/{host}/ca.crt, or pass --cert-dir DIR holding it; --tls-verify=false skips the check"
        ),
        ConnectFailure::WrongName => format!(
            "the certificate does not list {host} in its subjectAltName: use a name it lists, or --tls-verify=false to skip the check"
        ),
        ConnectFailure::BadCertificate(_) => "check the registry's certificate (its dates, and this machine's clock); --tls-verify=false skips the check".into(),
        ConnectFailure::PlainHttp => format!(
            "{host} serves plain HTTP: use --tls-verify=false, or mark it `insecure = true` in registries.conf"
        ),
        ConnectFailure::ClientCertificate => format!(
            "put a client certificate and its key as NAME.cert and NAME.key in {user_dir}/ (or in the --cert-dir DIR)"
        ),
        ConnectFailure::ProxyRefused(_) => format!(
            "the proxy (https_proxy/HTTPS_PROXY, or http_proxy/HTTP_PROXY for plain HTTP) refused the tunnel: check its address and credentials, or add {host} to NO_PROXY to connect directly"
        ),
    }
}

/// What to do about an unusable certs.d file.
pub(super) fn cert_file_hint(e: &CertError) -> String {
    match e {
        CertError::Read { .. } => "check that the file exists and is readable by this user".into(),
        CertError::BadPem { .. } => "certs.d files are PEM: CA certificates NAME.crt and client certificates NAME.cert (-----BEGIN CERTIFICATE-----), client keys NAME.key (-----BEGIN PRIVATE KEY-----)".into(),
        CertError::MissingKey { .. } => "a client certificate NAME.cert needs its key NAME.key beside it; a CA certificate must be named NAME.crt".into(),
        CertError::MissingCert { .. } => "a client key NAME.key needs its certificate NAME.cert beside it".into(),
        CertError::BadPair { .. } => "NAME.key must be the private key of NAME.cert (unencrypted PEM)".into(),
    }
}
