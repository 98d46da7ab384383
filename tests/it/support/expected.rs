//! The values tests expect ocibench to report, read back from the blobs themselves (an
//! OCI layout, or a registry's storage after a push) with `sha256sum` and `gzip -dc`,
//! checking every digest, size and diff_id on the way.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use super::layout::{blob_path, file_len};
use super::registry::Registry;
use super::tools::{self, sha256_bytes, sha256_file};

/// One layer as tests expect ocibench to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureLayer {
    pub digest: String,
    pub diff_id: String,
    pub media_type: String,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
}

/// An image (one platform's manifest) with the values tests compare against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureImage {
    /// `127.0.0.1:PORT/repo:tag` after [`push_fixture`]; `oci:DIR:TAG` for a layout.
    pub reference: String,
    /// `os/architecture[/variant]` from the config.
    pub platform: String,
    pub media_type: String,
    pub manifest_digest: String,
    /// The manifest exactly as stored/served.
    pub manifest: Vec<u8>,
    pub manifest_bytes: u64,
    pub config_digest: String,
    /// The config blob exactly as stored/served.
    pub config: Vec<u8>,
    pub config_bytes: u64,
    pub layers: Vec<FixtureLayer>,
    /// For index/list variants: the index (this image is its linux/amd64 entry).
    pub index: Option<FixtureIndex>,
}

/// An OCI index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureIndex {
    pub media_type: String,
    pub digest: String,
    pub raw: Vec<u8>,
    pub bytes: u64,
    /// The runnable images, in index order (amd64 first).
    pub images: Vec<FixtureImage>,
    /// The attestation entry (`unknown/unknown`), if any.
    pub attestation: Option<FixtureAttestation>,
}

/// An attestation manifest: an artifact whose one layer is an in-toto JSON blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureAttestation {
    pub manifest_digest: String,
    pub blob_digest: String,
}

impl FixtureImage {
    /// Sum of the layers' blob sizes.
    pub fn compressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.compressed_bytes).sum()
    }

    /// Sum of the layers' uncompressed tar lengths.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.uncompressed_bytes).sum()
    }

    /// The digest a tag resolves to: the index's for index variants, else the manifest's.
    pub fn top_digest(&self) -> &str {
        self.index
            .as_ref()
            .map_or(&self.manifest_digest, |i| &i.digest)
    }

    pub fn manifest_json(&self) -> Value {
        serde_json::from_slice(&self.manifest).expect("fixture manifest is JSON")
    }

    pub fn config_json(&self) -> Value {
        serde_json::from_slice(&self.config).expect("fixture config is JSON")
    }

    /// The image one platform of an index variant (`"linux/arm64/v8"`), or `self`.
    pub fn platform_image(&self, platform: &str) -> &FixtureImage {
        if self.platform == platform {
            return self;
        }
        self.index
            .iter()
            .flat_map(|i| &i.images)
            .find(|i| i.platform == platform)
            .unwrap_or_else(|| panic!("fixture has no platform {platform}"))
    }

    /// The size object of DESIGN.md (`size --json`) with the expected values;
    /// `reference` is left out (callers know what they asked for).
    pub fn size_json(&self) -> Value {
        json!({
            "digest": self.manifest_digest,
            "media_type": self.media_type,
            "platform": self.platform,
            "manifest_bytes": self.manifest_bytes,
            "config_bytes": self.config_bytes,
            "compressed_bytes": self.compressed_bytes(),
            "uncompressed_bytes": self.uncompressed_bytes(),
            "layers": self.layers.iter().map(|l| json!({
                "digest": l.digest,
                "diff_id": l.diff_id,
                "media_type": l.media_type,
                "compressed_bytes": l.compressed_bytes,
                "uncompressed_bytes": l.uncompressed_bytes,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Where an image's blobs can be read: an OCI layout or a registry's storage.
trait BlobSource {
    fn blob(&self, digest: &str) -> PathBuf;
}

struct LayoutBlobs<'a>(&'a Path);
impl BlobSource for LayoutBlobs<'_> {
    fn blob(&self, digest: &str) -> PathBuf {
        blob_path(self.0, digest)
    }
}

struct RegistryBlobs<'a>(&'a Registry);
impl BlobSource for RegistryBlobs<'_> {
    fn blob(&self, digest: &str) -> PathBuf {
        self.0.blob_data_path(digest)
    }
}

/// The expected values of the image (or index) tagged `tag` in an OCI layout.
pub fn read_layout(layout: &Path, tag: &str) -> FixtureImage {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let entry = if tag.is_empty() && manifests.len() == 1 {
        &manifests[0]
    } else {
        manifests
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag:?} in {}/index.json", layout.display()))
    };
    let digest = entry["digest"].as_str().expect("digest");
    let raw = std::fs::read(blob_path(layout, digest)).expect("read top manifest");
    let hint = entry["mediaType"].as_str().map(String::from);
    let fetch = |d: &str| -> Vec<u8> {
        std::fs::read(blob_path(layout, d)).unwrap_or_else(|e| panic!("read blob {d}: {e}"))
    };
    let mut image = read_any(&LayoutBlobs(layout), raw, hint, &fetch);
    image.reference = if tag.is_empty() {
        format!("oci:{}", layout.display())
    } else {
        format!("oci:{}:{tag}", layout.display())
    };
    image
}

/// The expected values of `repo:reference` as the registry serves it: manifests by
/// HTTP, config and layer bytes from the registry's storage files (so reading them is
/// not logged as a blob download).
pub fn read_registry(registry: &Registry, repo: &str, reference: &str) -> FixtureImage {
    let fetch = |r: &str| -> (Vec<u8>, Option<String>) {
        let resp = registry.manifest(repo, r);
        if let Some(d) = resp.header("docker-content-digest") {
            assert_eq!(
                sha256_bytes(&resp.body),
                d,
                "registry's Docker-Content-Digest for {repo}:{r}"
            );
        }
        let content_type = resp.header("content-type").map(String::from);
        (resp.body, content_type)
    };
    let (raw, content_type) = fetch(reference);
    let mut image = read_any(&RegistryBlobs(registry), raw, content_type, &|r| fetch(r).0);
    image.reference = registry.reference(&format!("{repo}:{reference}"));
    image
}

/// Builds the expected values from a top-level manifest or index (`raw`); `hint` is
/// the media type its descriptor or `Content-Type` gave, used when the JSON has none.
fn read_any(
    blobs: &dyn BlobSource,
    raw: Vec<u8>,
    hint: Option<String>,
    fetch_manifest: &dyn Fn(&str) -> Vec<u8>,
) -> FixtureImage {
    let json: Value = serde_json::from_slice(&raw).expect("manifest is JSON");
    let media_type = json["mediaType"]
        .as_str()
        .map(String::from)
        .or(hint)
        .unwrap_or_default();
    if json.get("manifests").is_none() {
        return read_image(blobs, raw, media_type);
    }
    let mut images = Vec::new();
    let mut attestation = None;
    for entry in json["manifests"].as_array().expect("index manifests") {
        let digest = entry["digest"].as_str().expect("entry digest");
        let child = fetch_manifest(digest);
        assert_eq!(sha256_bytes(&child), digest, "index entry digest");
        assert_eq!(
            child.len() as u64,
            entry["size"].as_u64().unwrap(),
            "entry size"
        );
        if entry["platform"]["os"] == "unknown" {
            let m: Value = serde_json::from_slice(&child).expect("attestation JSON");
            attestation = Some(FixtureAttestation {
                manifest_digest: digest.to_string(),
                blob_digest: m["layers"][0]["digest"].as_str().unwrap().to_string(),
            });
        } else {
            let hint = entry["mediaType"].as_str().unwrap_or_default().to_string();
            images.push(read_image(blobs, child, hint));
        }
    }
    // The image a linux/amd64 client picks stands for the index (else the first one).
    let mut top = images
        .iter()
        .find(|i| i.platform == "linux/amd64")
        .or(images.first())
        .expect("index has at least one image")
        .clone();
    top.index = Some(FixtureIndex {
        media_type,
        digest: sha256_bytes(&raw),
        bytes: raw.len() as u64,
        raw,
        images,
        attestation,
    });
    top
}

/// Layer facts keyed by blob digest: gunzipping is the slow part, and blobs are
/// content-addressed, so one computation per process is enough.
fn layer_facts(path: &Path, digest: &str) -> (String, u64) {
    static CACHE: OnceLock<Mutex<std::collections::HashMap<String, (String, u64)>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap().get(digest) {
        return hit.clone();
    }
    let facts = tools::gunzip_digest_and_len(path);
    cache
        .lock()
        .unwrap()
        .insert(digest.to_string(), facts.clone());
    facts
}

fn read_image(blobs: &dyn BlobSource, raw: Vec<u8>, hint: String) -> FixtureImage {
    let manifest: Value = serde_json::from_slice(&raw).expect("manifest is JSON");
    let media_type = manifest["mediaType"]
        .as_str()
        .map(String::from)
        .unwrap_or(hint);
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config_path = blobs.blob(config_digest);
    let config = std::fs::read(&config_path)
        .unwrap_or_else(|e| panic!("read config {}: {e}", config_path.display()));
    assert_eq!(sha256_bytes(&config), config_digest, "config digest");
    let config_json: Value = serde_json::from_slice(&config).expect("config is JSON");
    let diff_ids = config_json["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids");
    let descs = manifest["layers"].as_array().expect("layers");
    assert_eq!(diff_ids.len(), descs.len(), "one diff_id per layer");
    let layers = descs
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            let digest = d["digest"].as_str().expect("layer digest").to_string();
            let path = blobs.blob(&digest);
            let compressed_bytes = file_len(&path);
            assert_eq!(compressed_bytes, d["size"].as_u64().unwrap(), "layer size");
            assert_eq!(sha256_file(&path), digest, "layer blob digest");
            let layer_type = d["mediaType"].as_str().unwrap_or_default();
            let (actual_diff_id, uncompressed_bytes) = if layer_type.contains("gzip") {
                layer_facts(&path, &digest)
            } else {
                // An uncompressed tar layer is its own diff.
                assert!(
                    layer_type.ends_with(".tar") || layer_type.ends_with("diff.tar"),
                    "layer media type {layer_type:?} is neither gzip nor plain tar"
                );
                (digest.clone(), compressed_bytes)
            };
            assert_eq!(
                actual_diff_id,
                diff_id.as_str().unwrap(),
                "diff_id of {digest}"
            );
            FixtureLayer {
                media_type: d["mediaType"].as_str().unwrap().to_string(),
                digest,
                diff_id: actual_diff_id,
                compressed_bytes,
                uncompressed_bytes,
            }
        })
        .collect();
    let mut platform = format!(
        "{}/{}",
        config_json["os"].as_str().unwrap_or_default(),
        config_json["architecture"].as_str().unwrap_or_default()
    );
    if let Some(v) = config_json["variant"].as_str() {
        platform = format!("{platform}/{v}");
    }
    FixtureImage {
        reference: String::new(),
        platform,
        media_type,
        manifest_digest: sha256_bytes(&raw),
        manifest_bytes: raw.len() as u64,
        manifest: raw,
        config_digest: config_digest.to_string(),
        config_bytes: config.len() as u64,
        config,
        layers,
        index: None,
    }
}
