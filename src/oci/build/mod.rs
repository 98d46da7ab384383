//! Building images: a base (or scratch) plus new layers plus a config edit, into
//! the blob store, reproducibly.
//!
//! `ImageBuilder` pulls the base (its blobs are reused byte for byte), adds one
//! layer per Nix store-path group (`nix`) and one per `LayerSpec` (`layer`, which
//! streams tar → gzip or zstd → store in one pass), edits the base's config as JSON
//! (`image_config`) and writes a manifest of the base's media-type family (OCI
//! when the new layers are zstd: Docker's schema 2 has no zstd type). Two builds of
//! the same inputs give the same manifest digest on any machine.
//!
//! A multi-platform build (`build_index`) takes each platform's image from the
//! base's index (`platforms`), builds the new layers once, puts the same layer
//! blobs on every base and writes an index of the images.
//!
//! An OCI manifest records its base (`org.opencontainers.image.base.*`, as the
//! image spec's annotations.md defines them and podman writes them), then the
//! user's own annotations, which win on a shared key. A Docker schema 2 manifest
//! has no annotations field: none are recorded there, and asking for some is an
//! error rather than a field Docker tools would not read.

pub mod layer;
mod layer_error;
pub mod layer_tar;
pub mod layer_walk;
pub mod nix;
mod platforms;

use std::path::PathBuf;
use std::sync::Arc;

use crate::oci::compress::LayerCompression;
use crate::oci::digest::Digest;
use crate::oci::image_config::{self, AddedLayer, ConfigEdit, ConfigError};
use crate::oci::location::ImageLocation;
use crate::oci::manifest::{self, Descriptor, ImageManifest, MediaFamily, Platform};
use crate::oci::pull::{self, ImageSize, IndexChoice, PullError};
use crate::oci::registry::RegistryClient;
use crate::oci::store::{BlobStore, StoreError};
use crate::progress::Reporter;
use layer::{LayerBuilder, LayerError};
use nix::NixError;

/// One `--layer`: a source on disk and where it goes in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    pub src: PathBuf,
    /// Absolute, normalised (`/app`).
    pub dest: String,
    /// The layer's history line (`created_by`): the caller says how it was made.
    /// It names the destination only: source paths differ between machines, and
    /// the config must not.
    pub created_by: String,
}

/// Nix store paths whose closures become layers, under the `LayerSpec`s.
#[derive(Debug, Clone, Default)]
pub struct NixSpec {
    pub closures: Vec<PathBuf>,
    /// exportReferencesGraph files describing the closures (else nix-store is asked).
    pub graphs: Vec<PathBuf>,
    /// At most this many layers; the least popular paths share the last.
    pub max_layers: usize,
    /// History lines are `{created_by}: {store path names}`.
    pub created_by: String,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// `None` is scratch.
    pub from: Option<ImageLocation>,
    /// The platforms to build, at least one. One is today's single image (the base
    /// chosen from an index by it, a scratch image made for it); several give an
    /// index of one image per platform, all with the same application layers.
    pub platforms: Vec<Platform>,
    /// `platforms` were asked for: a single-platform base of another is an error.
    pub platform_required: bool,
    pub layers: Vec<LayerSpec>,
    pub nix: NixSpec,
    /// The config changes; `created_epoch` is set from `SOURCE_DATE_EPOCH` at build time.
    pub config: ConfigEdit,
    /// `--annotation index:K=V`: the annotations of the index a multi-platform build
    /// writes (ignored by a single-platform build, which writes no index).
    pub index_annotations: Vec<(String, String)>,
    /// Annotations for the image manifest (`--annotation K=V`), in the order given.
    pub annotations: Vec<(String, String)>,
    /// How the new layers are compressed (`--compression`); the base's stay as they are.
    pub compression: LayerCompression,
}

/// The OCI annotation naming the base image (a registry reference, normalised).
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// The OCI annotation holding the digest of the base's manifest.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// A built image in the store.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest_digest: Digest,
    pub media_type: String,
    pub size: ImageSize,
    /// The index the base was chosen from, if it was one.
    pub base_index: Option<IndexChoice>,
}

/// A built multi-platform image: an index and its images, in the order asked.
#[derive(Debug, Clone)]
pub struct BuiltIndex {
    pub digest: Digest,
    pub media_type: String,
    pub manifest_bytes: u64,
    pub platforms: Vec<String>,
    pub images: Vec<BuiltImage>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Nix(#[from] NixError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the base {base} has Docker schema 2 media types, whose manifests hold no annotations")]
    AnnotationsOnDocker { base: String },
    #[error("cannot read the Nix graph {}", path.display())]
    NixGraph {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the base {base} has no image for {wanted} (it has {available})")]
    MissingPlatform {
        base: String,
        wanted: String,
        available: String,
    },
    #[error("the base {base} is a single-platform image, not an index: it cannot give {wanted}")]
    BaseNotAnIndex { base: String, wanted: String },
}

/// Builds images into one store, pulling bases through one registry client.
pub struct ImageBuilder<'a> {
    store: &'a BlobStore,
    client: Arc<RegistryClient>,
    progress: &'a dyn Reporter,
}

impl<'a> ImageBuilder<'a> {
    pub fn new(
        store: &'a BlobStore,
        client: Arc<RegistryClient>,
        progress: &'a dyn Reporter,
    ) -> Self {
        ImageBuilder {
            store,
            client,
            progress,
        }
    }

    /// Builds `spec` into the store, for its first platform (the only one, but
    /// for a multi-platform spec, which `build_index` builds).
    pub fn build(&self, spec: &BuildSpec) -> Result<BuiltImage, BuildError> {
        let first = BuildSpec {
            platforms: spec.platforms.iter().take(1).cloned().collect(),
            ..spec.clone()
        };
        let mut built = self.build_images(&first)?;
        Ok(built.remove(0).0)
    }

    /// Builds `spec` for each of its platforms, then the index of those images
    /// (annotated with `spec.index_annotations`) into the store.
    pub fn build_index(&self, spec: &BuildSpec) -> Result<BuiltIndex, BuildError> {
        let built = self.build_images(spec)?;
        Ok(platforms::write_index(
            self.store,
            built,
            &spec.index_annotations,
        )?)
    }

    /// One image per platform of `spec`, each with the platform its index entry
    /// names. The bases are all resolved before anything is built, and the new
    /// layers are built once and shared (same blobs) by every image.
    fn build_images(&self, spec: &BuildSpec) -> Result<Vec<(BuiltImage, Platform)>, BuildError> {
        let store = self.store;
        let epoch = layer::source_date_epoch()?;
        let edit = ConfigEdit {
            created_epoch: epoch,
            ..spec.config.clone()
        };
        edit.validate()?;

        // The bases: their manifests, configs and blobs, verified into the cache.
        let bases = platforms::resolve_bases(spec, &self.client, store, self.progress)?;
        // A Docker schema 2 manifest has no annotations field.
        if !spec.annotations.is_empty()
            && bases
                .iter()
                .any(|b| image_family(b.family, spec.compression) == MediaFamily::Docker)
        {
            return Err(BuildError::AnnotationsOnDocker {
                base: spec
                    .from
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            });
        }

        let mut added: Vec<(layer::LayerStats, String)> = Vec::new();
        // Nix closures: one layer per store path (popular ones alone), under the app.
        if !spec.nix.closures.is_empty() {
            for group in &self.closure(&spec.nix)? {
                let mut builder = LayerBuilder::new();
                for path in group {
                    builder.add(path, &path.to_string_lossy());
                }
                let stats = builder
                    .mtime(epoch)
                    .compression(spec.compression)
                    .write_to_store(store, self.progress)?;
                let names: Vec<String> = group
                    .iter()
                    .map(|p| {
                        p.file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect();
                added.push((
                    stats,
                    format!("{}: {}", spec.nix.created_by, names.join(" ")),
                ));
            }
        }
        // The new layers, one per LayerSpec, in order.
        let compression = spec.compression;
        for spec in &spec.layers {
            let stats = LayerBuilder::new()
                .add(&spec.src, &spec.dest)
                .mtime(epoch)
                .compression(compression)
                .write_to_store(store, self.progress)?;
            added.push((stats, spec.created_by.clone()));
        }

        let mut built = Vec::with_capacity(bases.len());
        for base in bases {
            let family = image_family(base.family, spec.compression);
            let mut layers = base.layers;
            if family != base.family {
                // The base's layers keep their bytes and take the OCI name of their type.
                for l in &mut layers {
                    l.media_type = crate::oci::export::oci_media_type(&l.media_type).to_string();
                }
            }
            let layer_type = match spec.compression {
                LayerCompression::Gzip { .. } => family.layer_gzip(),
                LayerCompression::Zstd { .. } => manifest::OCI_LAYER_ZSTD,
            };
            let mut config_layers = Vec::with_capacity(added.len());
            for (stats, created_by) in &added {
                layers.push(Descriptor::new(
                    layer_type,
                    stats.digest.clone(),
                    stats.compressed_bytes,
                ));
                config_layers.push(AddedLayer {
                    diff_id: stats.diff_id.clone(),
                    created_by: created_by.clone(),
                });
            }
            let config = image_config::edit_config(&base.config, &edit, &config_layers)?;
            let config_digest = store.put_bytes(&config)?;
            let mut manifest = ImageManifest::new(
                family,
                Descriptor::new(family.config(), config_digest, config.len() as u64),
                layers,
            );
            if family != MediaFamily::Docker {
                let mut annotations = base.annotations;
                annotations.extend(spec.annotations.iter().cloned());
                if !annotations.is_empty() {
                    manifest.annotations = Some(annotations);
                }
            }
            let bytes = manifest.to_bytes();
            let manifest_digest = store.put_bytes(&bytes)?;
            let size = pull::size_of(store, "(built)", &manifest_digest)?;
            built.push((
                BuiltImage {
                    manifest_digest,
                    media_type: family.manifest().to_string(),
                    size,
                    base_index: base.index,
                },
                base.entry_platform,
            ));
        }
        Ok(built)
    }

    fn closure(&self, nix: &NixSpec) -> Result<Vec<Vec<PathBuf>>, BuildError> {
        let closure = if nix.graphs.is_empty() {
            nix::Closure::of(&nix.closures)?
        } else {
            let texts = nix
                .graphs
                .iter()
                .map(|f| {
                    std::fs::read_to_string(f).map_err(|source| BuildError::NixGraph {
                        path: f.clone(),
                        source,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            nix::Closure::from_registration(&texts)?
        };
        Ok(closure.layers(nix.max_layers)?)
    }
}

/// The media-type family of an image built on a base of `base` family: zstd layers
/// make an OCI image whatever the base (Docker's schema 2 has no zstd type, and
/// BuildKit also requires oci-mediatypes for zstd).
fn image_family(base: MediaFamily, compression: LayerCompression) -> MediaFamily {
    match compression {
        LayerCompression::Zstd { .. } => MediaFamily::Oci,
        LayerCompression::Gzip { .. } => base,
    }
}
