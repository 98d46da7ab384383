//! Manifests and indexes of both families (OCI and Docker schema 2), parsed into
//! one shape, plus platform choice from an index.
//!
//! The two families share their JSON shape and differ in media types, so one set
//! of types serves both; `MediaFamily` says which a document belongs to, and a
//! built image keeps its base's family (never a mix).

use crate::oci::parse_error::ParseError;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::oci::digest::{Digest, DigestError};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Not in Docker's schema 2 spec: containerd and containers/image define it, and
/// BuildKit writes it for zstd under Docker media types (Docker itself cannot pull
/// it, docker/cli#5011). Read, never written: zstd builds are OCI images.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// The `Accept` header for manifest requests: all four types we understand.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Which media-type family a document belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaFamily {
    Oci,
    Docker,
}

impl MediaFamily {
    pub fn manifest(self) -> &'static str {
        match self {
            MediaFamily::Oci => OCI_MANIFEST,
            MediaFamily::Docker => DOCKER_MANIFEST,
        }
    }
    pub fn config(self) -> &'static str {
        match self {
            MediaFamily::Oci => OCI_CONFIG,
            MediaFamily::Docker => DOCKER_CONFIG,
        }
    }
    pub fn layer_gzip(self) -> &'static str {
        match self {
            MediaFamily::Oci => OCI_LAYER_GZIP,
            MediaFamily::Docker => DOCKER_LAYER_GZIP,
        }
    }
}

/// Layer compression, from a layer's media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression a layer media type declares, or `None` if it is not a layer type we read.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_FOREIGN_GZIP => {
            Some(Compression::Gzip)
        }
        OCI_LAYER_TAR
        | DOCKER_LAYER_TAR
        | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Compression::None),
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD | DOCKER_LAYER_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// A content descriptor (media type, digest, size, ...). The OCI 1.1 fields
/// (`artifactType`, `data`) are carried so that a document we re-serialise keeps
/// them; absent fields stay absent, so older documents keep their bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
    /// The content itself, base64-encoded (OCI 1.1 embedded data), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            artifact_type: None,
            digest,
            size,
            platform: None,
            urls: None,
            annotations: None,
            data: None,
        }
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// OCI 1.1: what kind of artifact this is (absent for a runnable image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// OCI 1.1: the manifest this one refers to (a signature's or an SBOM's image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Box<Descriptor>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl ImageManifest {
    /// A new manifest of `family` (media type set, as Docker requires and OCI allows).
    pub fn new(family: MediaFamily, config: Descriptor, layers: Vec<Descriptor>) -> Self {
        ImageManifest {
            schema_version: 2,
            media_type: Some(family.manifest().to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
        }
    }

    /// The family, judged by the config's media type (the manifest's own is optional in OCI).
    pub fn family(&self) -> MediaFamily {
        if self.config.media_type == DOCKER_CONFIG
            || self.media_type.as_deref() == Some(DOCKER_MANIFEST)
        {
            MediaFamily::Docker
        } else {
            MediaFamily::Oci
        }
    }

    /// Canonical bytes: compact JSON, struct order. Same input, same digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serializes")
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Box<Descriptor>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// A parsed manifest document of any of the four supported types.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(ImageIndex),
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("unsupported manifest media type {0:?}")]
    Unsupported(String),
    /// By position and kind only: the document is input (see `parse_error`).
    #[error("manifest is not valid JSON of type {media_type}")]
    Parse {
        media_type: String,
        #[source]
        source: ParseError,
    },
    #[error("no image for platform {wanted} in the index (available: {available})")]
    NoPlatform { wanted: String, available: String },
    /// A descriptor's digest that cannot be verified: named, as the registry's
    /// documents are not secrets, so the user sees which algorithm was used.
    #[error("manifest of type {media_type} refers to content ocibench cannot verify")]
    Digest {
        media_type: String,
        /// Boxed: every error that carries a `ManifestError` stays small.
        #[source]
        source: Box<DigestError>,
    },
}

/// The first `digest` field (in a descriptor: `config`, `layers`, `manifests`,
/// `subject`) that is not a digest ocibench can verify.
fn first_bad_digest(doc: &serde_json::Value) -> Option<DigestError> {
    let descriptors = ["config", "subject"]
        .iter()
        .filter_map(|k| doc.get(*k))
        .chain(
            ["layers", "manifests"]
                .iter()
                .filter_map(|k| doc.get(*k)?.as_array())
                .flatten(),
        );
    descriptors
        .filter_map(|d| d.get("digest")?.as_str())
        .find_map(|s| s.parse::<Digest>().err())
}

impl Manifest {
    /// Parses `bytes` served as `media_type` (the Content-Type, or the descriptor's).
    /// When the server's type is vague (`application/json`, empty), the document's own
    /// `mediaType` field decides, as containers/image does.
    pub fn parse(media_type: &str, bytes: &[u8]) -> Result<(String, Manifest), ManifestError> {
        let mut mt = media_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if !matches!(
            mt.as_str(),
            OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST
        ) {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Sniff {
                media_type: Option<String>,
                manifests: Option<serde_json::Value>,
                config: Option<serde_json::Value>,
                schema_version: Option<u32>,
            }
            let sniff: Sniff = serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse {
                media_type: mt.clone(),
                source: ParseError::json(&e),
            })?;
            mt = match (sniff.media_type, sniff.schema_version) {
                (Some(t), _) => t,
                (None, Some(2)) if sniff.manifests.is_some() => OCI_INDEX.to_string(),
                (None, Some(2)) if sniff.config.is_some() => OCI_MANIFEST.to_string(),
                (None, Some(1)) => "application/vnd.docker.distribution.manifest.v1+json".into(),
                _ => mt,
            };
        }
        let parse_err = |e: serde_json::Error| {
            // serde's message for a bad digest is generic (it never quotes input):
            // name the digest and the algorithms we verify instead.
            let bad = serde_json::from_slice(bytes)
                .ok()
                .and_then(|doc| first_bad_digest(&doc));
            match bad {
                Some(source) => ManifestError::Digest {
                    media_type: mt.clone(),
                    source: Box::new(source),
                },
                None => ManifestError::Parse {
                    media_type: mt.clone(),
                    source: ParseError::json(&e),
                },
            }
        };
        let m = match mt.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => {
                Manifest::Image(Box::new(serde_json::from_slice(bytes).map_err(parse_err)?))
            }
            OCI_INDEX | DOCKER_LIST => {
                Manifest::Index(serde_json::from_slice(bytes).map_err(parse_err)?)
            }
            _ => return Err(ManifestError::Unsupported(mt)),
        };
        Ok((mt, m))
    }
}

/// An OS/architecture/variant triple (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        default,
        rename = "os.features",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: None,
        }
    }

    /// The platform this binary runs on, in Go's (GOOS/GOARCH) names.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = match arch {
            "arm64" => Some("v8"),
            _ => None,
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Whether an index entry of platform `self` serves a request for `wanted`.
    /// A missing variant on either side matches (arm64 images often omit `v8`).
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && match (&self.variant, &wanted.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// Attestation manifests (buildkit's provenance) carry `unknown/unknown`.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformParseError(pub String);

impl FromStr for Platform {
    type Err = PlatformParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, var] if ok(os) && ok(arch) && ok(var) => {
                Ok(Platform::new(os, arch, Some(var)))
            }
            _ => Err(PlatformParseError(s.to_string())),
        }
    }
}

impl ImageIndex {
    /// The manifest for `wanted`, skipping attestation entries. Prefers an exact
    /// variant match over an entry that leaves the variant out.
    pub fn select(&self, wanted: &Platform) -> Result<&Descriptor, ManifestError> {
        let candidates: Vec<&Descriptor> = self
            .manifests
            .iter()
            .filter(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| !p.is_unknown() && p.satisfies(wanted))
            })
            .collect();
        let exact = candidates.iter().find(|d| {
            d.platform.as_ref().and_then(|p| p.variant.as_ref()) == wanted.variant.as_ref()
        });
        exact
            .or(candidates.first())
            .copied()
            .ok_or_else(|| ManifestError::NoPlatform {
                wanted: wanted.to_string(),
                available: self.platforms().join(", "),
            })
    }

    /// The platforms this index offers, attestation entries left out.
    pub fn platforms(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .filter(|p| !p.is_unknown())
            .map(ToString::to_string)
            .collect();
        v.dedup();
        if v.is_empty() {
            v.push("none".to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn entry(n: u8, p: &str) -> Descriptor {
        let mut desc = Descriptor::new(OCI_MANIFEST, d(n), 100);
        let parts: Vec<&str> = p.split('/').collect();
        desc.platform = Some(Platform::new(parts[0], parts[1], parts.get(2).copied()));
        desc
    }

    #[test]
    fn platform_parse() {
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap(),
            Platform::new("linux", "arm64", Some("v8"))
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
        assert!("Linux/AMD64".parse::<Platform>().is_err());
    }

    #[test]
    fn select_skips_attestations_and_prefers_exact_variant() {
        let idx = ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            artifact_type: None,
            subject: None,
            manifests: vec![
                entry(1, "unknown/unknown"),
                entry(2, "linux/arm64"),
                entry(3, "linux/arm64/v8"),
                entry(4, "linux/amd64"),
            ],
            annotations: None,
        };
        let want = |s: &str| s.parse::<Platform>().unwrap();
        assert_eq!(idx.select(&want("linux/amd64")).unwrap().digest, d(4));
        assert_eq!(idx.select(&want("linux/arm64/v8")).unwrap().digest, d(3));
        assert_eq!(idx.select(&want("linux/arm64")).unwrap().digest, d(2));
        let err = idx.select(&want("linux/s390x")).unwrap_err().to_string();
        assert!(
            err.contains("linux/arm64, linux/arm64/v8, linux/amd64"),
            "{err}"
        );
        assert!(!err.contains("unknown"), "{err}");
    }

    #[test]
    fn oci_1_1_fields_survive_parse_and_serialise() {
        // An artifact manifest as oras writes one: artifactType, an empty config
        // with embedded data, a subject, and a sha512-addressed layer.
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="}},"layers":[{{"mediaType":"text/plain","artifactType":"x/y","digest":"{sha512}","size":5}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":7}},"annotations":{{"k":"v"}}}}"#,
            d(9)
        );
        let (_, parsed) = Manifest::parse(OCI_MANIFEST, doc.as_bytes()).unwrap();
        let Manifest::Image(m) = parsed else {
            panic!("not an image manifest")
        };
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.example.sbom")
        );
        assert_eq!(m.config.data.as_deref(), Some("e30="));
        assert_eq!(m.layers[0].digest.to_string(), sha512);
        assert_eq!(m.layers[0].artifact_type.as_deref(), Some("x/y"));
        assert_eq!(m.subject.as_ref().unwrap().digest, d(9));
        // Written in the spec's field order, the same document comes back byte for byte.
        assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), doc);
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","artifactType":"a/b","manifests":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":7}}}}"#,
            d(9)
        );
        let (_, parsed) = Manifest::parse(OCI_INDEX, idx.as_bytes()).unwrap();
        let Manifest::Index(i) = parsed else {
            panic!("not an index")
        };
        assert_eq!(i.artifact_type.as_deref(), Some("a/b"));
        assert_eq!(serde_json::to_string(&i).unwrap(), idx);
    }

    #[test]
    fn an_unknown_digest_algorithm_is_named() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":0}}]}}"#,
            d(1)
        );
        let e = Manifest::parse(OCI_MANIFEST, doc.as_bytes()).unwrap_err();
        assert!(matches!(e, ManifestError::Digest { .. }), "{e:?}");
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert_eq!(
            chain,
            format!(
                "manifest of type {OCI_MANIFEST} refers to content ocibench cannot verify: digest \"md5:d41d8cd98f00b204e9800998ecf8427e\" uses algorithm \"md5\", which ocibench cannot verify (supported: sha256, sha512)"
            )
        );
    }

    #[test]
    fn parse_by_content_type_and_sniffing() {
        let m = ImageManifest::new(
            MediaFamily::Docker,
            Descriptor::new(DOCKER_CONFIG, d(1), 10),
            vec![Descriptor::new(DOCKER_LAYER_GZIP, d(2), 20)],
        );
        let bytes = m.to_bytes();
        let (mt, parsed) = Manifest::parse(DOCKER_MANIFEST, &bytes).unwrap();
        assert_eq!(mt, DOCKER_MANIFEST);
        assert_eq!(parsed, Manifest::Image(Box::new(m.clone())));
        let (mt, _) = Manifest::parse("application/json", &bytes).unwrap();
        assert_eq!(mt, DOCKER_MANIFEST);
        assert_eq!(m.family(), MediaFamily::Docker);
        let v1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(matches!(
            Manifest::parse("application/json", v1),
            Err(ManifestError::Unsupported(_))
        ));
    }

    #[test]
    fn layer_media_types() {
        assert_eq!(layer_compression(OCI_LAYER_GZIP), Some(Compression::Gzip));
        assert_eq!(layer_compression(DOCKER_LAYER_TAR), Some(Compression::None));
        for zstd in [OCI_LAYER_ZSTD, OCI_LAYER_NONDIST_ZSTD, DOCKER_LAYER_ZSTD] {
            assert_eq!(layer_compression(zstd), Some(Compression::Zstd), "{zstd}");
        }
        assert_eq!(layer_compression("application/vnd.in-toto+json"), None);
    }
}
