//! From the blob store into podman: a stored image is exported as a
//! docker-archive into the cache's scratch space (gone once podman has it) and
//! `podman load`ed. Both `run` (one pulled image) and `compare` (one built image
//! per candidate) go this way; the loaded image is removed when dropped.

use crate::oci::digest::Digest;
use crate::oci::export::ExportImage;
use crate::oci::location::{Destination, normalize_docker_reference};
use crate::oci::publish::export;
use crate::oci::store::BlobStore;
use crate::progress::Reporter;
use crate::runner::{LoadedImage, PodmanRunner, cleanup};

use super::trial::TrialError;

/// An image in the blob store, by manifest.
#[derive(Debug, Clone, Copy)]
pub struct StoredManifest<'a> {
    pub digest: &'a Digest,
    pub media_type: &'a str,
}

/// Exports `image` from `store` as a docker-archive named
/// `localhost/ocibench/PURPOSE:DIGEST-PID` and loads it into podman; the image is
/// removed from podman again when the returned value drops.
pub fn load_into_podman(
    runner: &PodmanRunner,
    store: &BlobStore,
    image: StoredManifest<'_>,
    purpose: &str,
    progress: &dyn Reporter,
) -> Result<LoadedImage, TrialError> {
    let scratch = store.scratch_dir(".run-").map_err(TrialError::Scratch)?;
    let scratch_guard = cleanup::remove_on_signal(scratch.path());
    let archive = scratch.path().join("image.tar");
    let reference = normalize_docker_reference(&format!(
        "localhost/ocibench/{purpose}:{}-{}",
        image.digest.short(),
        std::process::id()
    ))
    .map_err(TrialError::ImageName)?;
    let export_image = ExportImage::from_store(store, image.digest, image.media_type)?;
    export(
        store,
        &export_image,
        &Destination::DockerArchive {
            path: archive.clone(),
            reference: Some(reference),
        },
        progress,
    )?;
    let loaded = runner.load(&archive)?;
    drop(scratch);
    drop(scratch_guard);
    Ok(loaded)
}
