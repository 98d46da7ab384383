//! Pulling an image into the blob store, verified, and sizing it exactly.
//!
//! A pull resolves the manifest (choosing a platform from an index), stores the
//! config, then streams the missing layers in parallel. Each layer is hashed and
//! stored as it arrives (its digest) while a second thread decompresses it (gzip
//! with ISA-L, see `inflate`; zstd with libzstd, see `zstd_stream`) and a third
//! hashes the tar stream (its diff_id and uncompressed length): download,
//! decompression and hashing overlap. Nothing is committed
//! until digest, size and diff_id all check out.
//! Sizing afterwards reads only the manifest, the config and the remembered
//! per-layer metadata.
//!
//! An image already cached is checked, not trusted: the manifest and config are
//! hashed (small), and each layer must have its size and a file unchanged (size,
//! mtime, inode) since its content was last hashed (`BlobStore::check_blob`);
//! a layer that fails is hashed, and if damaged removed and fetched again. Damage
//! that keeps the mtime is caught where the blob is copied out (outputs, push).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::Serialize;

use crate::oci::compress::compression_name;
use crate::oci::compress::measure::{CHUNK, ChannelReader, fill, measure_layer};
use crate::oci::digest::{Algorithm, Digest, HashingSink};
use crate::oci::location::ImageLocation;
use crate::oci::manifest::{
    Compression, Descriptor, ImageManifest, Manifest, ManifestError, Platform, layer_compression,
};
use crate::oci::registry::{FetchedManifest, RegistryClient, RegistryError, TransferTimeout};
use crate::oci::source::{self, ImageSource, SourceError};
use crate::oci::store::{
    BlobState, BlobStore, IndexEntry, LayerMeta, MeasureError, SOURCE_DIGEST, StoreError,
};
use crate::progress::{Reporter, Task, TaskId};

/// Image configs larger than this are refused, before any byte is read: the config
/// is read whole into memory, and real ones are a few KiB (containers/image caps
/// them at 4 MiB too). Manifests have their own cap in the registry client.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{what} {digest} from {source_name} does not match its digest or size")]
    Corrupt {
        what: &'static str,
        digest: Digest,
        source_name: String,
        #[source]
        cause: Box<StoreError>,
    },
    #[error("layer {digest} decompresses to {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {digest} is not valid {compression} data")]
    BadLayerData {
        digest: Digest,
        compression: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("transfer of {digest} failed")]
    Transfer {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("layer {digest} has media type {media_type}, which ocibench cannot read")]
    UnsupportedLayer { digest: Digest, media_type: String },
    #[error(
        "image config {digest} from {source_name} declares {size} bytes, more than ocibench reads ({} MiB)",
        MAX_CONFIG_BYTES >> 20
    )]
    ConfigTooLarge {
        digest: Digest,
        size: u64,
        source_name: String,
    },
    #[error("image config {digest} is invalid: {detail}")]
    BadConfig { digest: Digest, detail: String },
    #[error("{image} is a single-platform image for {found}, not {wanted}")]
    PlatformMismatch {
        image: String,
        wanted: String,
        found: String,
    },
    #[error("{0} is a manifest index inside an index; nested indexes are not supported")]
    NestedIndex(Digest),
    #[error("creating a scratch directory in the cache")]
    Scratch(#[source] io::Error),
}

impl PullError {
    /// Whether the command's deadline (`--timeout`) has passed: no retry then.
    fn out_of_time(&self) -> bool {
        match self {
            PullError::Transfer { source, .. } => {
                matches!(
                    TransferTimeout::of(source),
                    Some(TransferTimeout::Deadline { .. })
                )
            }
            PullError::Source(SourceError::Registry(RegistryError::TimedOut { .. })) => true,
            _ => false,
        }
    }
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: Platform,
    /// The platform was asked for (`--platform`): a single-platform image of
    /// another platform is then an error, not silently taken. Otherwise
    /// `platform` only chooses from an index.
    pub platform_required: bool,
    /// Layers transferred at once.
    pub threads: usize,
    /// Whole-layer attempts when a transfer breaks mid-stream.
    pub attempts: u32,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            platform_required: false,
            threads: 4,
            attempts: 3,
        }
    }
}

/// An image present in the store.
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub name: String,
    pub manifest_digest: Digest,
    /// The digest of what the name points at: the index, for a multi-platform
    /// image, else `manifest_digest`.
    pub top_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: ImageManifest,
    /// Blobs actually transferred by this pull (layers and config).
    pub transferred_blobs: usize,
    pub transferred_bytes: u64,
    /// The index the image was chosen from, when the source named one.
    pub index: Option<IndexChoice>,
}

/// The index an image was chosen from by platform: what `size` and `compare` name
/// beside the one image they report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexChoice {
    pub digest: Digest,
    pub media_type: String,
    /// The platforms it offers, attestation entries left out, in its order.
    pub platforms: Vec<String>,
}

/// Pulls the image at `location`, in any transport, into `store`: from a registry
/// through `client`, from a layout in place, from an archive unpacked into a
/// scratch directory inside the store (removed when the pull ends).
pub fn fetch(
    location: &ImageLocation,
    client: &Arc<RegistryClient>,
    store: &BlobStore,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<StoredImage, PullError> {
    let src = open_source(location, client, store)?;
    pull(&*src, store, opts, reporter)
}

/// An image source opened for reading, with the scratch directory an archive was
/// unpacked into (removed when this drops).
pub struct OpenedSource {
    source: Box<dyn ImageSource>,
    _scratch: Option<crate::oci::temp::TempDir>,
}

impl std::ops::Deref for OpenedSource {
    type Target = dyn ImageSource;
    fn deref(&self) -> &Self::Target {
        self.source.as_ref()
    }
}

/// Opens the source `location` names, in any transport; an archive is unpacked into
/// a scratch directory inside the store (a read-only cache serves the rest).
pub fn open_source(
    location: &ImageLocation,
    client: &Arc<RegistryClient>,
    store: &BlobStore,
) -> Result<OpenedSource, PullError> {
    let scratch = match location {
        ImageLocation::OciArchive { .. } | ImageLocation::DockerArchive { .. } => {
            Some(store.scratch_dir(".unpack-").map_err(PullError::Scratch)?)
        }
        _ => None,
    };
    let dir = scratch
        .as_ref()
        .map_or_else(|| store.root().to_path_buf(), |s| s.path().to_path_buf());
    let source = source::open(location, client, &dir)?;
    Ok(OpenedSource {
        source,
        _scratch: scratch,
    })
}

/// Pulls the image `source` names into `store`, verified, and records it in the
/// store's index under the source's name.
pub fn pull(
    source: &dyn ImageSource,
    store: &BlobStore,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<StoredImage, PullError> {
    let name = source.name();
    let top = match cached_top(source, store, &name)? {
        Some(top) => top,
        None => source.fetch_manifest(None)?,
    };
    let top_digest = top.digest.clone();
    let (mut media_type, parsed) = Manifest::parse(&top.media_type, &top.bytes)?;
    let single = matches!(parsed, Manifest::Image(_));
    let mut index_choice = None;
    // An index is kept too, so that the next pull of the tag can find it by the
    // digest a HEAD names.
    let index_bytes = (!single).then(|| top.bytes.clone());
    let (bytes, digest, manifest) = match parsed {
        Manifest::Image(m) => (top.bytes, top.digest, *m),
        Manifest::Index(index) => {
            index_choice = Some(IndexChoice {
                digest: top.digest.clone(),
                media_type: media_type.clone(),
                platforms: index.platforms(),
            });
            let chosen = index.select(&opts.platform)?.clone();
            let child = match stored_manifest(store, &chosen.digest)? {
                Some(child) => child,
                None => source.fetch_manifest(Some(&chosen.digest))?,
            };
            if child.digest != chosen.digest || child.bytes.len() as u64 != chosen.size {
                return Err(PullError::Corrupt {
                    what: "manifest",
                    digest: chosen.digest.clone(),
                    source_name: name,
                    cause: Box::new(StoreError::Mismatch {
                        expected: chosen.digest,
                        expected_size: chosen.size,
                        actual: child.digest,
                        actual_size: child.bytes.len() as u64,
                    }),
                });
            }
            let ctype = if child.media_type.is_empty() {
                chosen.media_type.clone()
            } else {
                child.media_type.clone()
            };
            let (mt, m) = Manifest::parse(&ctype, &child.bytes)?;
            media_type = mt;
            match m {
                Manifest::Image(m) => (child.bytes, child.digest, *m),
                Manifest::Index(_) => return Err(PullError::NestedIndex(chosen.digest)),
            }
        }
    };

    let transferred = AtomicUsize::new(0);
    let transferred_bytes = AtomicU64::new(0);

    // Config: small (capped before a byte is read), verified (also when cached: a
    // damaged copy is fetched again), stored.
    if manifest.config.size > MAX_CONFIG_BYTES {
        return Err(PullError::ConfigTooLarge {
            digest: manifest.config.digest.clone(),
            size: manifest.config.size,
            source_name: name,
        });
    }
    let cached_config = match store.blob_size(&manifest.config.digest) {
        Some(n) if n == manifest.config.size => match store.read_blob(&manifest.config.digest) {
            Ok(bytes) => Some(bytes),
            Err(StoreError::Corrupt { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    let config_bytes = match cached_config {
        Some(bytes) => bytes,
        None => {
            let buf = with_attempts(opts, || {
                fetch_config(source, store, &manifest.config, &name)
            })?;
            transferred.fetch_add(1, Ordering::Relaxed);
            transferred_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            buf
        }
    };
    let diff_ids = diff_ids(&config_bytes, &manifest)?;
    // An index was chosen from by platform already; a lone image must be the one asked for.
    if single
        && opts.platform_required
        && let Some(found) = config_platform(&config_bytes)
        && !found.satisfies(&opts.platform)
    {
        return Err(PullError::PlatformMismatch {
            image: name,
            wanted: opts.platform.to_string(),
            found: found.to_string(),
        });
    }

    // Layers: the missing ones, in parallel.
    crate::oci::parallel::for_each(&manifest.layers, opts.threads, |i, layer| {
        let fetched = ensure_layer(source, store, layer, &diff_ids[i], opts, reporter, &name)?;
        if fetched {
            transferred.fetch_add(1, Ordering::Relaxed);
            transferred_bytes.fetch_add(layer.size, Ordering::Relaxed);
        }
        Ok::<(), PullError>(())
    })?;

    if let Some(origin) = source.origin() {
        store.record_origin(&manifest.config.digest, &origin)?;
        for l in &manifest.layers {
            store.record_origin(&l.digest, &origin)?;
        }
    }
    // Only now, with every blob in place, does the manifest become visible.
    if let Some(index_bytes) = &index_bytes {
        store.put_bytes_with(top_digest.alg(), index_bytes)?;
    }
    store.put_bytes_with(digest.alg(), &bytes)?;
    let mut entry = IndexEntry::new(media_type.clone(), digest.clone(), bytes.len() as u64);
    entry.platform = config_platform(&config_bytes).and_then(|p| serde_json::to_value(p).ok());
    entry
        .annotations
        .insert(SOURCE_DIGEST.to_string(), top_digest.to_string());
    store.tag(&name, entry)?;
    Ok(StoredImage {
        name,
        manifest_digest: digest,
        top_digest,
        manifest_media_type: media_type,
        manifest,
        transferred_blobs: transferred.into_inner(),
        transferred_bytes: transferred_bytes.into_inner(),
        index: index_choice,
    })
}

/// The top manifest from the cache, when the cache provably has the one the source
/// names now: a pinned digest, or a tag whose HEAD names the digest it had when
/// the cache recorded it. Docker Hub counts manifest GETs, not HEADs, against its
/// pull limit. A HEAD that fails (or is answered without a digest) leaves the GET
/// to tell.
fn cached_top(
    source: &dyn ImageSource,
    store: &BlobStore,
    name: &str,
) -> Result<Option<FetchedManifest>, PullError> {
    let known = match source.pinned_digest() {
        Some(d) => d,
        None => {
            let Some(entry) = store.resolve(name)? else {
                return Ok(None);
            };
            let recorded = entry
                .annotations
                .get(SOURCE_DIGEST)
                .and_then(|d| d.parse::<Digest>().ok())
                .unwrap_or(entry.digest);
            // Whatever stops the HEAD (a registry without HEAD, a dropped
            // connection) is left to the GET to report or overcome.
            match source.current_digest() {
                Ok(Some(now)) if now == recorded => now,
                _ => return Ok(None),
            }
        }
    };
    stored_manifest(store, &known)
}

/// A manifest from the cache by digest (verified as read), if it is there whole.
fn stored_manifest(
    store: &BlobStore,
    digest: &Digest,
) -> Result<Option<FetchedManifest>, PullError> {
    if !store.has(digest) {
        return Ok(None);
    }
    match store.read_blob(digest) {
        // The media type is read from the document itself.
        Ok(bytes) => Ok(Some(FetchedManifest {
            bytes,
            media_type: String::new(),
            digest: digest.clone(),
        })),
        Err(StoreError::Corrupt { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Runs one whole-blob transfer up to `opts.attempts` times: again after a broken
/// connection or body (`Transfer`, `Source`), never after content that arrived whole
/// but wrong.
fn with_attempts<T>(
    opts: &PullOptions,
    mut transfer: impl FnMut() -> Result<T, PullError>,
) -> Result<T, PullError> {
    let mut attempt = 0;
    loop {
        match transfer() {
            Err(e @ (PullError::Transfer { .. } | PullError::Source(_)))
                if attempt + 1 < opts.attempts && !e.out_of_time() =>
            {
                attempt += 1;
                std::thread::sleep(crate::oci::registry::jitter(
                    std::time::Duration::from_millis(300 << attempt),
                ));
            }
            other => return other,
        }
    }
}

/// Stores blob `desc` from `source` as it is, verified against its digest and size
/// but not opened (any media type: layers, configs, attestations): what `copy`
/// needs. Returns whether it was transferred (false: the store held it intact).
pub fn store_blob(
    source: &dyn ImageSource,
    store: &BlobStore,
    desc: &Descriptor,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<bool, PullError> {
    if holds_intact(store, desc)? {
        return Ok(false);
    }
    let digest = desc.digest.to_string();
    let id = reporter.start(Task::Download {
        digest: &digest,
        bytes: desc.size,
    });
    let name = source.name();
    let result = with_attempts(opts, || {
        let transfer_err = |source| PullError::Transfer {
            digest: desc.digest.clone(),
            source,
        };
        let mut stream = source.open_blob(desc)?;
        let mut writer = store.writer_for(&desc.digest)?;
        let mut reader = (&mut stream.reader).take(desc.size + 1);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = fill(&mut reader, &mut buf).map_err(transfer_err)?;
            if n == 0 {
                break;
            }
            writer.write_all(&buf[..n]).map_err(transfer_err)?;
            reporter.advance(id, n as u64);
        }
        writer
            .commit(Some((&desc.digest, desc.size)))
            .map_err(|cause| PullError::Corrupt {
                what: "blob",
                digest: desc.digest.clone(),
                source_name: name.clone(),
                cause: Box::new(cause),
            })?;
        Ok(())
    });
    reporter.finish(id);
    result?;
    if let Some(origin) = source.origin() {
        store.record_origin(&desc.digest, &origin)?;
    }
    Ok(true)
}

/// Downloads the config blob whole, verifies and stores it; returns its bytes.
fn fetch_config(
    source: &dyn ImageSource,
    store: &BlobStore,
    config: &Descriptor,
    name: &str,
) -> Result<Vec<u8>, PullError> {
    let transfer_err = |source| PullError::Transfer {
        digest: config.digest.clone(),
        source,
    };
    let mut stream = source.open_blob(config)?;
    let mut buf = Vec::new();
    (&mut stream.reader)
        .take(config.size + 1)
        .read_to_end(&mut buf)
        .map_err(transfer_err)?;
    store.remove_blob(&config.digest)?;
    let mut w = store.writer_for(&config.digest)?;
    w.write_all(&buf).map_err(transfer_err)?;
    w.commit(Some((&config.digest, config.size)))
        .map_err(|cause| PullError::Corrupt {
            what: "config",
            digest: config.digest.clone(),
            source_name: name.to_string(),
            cause: Box::new(cause),
        })?;
    Ok(buf)
}

/// The config's `rootfs.diff_ids`, one per manifest layer.
fn diff_ids(config: &[u8], manifest: &ImageManifest) -> Result<Vec<Digest>, PullError> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<Digest>,
    }
    let bad = |detail: String| PullError::BadConfig {
        digest: manifest.config.digest.clone(),
        detail,
    };
    let c: Config = serde_json::from_slice(config)
        .map_err(|e| bad(crate::oci::parse_error::ParseError::json(&e).to_string()))?;
    if c.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(bad(format!(
            "{} diff_ids for {} layers",
            c.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    Ok(c.rootfs.diff_ids)
}

/// The platform an image config declares.
pub fn config_platform(config: &[u8]) -> Option<Platform> {
    #[derive(serde::Deserialize)]
    struct C {
        architecture: Option<String>,
        os: Option<String>,
        variant: Option<String>,
    }
    let c: C = serde_json::from_slice(config).ok()?;
    Some(Platform::new(
        c.os.as_deref()?,
        c.architecture.as_deref()?,
        c.variant.as_deref(),
    ))
}

/// Whether the store holds `desc` whole: its size, and its file unchanged since its
/// content was last hashed (else hashed now). A damaged copy is removed, to be
/// fetched again.
fn holds_intact(store: &BlobStore, desc: &Descriptor) -> Result<bool, PullError> {
    match store.check_blob(&desc.digest, desc.size)? {
        BlobState::Intact => Ok(true),
        BlobState::Corrupt(_) | BlobState::WrongSize(_) => {
            store.remove_blob(&desc.digest)?;
            Ok(false)
        }
        BlobState::Missing => Ok(false),
    }
}

/// Makes sure `layer` is stored with its metadata. Returns whether it was transferred.
#[allow(clippy::too_many_arguments)]
fn ensure_layer(
    source: &dyn ImageSource,
    store: &BlobStore,
    layer: &Descriptor,
    diff_id: &Digest,
    opts: &PullOptions,
    reporter: &dyn Reporter,
    name: &str,
) -> Result<bool, PullError> {
    let compression =
        layer_compression(&layer.media_type).ok_or_else(|| PullError::UnsupportedLayer {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        })?;
    // What an "already cached" layer must pass: its size, and its file unchanged
    // since its content was last hashed (else it is hashed now). A damaged copy is
    // removed and fetched again.
    if holds_intact(store, layer)? {
        let meta = stored_layer_meta(store, &layer.digest, compression, Some(diff_id))?;
        check_diff_id(layer, diff_id, &meta)?;
        return Ok(false);
    }
    let digest = layer.digest.to_string();
    let id = reporter.start(Task::Download {
        digest: &digest,
        bytes: layer.size,
    });
    let result = with_attempts(opts, || {
        transfer_layer(
            source,
            store,
            layer,
            compression,
            diff_id,
            reporter,
            id,
            name,
        )
    });
    reporter.finish(id);
    result.map(|()| true)
}

#[allow(clippy::too_many_arguments)]
fn transfer_layer(
    source: &dyn ImageSource,
    store: &BlobStore,
    layer: &Descriptor,
    compression: Compression,
    diff_id: &Digest,
    reporter: &dyn Reporter,
    id: TaskId,
    name: &str,
) -> Result<(), PullError> {
    let transfer_err = |source| PullError::Transfer {
        digest: layer.digest.clone(),
        source,
    };
    let mut stream = source.open_blob(layer)?;
    let mut writer = store.writer_for(&layer.digest)?;
    let mut reader = (&mut stream.reader).take(layer.size + 1);
    // `measured` is the decompressor's verdict; it is looked at only after the
    // digest, so a corrupt blob is reported as corrupt rather than as bad gzip/zstd.
    let measured: Result<LayerMeta, PullError> = if compression != Compression::None {
        // The download thread (this one) hashes and stores; a second thread
        // decompresses (gzip or zstd), handing the tar stream to a third that
        // hashes it. Bounded channels keep memory flat.
        let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(32);
        // Chunks the inflater has finished come back, so nothing is allocated (and
        // zeroed) per read.
        let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(34);
        let (copied, measured) = std::thread::scope(|s| {
            let inflater = s.spawn(move || {
                let chunks = ChannelReader::new(rx).recycling(free_tx);
                measure(chunks, compression, &layer.digest, diff_id.alg())
            });
            let copied = (|| -> io::Result<()> {
                let mut inflating = true;
                loop {
                    // (The reader's first "finished" buffer is its empty initial one.)
                    let mut buf = free_rx
                        .try_recv()
                        .ok()
                        .filter(|b| b.len() == CHUNK)
                        .unwrap_or_else(|| vec![0u8; CHUNK]);
                    // Whole chunks (the socket gives a few KiB per read): a wake-up
                    // of the inflater per 256 KiB, not per read.
                    let n = fill(&mut reader, &mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    writer.write_all(&buf[..n])?;
                    reporter.advance(id, n as u64);
                    // If the inflater stopped early (bad data), keep downloading so the
                    // digest check below can say what went wrong.
                    if inflating && tx.send((buf, n)).is_err() {
                        inflating = false;
                    }
                }
            })();
            drop(tx);
            (copied, inflater.join().expect("inflate thread panicked"))
        });
        copied.map_err(transfer_err)?;
        measured
    } else {
        let mut sink = HashingSink::with_algorithm(diff_id.alg());
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(transfer_err)?;
            if n == 0 {
                break;
            }
            writer.write_all(&buf[..n]).map_err(transfer_err)?;
            sink.write_all(&buf[..n]).map_err(transfer_err)?;
            reporter.advance(id, n as u64);
        }
        let (d, n) = sink.finish();
        Ok(LayerMeta {
            diff_id: d,
            uncompressed_bytes: n,
        })
    };
    // Verify digest and size first: a corrupt blob is reported as such, not as a
    // diff_id problem. The writer is dropped (temp deleted) on any error.
    let (actual, actual_size) = writer.digest_so_far();
    if actual != layer.digest || actual_size != layer.size {
        return Err(PullError::Corrupt {
            what: "layer",
            digest: layer.digest.clone(),
            source_name: name.to_string(),
            cause: Box::new(StoreError::Mismatch {
                expected: layer.digest.clone(),
                expected_size: layer.size,
                actual,
                actual_size,
            }),
        });
    }
    let meta = measured?;
    check_diff_id(layer, diff_id, &meta)?;
    writer
        .commit(Some((&layer.digest, layer.size)))
        .map_err(|cause| PullError::Corrupt {
            what: "layer",
            digest: layer.digest.clone(),
            source_name: name.to_string(),
            cause: Box::new(cause),
        })?;
    store.put_layer_meta(&layer.digest, &meta)?;
    Ok(())
}

fn check_diff_id(layer: &Descriptor, expected: &Digest, meta: &LayerMeta) -> Result<(), PullError> {
    if &meta.diff_id != expected {
        return Err(PullError::DiffIdMismatch {
            digest: layer.digest.clone(),
            expected: expected.clone(),
            actual: meta.diff_id.clone(),
        });
    }
    Ok(())
}

/// A stored layer's diff_id and uncompressed length: as remembered, or, for a blob
/// stored by other means (e.g. a layout written by skopeo), measured once and
/// remembered.
fn stored_layer_meta(
    store: &BlobStore,
    digest: &Digest,
    compression: Compression,
    expected: Option<&Digest>,
) -> Result<LayerMeta, PullError> {
    store
        .layer_meta_or_measure(digest, compression, expected)
        .map_err(|e| match e {
            MeasureError::Store(e) => PullError::Store(e),
            MeasureError::Data { source, .. } => bad_layer_data(digest, compression)(source),
        })
}

fn measure(
    input: impl io::BufRead,
    compression: Compression,
    digest: &Digest,
    algorithm: Algorithm,
) -> Result<LayerMeta, PullError> {
    measure_layer(input, compression, algorithm).map_err(bad_layer_data(digest, compression))
}

/// A layer whose bytes do not decompress.
fn bad_layer_data(
    digest: &Digest,
    compression: Compression,
) -> impl FnOnce(io::Error) -> PullError + '_ {
    move |source| PullError::BadLayerData {
        digest: digest.clone(),
        compression: compression_name(compression),
        source,
    }
}

/// DESIGN.md's size object.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ImageSize {
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    pub platform: String,
    pub manifest_bytes: u64,
    pub config_bytes: u64,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub layers: Vec<LayerSize>,
    /// When the image was chosen from an index (`size`, `pull`), is one of a built
    /// index (`build --platform A,B`), or was built on a base chosen from one
    /// (`compare`): that index's digest...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// ...and the platforms it offers, so a reader knows which one `platform` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
}

impl ImageSize {
    /// Records that this image is one of `index`'s platforms.
    pub fn chosen_from(&mut self, index: &IndexChoice) {
        self.index_digest = Some(index.digest.clone());
        self.platforms = Some(index.platforms.clone());
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct LayerSize {
    pub digest: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
}

/// Sizes a stored image from its manifest, config and layer metadata: no layer data is read
/// (except once for a layer stored without metadata).
pub fn size_of(
    store: &BlobStore,
    reference: &str,
    manifest_digest: &Digest,
) -> Result<ImageSize, PullError> {
    let bytes = store.read_blob(manifest_digest)?;
    let (media_type, parsed) = Manifest::parse("", &bytes)?;
    let Manifest::Image(manifest) = parsed else {
        return Err(PullError::NestedIndex(manifest_digest.clone()));
    };
    let config = store.read_blob(&manifest.config.digest)?;
    // The config's diff_ids say which algorithm each is measured in (sha512 too).
    let expected = diff_ids(&config, &manifest).ok();
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for (i, l) in manifest.layers.iter().enumerate() {
        let compression = layer_compression(&l.media_type).unwrap_or(Compression::Gzip);
        let want = expected.as_ref().map(|e| &e[i]);
        let meta = stored_layer_meta(store, &l.digest, compression, want)?;
        layers.push(LayerSize {
            digest: l.digest.clone(),
            diff_id: meta.diff_id,
            media_type: l.media_type.clone(),
            compressed_bytes: l.size,
            uncompressed_bytes: meta.uncompressed_bytes,
        });
    }
    Ok(ImageSize {
        reference: reference.to_string(),
        digest: manifest_digest.clone(),
        media_type,
        platform: config_platform(&config)
            .map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into()),
        manifest_bytes: bytes.len() as u64,
        config_bytes: config.len() as u64,
        compressed_bytes: layers.iter().map(|l| l.compressed_bytes).sum(),
        uncompressed_bytes: layers.iter().map(|l| l.uncompressed_bytes).sum(),
        layers,
        index_digest: None,
        platforms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_inflates_and_hashes_a_gzip_layer() {
        use flate2::write::GzEncoder;
        let tar: Vec<u8> = (0..700_000u32).map(|i| (i % 97) as u8).collect();
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&tar).unwrap();
        let gz = e.finish().unwrap();
        let d = Digest::of(&gz);
        let (tx, rx) = mpsc::sync_channel(64);
        for piece in gz.chunks(1000) {
            tx.send((piece.to_vec(), piece.len())).unwrap();
        }
        drop(tx);
        let meta = measure(
            ChannelReader::new(rx),
            Compression::Gzip,
            &d,
            Algorithm::Sha256,
        )
        .unwrap();
        assert_eq!(
            (meta.diff_id, meta.uncompressed_bytes),
            (Digest::of(&tar), tar.len() as u64)
        );
        let err = measure(
            &gz[..gz.len() - 3],
            Compression::Gzip,
            &d,
            Algorithm::Sha256,
        )
        .unwrap_err();
        assert!(matches!(err, PullError::BadLayerData { .. }), "{err}");
    }
}
