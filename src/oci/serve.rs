//! A read-only registry on loopback that serves images of the blob store.
//!
//! `compare` measures a candidate's cold start (image absent from the node, then
//! pull, unpack, start, first 2xx), and a cold start includes the pull: podman must
//! fetch the image over the real distribution protocol. The images are already in
//! ocibench's blob store, so this server hands them out directly, with no external
//! registry: `GET /v2/`, and `GET`/`HEAD` of manifests and blobs by digest (plus a
//! `latest` tag per repository, in `tags/list` too, which skopeo inspect reads).
//! Nothing else: no uploads, no catalog.
//!
//! Only what the served images reference is served, and only under the repository
//! each belongs to; everything was checked to be in the store at `start`, so a pull
//! never meets a missing blob halfway. Blobs stream from their files in chunks; a
//! `Range` request gets the whole blob (200), which the distribution spec allows.
//! `ServeOptions::bandwidth` paces every response body through one shared token
//! bucket, to model a node's network. Plain HTTP only: podman pulls it with
//! `--tls-verify=false` (it tries HTTPS, gets an HTTP answer, and falls back).
//!
//! The server runs on its own thread with a current-thread tokio runtime (hyper 1's
//! `http1` connections); dropping the `LocalRegistry` stops it and joins the thread.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use crate::oci::digest::Digest;
use crate::oci::manifest::{Manifest, ManifestError};
use crate::oci::store::{BlobStore, StoreError};

/// An image to serve: `repository` (e.g. "ocibench/cold/a1") and its manifest in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedImage {
    pub repository: String,
    pub manifest: Digest,
    pub media_type: String,
}

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Bytes per second over all responses together; None: as fast as loopback goes.
    pub bandwidth: Option<u64>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("repository name {0:?} is not valid (lowercase components separated by '/')")]
    BadRepository(String),
    #[error("blob {digest} of {repository} is not in the blob store")]
    MissingBlob { repository: String, digest: Digest },
    #[error(
        "blob {digest} of {repository} is {actual} bytes in the store, {expected} in its descriptor"
    )]
    SizeMismatch {
        repository: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("cannot read manifest {digest} of {repository}")]
    Manifest {
        repository: String,
        digest: Digest,
        #[source]
        source: Box<ManifestError>,
    },
    #[error("bandwidth must be at least 1 byte per second")]
    ZeroBandwidth,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the local registry")]
    Io(#[source] io::Error),
}

/// A running server; dropping it stops it (and joins its thread).
#[derive(Debug)]
pub struct LocalRegistry {
    host: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LocalRegistry {
    /// Checks every blob of `images` is in `store`, binds 127.0.0.1 on a free port,
    /// and serves them until dropped.
    pub fn start(
        store: &BlobStore,
        images: &[ServedImage],
        options: ServeOptions,
    ) -> Result<LocalRegistry, ServeError> {
        let mut content = Content::default();
        for image in images {
            content.add_image(store, image)?;
        }
        let pacer = match options.bandwidth {
            Some(0) => return Err(ServeError::ZeroBandwidth),
            Some(rate) => Some(Arc::new(Pacer::new(rate))),
            None => None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").map_err(ServeError::Io)?;
        listener.set_nonblocking(true).map_err(ServeError::Io)?;
        let addr: SocketAddr = listener.local_addr().map_err(ServeError::Io)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServeError::Io)?;
        let state = Arc::new(State { content, pacer });
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("ocibench-serve".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, state, stopped));
                // Connections still open are dropped with their tasks; a blob reader
                // blocked on a full channel wakes when its receiver drops.
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(ServeError::Io)?;
        Ok(LocalRegistry {
            host: addr.to_string(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// "127.0.0.1:PORT"
    pub fn host(&self) -> &str {
        &self.host
    }

    /// "127.0.0.1:PORT/REPOSITORY@sha256:..." for podman pull.
    pub fn reference(&self, image: &ServedImage) -> String {
        format!("{}/{}@{}", self.host, image.repository, image.manifest)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Docker's repository grammar, simplified: lowercase alphanumeric components
/// joined by `.`, `_`, `__` or `-` runs, separated by `/`.
fn valid_repository(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
}

/// One servable object.
#[derive(Debug)]
enum Entry {
    /// A manifest or index: small, kept in memory.
    Manifest { media_type: String, bytes: Bytes },
    /// A config or layer: streamed from its file.
    Blob {
        media_type: String,
        size: u64,
        path: PathBuf,
    },
}

impl Entry {
    fn media_type(&self) -> &str {
        match self {
            Entry::Manifest { media_type, .. } | Entry::Blob { media_type, .. } => media_type,
        }
    }
    fn size(&self) -> u64 {
        match self {
            Entry::Manifest { bytes, .. } => bytes.len() as u64,
            Entry::Blob { size, .. } => *size,
        }
    }
}

/// A repository's servable objects.
#[derive(Debug, Default)]
struct Repository {
    entries: HashMap<Digest, Entry>,
    /// The first image served under this repository.
    latest: Option<Digest>,
}

/// Everything served, by repository.
#[derive(Debug, Default)]
struct Content {
    repositories: HashMap<String, Repository>,
}

impl Content {
    fn add_image(&mut self, store: &BlobStore, image: &ServedImage) -> Result<(), ServeError> {
        if !valid_repository(&image.repository) {
            return Err(ServeError::BadRepository(image.repository.clone()));
        }
        let repo = self
            .repositories
            .entry(image.repository.clone())
            .or_default();
        repo.latest.get_or_insert_with(|| image.manifest.clone());
        add_manifest(
            store,
            &image.repository,
            repo,
            &image.manifest,
            &image.media_type,
            None,
        )
    }
}

/// Records the manifest `digest` and, recursively, everything it references.
fn add_manifest(
    store: &BlobStore,
    repository: &str,
    repo: &mut Repository,
    digest: &Digest,
    media_type: &str,
    expected_size: Option<u64>,
) -> Result<(), ServeError> {
    if repo.entries.contains_key(digest) {
        return Ok(());
    }
    let missing = || ServeError::MissingBlob {
        repository: repository.to_string(),
        digest: digest.clone(),
    };
    if !store.has(digest) {
        return Err(missing());
    }
    let bytes = store.read_blob(digest)?;
    check_size(repository, digest, expected_size, bytes.len() as u64)?;
    let (media_type, manifest) =
        Manifest::parse(media_type, &bytes).map_err(|source| ServeError::Manifest {
            repository: repository.to_string(),
            digest: digest.clone(),
            source: Box::new(source),
        })?;
    repo.entries.insert(
        digest.clone(),
        Entry::Manifest {
            media_type,
            bytes: Bytes::from(bytes),
        },
    );
    match manifest {
        Manifest::Index(index) => {
            for child in &index.manifests {
                add_manifest(
                    store,
                    repository,
                    repo,
                    &child.digest,
                    &child.media_type,
                    Some(child.size),
                )?;
            }
        }
        Manifest::Image(image) => {
            for blob in std::iter::once(&image.config).chain(&image.layers) {
                let size = store
                    .blob_size(&blob.digest)
                    .ok_or(ServeError::MissingBlob {
                        repository: repository.to_string(),
                        digest: blob.digest.clone(),
                    })?;
                check_size(repository, &blob.digest, Some(blob.size), size)?;
                repo.entries.insert(
                    blob.digest.clone(),
                    Entry::Blob {
                        media_type: blob.media_type.clone(),
                        size,
                        path: store.blob_path(&blob.digest),
                    },
                );
            }
        }
    }
    Ok(())
}

fn check_size(
    repository: &str,
    digest: &Digest,
    expected: Option<u64>,
    actual: u64,
) -> Result<(), ServeError> {
    match expected {
        Some(expected) if expected != actual => Err(ServeError::SizeMismatch {
            repository: repository.to_string(),
            digest: digest.clone(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

/// What the connections share.
struct State {
    content: Content,
    pacer: Option<Arc<Pacer>>,
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stopped: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait, then go on serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&state, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            // A client that hangs up (or speaks TLS to us) ends its connection only.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The routes of the read-only API.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Ping,
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
    Tags { name: &'a str },
    Other,
}

fn route(path: &str) -> Route<'_> {
    if path == "/v2/" || path == "/v2" {
        return Route::Ping;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Route::Other;
    };
    if let Some(name) = rest.strip_suffix("/tags/list").filter(|n| !n.is_empty()) {
        return Route::Tags { name };
    }
    if let Some(i) = rest.rfind("/manifests/") {
        let (name, reference) = (&rest[..i], &rest[i + "/manifests/".len()..]);
        if !name.is_empty() && !reference.is_empty() && !reference.contains('/') {
            return Route::Manifest { name, reference };
        }
    }
    if let Some(i) = rest.rfind("/blobs/") {
        let (name, digest) = (&rest[..i], &rest[i + "/blobs/".len()..]);
        if !name.is_empty() && !digest.is_empty() && !digest.contains('/') {
            return Route::Blob { name, digest };
        }
    }
    Route::Other
}

fn respond<B>(state: &State, req: &Request<B>) -> Response<ServeBody> {
    let head = req.method() == Method::HEAD;
    if !head && req.method() != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry is read-only: GET and HEAD only",
        );
    }
    let (name, reference, manifests) = match route(req.uri().path()) {
        Route::Ping => {
            return Response::builder()
                .header("Docker-Distribution-API-Version", "registry/2.0")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, 2)
                .body(ServeBody::once(
                    if head {
                        Bytes::new()
                    } else {
                        Bytes::from_static(b"{}")
                    },
                    None,
                ))
                .expect("valid response");
        }
        Route::Manifest { name, reference } => (name, reference, true),
        Route::Blob { name, digest } => (name, digest, false),
        // skopeo inspect lists tags.
        Route::Tags { name } => return tags(state, name, head),
        Route::Other => {
            return error(StatusCode::NOT_FOUND, "UNSUPPORTED", "no such endpoint");
        }
    };
    let Some(repo) = state.content.repositories.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    };
    let (unknown, message) = if manifests {
        ("MANIFEST_UNKNOWN", "manifest unknown")
    } else {
        ("BLOB_UNKNOWN", "blob unknown to registry")
    };
    let digest = match reference.parse::<Digest>() {
        Ok(d) => Some(d),
        Err(_) if manifests && reference == "latest" => repo.latest.clone(),
        Err(_) => None,
    };
    let entry = digest
        .as_ref()
        .and_then(|d| repo.entries.get(d).map(|e| (d, e)));
    let Some((digest, entry)) = entry else {
        return error(StatusCode::NOT_FOUND, unknown, message);
    };
    if manifests && !matches!(entry, Entry::Manifest { .. }) {
        return error(StatusCode::NOT_FOUND, unknown, message);
    }
    let body = if head {
        ServeBody::empty()
    } else {
        match entry {
            Entry::Manifest { bytes, .. } => ServeBody::once(bytes.clone(), state.pacer.clone()),
            Entry::Blob { path, size, .. } => {
                ServeBody::file(path.clone(), *size, state.pacer.clone())
            }
        }
    };
    Response::builder()
        .header(header::CONTENT_TYPE, entry.media_type())
        .header(header::CONTENT_LENGTH, entry.size())
        .header("Docker-Content-Digest", digest.to_string())
        .header(header::ETAG, format!("\"{digest}\""))
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .body(body)
        .expect("valid response")
}

/// `{"name": NAME, "tags": ["latest"]}`.
fn tags(state: &State, name: &str, head: bool) -> Response<ServeBody> {
    if !state.content.repositories.contains_key(name) {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    }
    let body = Bytes::from(serde_json::json!({"name": name, "tags": ["latest"]}).to_string());
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .body(if head {
            ServeBody::empty()
        } else {
            ServeBody::once(body, None)
        })
        .expect("valid response")
}

/// A 4xx with the distribution spec's error body.
fn error(status: StatusCode, code: &str, message: &str) -> Response<ServeBody> {
    let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
    let bytes = Bytes::from(body.to_string());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .body(ServeBody::once(bytes, None))
        .expect("valid response")
}

/// Bytes read from a blob file at a time.
const CHUNK: usize = 64 * 1024;
/// How much of the link an idle bucket saves up (see `Pacer`).
const BURST: Duration = Duration::from_millis(50);
/// Chunks read ahead of the connection.
const READ_AHEAD: usize = 4;

/// One token bucket for all responses: each chunk reserves its transmission time
/// at `rate` after the previous reservation ends, and is sent when its time is over,
/// so no response gets ahead of the link it models. The bucket holds `BURST` of the
/// link: timers wake late (tokio's resolution is 1 ms), and without that credit each
/// late wake-up would be lost (measured: 8.4 MB/s through a 10 MB/s bucket).
#[derive(Debug)]
struct Pacer {
    rate: u64,
    /// When the last reserved byte has been "sent".
    busy_until: Mutex<Option<Instant>>,
}

impl Pacer {
    fn new(rate: u64) -> Pacer {
        Pacer {
            rate,
            busy_until: Mutex::new(None),
        }
    }

    /// Reserves `bytes` on the link; returns when they will have been sent.
    fn reserve(&self, bytes: usize) -> Instant {
        let now = Instant::now();
        let mut busy = self.busy_until.lock().unwrap_or_else(|p| p.into_inner());
        let earliest = now.checked_sub(BURST).unwrap_or(now);
        let start = busy.filter(|b| *b > earliest).unwrap_or(earliest);
        let end = start + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        *busy = Some(end);
        end
    }

    /// The largest piece sent at once: a twentieth of a second of the link, so a
    /// slow link still delivers steadily.
    fn piece(&self) -> usize {
        usize::try_from(self.rate / 20).map_or(CHUNK, |p| p.clamp(1, CHUNK))
    }
}

/// Where a response body's bytes come from.
enum Source {
    Done,
    Once(Bytes),
    /// Chunks read from a file by a blocking task; opened on the first poll.
    File {
        path: Option<PathBuf>,
        rx: Option<mpsc::Receiver<io::Result<Bytes>>>,
    },
}

/// A response body: in-memory or streamed from a file, optionally paced.
struct ServeBody {
    source: Source,
    remaining: u64,
    pacer: Option<Arc<Pacer>>,
    /// Bytes not yet sent (the rest of a chunk larger than a paced piece).
    pending: Bytes,
    /// A piece waiting for its reserved time.
    waiting: Option<(Bytes, Pin<Box<Sleep>>)>,
}

impl ServeBody {
    fn empty() -> ServeBody {
        ServeBody {
            source: Source::Done,
            remaining: 0,
            pacer: None,
            pending: Bytes::new(),
            waiting: None,
        }
    }

    fn once(bytes: Bytes, pacer: Option<Arc<Pacer>>) -> ServeBody {
        ServeBody {
            remaining: bytes.len() as u64,
            source: Source::Once(bytes),
            pacer,
            ..ServeBody::empty()
        }
    }

    fn file(path: PathBuf, size: u64, pacer: Option<Arc<Pacer>>) -> ServeBody {
        ServeBody {
            source: Source::File {
                path: Some(path),
                rx: None,
            },
            remaining: size,
            pacer,
            ..ServeBody::empty()
        }
    }

    /// The next chunk from the source, unpaced.
    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        match &mut self.source {
            Source::Done => Poll::Ready(None),
            Source::Once(_) => {
                let Source::Once(bytes) = std::mem::replace(&mut self.source, Source::Done) else {
                    unreachable!()
                };
                Poll::Ready(Some(Ok(bytes)))
            }
            Source::File { path, rx } => {
                if let Some(path) = path.take() {
                    let (tx, new_rx) = mpsc::channel(READ_AHEAD);
                    tokio::task::spawn_blocking(move || read_file(&path, &tx));
                    *rx = Some(new_rx);
                }
                let rx = rx.as_mut().expect("receiver set above");
                let next = std::task::ready!(rx.poll_recv(cx));
                if next.is_none() {
                    self.source = Source::Done;
                }
                Poll::Ready(next)
            }
        }
    }
}

/// Sends `path`'s content in chunks until the end or until the body is dropped.
fn read_file(path: &std::path::Path, tx: &mpsc::Sender<io::Result<Bytes>>) {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    loop {
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

impl Body for ServeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some((_, sleep)) = &mut this.waiting {
                std::task::ready!(sleep.as_mut().poll(cx));
                let (piece, _) = this.waiting.take().expect("waiting");
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if this.pending.is_empty() {
                match std::task::ready!(this.poll_source(cx)) {
                    None => {
                        if this.remaining > 0 {
                            // The file shrank since `start` checked its size.
                            return Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "blob is shorter than its recorded size",
                            ))));
                        }
                        return Poll::Ready(None);
                    }
                    Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Some(Ok(chunk)) => {
                        // Never send more than Content-Length promised.
                        let take = chunk
                            .len()
                            .min(usize::try_from(this.remaining).unwrap_or(usize::MAX));
                        this.remaining -= take as u64;
                        this.pending = chunk.slice(..take);
                        if this.pending.is_empty() {
                            continue;
                        }
                    }
                }
            }
            let Some(pacer) = &this.pacer else {
                let chunk = std::mem::take(&mut this.pending);
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            };
            let n = this.pending.len().min(pacer.piece());
            let piece = this.pending.split_to(n);
            let at = pacer.reserve(n);
            this.waiting = Some((piece, Box::pin(tokio::time::sleep_until(at))));
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.source, Source::Done) && self.pending.is_empty() && self.waiting.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let waiting = self.waiting.as_ref().map_or(0, |(p, _)| p.len() as u64);
        SizeHint::with_exact(self.remaining + self.pending.len() as u64 + waiting)
    }
}

#[cfg(test)]
mod tests;
