//! What went wrong while connecting, read out of ureq's and rustls's errors, so that
//! an error can say "unknown CA" or "this registry speaks plain HTTP" instead of a
//! TLS alert number, and the HTTP fallback of `--tls-verify=false` knows when to
//! try plain HTTP.

use std::fmt;

use rustls::{AlertDescription, CertificateError};

/// A connection failure with a known cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The server's certificate chains to no trusted root.
    UnknownCa,
    /// The certificate is not for the name or address connected to.
    WrongName,
    /// Another certificate problem (expired, not yet valid, revoked...).
    BadCertificate(String),
    /// The server answered the TLS handshake with something that is not TLS: it
    /// speaks plain HTTP on this port.
    PlainHttp,
    /// The server wants a client certificate and got none it accepts.
    ClientCertificate,
    /// The proxy refused or failed the CONNECT (its status, when it answered).
    ProxyRefused(Option<u16>),
}

impl ConnectFailure {
    /// The cause of `e`, when it is one of the known ones.
    pub fn of(e: &ureq::Error) -> Option<Self> {
        if let ureq::Error::ConnectProxyFailed(why) = e {
            // ureq says "proxy server responded 403/..." or "did not respond".
            let status = why
                .strip_prefix("proxy server responded ")
                .and_then(|s| s.get(..3))
                .and_then(|s| s.parse().ok());
            return Some(ConnectFailure::ProxyRefused(status));
        }
        Some(match rustls_error(e)? {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => ConnectFailure::UnknownCa,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => ConnectFailure::WrongName,
                other => ConnectFailure::BadCertificate(format!("{other:?}")),
            },
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateHandshakeMessage { .. }
            | rustls::Error::InappropriateMessage { .. } => ConnectFailure::PlainHttp,
            rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA,
            ) => ConnectFailure::ClientCertificate,
            _ => return None,
        })
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectFailure::UnknownCa => f.write_str(
                "TLS certificate verification failed: the certificate is signed by an unknown CA",
            ),
            ConnectFailure::WrongName => f.write_str(
                "TLS certificate verification failed: the certificate is not valid for this host name",
            ),
            ConnectFailure::BadCertificate(why) => {
                write!(f, "TLS certificate verification failed: {why}")
            }
            ConnectFailure::PlainHttp => {
                f.write_str("the registry does not speak TLS on this port (it answers plain HTTP)")
            }
            ConnectFailure::ClientCertificate => f.write_str(
                "the registry requires a client certificate (TLS) and refused the one sent, or none was sent",
            ),
            ConnectFailure::ProxyRefused(Some(407)) => f.write_str(
                "the proxy refused CONNECT: HTTP 407, proxy authentication required",
            ),
            ConnectFailure::ProxyRefused(Some(status)) => {
                write!(f, "the proxy refused CONNECT: HTTP {status}")
            }
            ConnectFailure::ProxyRefused(None) => f.write_str("the proxy did not answer CONNECT"),
        }
    }
}

/// The rustls error inside a ureq error, at whatever depth ureq put it (handshake
/// errors arrive as `Error::Io` wrapping `rustls::Error`).
fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => {
            let mut inner: Option<&(dyn std::error::Error + 'static)> =
                io.get_ref().map(|e| e as _);
            while let Some(err) = inner {
                if let Some(r) = err.downcast_ref::<rustls::Error>() {
                    return Some(r);
                }
                inner = err.source();
            }
            None
        }
        _ => None,
    }
}
