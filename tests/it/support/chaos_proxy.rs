//! A fault-injecting HTTP/1.1 proxy for the chaos test: it forwards every request to a
//! real registry and, with a seeded RNG, breaks some of them the ways networks and
//! middleboxes do: connections dropped before or after the registry saw the request,
//! stalls before the answer or halfway through a body, 5xx and 429 answers (with and
//! without `Retry-After`, in seconds or as an HTTP date), bodies cut short under their
//! full `Content-Length`, a flipped byte in a blob or manifest body, and for chunked
//! uploads a PATCH sent twice or held back and sent after the next one, so that the
//! registry's offset check fires.
//!
//! ```ignore
//! let registry = Registry::start();
//! let proxy = ChaosProxy::start(registry.addr(), ChaosConfig::from_env());
//! // point clients at proxy.addr(); afterwards:
//! println!("{}", proxy.summary());
//! ```
//!
//! Unlike `registry::push_faults`' proxy (one scripted fault per test), every decision
//! here is random, per request, from one `fastrand` generator seeded by the config, and
//! every fault injected is counted by kind. Each forwarded request opens its own
//! upstream connection (`support::http`, `Connection: close`); the registry builds its
//! upload `Location`s from `X-Forwarded-Host`, so uploads come back through the proxy.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::http::{self, HttpResponse};
use super::http_server::{RequestHead, read_head, write_response};

/// One kind of fault the proxy injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Close the connection after the request head, without forwarding (the body, if
    /// any, is left unread: the client sees a reset while sending).
    DropBefore,
    /// Forward the request, then close without answering: the registry acted on it.
    DropAfter,
    /// Wait `stall` before answering.
    StallHead,
    /// Send the head and half of the body, wait `stall`, send the rest.
    StallBody,
    /// `500 Internal Server Error`, not forwarded.
    Status500,
    /// `502 Bad Gateway`, not forwarded.
    Status502,
    /// `503` with `Retry-After: 1`, not forwarded.
    Status503RetryAfter,
    /// `503` with `Retry-After` as an HTTP date one second ahead, not forwarded.
    Status503RetryDate,
    /// `429` with `Retry-After: 1`, not forwarded.
    Status429RetryAfter,
    /// `429` without `Retry-After`, not forwarded.
    Status429,
    /// A `200` body cut at a random point under its full `Content-Length`, then close.
    Truncate,
    /// A `200` blob or manifest body with one byte flipped (length kept).
    Corrupt,
    /// A PATCH forwarded twice; the client gets the registry's answer to the duplicate.
    ReplayChunk,
    /// A PATCH held back and answered `202` as if accepted; the session's next request
    /// is forwarded first and the held chunk after it.
    ReorderChunk,
}

impl Fault {
    pub const ALL: [Fault; 14] = [
        Fault::DropBefore,
        Fault::DropAfter,
        Fault::StallHead,
        Fault::StallBody,
        Fault::Status500,
        Fault::Status502,
        Fault::Status503RetryAfter,
        Fault::Status503RetryDate,
        Fault::Status429RetryAfter,
        Fault::Status429,
        Fault::Truncate,
        Fault::Corrupt,
        Fault::ReplayChunk,
        Fault::ReorderChunk,
    ];

    /// The name used in `OCIBENCH_CHAOS_FAULTS` and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Fault::DropBefore => "drop_before",
            Fault::DropAfter => "drop_after",
            Fault::StallHead => "stall_head",
            Fault::StallBody => "stall_body",
            Fault::Status500 => "status_500",
            Fault::Status502 => "status_502",
            Fault::Status503RetryAfter => "status_503_retry_after",
            Fault::Status503RetryDate => "status_503_retry_date",
            Fault::Status429RetryAfter => "status_429_retry_after",
            Fault::Status429 => "status_429",
            Fault::Truncate => "truncate",
            Fault::Corrupt => "corrupt",
            Fault::ReplayChunk => "replay_chunk",
            Fault::ReorderChunk => "reorder_chunk",
        }
    }

    fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the fault can apply to a request with this method (body faults need a
    /// GET's answer, chunk faults a PATCH).
    fn applies_to(self, method: &str) -> bool {
        match self {
            Fault::StallBody | Fault::Truncate | Fault::Corrupt => method == "GET",
            Fault::ReplayChunk | Fault::ReorderChunk => method == "PATCH",
            _ => true,
        }
    }
}

/// What the proxy injects, and how often.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub seed: u64,
    /// Probability that a request gets a fault at all.
    pub rate: f64,
    /// Relative weights of the faults (0 turns one off).
    pub weights: BTreeMap<Fault, u32>,
    /// How long stalls last.
    pub stall: Duration,
    /// Only requests whose `METHOD TARGET` contains this get faults (scripted tests).
    pub only: Option<String>,
    /// At most this many faults in all (scripted tests).
    pub limit: Option<u64>,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            seed: 12,
            rate: 0.08,
            // Body and chunk faults can only hit GETs and PATCHes, a minority of the
            // requests: weighted up so that a run of a few hundred ops meets each.
            weights: Fault::ALL
                .into_iter()
                .map(|f| match f {
                    Fault::Truncate | Fault::Corrupt | Fault::StallBody => (f, 3),
                    Fault::ReplayChunk | Fault::ReorderChunk => (f, 6),
                    _ => (f, 1),
                })
                .collect(),
            stall: Duration::from_millis(1500),
            only: None,
            limit: None,
        }
    }
}

impl ChaosConfig {
    /// The default, changed by `OCIBENCH_CHAOS_SEED`, `OCIBENCH_CHAOS_RATE` (0..1),
    /// `OCIBENCH_CHAOS_STALL_MS` and `OCIBENCH_CHAOS_FAULTS` (`name=weight,...`, applied
    /// in order; faults not named keep their default weight; `all=0,corrupt=1` injects
    /// only `corrupt`).
    pub fn from_env() -> ChaosConfig {
        let mut c = ChaosConfig::default();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("OCIBENCH_CHAOS_SEED") {
            c.seed = v.parse().expect("OCIBENCH_CHAOS_SEED: an integer");
        }
        if let Some(v) = var("OCIBENCH_CHAOS_RATE") {
            c.rate = v.parse().expect("OCIBENCH_CHAOS_RATE: a number in 0..1");
        }
        if let Some(v) = var("OCIBENCH_CHAOS_STALL_MS") {
            c.stall = Duration::from_millis(v.parse().expect("OCIBENCH_CHAOS_STALL_MS: ms"));
        }
        if let Some(v) = var("OCIBENCH_CHAOS_FAULTS") {
            c.set_weights(&v);
        }
        c
    }

    /// Exactly `times` faults of kind `fault`, on the first requests whose `METHOD TARGET`
    /// contains `only`: for tests that replay one thing the chaos test found.
    pub fn scripted(fault: Fault, only: &str, times: u64) -> ChaosConfig {
        let mut c = ChaosConfig {
            rate: 1.0,
            only: Some(only.to_string()),
            limit: Some(times),
            ..ChaosConfig::default()
        };
        c.weights.values_mut().for_each(|w| *w = 0);
        c.weights.insert(fault, 1);
        c
    }

    /// Applies `name=weight,...` (`all=W` sets every fault).
    pub fn set_weights(&mut self, spec: &str) {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, w) = item
                .split_once('=')
                .unwrap_or_else(|| panic!("fault weight {item:?}: write NAME=WEIGHT"));
            let w: u32 = w
                .parse()
                .unwrap_or_else(|_| panic!("fault weight {item:?}: not an integer"));
            if name == "all" {
                self.weights.values_mut().for_each(|v| *v = w);
                continue;
            }
            let fault = Fault::parse(name).unwrap_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                panic!("unknown fault {name:?}; known: {}", names.join(", "))
            });
            self.weights.insert(fault, w);
        }
    }
}

/// A running proxy; it lives as long as the test process (its threads are detached).
pub struct ChaosProxy {
    addr: String,
    state: Arc<State>,
}

struct State {
    upstream: String,
    addr: String,
    config: ChaosConfig,
    rng: Mutex<fastrand::Rng>,
    requests: AtomicU64,
    /// Requests the registry did not answer (the client's connection is then closed).
    unforwarded: AtomicU64,
    injected: Mutex<BTreeMap<Fault, u64>>,
    events: Mutex<Vec<Event>>,
    started: Instant,
    /// Chunks held back by `ReorderChunk`, by upload session id.
    held: Mutex<HashMap<String, Held>>,
}

/// One fault injected: when (since the proxy started), what, and on which request.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    pub fault: Fault,
    pub method: String,
    pub target: String,
}

struct Held {
    head: RequestHead,
    body: Vec<u8>,
}

impl ChaosProxy {
    /// Starts the proxy on `127.0.0.1:0` in front of `upstream` (`host:port`).
    pub fn start(upstream: &str, config: ChaosConfig) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind chaos proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            addr: addr.clone(),
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
            config,
            requests: AtomicU64::new(0),
            unforwarded: AtomicU64::new(0),
            injected: Mutex::new(BTreeMap::new()),
            events: Mutex::new(Vec::new()),
            started: Instant::now(),
            held: Mutex::new(HashMap::new()),
        });
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        ChaosProxy { addr, state }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn config(&self) -> &ChaosConfig {
        &self.state.config
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Requests the registry itself did not answer, so the proxy closed the client's
    /// connection (not a fault it chose; should stay 0).
    pub fn unforwarded(&self) -> u64 {
        self.state.unforwarded.load(Ordering::Relaxed)
    }

    /// Faults injected so far, by kind (kinds never injected are absent).
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.state.injected.lock().unwrap().clone()
    }

    /// Every fault injected so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.state.events.lock().unwrap().clone()
    }

    /// When the proxy started (event times count from here).
    pub fn started(&self) -> Instant {
        self.state.started
    }
}

/// The upload session of a request target (`/v2/<name>/blobs/uploads/<id>?...`).
fn upload_id(target: &str) -> Option<String> {
    let path = target.split('?').next()?;
    let (_, id) = path.split_once("/blobs/uploads/")?;
    (!id.is_empty()).then(|| id.to_string())
}

/// Reads a request body (sized or chunked) whole; `None` if the connection ends first.
fn read_body(reader: &mut impl BufRead, head: &RequestHead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        let len: u64 = head
            .header("content-length")
            .map_or(Some(0), |v| v.parse().ok())?;
        reader.take(len).read_to_end(&mut body).ok()?;
        return (body.len() as u64 == len).then_some(body);
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
            return Some(body);
        }
        let before = body.len() as u64;
        reader.take(size).read_to_end(&mut body).ok()?;
        if body.len() as u64 - before != size {
            return None;
        }
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

/// A fault-free response the proxy makes up itself.
fn answer(status: u16, headers: &[(&str, String)]) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: Vec::new(),
    }
}

/// What to do with the connection after a request.
enum Next {
    KeepAlive,
    Close,
}

impl State {
    /// Picks a fault for a request, or `None` (forward untouched).
    fn pick(&self, head: &RequestHead) -> Option<Fault> {
        let method = head.method.as_str();
        if let Some(only) = &self.config.only
            && !format!("{method} {}", head.target).contains(only.as_str())
        {
            return None;
        }
        if let Some(limit) = self.config.limit
            && self.injected.lock().unwrap().values().sum::<u64>() >= limit
        {
            return None;
        }
        let mut rng = self.rng.lock().unwrap();
        if rng.f64() >= self.config.rate {
            return None;
        }
        let candidates: Vec<(Fault, u32)> = self
            .config
            .weights
            .iter()
            .filter(|(f, w)| **w > 0 && f.applies_to(method))
            .map(|(f, w)| (*f, *w))
            .collect();
        let total: u32 = candidates.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return None;
        }
        let mut n = rng.u32(0..total);
        candidates.into_iter().find_map(|(f, w)| {
            if n < w {
                Some(f)
            } else {
                n -= w;
                None
            }
        })
    }

    fn count(&self, fault: Fault, head: &RequestHead) {
        *self.injected.lock().unwrap().entry(fault).or_default() += 1;
        self.events.lock().unwrap().push(Event {
            at: self.started.elapsed(),
            fault,
            method: head.method.clone(),
            target: head.target.clone(),
        });
    }

    fn random_below(&self, n: usize) -> usize {
        self.rng.lock().unwrap().usize(0..n.max(1))
    }

    fn serve(&self, stream: TcpStream) {
        let Ok(read_half) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(read_half);
        let mut out = stream;
        while let Some(head) = read_head(&mut reader) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let fault = self.pick(&head);
            if fault == Some(Fault::DropBefore) {
                self.count(Fault::DropBefore, &head);
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            let Some(body) = read_body(&mut reader, &head) else {
                return;
            };
            match self.handle(&head, body, fault, &mut out) {
                Next::KeepAlive => {}
                Next::Close => {
                    let _ = out.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
    }

    /// Handles one request whose body has been read.
    fn handle(
        &self,
        head: &RequestHead,
        body: Vec<u8>,
        fault: Option<Fault>,
        out: &mut TcpStream,
    ) -> Next {
        let retry_after = |v: String| vec![("Retry-After", v)];
        let made_up = match fault {
            Some(Fault::Status500) => Some(answer(500, &[])),
            Some(Fault::Status502) => Some(answer(502, &[])),
            Some(Fault::Status503RetryAfter) => Some(answer(503, &retry_after("1".into()))),
            Some(Fault::Status503RetryDate) => {
                let at = SystemTime::now() + Duration::from_secs(1);
                Some(answer(503, &retry_after(httpdate::fmt_http_date(at))))
            }
            Some(Fault::Status429RetryAfter) => Some(answer(429, &retry_after("1".into()))),
            Some(Fault::Status429) => Some(answer(429, &[])),
            Some(Fault::ReorderChunk) => self.hold(head, &body),
            _ => None,
        };
        if let Some(resp) = made_up {
            self.count(fault.expect("made-up answers come from a fault"), head);
            return self.reply(head, &resp, None, out);
        }
        let Some(mut resp) = self.forward_in_order(head, &body) else {
            return Next::Close;
        };
        match fault {
            Some(Fault::DropAfter) => {
                self.count(Fault::DropAfter, head);
                return Next::Close;
            }
            Some(Fault::StallHead) => {
                self.count(Fault::StallHead, head);
                std::thread::sleep(self.config.stall);
            }
            Some(Fault::ReplayChunk) if resp.status == 202 => {
                self.count(Fault::ReplayChunk, head);
                match self.forward(head, &body) {
                    Some(again) => resp = again,
                    None => return Next::Close,
                }
            }
            Some(f @ (Fault::StallBody | Fault::Truncate)) if has_body(&resp) => {
                self.count(f, head);
                return self.reply(head, &resp, Some(f), out);
            }
            Some(Fault::Corrupt) if has_body(&resp) && is_content(&head.target) => {
                self.count(Fault::Corrupt, head);
                let i = self.random_below(resp.body.len());
                resp.body[i] ^= 0x5a;
            }
            _ => {}
        }
        self.reply(head, &resp, None, out)
    }

    /// `ReorderChunk`: keeps the PATCH for later and answers as if the registry had
    /// accepted it (same `Location`, so the session's state token is the old one).
    fn hold(&self, head: &RequestHead, body: &[u8]) -> Option<HttpResponse> {
        let id = upload_id(&head.target)?;
        let mut held = self.held.lock().unwrap();
        if held.contains_key(&id) {
            return None;
        }
        let end = head
            .header("content-range")
            .and_then(|r| r.split_once('-'))
            .map_or(String::new(), |(_, end)| end.to_string());
        held.insert(
            id.clone(),
            Held {
                head: head.clone(),
                body: body.to_vec(),
            },
        );
        let location = format!("http://{}{}", self.addr, head.target);
        Some(answer(
            202,
            &[
                ("Location", location),
                ("Range", format!("0-{end}")),
                ("Docker-Upload-UUID", id),
            ],
        ))
    }

    /// Forwards the request; if a chunk of its upload session was held back, forwards
    /// that chunk right after (its answer goes nowhere).
    fn forward_in_order(&self, head: &RequestHead, body: &[u8]) -> Option<HttpResponse> {
        let held = upload_id(&head.target).and_then(|id| self.held.lock().unwrap().remove(&id));
        let resp = self.forward(head, body);
        if let Some(h) = held {
            let _ = self.forward(&h.head, &h.body);
        }
        resp
    }

    /// Sends the request to the registry; `None` if it cannot be reached.
    fn forward(&self, head: &RequestHead, body: &[u8]) -> Option<HttpResponse> {
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
        let resp = http::request(&self.upstream, &head.method, &head.target, &headers, body).ok();
        if resp.is_none() {
            self.unforwarded.fetch_add(1, Ordering::Relaxed);
        }
        resp
    }

    /// Writes `resp` to the client, whole or broken by `fault` (`StallBody`, `Truncate`).
    fn reply(
        &self,
        head: &RequestHead,
        resp: &HttpResponse,
        fault: Option<Fault>,
        out: &mut TcpStream,
    ) -> Next {
        let is_head = head.method == "HEAD";
        let mut headers: Vec<(String, String)> = resp
            .headers
            .iter()
            .filter(|(k, _)| {
                !["transfer-encoding", "connection"].contains(&k.as_str())
                    && (is_head || k != "content-length")
            })
            .cloned()
            .collect();
        if is_head && !headers.iter().any(|(k, _)| k == "content-length") {
            headers.push(("content-length".into(), "0".into()));
        }
        let body: &[u8] = if is_head { &[] } else { &resp.body };
        if fault.is_none() {
            return match write_response(out, resp.status, &headers, body) {
                true => Next::KeepAlive,
                false => Next::Close,
            };
        }
        // The head announces the whole body; what follows is cut or delayed.
        headers.push(("content-length".into(), body.len().to_string()));
        if !write_response(out, resp.status, &headers, &[]) {
            return Next::Close;
        }
        if fault == Some(Fault::Truncate) {
            let cut = self.random_below(body.len());
            let _ = out.write_all(&body[..cut]);
            return Next::Close;
        }
        let half = body.len() / 2;
        if out
            .write_all(&body[..half])
            .and_then(|()| out.flush())
            .is_err()
        {
            return Next::Close;
        }
        std::thread::sleep(self.config.stall);
        match out.write_all(&body[half..]) {
            Ok(()) => Next::KeepAlive,
            Err(_) => Next::Close,
        }
    }
}

fn has_body(resp: &HttpResponse) -> bool {
    resp.status == 200 && !resp.body.is_empty()
}

/// Whether a GET target is content a digest protects: a blob or a manifest.
fn is_content(target: &str) -> bool {
    target.contains("/blobs/sha256:") || target.contains("/manifests/")
}
