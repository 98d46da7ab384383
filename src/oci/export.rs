//! What exporting an image is, shared by the writers of each destination
//! (`publish` writes layouts, `archive` writes archives): the image to write,
//! the report, the error, and the checks every writer makes on the cache.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::oci::digest::{Algorithm, Digest};
use crate::oci::layout::{IndexEntry, LayoutError};
use crate::oci::manifest::{
    DOCKER_CONFIG, DOCKER_FOREIGN_GZIP, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, DOCKER_LAYER_ZSTD,
    DOCKER_MANIFEST, Descriptor, ImageManifest, Manifest, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP,
    OCI_LAYER_NONDIST_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use crate::oci::store::{BlobStore, StoreError};

/// The image to export: its manifest as stored (exact bytes), digest and media type.
#[derive(Debug, Clone)]
pub struct ExportImage {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
    pub manifest: ImageManifest,
    /// For an index (`copy --all`): every blob its images need, their manifests
    /// included, written before the index itself. Empty for one image.
    pub members: Vec<Descriptor>,
}

impl ExportImage {
    /// Parses manifest `bytes` (an OCI or Docker schema 2 image manifest).
    pub fn new(bytes: Vec<u8>, media_type: &str) -> Result<Self, ExportError> {
        Self::new_with(bytes, media_type, Algorithm::Sha256)
    }

    /// `new`, for a manifest named by a digest of `algorithm` (a sha512-addressed
    /// image keeps its sha512 name when copied).
    pub fn new_with(
        bytes: Vec<u8>,
        media_type: &str,
        algorithm: Algorithm,
    ) -> Result<Self, ExportError> {
        let (media_type, parsed) =
            Manifest::parse(media_type, &bytes).map_err(ExportError::BadManifest)?;
        let Manifest::Image(manifest) = parsed else {
            return Err(ExportError::NotAnImage(media_type));
        };
        if !matches!(media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST) {
            return Err(ExportError::NotAnImage(media_type));
        }
        Ok(ExportImage {
            digest: Digest::of_with(algorithm, &bytes),
            bytes,
            media_type,
            manifest: *manifest,
            members: Vec::new(),
        })
    }

    /// An OCI index (`bytes`) and its `images`, to be written whole into an OCI
    /// layout or archive: the index bytes unchanged, every image's manifest and blobs
    /// beside it. (A docker-archive holds one image, never an index.)
    pub fn index(bytes: Vec<u8>, images: &[ExportImage]) -> Result<Self, ExportError> {
        Self::index_with(bytes, images, Algorithm::Sha256)
    }

    /// `index`, for an index named by a digest of `algorithm` (a sha512-addressed
    /// index keeps its sha512 name when copied).
    pub fn index_with(
        bytes: Vec<u8>,
        images: &[ExportImage],
        algorithm: Algorithm,
    ) -> Result<Self, ExportError> {
        let Some(first) = images.first() else {
            return Err(ExportError::NotAnImage(OCI_INDEX.to_string()));
        };
        let mut members = Vec::new();
        for i in images {
            if i.media_type != OCI_MANIFEST {
                return Err(ExportError::NotOci(i.media_type.clone()));
            }
            members.push(Descriptor::new(
                i.media_type.clone(),
                i.digest.clone(),
                i.bytes.len() as u64,
            ));
            members.extend(i.blobs().into_iter().cloned());
        }
        Ok(ExportImage {
            digest: Digest::of_with(algorithm, &bytes),
            bytes,
            media_type: OCI_INDEX.to_string(),
            manifest: first.manifest.clone(),
            members,
        })
    }

    /// Whether this is an index with its images (`ExportImage::index`).
    pub fn is_index(&self) -> bool {
        !self.members.is_empty()
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
        if self.is_index() {
            return self
                .members
                .iter()
                .filter(|d| seen.insert(&d.digest))
                .collect();
        }
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
        if self.media_type == OCI_MANIFEST || self.is_index() {
            return Cow::Borrowed(self);
        }
        let oci_type = |t: &str| oci_media_type(t).to_string();
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
            members: Vec::new(),
        })
    }

    /// The image's entry in a layout's `index.json`, named `tag` when given.
    pub(crate) fn index_entry(&self, tag: Option<&str>) -> IndexEntry {
        IndexEntry::new(
            self.media_type.clone(),
            self.digest.clone(),
            self.bytes.len() as u64,
        )
        .named(tag)
    }
}

/// The OCI name of a Docker config or layer type (the same bytes); other types
/// are kept. Docker's zstd layer type (containerd's, not in the schema 2 spec)
/// maps to OCI's.
pub(crate) fn oci_media_type(t: &str) -> &str {
    match t {
        DOCKER_CONFIG => OCI_CONFIG,
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        DOCKER_LAYER_TAR => OCI_LAYER_TAR,
        DOCKER_LAYER_ZSTD => OCI_LAYER_ZSTD,
        DOCKER_FOREIGN_GZIP => OCI_LAYER_NONDIST_GZIP,
        other => other,
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
    #[error("cache corrupt: blob {digest} at {path} is damaged: {detail}")]
    BlobCorrupt {
        digest: Digest,
        path: PathBuf,
        detail: String,
    },
    #[error("the image manifest cannot be read")]
    BadManifest(#[source] crate::oci::manifest::ManifestError),
    #[error("{0} is not an image manifest (an index cannot be exported as one image)")]
    NotAnImage(String),
    #[error("an OCI layout keeps an index whole only as an OCI index of OCI manifests, not {0}")]
    NotOci(String),
    #[error("the image config {digest} is not valid JSON")]
    BadConfig {
        digest: Digest,
        #[source]
        source: crate::oci::parse_error::ParseError,
    },
    #[error("the image config lists {diff_ids} diff_ids for {layers} layers")]
    LayerCount { diff_ids: usize, layers: usize },
    #[error(
        "layer {digest} has media type {media_type}, which a docker-archive cannot hold (only tar, tar+gzip and tar+zstd layers)"
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

impl From<LayoutError> for ExportError {
    fn from(e: LayoutError) -> Self {
        match e {
            LayoutError::ParentMissing { path, parent } => {
                ExportError::ParentMissing { path, parent }
            }
            LayoutError::NotALayout(p) => ExportError::NotALayout(p),
            LayoutError::NotADirectory(p) => ExportError::NotADirectory(p),
            LayoutError::Write { path, source } => ExportError::Write { path, source },
            LayoutError::BadIndex { path, detail } => ExportError::BadIndex { path, detail },
        }
    }
}

pub(crate) fn write_err(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    }
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
