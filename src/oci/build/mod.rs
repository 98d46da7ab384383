//! Building images: a base (or scratch) plus new layers plus a config edit, into
//! the blob store, reproducibly.
//!
//! `ImageBuilder` pulls the base (its blobs are reused byte for byte), adds one
//! layer per Nix store-path group (`nix`) and one per `LayerSpec` (`layer`, which
//! streams tar → gzip or zstd → store in one pass), edits the base's config as JSON
//! (`image_config`) and writes a manifest of the base's media-type family (OCI
//! when the new layers are zstd: Docker's schema 2 has no zstd type). Two builds of
//! the same inputs give the same manifest digest on any machine.

pub mod layer;
mod layer_error;
pub mod layer_tar;
pub mod layer_walk;
pub mod nix;

use std::path::PathBuf;
use std::sync::Arc;

use crate::oci::compress::LayerCompression;
use crate::oci::digest::Digest;
use crate::oci::image_config::{self, AddedLayer, ConfigEdit, ConfigError};
use crate::oci::location::ImageLocation;
use crate::oci::manifest::{self, Descriptor, ImageManifest, MediaFamily, Platform};
use crate::oci::pull::{self, ImageSize, PullError, PullOptions};
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
    /// Of the base to choose from an index, and of a scratch image.
    pub platform: Platform,
    /// `platform` was asked for: a single-platform base of another is an error.
    pub platform_required: bool,
    pub layers: Vec<LayerSpec>,
    pub nix: NixSpec,
    /// The config changes; `created_epoch` is set from `SOURCE_DATE_EPOCH` at build time.
    pub config: ConfigEdit,
    /// How the new layers are compressed (`--compression`); the base's stay as they are.
    pub compression: LayerCompression,
}

/// A built image in the store.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest_digest: Digest,
    pub media_type: String,
    pub size: ImageSize,
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
    #[error("cannot read the Nix graph {}", path.display())]
    NixGraph {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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

    /// Builds `spec` into the store.
    pub fn build(&self, spec: &BuildSpec) -> Result<BuiltImage, BuildError> {
        let store = self.store;
        let epoch = layer::source_date_epoch()?;
        let edit = ConfigEdit {
            created_epoch: epoch,
            ..spec.config.clone()
        };
        edit.validate()?;

        // The base: its manifest, config and blobs, verified into the cache.
        let (base_family, mut layers, base_config) = match &spec.from {
            None => (
                MediaFamily::Oci,
                Vec::new(),
                image_config::scratch_config(&spec.platform),
            ),
            Some(location) => {
                let opts = PullOptions {
                    platform: spec.platform.clone(),
                    platform_required: spec.platform_required,
                    ..PullOptions::default()
                };
                let base = pull::fetch(location, &self.client, store, &opts, self.progress)?;
                let config = store.read_blob(&base.manifest.config.digest)?;
                (base.manifest.family(), base.manifest.layers.clone(), config)
            }
        };

        // zstd layers make an OCI image whatever the base (as BuildKit requires
        // oci-mediatypes for zstd): the base's layers keep their bytes and take
        // the OCI name of their type.
        let family = match spec.compression {
            LayerCompression::Zstd { .. } if base_family == MediaFamily::Docker => {
                for l in &mut layers {
                    l.media_type = crate::oci::export::oci_media_type(&l.media_type).to_string();
                }
                MediaFamily::Oci
            }
            _ => base_family,
        };
        let layer_type = match spec.compression {
            LayerCompression::Gzip { .. } => family.layer_gzip(),
            LayerCompression::Zstd { .. } => manifest::OCI_LAYER_ZSTD,
        };

        let mut added = Vec::new();
        let mut add = |stats: layer::LayerStats, created_by: String| {
            layers.push(Descriptor::new(
                layer_type,
                stats.digest.clone(),
                stats.compressed_bytes,
            ));
            added.push(AddedLayer {
                diff_id: stats.diff_id,
                created_by,
            });
        };

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
                add(
                    stats,
                    format!("{}: {}", spec.nix.created_by, names.join(" ")),
                );
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
            add(stats, spec.created_by.clone());
        }

        let config = image_config::edit_config(&base_config, &edit, &added)?;
        let config_digest = store.put_bytes(&config)?;
        let manifest = ImageManifest::new(
            family,
            Descriptor::new(family.config(), config_digest, config.len() as u64),
            layers,
        );
        let bytes = manifest.to_bytes();
        let manifest_digest = store.put_bytes(&bytes)?;
        let size = pull::size_of(store, "(built)", &manifest_digest)?;
        Ok(BuiltImage {
            manifest_digest,
            media_type: family.manifest().to_string(),
            size,
        })
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
