//! Writing an image from the blob store to a local destination, in skopeo's
//! transport syntax: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:REF]`.
//!
//! Every file appears whole or not at all: blobs and `index.json` of a layout go
//! through a temp file and a rename; an archive is written to `FILE.tmp-XXXX`
//! beside FILE and renamed at the end, so a failed export leaves an existing FILE
//! untouched and no partial file behind. Archives are deterministic (sorted
//! entries, mtime 0, uid/gid 0): the same image always gives the same bytes.
//! Blobs are streamed and verified against their digests on the way out.
//!
//! Destinations are parsed in `export_dest`; the tar writing lives in
//! `export_archive`.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::{Value, json};

use crate::oci::archive;
use crate::oci::digest::{Digest, HashingWriter};
use crate::oci::image_config::to_canonical_bytes;
pub use crate::oci::location::{Destination, DestinationError, normalize_docker_reference};
use crate::oci::manifest::{
    DOCKER_CONFIG, DOCKER_FOREIGN_GZIP, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, DOCKER_MANIFEST,
    Descriptor, ImageManifest, Manifest, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_NONDIST_GZIP,
    OCI_LAYER_TAR, OCI_MANIFEST,
};
use crate::oci::store::{BlobStore, IndexEntry, REF_NAME, StoreError};
use std::sync::Arc;

use crate::oci::push::{PushError, PushOptions, PushReport, push};
use crate::oci::reference::ImageReference;
use crate::oci::registry::RegistryClient;
use crate::progress::{Reporter, Task};

/// The image to export: its manifest as stored (exact bytes), digest and media type.
#[derive(Debug, Clone)]
pub struct ExportImage {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
    pub manifest: ImageManifest,
}

impl ExportImage {
    /// Parses manifest `bytes` (an OCI or Docker schema 2 image manifest).
    pub fn new(bytes: Vec<u8>, media_type: &str) -> Result<Self, ExportError> {
        let (media_type, parsed) =
            Manifest::parse(media_type, &bytes).map_err(ExportError::BadManifest)?;
        let Manifest::Image(manifest) = parsed else {
            return Err(ExportError::NotAnImage(media_type));
        };
        if !matches!(media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST) {
            return Err(ExportError::NotAnImage(media_type));
        }
        Ok(ExportImage {
            digest: Digest::of(&bytes),
            bytes,
            media_type,
            manifest: *manifest,
        })
    }

    /// The manifest stored in `store` under `digest`.
    pub fn from_store(
        store: &BlobStore,
        digest: &Digest,
        media_type: &str,
    ) -> Result<Self, ExportError> {
        let bytes = store
            .read_blob(digest)
            .map_err(|e| store_error(store, digest, e))?;
        let image = ExportImage::new(bytes, media_type)?;
        if &image.digest != digest {
            return Err(ExportError::BlobCorrupt {
                digest: digest.clone(),
                path: store.blob_path(digest),
                detail: format!("its content hashes to {}", image.digest),
            });
        }
        Ok(image)
    }

    /// The manifest an `index.json` entry (of the cache, or any layout) names.
    pub fn from_index_entry(store: &BlobStore, entry: &IndexEntry) -> Result<Self, ExportError> {
        Self::from_store(store, &entry.digest, &entry.media_type)
    }

    /// The image's blobs in the order they are written: layers, then the config.
    /// A digest used twice (an empty layer repeated) appears once.
    pub(crate) fn blobs(&self) -> Vec<&Descriptor> {
        let mut seen = std::collections::HashSet::new();
        self.manifest
            .layers
            .iter()
            .chain(std::iter::once(&self.manifest.config))
            .filter(|d| seen.insert(&d.digest))
            .collect()
    }

    /// The image as an OCI layout must hold it. Readers of layouts (skopeo,
    /// podman) only look at OCI manifests, so a Docker schema 2 manifest is
    /// rewritten with the OCI media types, as `skopeo copy` does; the config and
    /// layer blobs stay byte for byte. The manifest digest changes with it.
    pub fn to_oci(&self) -> Cow<'_, ExportImage> {
        if self.media_type == OCI_MANIFEST {
            return Cow::Borrowed(self);
        }
        let oci_type = |t: &str| {
            match t {
                DOCKER_CONFIG => OCI_CONFIG,
                DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
                DOCKER_LAYER_TAR => OCI_LAYER_TAR,
                DOCKER_FOREIGN_GZIP => OCI_LAYER_NONDIST_GZIP,
                other => other,
            }
            .to_string()
        };
        let mut m = self.manifest.clone();
        m.media_type = Some(OCI_MANIFEST.to_string());
        m.config.media_type = oci_type(&m.config.media_type);
        for l in &mut m.layers {
            l.media_type = oci_type(&l.media_type);
        }
        let bytes = m.to_bytes();
        Cow::Owned(ExportImage {
            digest: Digest::of(&bytes),
            bytes,
            media_type: OCI_MANIFEST.to_string(),
            manifest: m,
        })
    }

    pub(crate) fn index_entry(&self, tag: Option<&str>) -> Value {
        let mut e = json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.bytes.len(),
        });
        if let Some(t) = tag {
            e["annotations"] = json!({ REF_NAME: t });
        }
        e
    }
}

/// What an export did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportReport {
    /// The destination as given back in skopeo syntax.
    pub destination: String,
    /// The digest of the manifest written (differs from the image's own when a
    /// Docker manifest was converted for an OCI layout).
    pub manifest_digest: Digest,
    /// Whether a Docker schema 2 manifest was rewritten as OCI (`oci:`, `oci-archive:`).
    pub converted_to_oci: bool,
    /// The config digest: the image ID podman shows after loading.
    pub image_id: Digest,
    /// Bytes written: the archive's size, or the bytes copied into a layout.
    pub bytes_written: u64,
    /// Layout only: blobs hard-linked from the cache, copied, or already present.
    pub blobs_linked: usize,
    pub blobs_copied: usize,
    pub blobs_present: usize,
}

/// Why an export failed. Each names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {} is not an existing directory", parent.display())]
    ParentMissing { path: PathBuf, parent: PathBuf },
    #[error("{0} exists and is not an OCI image layout (no oci-layout file, not empty)")]
    NotALayout(PathBuf),
    #[error("{0} exists and is not a directory")]
    NotADirectory(PathBuf),
    #[error("{0} is a directory, not a file")]
    IsADirectory(PathBuf),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read blob {digest} from the cache at {path}")]
    ReadBlob {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is not in the cache (expected at {path})")]
    BlobMissing { digest: Digest, path: PathBuf },
    #[error("blob {digest} in the cache at {path} is damaged: {detail}")]
    BlobCorrupt {
        digest: Digest,
        path: PathBuf,
        detail: String,
    },
    #[error("the image manifest cannot be read")]
    BadManifest(#[source] crate::oci::manifest::ManifestError),
    #[error("{0} is not an image manifest (an index cannot be exported as one image)")]
    NotAnImage(String),
    #[error("the image config {digest} is not valid JSON")]
    BadConfig {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("the image config lists {diff_ids} diff_ids for {layers} layers")]
    LayerCount { diff_ids: usize, layers: usize },
    #[error(
        "layer {digest} has media type {media_type}, which a docker-archive cannot hold (only tar and tar+gzip layers)"
    )]
    UnsupportedLayer { digest: Digest, media_type: String },
    #[error("{path} has an invalid index.json: {detail}")]
    BadIndex { path: PathBuf, detail: String },
    #[error("cannot read the cache")]
    Store(#[source] StoreError),
}

pub(crate) fn store_error(store: &BlobStore, digest: &Digest, e: StoreError) -> ExportError {
    match e {
        StoreError::Missing(d) => ExportError::BlobMissing {
            path: store.blob_path(&d),
            digest: d,
        },
        StoreError::Io { path, source } => ExportError::ReadBlob {
            digest: digest.clone(),
            path,
            source,
        },
        other => ExportError::Store(other),
    }
}

/// Writes `image` from `store` to `dest`.
pub fn export(
    store: &BlobStore,
    image: &ExportImage,
    dest: &Destination,
    progress: &dyn Reporter,
) -> Result<ExportReport, ExportError> {
    if Digest::of(&image.bytes) != image.digest {
        return Err(ExportError::BlobCorrupt {
            digest: image.digest.clone(),
            path: store.blob_path(&image.digest),
            detail: "the manifest bytes do not match the manifest digest".into(),
        });
    }
    let oci = match dest {
        Destination::DockerArchive { .. } => Cow::Borrowed(image),
        _ => image.to_oci(),
    };
    let converted_to_oci = matches!(oci, Cow::Owned(_));
    let image = oci.as_ref();
    let mut report = ExportReport {
        destination: dest.to_string(),
        manifest_digest: image.digest.clone(),
        converted_to_oci,
        image_id: image.manifest.config.digest.clone(),
        bytes_written: 0,
        blobs_linked: 0,
        blobs_copied: 0,
        blobs_present: 0,
    };
    match dest {
        Destination::OciDir { path, tag } => {
            export_oci_dir(store, image, path, tag.as_deref(), progress, &mut report)?
        }
        Destination::OciArchive { path, tag } => {
            report.bytes_written =
                archive::oci_archive(store, image, path, tag.as_deref(), progress)?;
        }
        Destination::DockerArchive { path, reference } => {
            report.bytes_written =
                archive::docker_archive(store, image, path, reference.as_deref(), progress)?;
        }
    }
    Ok(report)
}

/// Mode of every file an export creates (temp files start as 0600).
pub(crate) const FILE_MODE: u32 = 0o644;

pub(crate) fn write_err(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The existing parent directory of `path` (`.` for a bare file name).
pub(crate) fn existing_parent(path: &Path) -> Result<PathBuf, ExportError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(ExportError::ParentMissing {
            path: path.to_path_buf(),
            parent,
        });
    }
    Ok(parent)
}

/// Writes `bytes` to `path` via a temp file in the same directory and a rename.
fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let dir = existing_parent(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(&dir)
        .map_err(write_err(&dir))?;
    tmp.write_all(bytes).map_err(write_err(tmp.path()))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(FILE_MODE))
        .map_err(write_err(tmp.path()))?;
    tmp.persist(path).map_err(|e| ExportError::Write {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Creates or updates the OCI layout at `dir`: blobs first (so a reader never
/// sees an index entry whose blobs are missing), then `index.json`.
fn export_oci_dir(
    store: &BlobStore,
    image: &ExportImage,
    dir: &Path,
    tag: Option<&str>,
    progress: &dyn Reporter,
    report: &mut ExportReport,
) -> Result<(), ExportError> {
    // Everything needed must be in the cache before the layout is touched.
    let blobs = image.blobs();
    for d in &blobs {
        check_store_blob(store, d)?;
    }
    let _lock = open_layout(dir)?;
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(write_err(&blob_dir))?;
    let destination = format!("oci:{}", dir.display());
    let id = progress.start(Task::Write {
        destination: &destination,
        bytes: blobs.iter().map(|d| d.size).sum::<u64>() + image.bytes.len() as u64,
    });
    let result = (|| {
        for d in blobs {
            let (how, copied) = place_blob(store, d, &blob_dir, &|n| progress.advance(id, n))?;
            report.bytes_written += copied;
            match how {
                Placed::Present => report.blobs_present += 1,
                Placed::Linked => report.blobs_linked += 1,
                Placed::Copied => report.blobs_copied += 1,
            }
        }
        let manifest_path = blob_dir.join(image.digest.hex());
        if fs::metadata(&manifest_path).map(|m| m.len()).ok() == Some(image.bytes.len() as u64) {
            report.blobs_present += 1;
        } else {
            write_file_atomic(&manifest_path, &image.bytes)?;
            report.blobs_copied += 1;
            report.bytes_written += image.bytes.len() as u64;
        }
        progress.advance(id, image.bytes.len() as u64);
        update_index(dir, image, tag)
    })();
    progress.finish(id);
    result
}

/// Checks DIR is usable as a layout and makes it one (`oci-layout` written),
/// creating DIR when missing. Returns the layout's lock: the checks run under
/// it, so concurrent exports into one new directory do not trip over each other.
fn open_layout(dir: &Path) -> Result<File, ExportError> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(ExportError::NotADirectory(dir.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            existing_parent(dir)?;
            match fs::create_dir(dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(write_err(dir)(e));
                }
                _ => {}
            }
        }
        Err(e) => return Err(write_err(dir)(e)),
    }
    let lock = lock_dir(dir)?;
    let layout = dir.join("oci-layout");
    if layout.exists() {
        let ok = fs::read(&layout)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v.get("imageLayoutVersion").is_some());
        if !ok {
            return Err(ExportError::NotALayout(dir.to_path_buf()));
        }
        return Ok(lock);
    }
    let empty = fs::read_dir(dir).map_err(write_err(dir))?.next().is_none();
    if !empty {
        return Err(ExportError::NotALayout(dir.to_path_buf()));
    }
    write_file_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(lock)
}

/// An exclusive lock on the layout directory itself (no extra file in the
/// user's layout), so two exports into one layout do not lose index entries.
fn lock_dir(dir: &Path) -> Result<File, ExportError> {
    let f = File::open(dir).map_err(write_err(dir))?;
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
    if rc != 0 {
        return Err(write_err(dir)(io::Error::last_os_error()));
    }
    Ok(f)
}

/// Adds the image to `index.json`, replacing an entry with the same tag. An
/// untagged export adds nothing when an untagged entry for it already exists.
/// Other entries and unknown fields are kept as they are.
fn update_index(dir: &Path, image: &ExportImage, tag: Option<&str>) -> Result<(), ExportError> {
    let path = dir.join("index.json");
    let bad = |detail: &str| ExportError::BadIndex {
        path: dir.to_path_buf(),
        detail: detail.to_string(),
    };
    let mut index: Value = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(&e.to_string()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }),
        Err(e) => return Err(write_err(&path)(e)),
    };
    let obj = index.as_object_mut().ok_or_else(|| bad("not an object"))?;
    let manifests = obj
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()));
    if manifests.is_null() {
        *manifests = Value::Array(Vec::new());
    }
    let manifests = manifests
        .as_array_mut()
        .ok_or_else(|| bad("`manifests` is not a list"))?;
    let ref_name = |e: &Value| {
        e.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match tag {
        Some(t) => manifests.retain(|e| ref_name(e).as_deref() != Some(t)),
        None => {
            let digest = image.digest.to_string();
            if manifests
                .iter()
                .any(|e| ref_name(e).is_none() && e["digest"].as_str() == Some(digest.as_str()))
            {
                return Ok(());
            }
        }
    }
    manifests.push(image.index_entry(tag));
    write_file_atomic(&path, &to_canonical_bytes(&index))
}

/// Checks a blob is in the store with the size its descriptor gives.
pub(crate) fn check_store_blob(store: &BlobStore, d: &Descriptor) -> Result<(), ExportError> {
    let path = store.blob_path(&d.digest);
    match fs::metadata(&path) {
        Ok(m) if m.len() == d.size => Ok(()),
        Ok(m) => Err(ExportError::BlobCorrupt {
            digest: d.digest.clone(),
            path,
            detail: format!("{} bytes, the manifest says {}", m.len(), d.size),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ExportError::BlobMissing {
            digest: d.digest.clone(),
            path,
        }),
        Err(source) => Err(ExportError::ReadBlob {
            digest: d.digest.clone(),
            path,
            source,
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    Present,
    Linked,
    Copied,
}

/// Puts blob `d` into `blob_dir`: nothing when a file of the right size is
/// there, else a hard link to the cache's file (same filesystem), else a
/// verified copy. Returns how, and the bytes copied.
fn place_blob(
    store: &BlobStore,
    d: &Descriptor,
    blob_dir: &Path,
    advance: &dyn Fn(u64),
) -> Result<(Placed, u64), ExportError> {
    let target = blob_dir.join(d.digest.hex());
    if fs::metadata(&target).map(|m| m.len()).ok() == Some(d.size) {
        advance(d.size);
        return Ok((Placed::Present, 0));
    }
    let src = store.blob_path(&d.digest);
    if link_into(&src, &target) {
        advance(d.size);
        return Ok((Placed::Linked, 0));
    }
    let mut from = store
        .open_blob(&d.digest)
        .map_err(|e| store_error(store, &d.digest, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(blob_dir)
        .map_err(write_err(blob_dir))?;
    let mut to = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, tmp));
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ExportError::ReadBlob {
                    digest: d.digest.clone(),
                    path: src,
                    source,
                });
            }
        };
        to.write_all(&buf[..n]).map_err(write_err(&target))?;
        advance(n as u64);
    }
    let (w, digest, size) = to.finish();
    if digest != d.digest || size != d.size {
        return Err(ExportError::BlobCorrupt {
            digest: d.digest.clone(),
            path: src,
            detail: format!("its content is {digest} ({size} bytes)"),
        });
    }
    let tmp = w
        .into_inner()
        .map_err(|e| write_err(&target)(e.into_error()))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(FILE_MODE))
        .map_err(write_err(&target))?;
    tmp.persist(&target)
        .map_err(|e| write_err(&target)(e.error))?;
    Ok((Placed::Copied, size))
}

/// Hard-links `src` to `target` via a temp name and a rename; false when the
/// filesystem refuses (another device, no permission), so the caller copies.
/// The shared inode is made world-readable (0644), as a copy would be.
fn link_into(src: &Path, target: &Path) -> bool {
    static N: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = target.parent() else {
        return false;
    };
    let tmp = dir.join(format!(
        ".tmp-link-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if fs::hard_link(src, &tmp).is_err() {
        return false;
    }
    let readable = fs::metadata(&tmp).is_ok_and(|m| m.permissions().mode() & 0o044 == 0o044)
        || fs::set_permissions(&tmp, fs::Permissions::from_mode(FILE_MODE)).is_ok();
    if readable && fs::rename(&tmp, target).is_ok() {
        return true;
    }
    let _ = fs::remove_file(&tmp);
    false
}

/// Where `publish` writes an image: a local destination or a registry.
#[derive(Debug, Clone)]
pub enum Target {
    File(Destination),
    Registry(ImageReference),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::File(d) => write!(f, "{d}"),
            Target::Registry(r) => write!(f, "docker://{r}"),
        }
    }
}

/// What `publish` did for one target.
#[derive(Debug, Clone)]
pub enum Published {
    File(ExportReport),
    Registry(PushReport),
}

impl Published {
    /// The manifest digest the target now holds.
    pub fn digest(&self) -> &Digest {
        match self {
            Published::File(r) => &r.manifest_digest,
            Published::Registry(r) => &r.digest,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Push(#[from] PushError),
}

/// Writes the stored image `manifest_digest` to every target, in order: files
/// through `export`, registries through `push` (over `client`). Stops at the
/// first failure; what was written before it stays written.
pub fn publish(
    store: &BlobStore,
    manifest_digest: &Digest,
    media_type: &str,
    targets: &[Target],
    client: &Arc<RegistryClient>,
    progress: &dyn Reporter,
) -> Result<Vec<Published>, PublishError> {
    let mut done = Vec::with_capacity(targets.len());
    for target in targets {
        done.push(match target {
            Target::File(dest) => {
                let image = ExportImage::from_store(store, manifest_digest, media_type)?;
                Published::File(export(store, &image, dest, progress)?)
            }
            Target::Registry(reference) => Published::Registry(push(
                store,
                client,
                manifest_digest,
                media_type,
                reference,
                &PushOptions::default(),
                progress,
            )?),
        });
    }
    Ok(done)
}
