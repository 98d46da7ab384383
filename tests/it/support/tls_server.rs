//! HTTPS and HTTP/2 servers for the load generator's tests: hyper behind
//! tokio-rustls with a certificate from a CA made in the test (rcgen), or
//! HTTP/2 with prior knowledge (h2c) on plain TCP; real sockets on 127.0.0.1
//! port 0, each on its own thread and runtime.
//!
//! They count connections, requests and the HTTP versions seen, and the peak
//! number of requests open at once. With `hold`, every request waits until
//! `hold` are open together (or 10 s pass), so a concurrency assertion is exact
//! rather than timing-based.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

/// A CA and the PEM file of its certificate, in a temporary directory.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ocibench test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        TestCa { cert, key, dir }
    }

    /// The CA certificate's PEM file (for `--cacert`).
    pub fn pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for `names` (DNS names or IP addresses) and its key.
    fn issue(&self, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Connections accepted (TLS ones: after a completed handshake).
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub http2_requests: AtomicU64,
    pub http11_requests: AtomicU64,
    open: AtomicU64,
    pub peak_open: AtomicU64,
}

impl Seen {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// How the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// TLS with ALPN `h2` and `http/1.1`: HTTP/2 when the client asks for it.
    TlsH2AndHttp1,
    /// TLS with ALPN `http/1.1` only: no HTTP/2 (rustls refuses a client
    /// offering only `h2` with a `no_application_protocol` alert).
    TlsHttp1Only,
    /// TLS without ALPN: the handshake succeeds, HTTP/1.1 is served.
    TlsNoAlpn,
    /// Plain TCP, HTTP/2 with prior knowledge only.
    H2c,
}

pub struct TlsServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

impl TlsServer {
    /// A server with a certificate for `names` signed by `ca` (ignored for
    /// h2c); with `hold`, requests wait until `hold` are open at once.
    pub fn start(
        ca: &TestCa,
        names: &[&str],
        protocols: Protocols,
        hold: Option<u64>,
    ) -> TlsServer {
        let acceptor = (protocols != Protocols::H2c).then(|| {
            let (cert, key) = ca.issue(names);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap();
            config.alpn_protocols = match protocols {
                Protocols::TlsH2AndHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                Protocols::TlsHttp1Only => vec![b"http/1.1".to_vec()],
                _ => Vec::new(),
            };
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let release = Arc::new(tokio::sync::Notify::new());
        let s = seen.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let listener = TcpListener::from_std(std_listener).unwrap();
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let (s, release, acceptor) = (s.clone(), release.clone(), acceptor.clone());
                        tokio::spawn(async move {
                            let for_service = s.clone();
                            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                                handle(req.version(), for_service.clone(), release.clone(), hold)
                            });
                            match acceptor {
                                None => {
                                    s.connections.fetch_add(1, Ordering::SeqCst);
                                    let _ = hyper::server::conn::http2::Builder::new(
                                        TokioExecutor::new(),
                                    )
                                    .serve_connection(TokioIo::new(tcp), service)
                                    .await;
                                }
                                Some(acceptor) => {
                                    let Ok(tls) = acceptor.accept(tcp).await else {
                                        return;
                                    };
                                    s.connections.fetch_add(1, Ordering::SeqCst);
                                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                                    let io = TokioIo::new(tls);
                                    if h2 {
                                        let _ = hyper::server::conn::http2::Builder::new(
                                            TokioExecutor::new(),
                                        )
                                        .serve_connection(io, service)
                                        .await;
                                    } else {
                                        let _ = hyper::server::conn::http1::Builder::new()
                                            .serve_connection(io, service)
                                            .await;
                                    }
                                }
                            }
                        });
                    }
                });
        });
        TlsServer { addr, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn h2c_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn handle(
    version: Version,
    s: Arc<Seen>,
    release: Arc<tokio::sync::Notify>,
    hold: Option<u64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    s.requests.fetch_add(1, Ordering::SeqCst);
    match version {
        Version::HTTP_2 => s.http2_requests.fetch_add(1, Ordering::SeqCst),
        Version::HTTP_11 => s.http11_requests.fetch_add(1, Ordering::SeqCst),
        _ => 0,
    };
    // Registered before counting itself open, so a release cannot slip between.
    let released = release.notified();
    let open = s.open.fetch_add(1, Ordering::SeqCst) + 1;
    s.peak_open.fetch_max(open, Ordering::SeqCst);
    if let Some(hold) = hold {
        if open >= hold {
            release.notify_waiters();
        } else {
            let _ = tokio::time::timeout(Duration::from_secs(10), released).await;
        }
    }
    s.open.fetch_sub(1, Ordering::SeqCst);
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}
