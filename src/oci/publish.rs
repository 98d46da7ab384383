//! Writing an image from the blob store to a local destination, in skopeo's
//! transport syntax: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:REF]`.
//!
//! Every output appears whole or not at all: a new layout is staged in
//! `DIR.tmp-XXXX` beside DIR and renamed; blobs and `index.json` of an existing
//! layout go through a temp file and a rename, and a failed export removes what it
//! added; an archive is written to `FILE.tmp-XXXX` beside FILE and renamed at the
//! end, so a failed export leaves an existing FILE untouched and no partial file
//! behind. Temporaries are locked while written (`oci::temp`): a signal removes
//! them, and the next export to the same place sweeps what a killed one left. Archives are deterministic (sorted
//! entries, mtime 0, uid/gid 0): the same image always gives the same bytes.
//! Blobs are streamed and verified against their digests on the way out.
//!
//! Destinations are parsed in `oci::location`; the image, report and error
//! types live in `oci::export`, the tar writing in `oci::archive`, and what a
//! layout looks like in `oci::layout`. Here: the `oci:DIR` writer, `export`
//! choosing among the writers, and `publish` adding registries.

use std::borrow::Cow;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::oci::archive;
use crate::oci::digest::{Digest, HashingWriter};
pub use crate::oci::export::{ExportError, ExportImage, ExportReport};
use crate::oci::export::{check_store_blob, store_error, write_err};
use crate::oci::layout::{self, FILE_MODE};
pub use crate::oci::location::{Destination, DestinationError, normalize_docker_reference};
use crate::oci::manifest::Descriptor;
use crate::oci::manifest::{DOCKER_LIST, ImageIndex, OCI_INDEX};
use crate::oci::push::{PushError, PushOptions, PushReport, push, push_as};
use crate::oci::reference::ImageReference;
use crate::oci::registry::RegistryClient;
use crate::oci::store::{BlobState, BlobStore, StoreError};
use crate::oci::temp::{self, TempDir, TempFile};
use crate::progress::{Reporter, Task};

/// Writes `image` from `store` to `dest`.
pub fn export(
    store: &BlobStore,
    image: &ExportImage,
    dest: &Destination,
    progress: &dyn Reporter,
) -> Result<ExportReport, ExportError> {
    if !image.digest.matches(&image.bytes) {
        return Err(ExportError::BlobCorrupt {
            digest: image.digest.clone(),
            path: store.blob_path(&image.digest),
            detail: "the manifest bytes do not match the manifest digest".into(),
        });
    }
    let oci = match dest {
        Destination::DockerArchive { .. } if image.is_index() => {
            return Err(ExportError::NotAnImage(image.media_type.clone()));
        }
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

/// Creates or updates the OCI layout at `dir`, whole or not at all. A new layout is
/// staged in `DIR.tmp-XXXX` beside it and renamed into place; an existing one gets
/// its blobs first (so a reader never sees an index entry whose blobs are missing),
/// then `index.json`, and on failure loses what this export added, nothing else.
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
    let parent = layout::existing_parent(dir)?;
    let staging_prefix = format!(
        "{}.tmp-",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "layout".into())
    );
    // What a killed export into this layout left beside it.
    temp::sweep(&parent, &staging_prefix);
    let destination = format!("oci:{}", dir.display());
    let bytes = blobs.iter().map(|d| d.size).sum::<u64>() + image.bytes.len() as u64;
    if fs::symlink_metadata(dir).is_err() {
        let staging = TempDir::new_in(&parent, &staging_prefix).map_err(write_err(dir))?;
        layout::init(staging.path())?;
        let id = progress.start(Task::Write {
            destination: &destination,
            bytes,
        });
        let mut staged = report.clone();
        let result = write_image(store, image, staging.path(), tag, &mut staged, &mut |n| {
            progress.advance(id, n)
        });
        progress.finish(id);
        result?;
        match staging.persist(dir) {
            Ok(()) => {
                *report = staged;
                return Ok(());
            }
            // Another export made DIR meanwhile: add to it, as to any layout.
            Err(_) if dir.is_dir() => {}
            Err(e) => return Err(write_err(dir)(e)),
        }
    }
    let was_layout = layout::is_layout(dir);
    let _lock = layout::open_locked(dir)?;
    temp::sweep(dir, ".tmp-");
    temp::sweep(&layout::blob_dir(dir), ".tmp-");
    let id = progress.start(Task::Write {
        destination: &destination,
        bytes,
    });
    let mut added = Vec::new();
    let result = write_image_adding(store, image, dir, tag, report, &mut added, &mut |n| {
        progress.advance(id, n)
    });
    progress.finish(id);
    if result.is_err() {
        // Back to what the directory held: what this export added goes.
        for p in added.iter().rev() {
            let _ = fs::remove_file(p);
        }
        if !was_layout {
            let _ = fs::remove_file(dir.join("oci-layout"));
            let blobs = layout::blob_dir(dir);
            let _ = fs::remove_dir(&blobs);
            let _ = blobs.parent().map(fs::remove_dir);
        }
    }
    result
}

/// Writes the image's blobs, manifest and index entry into the layout at `dir`.
fn write_image(
    store: &BlobStore,
    image: &ExportImage,
    dir: &Path,
    tag: Option<&str>,
    report: &mut ExportReport,
    advance: &mut dyn FnMut(u64),
) -> Result<(), ExportError> {
    write_image_adding(store, image, dir, tag, report, &mut Vec::new(), advance)
}

/// `write_image`, listing in `added` every file it creates.
fn write_image_adding(
    store: &BlobStore,
    image: &ExportImage,
    dir: &Path,
    tag: Option<&str>,
    report: &mut ExportReport,
    added: &mut Vec<PathBuf>,
    advance: &mut dyn FnMut(u64),
) -> Result<(), ExportError> {
    for d in image.blobs() {
        let (how, copied) = place_blob(store, d, dir, advance)?;
        report.bytes_written += copied;
        match how {
            Placed::Present => report.blobs_present += 1,
            Placed::Linked => report.blobs_linked += 1,
            Placed::Copied => report.blobs_copied += 1,
        }
        if how != Placed::Present {
            added.push(layout::blob_path(dir, &d.digest));
        }
    }
    let manifest_path = layout::blob_path(dir, &image.digest);
    layout::ensure_blob_dir(dir, &image.digest)?;
    if fs::metadata(&manifest_path).map(|m| m.len()).ok() == Some(image.bytes.len() as u64) {
        report.blobs_present += 1;
    } else {
        layout::write_file(&manifest_path, &image.bytes)?;
        added.push(manifest_path);
        report.blobs_copied += 1;
        report.bytes_written += image.bytes.len() as u64;
    }
    advance(image.bytes.len() as u64);
    Ok(layout::add_to_index(dir, &image.index_entry(tag))?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    Present,
    Linked,
    Copied,
}

/// Puts blob `d` into the layout at `dir`: nothing when a file of the right size is
/// there, else a hard link to the cache's file (same filesystem) once the cache's
/// file is hashed and found intact, else a copy verified on the way. Returns how,
/// and the bytes copied.
fn place_blob(
    store: &BlobStore,
    d: &Descriptor,
    dir: &Path,
    advance: &mut dyn FnMut(u64),
) -> Result<(Placed, u64), ExportError> {
    let target = layout::blob_path(dir, &d.digest);
    layout::ensure_blob_dir(dir, &d.digest)?;
    if fs::metadata(&target).map(|m| m.len()).ok() == Some(d.size) {
        advance(d.size);
        return Ok((Placed::Present, 0));
    }
    let src = store.blob_path(&d.digest);
    let blob_dir = layout::blob_dir(dir);
    if let Some(link) = temp::hard_link_in(&src, &blob_dir, ".tmp-link-") {
        // A link copies nothing, so nothing is hashed on the way: hash first.
        match store.verify_now(&d.digest) {
            Ok(BlobState::Intact) => {}
            Ok(BlobState::Corrupt(actual)) => {
                return Err(ExportError::BlobCorrupt {
                    digest: d.digest.clone(),
                    path: src,
                    detail: format!("its content hashes to {actual}"),
                });
            }
            Ok(_) | Err(_) => {
                return Err(check_store_blob(store, d).err().unwrap_or_else(|| {
                    ExportError::BlobMissing {
                        digest: d.digest.clone(),
                        path: src.clone(),
                    }
                }));
            }
        }
        if make_readable(link.path()) && link.persist(&target).is_ok() {
            advance(d.size);
            return Ok((Placed::Linked, 0));
        }
    }
    let mut from = store
        .open_blob(&d.digest)
        .map_err(|e| store_error(store, &d.digest, e))?;
    let tmp = TempFile::new_in(&blob_dir, ".tmp-").map_err(write_err(&blob_dir))?;
    let mut to = HashingWriter::with_algorithm(
        io::BufWriter::with_capacity(256 * 1024, tmp),
        d.digest.alg(),
    );
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
    tmp.persist(&target).map_err(write_err(&target))?;
    Ok((Placed::Copied, size))
}

/// Makes a linked blob world-readable (0644), as a copy would be; the inode is
/// shared with the cache, whose blobs are 0644 already.
fn make_readable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 == 0o044)
        || fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE)).is_ok()
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
/// first failure; what was written before it stays written. An index (a
/// multi-platform build) goes whole: to a registry its images by digest, then the
/// index under the target's tag; into an OCI layout or archive with its images.
pub fn publish(
    store: &BlobStore,
    manifest_digest: &Digest,
    media_type: &str,
    targets: &[Target],
    client: &Arc<RegistryClient>,
    progress: &dyn Reporter,
) -> Result<Vec<Published>, PublishError> {
    let is_index = matches!(media_type, OCI_INDEX | DOCKER_LIST);
    // Read and parsed once, for the first file target, then shared.
    let mut image = None;
    let mut done = Vec::with_capacity(targets.len());
    for target in targets {
        done.push(match target {
            Target::File(dest) => {
                let (image, converted) = match &image {
                    Some(image) => image,
                    None => image.insert(if is_index {
                        index_for_layout(store, manifest_digest)?
                    } else {
                        (
                            ExportImage::from_store(store, manifest_digest, media_type)?,
                            false,
                        )
                    }),
                };
                let mut report = export(store, image, dest, progress)?;
                report.converted_to_oci |= *converted;
                Published::File(report)
            }
            Target::Registry(reference) if is_index => Published::Registry(push_index(
                store,
                client,
                manifest_digest,
                media_type,
                reference,
                progress,
            )?),
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

/// The stored index `digest` as an OCI layout holds it: an OCI index of OCI
/// manifests. A Docker manifest list, or an index of Docker manifests, is
/// rewritten with OCI media types (each image as `ExportImage::to_oci` does, the
/// rewritten manifests stored in the cache), as `skopeo copy --all` does; the
/// blobs stay byte for byte. Returns whether it was rewritten.
fn index_for_layout(
    store: &BlobStore,
    digest: &Digest,
) -> Result<(ExportImage, bool), ExportError> {
    let bytes = store
        .read_blob(digest)
        .map_err(|e| store_error(store, digest, e))?;
    let mut index: ImageIndex =
        serde_json::from_slice(&bytes).map_err(|e| ExportError::BadIndex {
            path: store.blob_path(digest),
            detail: crate::oci::parse_error::ParseError::json(&e).to_string(),
        })?;
    let mut images = Vec::with_capacity(index.manifests.len());
    let mut converted = index.media_type.as_deref() != Some(OCI_INDEX);
    for entry in &mut index.manifests {
        let image = ExportImage::from_store(store, &entry.digest, &entry.media_type)?;
        let oci = image.to_oci().into_owned();
        if oci.digest != image.digest {
            converted = true;
            store
                .put_bytes(&oci.bytes)
                .map_err(|e| store_error(store, &oci.digest, e))?;
            entry.media_type = oci.media_type.clone();
            entry.digest = oci.digest.clone();
            entry.size = oci.bytes.len() as u64;
        }
        images.push(oci);
    }
    let bytes = if converted {
        index.media_type = Some(OCI_INDEX.to_string());
        serde_json::to_vec(&index).expect("an index serializes")
    } else {
        bytes
    };
    Ok((ExportImage::index(bytes, &images)?, converted))
}

/// Pushes the stored index `digest`: each image by its digest (blobs first, as
/// `push` does), then the index under the target's tag (or digest), so a
/// registry never holds an index whose images are missing. The report sums the
/// images' blobs.
fn push_index(
    store: &BlobStore,
    client: &RegistryClient,
    digest: &Digest,
    media_type: &str,
    target: &ImageReference,
    progress: &dyn Reporter,
) -> Result<PushReport, PushError> {
    let bytes = store.read_blob(digest)?;
    let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
        path: store.blob_path(digest),
        source: io::Error::other(e),
    })?;
    let opts = PushOptions::default();
    let mut report = PushReport {
        reference: target.to_string(),
        digest: digest.clone(),
        media_type: media_type.to_string(),
        uploaded_blobs: 0,
        uploaded_bytes: 0,
        mounted_blobs: 0,
        existing_blobs: 0,
    };
    for entry in &index.manifests {
        let pushed = push_as(
            store,
            client,
            &entry.digest,
            &entry.media_type,
            target,
            &entry.digest.to_string(),
            &opts,
            progress,
        )?;
        report.uploaded_blobs += pushed.uploaded_blobs;
        report.uploaded_bytes += pushed.uploaded_bytes;
        report.mounted_blobs += pushed.mounted_blobs;
        report.existing_blobs += pushed.existing_blobs;
    }
    report.digest =
        client.put_manifest(target, &target.manifest_reference(), &bytes, media_type)?;
    Ok(report)
}
