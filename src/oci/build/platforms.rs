//! The per-platform side of a build: which base image each asked platform gets,
//! and the index a multi-platform build writes over its images.
//!
//! Every asked platform is looked up in the base's index before a blob is pulled,
//! so a base that lacks one fails at once, naming what it has. The index keeps
//! the platforms in the order they were asked, each entry carrying the platform
//! the base's index gave it (with its variant, as `linux/arm64/v8`), so two builds
//! of the same inputs give the same index digest.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{BASE_DIGEST, BASE_NAME};
use super::{BuildError, BuildSpec, BuiltImage, BuiltIndex};
use crate::oci::digest::Digest;
use crate::oci::image_config;
use crate::oci::location::ImageLocation;
use crate::oci::manifest::{
    DOCKER_LIST, DOCKER_MANIFEST, Descriptor, ImageIndex, Manifest, ManifestError, MediaFamily,
    OCI_INDEX, Platform,
};
use crate::oci::pull::{self, IndexChoice, PullError, PullOptions};
use crate::oci::registry::RegistryClient;
use crate::oci::source::ImageSource;
use crate::oci::store::{BlobStore, StoreError};
use crate::progress::Reporter;

/// One platform's base: what the built image starts from.
pub(super) struct Base {
    pub family: MediaFamily,
    pub layers: Vec<Descriptor>,
    pub config: Vec<u8>,
    /// The platform the built index names this image by.
    pub entry_platform: Platform,
    pub index: Option<IndexChoice>,
    /// What the manifest records of its base (`org.opencontainers.image.base.*`):
    /// the digest of what the base's name points at (the index, for a
    /// multi-platform base, as the image spec's annotations.md asks, so tools can
    /// tell when the name moved on), and the name only for a registry reference (a
    /// file path would make the digest depend on where the file lies).
    pub annotations: BTreeMap<String, String>,
}

/// The base of each of `spec.platforms`, in order, pulled into `store`.
pub(super) fn resolve_bases(
    spec: &BuildSpec,
    client: &Arc<RegistryClient>,
    store: &BlobStore,
    progress: &dyn Reporter,
) -> Result<Vec<Base>, BuildError> {
    let Some(location) = &spec.from else {
        return Ok(spec
            .platforms
            .iter()
            .map(|p| Base {
                family: MediaFamily::Oci,
                layers: Vec::new(),
                config: image_config::scratch_config(p),
                entry_platform: p.clone(),
                index: None,
                annotations: BTreeMap::new(),
            })
            .collect());
    };
    let source = pull::open_source(location, client, store)?;
    let multi = spec.platforms.len() > 1;
    let entries = if multi {
        Some(index_entries(&*source, &spec.platforms)?)
    } else {
        None
    };
    let mut bases = Vec::with_capacity(spec.platforms.len());
    for (i, platform) in spec.platforms.iter().enumerate() {
        let opts = PullOptions {
            platform: platform.clone(),
            platform_required: spec.platform_required || multi,
            ..PullOptions::default()
        };
        let stored = pull::pull(&*source, store, &opts, progress)?;
        let config = store.read_blob(&stored.manifest.config.digest)?;
        let entry_platform = entries
            .as_ref()
            .map(|e| e[i].clone())
            .or_else(|| pull::config_platform(&config))
            .unwrap_or_else(|| platform.clone());
        let mut annotations = BTreeMap::new();
        annotations.insert(BASE_DIGEST.to_string(), stored.top_digest.to_string());
        if let ImageLocation::Registry(r) = location {
            annotations.insert(BASE_NAME.to_string(), r.to_string());
        }
        bases.push(Base {
            family: stored.manifest.family(),
            layers: stored.manifest.layers.clone(),
            config,
            entry_platform,
            index: stored.index,
            annotations,
        });
    }
    Ok(bases)
}

/// The platform of the entry `source`'s index gives each of `wanted`; an error
/// naming the first one it lacks (or saying the source is no index).
fn index_entries(
    source: &dyn ImageSource,
    wanted: &[Platform],
) -> Result<Vec<Platform>, BuildError> {
    let top = source.fetch_manifest(None).map_err(PullError::from)?;
    let (_, parsed) = Manifest::parse(&top.media_type, &top.bytes).map_err(PullError::from)?;
    let Manifest::Index(index) = parsed else {
        return Err(BuildError::BaseNotAnIndex {
            base: source.name(),
            wanted: join(wanted),
        });
    };
    wanted
        .iter()
        .map(|w| match index.select(w) {
            Ok(d) => Ok(d.platform.clone().unwrap_or_else(|| w.clone())),
            Err(ManifestError::NoPlatform { available, .. }) => Err(BuildError::MissingPlatform {
                base: source.name(),
                wanted: w.to_string(),
                available,
            }),
            Err(e) => Err(PullError::from(e).into()),
        })
        .collect()
}

fn join(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the index of `images` into `store`. Images of the Docker family get a
/// Docker manifest list, as their base had; an OCI index otherwise, and always
/// when annotations are asked (a manifest list has no place for them).
pub(super) fn write_index(
    store: &BlobStore,
    images: Vec<(BuiltImage, Platform)>,
    annotations: &[(String, String)],
) -> Result<BuiltIndex, StoreError> {
    let media_type =
        if annotations.is_empty() && images.iter().all(|(i, _)| i.media_type == DOCKER_MANIFEST) {
            DOCKER_LIST
        } else {
            OCI_INDEX
        };
    let (bytes, _) = index_bytes(media_type, &images, annotations);
    let digest = store.put_bytes(&bytes)?;
    let platforms = images.iter().map(|(_, p)| p.to_string()).collect();
    let choice = IndexChoice {
        digest: digest.clone(),
        media_type: media_type.to_string(),
        platforms: images.iter().map(|(_, p)| p.to_string()).collect(),
    };
    let images = images
        .into_iter()
        .map(|(mut image, _)| {
            image.size.chosen_from(&choice);
            image
        })
        .collect();
    Ok(BuiltIndex {
        digest,
        media_type: media_type.to_string(),
        manifest_bytes: bytes.len() as u64,
        platforms,
        images,
    })
}

/// The index document's bytes (compact JSON, keys of annotations sorted) and digest.
fn index_bytes(
    media_type: &str,
    images: &[(BuiltImage, Platform)],
    annotations: &[(String, String)],
) -> (Vec<u8>, Digest) {
    let manifests = images
        .iter()
        .map(|(image, platform)| {
            let mut d = Descriptor::new(
                image.media_type.clone(),
                image.manifest_digest.clone(),
                image.size.manifest_bytes,
            );
            d.platform = Some(platform.clone());
            d
        })
        .collect();
    let annotations: BTreeMap<String, String> = annotations.iter().cloned().collect();
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(media_type.to_string()),
        manifests,
        annotations: (!annotations.is_empty()).then_some(annotations),
        artifact_type: None,
        subject: None,
    };
    let bytes = serde_json::to_vec(&index).expect("an index serializes");
    let digest = Digest::of(&bytes);
    (bytes, digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::manifest::OCI_MANIFEST;
    use crate::oci::pull::ImageSize;

    fn image(n: u8, media_type: &str) -> BuiltImage {
        let digest = Digest::of(&[n]);
        BuiltImage {
            manifest_digest: digest.clone(),
            media_type: media_type.into(),
            size: ImageSize {
                reference: "(built)".into(),
                digest,
                media_type: media_type.into(),
                platform: "linux/amd64".into(),
                manifest_bytes: 400 + u64::from(n),
                config_bytes: 0,
                compressed_bytes: 0,
                uncompressed_bytes: 0,
                layers: Vec::new(),
                index_digest: None,
                platforms: None,
            },
            base_index: None,
        }
    }

    fn platform(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn the_index_lists_the_images_in_order_with_their_platforms_and_annotations() {
        let images = vec![
            (image(1, OCI_MANIFEST), platform("linux/amd64")),
            (image(2, OCI_MANIFEST), platform("linux/arm64/v8")),
        ];
        let annotations = vec![
            ("z.last".to_string(), "2".to_string()),
            ("a.first".to_string(), "1".to_string()),
        ];
        let (bytes, digest) = index_bytes(OCI_INDEX, &images, &annotations);
        assert_eq!(digest, Digest::of(&bytes));
        let expected = format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#,
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":401,"platform":{{"architecture":"amd64","os":"linux"}}}},"#,
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":402,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}],"#,
                r#""annotations":{{"a.first":"1","z.last":"2"}}}}"#
            ),
            Digest::of(&[1]),
            Digest::of(&[2]),
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn docker_images_get_a_manifest_list_unless_annotated() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let images = || {
            vec![
                (image(1, DOCKER_MANIFEST), platform("linux/amd64")),
                (image(2, DOCKER_MANIFEST), platform("linux/arm64")),
            ]
        };
        let list = write_index(&store, images(), &[]).unwrap();
        assert_eq!(list.media_type, DOCKER_LIST);
        assert_eq!(list.platforms, vec!["linux/amd64", "linux/arm64"]);
        for i in &list.images {
            assert_eq!(i.size.index_digest.as_ref(), Some(&list.digest));
            assert_eq!(
                i.size.platforms.as_deref(),
                Some(&["linux/amd64".to_string(), "linux/arm64".to_string()][..])
            );
        }
        let stored = store.read_blob(&list.digest).unwrap();
        assert_eq!(stored.len() as u64, list.manifest_bytes);
        let annotated = write_index(&store, images(), &[("k".into(), "v".into())]).unwrap();
        assert_eq!(annotated.media_type, OCI_INDEX);
    }
}
