//! The registry client against faults in front of the real Distribution registry: a
//! small proxy that answers blob GETs with `307` to a second server (which fails any
//! request carrying `Authorization`), throttles the first layer upload with `429
//! Retry-After: 1`, or closes the connection halfway through the first layer upload's
//! body. Each time the pull or push must still succeed, and what the registry holds
//! must verify (stored bytes hash to their digests; skopeo copies the image back).

use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::fixtures::FixtureLayout;
use crate::support::http_server::{Reply, Request, RequestHead, Server, read_head, write_response};
use crate::support::registry::blob_data_path;
use crate::support::{Output, Registry, TestContext, Variant, fixture_layout, push_fixture};

/// What the proxy does besides forwarding.
#[derive(Debug, Clone, Default)]
struct Faults {
    /// Blob GETs are answered `307` to `{this}/blobs/<digest>`.
    redirect_blobs_to: Option<String>,
    /// The first upload PUT/PATCH of this blob (hex of its digest) is answered `429`.
    throttle_upload_of: Option<String>,
    /// The first upload PUT/PATCH of this blob is cut: the proxy reads `.1` body bytes,
    /// then closes the connection without answering.
    drop_upload_of: Option<(String, u64)>,
}

/// One request as the proxy handled it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    authorization: bool,
    /// The status sent back; 0 when the connection was dropped.
    status: u16,
    body_bytes: u64,
    at: Instant,
}

/// A proxy on a free loopback port in front of `upstream` (a registry's `host:port`).
struct Proxy {
    addr: String,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    fn start(upstream: &str, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(ProxyState {
            upstream: upstream.to_string(),
            addr: addr.clone(),
            faults,
            throttled: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            log: log.clone(),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        Proxy { addr, log }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

struct ProxyState {
    upstream: String,
    addr: String,
    faults: Faults,
    throttled: AtomicBool,
    dropped: AtomicBool,
    log: Arc<Mutex<Vec<Seen>>>,
}

/// Whether `head` uploads (PUT or PATCH) the blob whose digest's hex is `hex`.
fn is_upload_of(head: &RequestHead, hex: &Option<String>) -> bool {
    matches!(head.method.as_str(), "PUT" | "PATCH")
        && head.target.contains("/blobs/uploads/")
        && hex
            .as_ref()
            .is_some_and(|h| head.target.contains(h.as_str()))
}

/// Reads the request body (sized or chunked), at most `limit` bytes; `None` on a short
/// read. The bool says whether the whole body was read.
fn read_body(reader: &mut impl BufRead, head: &RequestHead, limit: u64) -> Option<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        let len: u64 = head
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let n = len.min(limit);
        reader.take(n).read_to_end(&mut body).ok()?;
        return (body.len() as u64 == n).then_some((body, n == len));
    }
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = u64::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            let mut trailer = String::new();
            while reader.read_line(&mut trailer).ok()? > 2 {
                trailer.clear();
            }
            return Some((body, true));
        }
        let room = limit - body.len() as u64;
        if size >= room {
            reader.take(room).read_to_end(&mut body).ok()?;
            return Some((body, false));
        }
        reader.take(size).read_to_end(&mut body).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

impl ProxyState {
    fn record(&self, head: &RequestHead, status: u16, body_bytes: u64) {
        self.log.lock().unwrap().push(Seen {
            method: head.method.clone(),
            target: head.target.clone(),
            authorization: head.header("authorization").is_some(),
            status,
            body_bytes,
            at: Instant::now(),
        });
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        while let Some(head) = read_head(&mut reader) {
            if let Some((hex, cut)) = &self.faults.drop_upload_of
                && is_upload_of(&head, &Some(hex.clone()))
                && !self.dropped.swap(true, Ordering::SeqCst)
            {
                let got = read_body(&mut reader, &head, *cut).map_or(0, |(b, _)| b.len());
                self.record(&head, 0, got as u64);
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            let Some((body, true)) = read_body(&mut reader, &head, u64::MAX) else {
                return;
            };
            if is_upload_of(&head, &self.faults.throttle_upload_of)
                && !self.throttled.swap(true, Ordering::SeqCst)
            {
                self.record(&head, 429, body.len() as u64);
                let headers = [("Retry-After".to_string(), "1".to_string())];
                if !write_response(&mut out, 429, &headers, b"") {
                    return;
                }
                continue;
            }
            if let Some(base) = &self.faults.redirect_blobs_to
                && head.method == "GET"
                && let Some((_, digest)) = head.target.split_once("/blobs/sha256:")
            {
                self.record(&head, 307, 0);
                let location = format!("{base}/blobs/sha256:{digest}");
                let headers = [("Location".to_string(), location)];
                if !write_response(&mut out, 307, &headers, b"") {
                    return;
                }
                continue;
            }
            let mut headers: Vec<(&str, &str)> = head
                .headers
                .iter()
                .filter(|(k, _)| {
                    !["host", "content-length", "transfer-encoding", "connection"]
                        .contains(&k.to_ascii_lowercase().as_str())
                })
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            // The registry builds its Location URLs from these: uploads come back here.
            headers.push(("X-Forwarded-Host", &self.addr));
            headers.push(("X-Forwarded-Proto", "http"));
            let Ok(resp) =
                support::http::request(&self.upstream, &head.method, &head.target, &headers, &body)
            else {
                return;
            };
            self.record(&head, resp.status, body.len() as u64);
            let mut back: Vec<(String, String)> = resp
                .headers
                .iter()
                .filter(|(k, _)| {
                    !["transfer-encoding", "connection"].contains(&k.as_str())
                        && (head.method == "HEAD" || k != "content-length")
                })
                .cloned()
                .collect();
            if head.method == "HEAD" && !back.iter().any(|(k, _)| k == "content-length") {
                back.push(("content-length".into(), "0".into()));
            }
            if !write_response(&mut out, resp.status, &back, &resp.body) {
                return;
            }
        }
    }
}

/// Serves blobs from a registry's storage at `/blobs/<digest>`; answers 403 to any
/// request carrying `Authorization` (a credential leaked to another host).
struct BlobServer {
    url: String,
    server: Server,
}

impl BlobServer {
    fn start(storage: PathBuf) -> BlobServer {
        let server = Server::start(Arc::new(move |req: &Request| {
            let hex = req.path.rsplit("sha256:").next().unwrap_or_default();
            let path = blob_data_path(&storage, &format!("sha256:{hex}"));
            match std::fs::read(&path) {
                _ if req.header("authorization").is_some() => {
                    Reply::new(403, "Authorization leaked")
                }
                Ok(bytes) => Reply::new(200, bytes),
                Err(_) => Reply::new(404, "no such blob"),
            }
        }));
        let url = format!("http://{}", server.addr());
        BlobServer { url, server }
    }

    /// Every request so far: (target, whether it carried `Authorization`).
    fn served(&self) -> Vec<(String, bool)> {
        self.server
            .requests()
            .iter()
            .map(|r| (r.path.clone(), r.header("authorization").is_some()))
            .collect()
    }
}

/// `ocibench push --json` of `layout` to `busybox:1` through `proxy`; must succeed.
fn push_through(proxy: &Proxy, layout: &FixtureLayout) -> Output {
    TestContext::new()
        .run([
            "push",
            &layout.oci_ref(),
            &format!("docker://{}/busybox:1", proxy.addr),
            "--json",
        ])
        .success()
}

fn hex(digest: &str) -> String {
    digest.trim_start_matches("sha256:").to_string()
}

#[test]
fn redirected_blob_gets_never_carry_authorization() {
    let (user, pass) = ("redirect-user", "redirect-Pa55");
    let registry = Registry::builder().htpasswd(user, pass).start();
    let image = push_fixture(&registry, "busybox", "1", Variant::TwoLayers);
    let blobs = BlobServer::start(registry.storage_root());
    let proxy = Proxy::start(
        registry.addr(),
        Faults {
            redirect_blobs_to: Some(blobs.url.clone()),
            ..Faults::default()
        },
    );
    let ctx = TestContext::new();
    let out = ctx
        .run([
            "--creds",
            &format!("{user}:{pass}"),
            "pull",
            "--json",
            &format!("{}/busybox:1", proxy.addr),
        ])
        .success();
    assert_eq!(out.json()["image"]["digest"], image.manifest_digest);
    assert_eq!(out.json()["transferred_blobs"], 1 + image.layers.len());

    let served = blobs.served();
    assert_eq!(served.len(), 1 + image.layers.len(), "{served:?}");
    assert!(served.iter().all(|(_, auth)| !auth), "{served:?}");
    // The registry itself did get credentials: the 307s answered authorised GETs.
    let redirects: Vec<Seen> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.status == 307)
        .collect();
    assert_eq!(redirects.len(), 1 + image.layers.len(), "{redirects:#?}");
    assert!(redirects.iter().all(|s| s.authorization), "{redirects:#?}");
}

#[test]
fn a_throttled_upload_waits_for_retry_after_and_succeeds() {
    let registry = Registry::start();
    let layout = fixture_layout(Variant::Oci);
    let layer = layout.image.layers[0].digest.clone();
    let proxy = Proxy::start(
        registry.addr(),
        Faults {
            throttle_upload_of: Some(hex(&layer)),
            ..Faults::default()
        },
    );
    let started = Instant::now();
    let out = push_through(&proxy, layout);
    let elapsed = started.elapsed();
    assert_eq!(out.json()["digest"], layout.image.manifest_digest);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");

    let seen = proxy.seen();
    let uploads: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains(&hex(&layer)))
        .collect();
    assert_eq!(uploads.len(), 2, "{seen:#?}");
    assert_eq!((uploads[0].status, uploads[1].status), (429, 201));
    // Lower bound only: Retry-After: 1 was honoured before the retry.
    let waited = uploads[1].at.duration_since(uploads[0].at);
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    registry.assert_holds("busybox:1", &layout.image.manifest_digest);
}

#[test]
fn a_connection_dropped_mid_upload_is_retried_and_nothing_is_corrupt() {
    let registry = Registry::start();
    let layout = fixture_layout(Variant::Oci);
    let layer = &layout.image.layers[0];
    let half = layer.compressed_bytes / 2;
    let proxy = Proxy::start(
        registry.addr(),
        Faults {
            drop_upload_of: Some((hex(&layer.digest), half)),
            ..Faults::default()
        },
    );
    let out = push_through(&proxy, layout);
    let report = out.json();
    assert_eq!(report["digest"], layout.image.manifest_digest);
    assert_eq!(report["uploaded_blobs"], 2, "{report}");

    let seen = proxy.seen();
    let uploads: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains(&hex(&layer.digest)))
        .collect();
    assert!(uploads.len() >= 2, "{seen:#?}");
    assert_eq!(uploads[0].status, 0, "the first was cut: {seen:#?}");
    assert_eq!(uploads[0].body_bytes, half, "{seen:#?}");
    let last = uploads.last().unwrap();
    assert_eq!(last.status, 201, "{seen:#?}");
    assert_eq!(last.body_bytes, layer.compressed_bytes, "{seen:#?}");
    registry.assert_holds("busybox:1", &layout.image.manifest_digest);
}
