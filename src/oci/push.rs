//! Pushing a stored image to a registry, sending only what is missing.
//!
//! Each blob is first asked about (HEAD); a blob the store knows to live in
//! another repository of the same registry is mounted; the rest are uploaded
//! from the store, streamed, several at once. The manifest goes last, with its
//! exact media type, so a registry never holds a manifest whose blobs are missing.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

use crate::oci::digest::{Algorithm, Digest};
use crate::oci::manifest::{Descriptor, ImageManifest};
use crate::oci::reference::ImageReference;
use crate::oci::registry::{RegistryClient, RegistryError};
use crate::oci::store::{BlobStore, StoreError};
use crate::progress::{Reporter, Task};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] crate::oci::source::SourceError),
    /// A blob fetched from the source just before its upload (`copy`) failed.
    #[error(transparent)]
    Fetch(Box<crate::oci::pull::PullError>),
    #[error("uploading {digest} to {target} failed")]
    Upload {
        digest: Digest,
        target: String,
        #[source]
        source: Box<RegistryError>,
    },
}

#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs uploaded at once.
    pub threads: usize,
    /// Blobs larger than this go up in PATCH chunks of this size.
    pub chunk_bytes: u64,
    /// Whole-blob attempts (a fresh upload session each).
    pub attempts: u32,
}

/// Overrides the upload chunk size (bytes). Undocumented for users: it exists so the
/// chaos test can push small blobs in several PATCHes and break them in between.
pub const CHUNK_BYTES_ENV: &str = "OCIBENCH_PUSH_CHUNK_BYTES";

impl Default for PushOptions {
    fn default() -> Self {
        let chunk_bytes = std::env::var(CHUNK_BYTES_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(64 * 1024 * 1024);
        PushOptions {
            threads: 4,
            chunk_bytes,
            attempts: 3,
        }
    }
}

/// Where a push reads blobs from: the blob store, or an OCI layout read in place.
pub trait PushBlobs: Sync {
    fn blob_path(&self, digest: &Digest) -> std::path::PathBuf;
    fn blob_size(&self, digest: &Digest) -> Option<u64>;
    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError>;
    /// Repositories (`REGISTRY/REPO`) known to hold the blob: mount sources.
    fn origins(&self, digest: &Digest) -> Vec<String>;
    /// Remembers that the blob now lives in `repo` too.
    fn record_origin(&self, digest: &Digest, repo: &str) -> Result<(), StoreError>;
    /// Checks the blob's content before it is uploaded (the registry would refuse a
    /// damaged one only after the transfer, as DIGEST_INVALID).
    fn verify(&self, _digest: &Digest) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether the blob can be pushed; asked of every blob before anything is sent.
    fn can_push(&self, desc: &Descriptor) -> bool {
        self.blob_size(&desc.digest) == Some(desc.size)
    }
    /// Makes the blob readable at `blob_path` just before its upload: a source that
    /// fetches blobs lazily (`copy`) fetches here, only those the registry lacks.
    fn prepare(&self, _desc: &Descriptor, _reporter: &dyn Reporter) -> Result<(), PushError> {
        Ok(())
    }
}

impl PushBlobs for BlobStore {
    fn blob_path(&self, digest: &Digest) -> std::path::PathBuf {
        BlobStore::blob_path(self, digest)
    }
    fn blob_size(&self, digest: &Digest) -> Option<u64> {
        BlobStore::blob_size(self, digest)
    }
    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        BlobStore::read_blob(self, digest)
    }
    fn origins(&self, digest: &Digest) -> Vec<String> {
        BlobStore::origins(self, digest)
    }
    fn record_origin(&self, digest: &Digest, repo: &str) -> Result<(), StoreError> {
        BlobStore::record_origin(self, digest, repo)
    }
    /// Hashed now: an upload reads the blob from its file, not through a hasher.
    fn verify(&self, digest: &Digest) -> Result<(), StoreError> {
        match self.verify_now(digest)? {
            crate::oci::store::BlobState::Corrupt(actual) => Err(StoreError::Corrupt {
                digest: digest.clone(),
                path: BlobStore::blob_path(self, digest),
                actual,
            }),
            _ => Ok(()),
        }
    }
}

/// Any OCI image layout (`oci:DIR`), read in place and never written: pushing it needs
/// no copy into the cache, and the registry checks each uploaded blob's digest itself.
#[derive(Debug, Clone)]
pub struct LayoutBlobs {
    root: std::path::PathBuf,
}

impl LayoutBlobs {
    pub fn new(root: impl Into<std::path::PathBuf>) -> Self {
        LayoutBlobs { root: root.into() }
    }
}

impl PushBlobs for LayoutBlobs {
    fn blob_path(&self, digest: &Digest) -> std::path::PathBuf {
        crate::oci::layout::blob_path(&self.root, digest)
    }
    fn blob_size(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }
    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(|source| StoreError::Io { path, source })?;
        let actual = Digest::of_with(digest.alg(), &bytes);
        if &actual != digest {
            return Err(StoreError::Mismatch {
                expected: digest.clone(),
                expected_size: bytes.len() as u64,
                actual,
                actual_size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
    fn origins(&self, _: &Digest) -> Vec<String> {
        Vec::new()
    }
    fn record_origin(&self, _: &Digest, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// What a push did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PushReport {
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    pub uploaded_blobs: usize,
    pub uploaded_bytes: u64,
    pub mounted_blobs: usize,
    pub existing_blobs: usize,
}

/// Pushes the stored manifest `manifest_digest` (of `media_type`) to `target`, under
/// the target's digest or tag (else its own digest).
pub fn push(
    store: &dyn PushBlobs,
    client: &RegistryClient,
    manifest_digest: &Digest,
    media_type: &str,
    target: &ImageReference,
    opts: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<PushReport, PushError> {
    let reference = target
        .digest()
        .map(|d| d.to_string())
        .or_else(|| target.tag().map(str::to_string))
        .unwrap_or_else(|| manifest_digest.to_string());
    push_as(
        store,
        client,
        manifest_digest,
        media_type,
        target,
        &reference,
        opts,
        reporter,
    )
}

/// `push`, the manifest PUT under `reference` (a tag, or a digest: the images of an
/// index go up by digest, the index last under the tag).
#[allow(clippy::too_many_arguments)]
pub fn push_as(
    store: &dyn PushBlobs,
    client: &RegistryClient,
    manifest_digest: &Digest,
    media_type: &str,
    target: &ImageReference,
    reference: &str,
    opts: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<PushReport, PushError> {
    // registries.conf: a push writes to the location (its prefix rewritten), never
    // to a mirror; the report keeps the name given.
    let endpoint = client.registries_conf().push_endpoint(target)?;
    let (named, target) = (target, &endpoint.reference);
    let bytes = store.read_blob(manifest_digest)?;
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
        path: store.blob_path(manifest_digest),
        source: std::io::Error::other(e),
    })?;
    // A blob listed twice (an empty layer used twice) is sent once.
    let mut seen = std::collections::HashSet::new();
    let blobs: Vec<&Descriptor> = std::iter::once(&manifest.config)
        .chain(manifest.layers.iter())
        .filter(|d| seen.insert(d.digest.clone()))
        .collect();
    for b in &blobs {
        if !store.can_push(b) {
            return Err(StoreError::Missing(b.digest.clone()).into());
        }
    }

    let uploaded = AtomicUsize::new(0);
    let uploaded_bytes = AtomicU64::new(0);
    let mounted = AtomicUsize::new(0);
    let existing = AtomicUsize::new(0);
    let here = format!("{}/{}", target.registry(), target.repository());
    crate::oci::parallel::for_each(&blobs, opts.threads, |_, blob| {
        if client.blob_exists(target, &blob.digest)?.is_some() {
            existing.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if try_mount(store, client, target, &blob.digest)? {
            mounted.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        upload(store, client, target, blob, opts, reporter)?;
        uploaded.fetch_add(1, Ordering::Relaxed);
        uploaded_bytes.fetch_add(blob.size, Ordering::Relaxed);
        Ok::<(), PushError>(())
    })?;

    let digest = client.put_manifest(target, reference, &bytes, media_type)?;
    for b in &blobs {
        store.record_origin(&b.digest, &here)?;
    }
    Ok(PushReport {
        reference: named.to_string(),
        digest,
        media_type: media_type.to_string(),
        uploaded_blobs: uploaded.into_inner(),
        uploaded_bytes: uploaded_bytes.into_inner(),
        mounted_blobs: mounted.into_inner(),
        existing_blobs: existing.into_inner(),
    })
}

/// Mounts from a repository of the same registry the store knows holds the blob.
fn try_mount(
    store: &dyn PushBlobs,
    client: &RegistryClient,
    target: &ImageReference,
    digest: &Digest,
) -> Result<bool, PushError> {
    // Distribution 2.8 answers 201 to a mount of a sha512 blob, then refuses a
    // manifest naming it (MANIFEST_BLOB_UNKNOWN; tests/it/registry/digests.rs):
    // such blobs are uploaded, which it does keep.
    if digest.alg() != Algorithm::Sha256 {
        return Ok(false);
    }
    let prefix = format!("{}/", target.registry());
    for origin in store.origins(digest) {
        let Some(repo) = origin.strip_prefix(&prefix) else {
            continue;
        };
        if repo == target.repository() {
            continue;
        }
        // A registry that refuses the mount (no access to `repo`) just means upload.
        match client.mount_blob(target, digest, repo) {
            Ok(true) => return Ok(true),
            Ok(false) | Err(RegistryError::Unauthorized { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

fn upload(
    store: &dyn PushBlobs,
    client: &RegistryClient,
    target: &ImageReference,
    blob: &Descriptor,
    opts: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<(), PushError> {
    store.prepare(blob, reporter)?;
    store.verify(&blob.digest)?;
    let digest = blob.digest.to_string();
    let path = store.blob_path(&blob.digest);
    let mut attempt = 0;
    loop {
        let id = reporter.start(Task::Upload {
            digest: &digest,
            bytes: blob.size,
        });
        let on_send = |n: u64| reporter.advance(id, n);
        let r = client.upload_blob(
            target,
            &blob.digest,
            &path,
            blob.size,
            opts.chunk_bytes,
            &on_send,
        );
        reporter.finish(id);
        match r {
            Ok(()) => return Ok(()),
            Err(
                RegistryError::Unreachable { .. }
                | RegistryError::Status { .. }
                | RegistryError::Body { .. },
            ) if attempt + 1 < opts.attempts => {
                attempt += 1;
                std::thread::sleep(crate::oci::registry::jitter(
                    std::time::Duration::from_millis(300 << attempt),
                ));
            }
            Err(source) => {
                return Err(PushError::Upload {
                    digest: blob.digest.clone(),
                    target: target.to_string(),
                    source: Box::new(source),
                });
            }
        }
    }
}

/// Pushes the single image of the OCI layout at `dir` (named by `location`,
/// an `oci:` location) straight from the layout, with no import into a cache
/// (which would inflate every layer to measure it, for nothing a push needs).
/// `None` when the layout's image is an index, which needs a platform chosen, or
/// a blob is missing: the caller then imports it and reports problems properly.
pub fn push_layout(
    client: &std::sync::Arc<RegistryClient>,
    location: &crate::oci::location::ImageLocation,
    dir: &std::path::Path,
    target: &ImageReference,
    progress: &dyn Reporter,
) -> Result<Option<PushReport>, PushError> {
    use crate::oci::manifest::OCI_MANIFEST;
    let source = crate::oci::source::open(location, client, dir)?;
    let top = source.fetch_manifest(None)?;
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&top.bytes) else {
        return Ok(None);
    };
    let blobs = LayoutBlobs::new(dir);
    let complete = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .all(|d| blobs.blob_size(&d.digest) == Some(d.size));
    if !complete || blobs.blob_size(&top.digest) != Some(top.bytes.len() as u64) {
        return Ok(None);
    }
    let media_type = manifest
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| (!top.media_type.is_empty()).then(|| top.media_type.clone()))
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    push(
        &blobs,
        client,
        &top.digest,
        &media_type,
        target,
        &PushOptions::default(),
        progress,
    )
    .map(Some)
}
