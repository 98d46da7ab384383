//! In-test HTTP servers for the load generator's tests: real sockets on
//! 127.0.0.1 port 0, each on its own thread and runtime, counting what they see.
//!
//! `HttpServer` is a hyper server whose replies a closure decides by arrival
//! index (status, delay, hang, close); `RawServer` speaks just enough raw
//! HTTP/1.1 to send a response byte for byte, or to reset every k-th
//! connection with a TCP RST.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::http::find;
use super::tools::free_port;

/// What the server does with the request that arrived `n`-th (from 0).
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// Answer at once with this status.
    Status(u16),
    /// Answer 200 after this delay.
    After(Duration),
    /// Answer 200 with `Connection: close`, then close.
    Close,
    /// Answer 200 at this instant (at once if it has passed).
    At(std::time::Instant),
    /// Never answer.
    Hang,
}

/// Counts shared with the server thread.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    pub resets: AtomicU64,
}

impl Counts {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::SeqCst)
    }
}

pub struct HttpServer {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
}

impl HttpServer {
    /// A server answering 200 "ok" to everything.
    pub fn ok() -> HttpServer {
        HttpServer::start(|_| Reply::Status(200))
    }

    pub fn start(reply: impl Fn(u64) -> Reply + Send + Sync + 'static) -> HttpServer {
        let (std_listener, addr) = bind();
        let counts = Arc::new(Counts::default());
        let reply = Arc::new(reply);
        let c = counts.clone();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    c.connections.fetch_add(1, Ordering::SeqCst);
                    let (c, reply) = (c.clone(), reply.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                            let n = c.requests.fetch_add(1, Ordering::SeqCst);
                            let r = reply(n);
                            async move { Ok::<_, Infallible>(respond(r).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        HttpServer { addr, counts }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn respond(r: Reply) -> Response<Full<Bytes>> {
    let ok = || Response::new(Full::new(Bytes::from_static(b"ok")));
    match r {
        Reply::Status(s) => {
            let mut resp = ok();
            *resp.status_mut() = http::StatusCode::from_u16(s).unwrap();
            resp
        }
        Reply::After(d) => {
            tokio::time::sleep(d).await;
            ok()
        }
        Reply::Close => {
            let mut resp = ok();
            resp.headers_mut()
                .insert("connection", "close".parse().unwrap());
            resp
        }
        Reply::At(t) => {
            tokio::time::sleep_until(t.into()).await;
            ok()
        }
        Reply::Hang => std::future::pending().await,
    }
}

/// Raw HTTP/1.1 over keep-alive connections: every request (a GET: it ends at
/// the blank line) gets the same response, written byte for byte.
pub struct RawServer {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
}

impl RawServer {
    /// Answers every request with `response`, exactly as given.
    pub fn answering(response: &'static [u8]) -> RawServer {
        RawServer::start(response, None)
    }

    /// Answers 200, but resets (RST) the connection instead of answering
    /// every `every`-th request (counted from 1).
    pub fn resetting(every: u64) -> RawServer {
        RawServer::start(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Some(every),
        )
    }

    fn start(response: &'static [u8], reset_every: Option<u64>) -> RawServer {
        let (std_listener, addr) = bind();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        continue;
                    };
                    c.connections.fetch_add(1, Ordering::SeqCst);
                    let c = c.clone();
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        loop {
                            // GET requests without bodies: a request ends at the blank line.
                            let Some(end) = find(&buf, b"\r\n\r\n") else {
                                match stream.read(&mut chunk).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                                }
                                continue;
                            };
                            buf.drain(..end + 4);
                            let n = c.requests.fetch_add(1, Ordering::SeqCst) + 1;
                            if reset_every.is_some_and(|every| n % every == 0) {
                                c.resets.fetch_add(1, Ordering::SeqCst);
                                let _ = stream.set_zero_linger();
                                return; // dropped with linger 0: RST
                            }
                            if stream.write_all(response).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
        });
        RawServer { addr, counts }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// A URL on a loopback port with nothing listening on it.
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}/", free_port())
}

fn bind() -> (StdListener, SocketAddr) {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
