//! `copy`: an image moved unchanged between any two transports, with `skopeo copy`'s
//! semantics. The manifest bytes travel as they are, so the digest is kept, wherever
//! the destination can hold them: a registry, and an OCI layout or archive for OCI
//! manifests. A Docker schema 2 manifest written to an OCI layout is rewritten with
//! OCI media types, and a docker-archive holds no manifest at all, as with skopeo:
//! the report says so.
//!
//! Built on `pull` and `push`, not beside them. To a registry: each blob is asked for
//! (HEAD) and skipped when there, mounted when the source is another repository of
//! the same registry, and only otherwise fetched from the source (into the cache,
//! verified) and uploaded (`push` with `SourceBlobs`, which fetches in `prepare`).
//! To a file: the blobs go through the cache, then `publish::export` writes the
//! destination. With `all`, every image of an index is copied (attestations too, as
//! skopeo does) and the index bytes go last, unchanged: to a registry by digest then
//! under the tag, to an OCI layout or archive whole (`ExportImage::index`). A
//! docker-archive holds one image, so `all` to one is refused.

use serde::Serialize;

use crate::oci::digest::Digest;
use crate::oci::export::{ExportError, ExportImage};
use crate::oci::manifest::{Descriptor, ImageManifest, Manifest, OCI_INDEX, OCI_MANIFEST};
use crate::oci::publish::{self, Destination, Target};
use crate::oci::pull::{self, PullError, PullOptions};
use crate::oci::push::{PushBlobs, PushError, PushOptions, PushReport, push_as};
use crate::oci::registry::RegistryClient;
use crate::oci::source::ImageSource;
use crate::oci::store::{BlobStore, StoreError};
use crate::progress::Reporter;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{source_name} is an index; a docker-archive ({destination}) holds one image, not a whole index"
    )]
    AllToDockerArchive {
        source_name: String,
        destination: String,
    },
}

/// How to copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// The platform chosen from an index (without `all`), and transfer settings.
    pub pull: PullOptions,
    /// Copy every image of an index and the index itself (`--all`).
    pub all: bool,
    pub push: PushOptions,
}

/// What a copy did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopyReport {
    pub source: String,
    pub destination: String,
    /// The digest of the top manifest copied at the source (the index with `all`).
    pub source_digest: Digest,
    /// The digest of the top manifest the destination now holds; `null` for a
    /// docker-archive, which holds no manifest (readers make one up).
    pub digest: Option<Digest>,
    pub media_type: String,
    /// Whether the destination holds the source's manifest bytes unchanged.
    pub digest_kept: bool,
    /// The image manifests copied (several with `all`).
    pub images: Vec<CopiedImage>,
    /// Blobs (configs and layers) the copy transferred to the destination.
    pub blobs_copied: usize,
    pub bytes_copied: u64,
    /// Blobs the destination already held.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository of the same registry.
    pub blobs_mounted: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopiedImage {
    /// The manifest digest at the source.
    pub digest: Digest,
    pub media_type: String,
    /// The index entry's platform, when the image came from an index.
    pub platform: Option<String>,
}

/// One image manifest to copy, as the source serves it.
struct SourceImage {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: String,
    manifest: ImageManifest,
    platform: Option<String>,
}

/// Copies the image `source` holds to `target`. Blobs pass through `store` (the cache).
pub fn copy(
    source: &dyn ImageSource,
    target: &Target,
    client: &RegistryClient,
    store: &BlobStore,
    opts: &CopyOptions,
    reporter: &dyn Reporter,
) -> Result<CopyReport, CopyError> {
    let name = source.name();
    let top = source.fetch_manifest(None).map_err(PullError::from)?;
    let (top_type, parsed) =
        Manifest::parse(&top.media_type, &top.bytes).map_err(PullError::from)?;
    // The images to copy, and the index bytes to write after them (with `all`).
    let (images, index) = match parsed {
        Manifest::Image(m) => (
            vec![SourceImage {
                bytes: top.bytes.clone(),
                digest: top.digest.clone(),
                media_type: top_type.clone(),
                manifest: *m,
                platform: None,
            }],
            None,
        ),
        Manifest::Index(index) => {
            let entries: Vec<Descriptor> = if opts.all {
                index.manifests.clone()
            } else {
                vec![
                    index
                        .select(&opts.pull.platform)
                        .map_err(PullError::from)?
                        .clone(),
                ]
            };
            let mut images = Vec::with_capacity(entries.len());
            for e in &entries {
                let (media_type, manifest, bytes) =
                    crate::oci::inspect::fetch_child(source, e, &name)?;
                images.push(SourceImage {
                    bytes,
                    digest: e.digest.clone(),
                    media_type,
                    manifest,
                    platform: e.platform.as_ref().map(ToString::to_string),
                });
            }
            (
                images,
                opts.all.then(|| (top.bytes.clone(), top_type.clone())),
            )
        }
    };
    let copied_images: Vec<CopiedImage> = images
        .iter()
        .map(|i| CopiedImage {
            digest: i.digest.clone(),
            media_type: i.media_type.clone(),
            platform: i.platform.clone(),
        })
        .collect();
    let (source_digest, source_type) = match &index {
        Some(_) => (top.digest.clone(), top_type.clone()),
        None => (images[0].digest.clone(), images[0].media_type.clone()),
    };
    // Manifests go into the cache first: `push` and `publish` read them from there.
    for i in &images {
        store.put_bytes_with(i.digest.alg(), &i.bytes)?;
    }
    let mut report = CopyReport {
        source: name.clone(),
        // Named as the source is: a registry's images without `docker://`.
        destination: match target {
            Target::Registry(r) => r.to_string(),
            Target::File(d) => d.to_string(),
        },
        source_digest: source_digest.clone(),
        digest: None,
        media_type: source_type.clone(),
        digest_kept: false,
        images: copied_images,
        blobs_copied: 0,
        bytes_copied: 0,
        blobs_skipped: 0,
        blobs_mounted: 0,
    };
    match target {
        Target::Registry(reference) => {
            let blobs = SourceBlobs {
                source,
                store,
                opts: &opts.pull,
            };
            for i in &images {
                // The images of an index go up by digest; a lone image under the target's name.
                let tag = if index.is_some() {
                    i.digest.to_string()
                } else {
                    reference.manifest_reference()
                };
                let pushed = push_as(
                    &blobs,
                    client,
                    &i.digest,
                    &i.media_type,
                    reference,
                    &tag,
                    &opts.push,
                    reporter,
                )?;
                add_pushed(&mut report, &pushed);
                report.digest = Some(pushed.digest);
            }
            if let Some((bytes, media_type)) = &index {
                let tag = reference.manifest_reference();
                // Where `push_as` put the images: registries.conf's location, never a mirror.
                let endpoint = client
                    .registries_conf()
                    .push_endpoint(reference)
                    .map_err(PushError::from)?;
                let digest = client
                    .put_manifest(&endpoint.reference, &tag, bytes, media_type)
                    .map_err(PushError::from)?;
                report.digest = Some(digest);
            }
        }
        Target::File(dest) => {
            if index.is_some() && matches!(dest, Destination::DockerArchive { .. }) {
                return Err(CopyError::AllToDockerArchive {
                    source_name: name,
                    destination: dest.to_string(),
                });
            }
            let mut seen = std::collections::HashSet::new();
            let mut blobs = Vec::new();
            for i in &images {
                for d in std::iter::once(&i.manifest.config).chain(&i.manifest.layers) {
                    if seen.insert(d.digest.clone()) {
                        blobs.push(d);
                    }
                }
            }
            // What a layout holds already is skipped (an archive is written whole).
            let present = |d: &Descriptor| match dest {
                Destination::OciDir { path, .. } => {
                    std::fs::metadata(crate::oci::layout::blob_path(path, &d.digest))
                        .is_ok_and(|m| m.len() == d.size)
                }
                _ => false,
            };
            for d in &blobs {
                if present(d) {
                    report.blobs_skipped += 1;
                } else {
                    report.blobs_copied += 1;
                    report.bytes_copied += d.size;
                }
            }
            crate::oci::parallel::for_each(&blobs, opts.pull.threads, |_, d| {
                pull::store_blob(source, store, d, &opts.pull, reporter).map(|_| ())
            })?;
            let mut export_images = Vec::with_capacity(images.len());
            for i in &images {
                export_images.push(ExportImage::new_with(
                    i.bytes.clone(),
                    &i.media_type,
                    i.digest.alg(),
                )?);
            }
            let export_image = match &index {
                Some((bytes, media_type)) if media_type != OCI_INDEX => {
                    return Err(ExportError::NotOci(media_type.clone()).into());
                }
                Some((bytes, _)) => {
                    ExportImage::index_with(bytes.clone(), &export_images, source_digest.alg())?
                }
                None => export_images.swap_remove(0),
            };
            let exported = publish::export(store, &export_image, dest, reporter)?;
            if !matches!(dest, Destination::DockerArchive { .. }) {
                report.media_type = if exported.converted_to_oci {
                    OCI_MANIFEST.to_string()
                } else {
                    export_image.media_type.clone()
                };
                report.digest = Some(exported.manifest_digest);
            }
        }
    }
    report.digest_kept = report.digest.as_ref() == Some(&source_digest);
    Ok(report)
}

fn add_pushed(report: &mut CopyReport, pushed: &PushReport) {
    report.blobs_copied += pushed.uploaded_blobs;
    report.bytes_copied += pushed.uploaded_bytes;
    report.blobs_mounted += pushed.mounted_blobs;
    report.blobs_skipped += pushed.existing_blobs;
}

/// The blobs of a copy's source, as `push` reads them: fetched into the cache only
/// when the destination registry has them not and cannot mount them.
struct SourceBlobs<'a> {
    source: &'a dyn ImageSource,
    store: &'a BlobStore,
    opts: &'a PullOptions,
}

impl PushBlobs for SourceBlobs<'_> {
    fn blob_path(&self, digest: &Digest) -> std::path::PathBuf {
        self.store.blob_path(digest)
    }
    fn blob_size(&self, digest: &Digest) -> Option<u64> {
        self.store.blob_size(digest)
    }
    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        self.store.read_blob(digest)
    }
    /// The source's own repository first: a copy within one registry mounts from it.
    fn origins(&self, digest: &Digest) -> Vec<String> {
        let mut v: Vec<String> = self.source.origin().into_iter().collect();
        for o in self.store.origins(digest) {
            if !v.contains(&o) {
                v.push(o);
            }
        }
        v
    }
    fn record_origin(&self, digest: &Digest, repo: &str) -> Result<(), StoreError> {
        self.store.record_origin(digest, repo)
    }
    /// Every blob can be pushed: the missing ones are fetched in `prepare`.
    fn can_push(&self, _: &Descriptor) -> bool {
        true
    }
    /// Fetched (or found intact in the cache) and verified, so `verify` has nothing left.
    fn prepare(&self, desc: &Descriptor, reporter: &dyn Reporter) -> Result<(), PushError> {
        pull::store_blob(self.source, self.store, desc, self.opts, reporter)
            .map(|_| ())
            .map_err(|e| PushError::Fetch(Box::new(e)))
    }
}
