//! A connection's byte stream: TCP (with `TCP_NODELAY`), then TLS over it for
//! `https://` URLs, with failures sorted into the kinds the report counts.
//!
//! The rustls `ClientConfig` (trusted roots, ALPN, crypto provider) is built once
//! per run by `TlsClient::new` and shared by every connection of every worker:
//! reading the system's CA bundle costs milliseconds, a price no connection
//! should pay. The crypto provider is ring, the one ureq already compiles.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::config::{LoadConfig, TlsTrust};
use super::connection::classify_io;
use super::result::ErrorKind;

/// ALPN protocol id of HTTP/2 (RFC 9113).
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why TLS could not be set up for a run at all.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("no usable CA certificate in {what}")]
    NoRoots { what: &'static str },
    #[error("`{host}` is not a valid TLS server name")]
    ServerName { host: String },
    #[error("cannot set up TLS")]
    Rustls(#[source] rustls::Error),
}

/// The TLS side of every connection of a run, built once.
#[derive(Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    /// The URL's host: SNI for a name (an address sends none, as rustls does),
    /// and the name the certificate must be valid for.
    server_name: ServerName<'static>,
    /// The first handshake failure's reason, for the report.
    first_error: OnceLock<String>,
}

impl TlsClient {
    /// The client for `config`'s URL: its roots (system, `--cacert` or none
    /// checked with `--insecure`) and ALPN (`h2` with `--http2`, else
    /// `http/1.1` only).
    pub fn new(config: &LoadConfig) -> Result<TlsClient, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Rustls)?;
        let mut tls = match &config.tls_trust {
            TlsTrust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth(),
            TlsTrust::System => {
                let found = rustls_native_certs::load_native_certs();
                builder
                    .with_root_certificates(roots(found.certs, "the system's CA bundle")?)
                    .with_no_client_auth()
            }
            TlsTrust::CaCerts(certs) => builder
                .with_root_certificates(roots(certs.clone(), "the --cacert file")?)
                .with_no_client_auth(),
        };
        tls.alpn_protocols = vec![if config.http2 { ALPN_H2 } else { ALPN_HTTP11 }.to_vec()];
        let server_name =
            ServerName::try_from(config.host.clone()).map_err(|_| TlsSetupError::ServerName {
                host: config.host.clone(),
            })?;
        Ok(TlsClient {
            config: Arc::new(tls),
            server_name,
            first_error: OnceLock::new(),
        })
    }

    /// The TLS handshake over `tcp`.
    pub async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, ErrorKind> {
        self.handshake_io(tcp).await.map_err(|e| self.classify(&e))
    }

    /// The TLS handshake over `tcp`, failing with the io error that carries
    /// rustls's (see `refused_alpn`).
    pub async fn handshake_io(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
    }

    /// The first handshake failure's reason, if any handshake failed.
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.get().map(String::as_str)
    }

    /// A rustls error or a cut handshake is `Tls` (and its reason is kept);
    /// a reset or a timeout is what it says.
    pub fn classify(&self, e: &io::Error) -> ErrorKind {
        let reason = match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => tls.to_string(),
            None if e.kind() == io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the TLS handshake".to_string()
            }
            None => return classify_io(e),
        };
        self.first_error.get_or_init(|| reason);
        ErrorKind::Tls
    }
}

/// Whether a handshake failed because the server shares none of the offered
/// ALPN protocols (its `no_application_protocol` alert).
pub fn refused_alpn(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
            )
        })
}

fn roots(
    certs: Vec<CertificateDer<'static>>,
    what: &'static str,
) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    let (added, _unparsable) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsSetupError::NoRoots { what });
    }
    Ok(store)
}

/// A byte stream a connection is opened on: plain TCP, or TLS over TCP.
pub trait Dial: AsyncRead + AsyncWrite + Unpin + Sized + 'static {
    /// Connects to `addr`, with the TLS handshake when `Self` is TLS.
    fn dial(
        addr: SocketAddr,
        tls: Option<&TlsClient>,
    ) -> impl Future<Output = Result<Self, ErrorKind>>;
}

impl Dial for TcpStream {
    async fn dial(addr: SocketAddr, _tls: Option<&TlsClient>) -> Result<Self, ErrorKind> {
        connect_tcp(addr).await
    }
}

impl Dial for TlsStream<TcpStream> {
    async fn dial(addr: SocketAddr, tls: Option<&TlsClient>) -> Result<Self, ErrorKind> {
        let tls = tls.expect("an https:// run has a TLS client");
        tls.handshake(connect_tcp(addr).await?).await
    }
}

/// A TCP connection to `addr`, Nagle off.
pub async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, ErrorKind> {
    let stream = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Connect,
    })?;
    // Small requests must leave at once, not wait for Nagle.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// `--insecure`: any certificate is accepted, for any name; the handshake's
/// signatures are still checked, so the session is TLS, merely unauthenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_offers_h2_only_with_http2_and_addresses_are_server_names() {
        let c = LoadConfig::builder("https://127.0.0.1:8443/")
            .insecure(true)
            .build()
            .unwrap();
        let tls = TlsClient::new(&c).unwrap();
        assert!(matches!(tls.server_name, ServerName::IpAddress(_)));
        let c = LoadConfig::builder("https://localhost:8443/")
            .insecure(true)
            .http2(true)
            .build()
            .unwrap();
        let tls = TlsClient::new(&c).unwrap();
        assert!(matches!(tls.server_name, ServerName::DnsName(_)));
        assert_eq!(tls.config.alpn_protocols, vec![ALPN_H2.to_vec()]);
    }

    #[test]
    fn a_cacert_without_a_parsable_certificate_is_refused() {
        let c = LoadConfig {
            tls_trust: TlsTrust::CaCerts(vec![CertificateDer::from(vec![0x30, 0x03, 2, 1, 1])]),
            ..LoadConfig::builder("https://h/").build().unwrap()
        };
        let e = TlsClient::new(&c).unwrap_err();
        assert!(matches!(e, TlsSetupError::NoRoots { .. }), "{e}");
    }
}
