//! What an image is, read from any transport without its layers: the manifest (and
//! the index it came from, with every platform it offers), the config (entrypoint,
//! env, labels, ...), the history and the layers' descriptors. `ocibench inspect`
//! prints it; users of `skopeo inspect` find its fields there, and more.
//!
//! Only the manifest(s) and the config are read: inspecting a tag of a large
//! image transfers a few KiB. Both are verified against their digests.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;
use serde_json::Value;

use crate::oci::digest::Digest;
use crate::oci::manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform};
use crate::oci::pull::{MAX_CONFIG_BYTES, PullError};
use crate::oci::source::ImageSource;
use crate::oci::store::StoreError;

/// The annotation Docker's BuildKit puts on an attestation entry of an index.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// One image, as `ocibench inspect --json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Inspection {
    /// `REGISTRY/REPOSITORY` for a registry image (skopeo's `Name`), else `null`.
    pub name: Option<String>,
    /// The source as ocibench names it (`docker://...`, `oci:DIR:TAG`, ...).
    pub source: String,
    /// The digest of the top manifest, the index when there is one (skopeo's `Digest`).
    pub digest: Digest,
    pub media_type: String,
    /// The repository's tags (registries only; skopeo's `RepoTags`).
    pub repo_tags: Vec<String>,
    /// The image manifest described below (the platform's, for an index).
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub created: Option<String>,
    pub author: Option<String>,
    pub docker_version: Option<String>,
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub variant: Option<String>,
    /// The config's `config` object as the image has it (Docker's field names:
    /// `Entrypoint`, `Cmd`, `Env`, `Labels`, `ExposedPorts`, `User`, `WorkingDir`,
    /// `Volumes`, `StopSignal`, `Healthcheck`, ...); `{}` when it has none.
    pub config: Value,
    pub history: Vec<HistoryEntry>,
    pub layers: Vec<LayerInfo>,
    /// The image manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// OCI 1.1: the image manifest's `artifactType` (an artifact, not an image).
    pub artifact_type: Option<String>,
    /// OCI 1.1: the manifest this one refers to (a signature's or an SBOM's image).
    pub subject: Option<Descriptor>,
    /// The index the image was chosen from, when the top manifest is one.
    pub index: Option<IndexInfo>,
    /// The config blob exactly as stored (`inspect --config`).
    #[serde(skip)]
    pub config_bytes: Vec<u8>,
    /// The top manifest exactly as served (`inspect --raw`).
    #[serde(skip)]
    pub raw_manifest: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, serde::Deserialize)]
pub struct HistoryEntry {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LayerInfo {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
}

/// A multi-platform index: what it offers and what was chosen.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndexInfo {
    pub manifests: Vec<IndexEntryInfo>,
    /// The entry chosen for the platform asked for (the host's by default).
    pub chosen: Digest,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndexEntryInfo {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// `OS/ARCH[/VARIANT]`, or `null` when the entry names none.
    pub platform: Option<String>,
    /// An attestation (provenance, SBOM) of another entry, not a runnable image:
    /// `unknown/unknown`, or BuildKit's `vnd.docker.reference.type` annotation.
    pub attestation: bool,
    pub annotations: BTreeMap<String, String>,
}

impl IndexEntryInfo {
    fn of(d: &Descriptor) -> Self {
        let annotations = d.annotations.clone().unwrap_or_default();
        IndexEntryInfo {
            digest: d.digest.clone(),
            media_type: d.media_type.clone(),
            size: d.size,
            platform: d.platform.as_ref().map(ToString::to_string),
            attestation: d.platform.as_ref().is_some_and(Platform::is_unknown)
                || annotations.get(REFERENCE_TYPE).map(String::as_str)
                    == Some("attestation-manifest"),
            annotations,
        }
    }
}

/// Reads what `source` holds: its top manifest, the image for `platform` when that
/// is an index, and that image's config. No layer is read.
pub fn inspect(source: &dyn ImageSource, platform: &Platform) -> Result<Inspection, PullError> {
    let name = source.name();
    let top = source.fetch_manifest(None)?;
    let (top_type, parsed) = Manifest::parse(&top.media_type, &top.bytes)?;
    let (index, image_digest, image_type, manifest) = match parsed {
        Manifest::Image(m) => (None, top.digest.clone(), top_type.clone(), *m),
        Manifest::Index(index) => {
            let chosen = index.select(platform)?.clone();
            let (mt, m, _) = fetch_child(source, &chosen, &name)?;
            (Some(index_info(&index, &chosen)), chosen.digest, mt, m)
        }
    };
    let config_bytes = read_config(source, &manifest.config, &name)?;
    let config: ConfigDoc =
        serde_json::from_slice(&config_bytes).map_err(|e| PullError::BadConfig {
            digest: manifest.config.digest.clone(),
            detail: crate::oci::parse_error::ParseError::json(&e).to_string(),
        })?;
    Ok(Inspection {
        name: source.origin(),
        source: name,
        digest: top.digest,
        media_type: top_type,
        repo_tags: source.repo_tags()?,
        manifest_digest: image_digest,
        manifest_media_type: image_type,
        created: config.created,
        author: config.author,
        docker_version: config.docker_version,
        architecture: config.architecture,
        os: config.os,
        variant: config.variant,
        config: config
            .config
            .filter(|c| !c.is_null())
            .unwrap_or_else(|| Value::Object(Default::default())),
        history: config.history.unwrap_or_default(),
        layers: manifest
            .layers
            .iter()
            .map(|l| LayerInfo {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                annotations: l.annotations.clone().unwrap_or_default(),
            })
            .collect(),
        annotations: manifest.annotations.clone().unwrap_or_default(),
        artifact_type: manifest.artifact_type.clone(),
        subject: manifest.subject.as_deref().cloned(),
        index,
        config_bytes,
        raw_manifest: top.bytes,
    })
}

/// The config fields `inspect` shows; the rest of the config stays in `config_bytes`.
#[derive(serde::Deserialize)]
struct ConfigDoc {
    created: Option<String>,
    author: Option<String>,
    docker_version: Option<String>,
    architecture: Option<String>,
    os: Option<String>,
    variant: Option<String>,
    config: Option<Value>,
    history: Option<Vec<HistoryEntry>>,
}

fn index_info(index: &ImageIndex, chosen: &Descriptor) -> IndexInfo {
    IndexInfo {
        manifests: index.manifests.iter().map(IndexEntryInfo::of).collect(),
        chosen: chosen.digest.clone(),
        annotations: index.annotations.clone().unwrap_or_default(),
    }
}

/// The image manifest an index entry names, checked against the entry.
pub(crate) fn fetch_child(
    source: &dyn ImageSource,
    entry: &Descriptor,
    name: &str,
) -> Result<(String, ImageManifest, Vec<u8>), PullError> {
    let child = source.fetch_manifest(Some(&entry.digest))?;
    if child.digest != entry.digest || child.bytes.len() as u64 != entry.size {
        return Err(PullError::Corrupt {
            what: "manifest",
            digest: entry.digest.clone(),
            source_name: name.to_string(),
            cause: Box::new(StoreError::Mismatch {
                expected: entry.digest.clone(),
                expected_size: entry.size,
                actual: child.digest,
                actual_size: child.bytes.len() as u64,
            }),
        });
    }
    let media_type = if child.media_type.is_empty() {
        &entry.media_type
    } else {
        &child.media_type
    };
    match Manifest::parse(media_type, &child.bytes)? {
        (mt, Manifest::Image(m)) => Ok((mt, *m, child.bytes)),
        (_, Manifest::Index(_)) => Err(PullError::NestedIndex(entry.digest.clone())),
    }
}

/// The config blob, whole (capped) and verified; nothing is stored.
fn read_config(
    source: &dyn ImageSource,
    desc: &Descriptor,
    name: &str,
) -> Result<Vec<u8>, PullError> {
    if desc.size > MAX_CONFIG_BYTES {
        return Err(PullError::ConfigTooLarge {
            digest: desc.digest.clone(),
            size: desc.size,
            source_name: name.to_string(),
        });
    }
    let mut stream = source.open_blob(desc)?;
    let mut bytes = Vec::new();
    (&mut stream.reader)
        .take(desc.size + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| PullError::Transfer {
            digest: desc.digest.clone(),
            source,
        })?;
    let actual = Digest::of_with(desc.digest.alg(), &bytes);
    if actual != desc.digest || bytes.len() as u64 != desc.size {
        return Err(PullError::Corrupt {
            what: "config",
            digest: desc.digest.clone(),
            source_name: name.to_string(),
            cause: Box::new(StoreError::Mismatch {
                expected: desc.digest.clone(),
                expected_size: desc.size,
                actual,
                actual_size: bytes.len() as u64,
            }),
        });
    }
    Ok(bytes)
}
