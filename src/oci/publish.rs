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
//! Destinations are parsed in `oci::location`; the image, report and error
//! types live in `oci::export`, the tar writing in `oci::archive`, and what a
//! layout looks like in `oci::layout`. Here: the `oci:DIR` writer, `export`
//! choosing among the writers, and `publish` adding registries.

use std::borrow::Cow;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::oci::archive;
use crate::oci::digest::{Digest, HashingWriter};
pub use crate::oci::export::{ExportError, ExportImage, ExportReport};
use crate::oci::export::{check_store_blob, store_error, write_err};
use crate::oci::layout::{self, FILE_MODE};
pub use crate::oci::location::{Destination, DestinationError, normalize_docker_reference};
use crate::oci::manifest::Descriptor;
use crate::oci::push::{PushError, PushOptions, PushReport, push};
use crate::oci::reference::ImageReference;
use crate::oci::registry::RegistryClient;
use crate::oci::store::BlobStore;
use crate::progress::{Reporter, Task};

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
    let _lock = layout::open_locked(dir)?;
    let destination = format!("oci:{}", dir.display());
    let id = progress.start(Task::Write {
        destination: &destination,
        bytes: blobs.iter().map(|d| d.size).sum::<u64>() + image.bytes.len() as u64,
    });
    let result = (|| {
        for d in blobs {
            let (how, copied) = place_blob(store, d, dir, &|n| progress.advance(id, n))?;
            report.bytes_written += copied;
            match how {
                Placed::Present => report.blobs_present += 1,
                Placed::Linked => report.blobs_linked += 1,
                Placed::Copied => report.blobs_copied += 1,
            }
        }
        let manifest_path = layout::blob_path(dir, &image.digest);
        if fs::metadata(&manifest_path).map(|m| m.len()).ok() == Some(image.bytes.len() as u64) {
            report.blobs_present += 1;
        } else {
            layout::write_file(&manifest_path, &image.bytes)?;
            report.blobs_copied += 1;
            report.bytes_written += image.bytes.len() as u64;
        }
        progress.advance(id, image.bytes.len() as u64);
        Ok(layout::add_to_index(dir, &image.index_entry(tag))?)
    })();
    progress.finish(id);
    result
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    Present,
    Linked,
    Copied,
}

/// Puts blob `d` into the layout at `dir`: nothing when a file of the right size is
/// there, else a hard link to the cache's file (same filesystem), else a
/// verified copy. Returns how, and the bytes copied.
fn place_blob(
    store: &BlobStore,
    d: &Descriptor,
    dir: &Path,
    advance: &dyn Fn(u64),
) -> Result<(Placed, u64), ExportError> {
    let target = layout::blob_path(dir, &d.digest);
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
    let blob_dir = layout::blob_dir(dir);
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(&blob_dir)
        .map_err(write_err(&blob_dir))?;
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
    // Read and parsed once, for the first file target, then shared.
    let mut image = None;
    let mut done = Vec::with_capacity(targets.len());
    for target in targets {
        done.push(match target {
            Target::File(dest) => {
                let image = match &image {
                    Some(image) => image,
                    None => {
                        image.insert(ExportImage::from_store(store, manifest_digest, media_type)?)
                    }
                };
                Published::File(export(store, image, dest, progress)?)
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
