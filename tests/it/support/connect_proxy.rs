//! A small HTTP proxy that counts what passes through it: connections, the request
//! lines (`CONNECT host:port` tunnels, and absolute-form `GET http://host:port/path`
//! requests, passed on one per connection), the bytes relayed, and whether
//! `Proxy-Authorization` carried the expected credentials. Written here (std threads, no tokio) rather than taken
//! from Debian (squid, tinyproxy) because the tests need its counts exactly and a
//! daemon's log format and start-up are more to depend on than ~150 lines.
//!
//! It listens on 127.0.0.1 inside a [`NetNs`] (threads started by a thread that
//! entered a namespace are inside it too), so the registries it tunnels to are the
//! namespace's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::netns::NetNs;

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    bytes: AtomicU64,
    requests: Mutex<Vec<String>>,
    bad_auth: AtomicU64,
}

/// What the proxy does with a CONNECT.
#[derive(Debug, Clone)]
pub enum ProxyMode {
    /// Tunnels every CONNECT.
    Open,
    /// Tunnels only with `Proxy-Authorization: Basic base64(user:pass)`; 407 otherwise.
    Auth { user: String, pass: String },
    /// Answers every CONNECT with 403.
    Refuse,
}

/// A running proxy; stops accepting on drop.
pub struct ConnectProxy {
    port: u16,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    ns_listener_wake: Box<dyn Fn() + Send + Sync>,
}

impl ConnectProxy {
    /// Starts the proxy on a free port of 127.0.0.1 inside `ns`.
    pub fn start_in(ns: &NetNs, mode: ProxyMode) -> ConnectProxy {
        Self::start(Some(ns), mode)
    }

    /// Starts the proxy on a free port of 127.0.0.1 in the test's own network.
    pub fn start_here(mode: ProxyMode) -> ConnectProxy {
        Self::start(None, mode)
    }

    fn start(ns: Option<&NetNs>, mode: ProxyMode) -> ConnectProxy {
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let bind = || TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let listener = match ns {
            Some(ns) => ns.run_inside(bind),
            None => bind(),
        };
        let port = listener.local_addr().unwrap().port();
        let (c, s) = (counts.clone(), stop.clone());
        let serve = move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                c.connections.fetch_add(1, Ordering::SeqCst);
                let (c, mode) = (c.clone(), mode.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &c, &mode);
                });
            }
        };
        match ns {
            Some(ns) => drop(ns.spawn_inside(serve)),
            None => drop(std::thread::spawn(serve)),
        }
        // Waking the accept loop needs a connection from the listener's namespace.
        let wake_ns = ns.map(|ns| {
            std::fs::File::open(format!("/var/run/netns/{}", ns.name())).expect("open netns")
        });
        let wake = move || {
            use std::os::fd::AsRawFd;
            let fd = wake_ns.as_ref().map(|f| f.as_raw_fd());
            let _ = std::thread::scope(|sc| {
                sc.spawn(|| {
                    // SAFETY: setns on an open namespace fd; it changes this thread only.
                    if fd.is_none_or(|fd| unsafe { libc::setns(fd, libc::CLONE_NEWNET) } == 0) {
                        let _ = TcpStream::connect(("127.0.0.1", port));
                    }
                })
                .join()
            });
        };
        ConnectProxy {
            port,
            counts,
            stop,
            ns_listener_wake: Box::new(wake),
        }
    }

    /// `http://127.0.0.1:PORT`, or with user info.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url_with_credentials(&self, user: &str, pass: &str) -> String {
        format!("http://{user}:{pass}@127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counts.connections.load(Ordering::SeqCst)
    }

    /// Bytes tunnelled, both directions.
    pub fn bytes(&self) -> u64 {
        self.counts.bytes.load(Ordering::SeqCst)
    }

    /// The request lines received (`CONNECT 10.77.0.1:5000 HTTP/1.1`,
    /// `GET http://10.77.0.1:5000/v2/ HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.counts.requests.lock().unwrap().clone()
    }

    /// CONNECTs refused for missing or wrong credentials.
    pub fn bad_auth(&self) -> u64 {
        self.counts.bad_auth.load(Ordering::SeqCst)
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        (self.ns_listener_wake)();
    }
}

fn handle(client: TcpStream, counts: &Counts, mode: &ProxyMode) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let request = line.trim_end().to_string();
    let mut auth = None;
    // Headers passed on for an absolute-form request (hop-by-hop ones dropped).
    let mut forwarded = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        let name = h
            .split_once(':')
            .map(|(k, _)| k.trim().to_ascii_lowercase());
        match name.as_deref() {
            Some("proxy-authorization") => {
                auth = h.split_once(':').map(|(_, v)| v.trim().to_string());
            }
            Some("proxy-connection" | "connection") => {}
            _ => forwarded.push_str(&h),
        }
    }
    counts.requests.lock().unwrap().push(request.clone());
    let mut client_w = client.try_clone()?;
    let mut parts = request.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    match mode {
        ProxyMode::Refuse => {
            client_w.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        }
        ProxyMode::Auth { user, pass } => {
            use base64::Engine;
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            );
            if auth.as_deref() != Some(want.as_str()) {
                counts.bad_auth.fetch_add(1, Ordering::SeqCst);
                client_w.write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n",
                )?;
                return Ok(());
            }
        }
        ProxyMode::Open => {}
    }
    // CONNECT host:port, or an absolute-form request (`GET http://host:port/path`),
    // sent on in origin form with `Connection: close`: one request per connection.
    let (upstream_addr, head) = if method == "CONNECT" {
        (target.to_string(), None)
    } else if let Some(rest) = target.strip_prefix("http://") {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let addr = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let head = format!("{method} {path} {version}\r\n{forwarded}Connection: close\r\n\r\n");
        (addr, Some(head))
    } else {
        client_w.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    let mut upstream = match TcpStream::connect(&upstream_addr) {
        Ok(u) => u,
        Err(_) => {
            client_w.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        }
    };
    match head {
        None => client_w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?,
        Some(head) => {
            upstream.write_all(head.as_bytes())?;
            counts.bytes.fetch_add(head.len() as u64, Ordering::SeqCst);
        }
    }
    // Bytes the client sent after its head (a request body's start, if any).
    let early = reader.buffer().to_vec();
    let mut up_w = upstream.try_clone()?;
    up_w.write_all(&early)?;
    counts.bytes.fetch_add(early.len() as u64, Ordering::SeqCst);
    std::thread::scope(|s| {
        s.spawn(|| copy_counting(reader.into_inner(), up_w, counts));
        s.spawn(|| copy_counting(upstream, client_w, counts));
    });
    Ok(())
}

fn copy_counting(mut from: TcpStream, mut to: TcpStream, counts: &Counts) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                counts.bytes.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}
