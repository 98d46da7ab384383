//! Where images are read from: a registry, an OCI layout directory, an OCI
//! archive, or a `docker save` archive, behind one `ImageSource` trait so that
//! pulling, verifying and sizing are written once.

use crate::oci::parse_error::{ParseError, TarProblem};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::oci::digest::{Digest, Hasher};
use crate::oci::layout::{self, IndexEntry, ReadIndexError};
use crate::oci::location::ImageLocation;
use crate::oci::manifest::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, Descriptor, ImageManifest, MediaFamily,
    OCI_INDEX,
};
use crate::oci::reference::ImageReference;
use crate::oci::registry::{
    BlobStream, FetchedManifest, PullEndpoints, RegistryClient, RegistryError,
};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not an OCI image layout: {detail}")]
    NotLayout { path: PathBuf, detail: String },
    #[error("{path} has no image tagged {tag:?} (tags: {available})")]
    NoTag {
        path: PathBuf,
        tag: String,
        available: String,
    },
    #[error("{path} holds several images; name one (tags: {available})")]
    Ambiguous { path: PathBuf, available: String },
    #[error("{path} is not a docker-archive: {detail}")]
    NotDockerArchive { path: PathBuf, detail: String },
    /// An `oci-archive:`/`docker-archive:` file that tar cannot read. The tar
    /// crate's own message quotes header bytes (the file's first 100 bytes): not kept.
    #[error("{path} is not a tar archive (or it is damaged or truncated)")]
    NotTar { path: PathBuf },
    #[error("blob {digest} is missing from {path}")]
    MissingBlob { path: PathBuf, digest: Digest },
    /// A symlink in an archive that leads out of it: reading through it would
    /// serve (and cache, and push) a file of this machine as part of the image.
    #[error("{path} is refused: its entry {entry} links outside the archive")]
    LinkOutside { path: PathBuf, entry: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Something images can be read from.
pub trait ImageSource: Send + Sync {
    /// The name recorded in the cache's index and shown in reports.
    fn name(&self) -> String;
    /// The top manifest (`None`: the tag's; it may be an index) or one by digest.
    fn fetch_manifest(&self, digest: Option<&Digest>) -> Result<FetchedManifest, SourceError>;
    /// A blob as a stream; the caller verifies it.
    fn open_blob(&self, desc: &Descriptor) -> Result<BlobStream, SourceError>;
    /// `REGISTRY/REPOSITORY` when the blobs live in a registry (for later mounts).
    fn origin(&self) -> Option<String> {
        None
    }
    /// The tags of the repository the image is in (a registry's; none elsewhere).
    fn repo_tags(&self) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }
    /// The top manifest's digest when the name pins it (`@sha256:...`): no
    /// request is needed to know it.
    fn pinned_digest(&self) -> Option<Digest> {
        None
    }
    /// The top manifest's digest now, asked cheaply (a registry's HEAD), or `None`
    /// when only fetching it would tell.
    fn current_digest(&self) -> Result<Option<Digest>, SourceError> {
        Ok(None)
    }
}

/// Opens the source a location names. Archives are unpacked into `scratch`
/// (a temporary directory the caller keeps alive while pulling).
pub fn open(
    location: &ImageLocation,
    client: &Arc<RegistryClient>,
    scratch: &Path,
) -> Result<Box<dyn ImageSource>, SourceError> {
    Ok(match location {
        ImageLocation::Registry(r) => Box::new(RegistrySource::new(client.clone(), r.clone())?),
        ImageLocation::OciDir { path, tag } => {
            Box::new(LayoutSource::open(path, tag.clone(), None)?)
        }
        ImageLocation::OciArchive { path, tag } => {
            unpack(path, scratch)?;
            Box::new(LayoutSource::open(
                scratch,
                tag.clone(),
                Some(path.clone()),
            )?)
        }
        ImageLocation::DockerArchive { path, reference } => {
            unpack(path, scratch)?;
            Box::new(DockerArchiveSource::open(
                scratch,
                path,
                reference.as_deref(),
            )?)
        }
    })
}

/// Unpacks an archive into `into`. tar keeps every write inside `into`, but
/// creates symlinks as written; one whose target resolves outside `into` is
/// refused, so that every later read of the unpacked image stays inside it
/// (Docker's own `<id>/layer.tar -> ../blobs/sha256/<hex>` links stay allowed).
fn unpack(archive: &Path, into: &Path) -> Result<(), SourceError> {
    let f = File::open(archive).map_err(io_err(archive))?;
    let mut ar = tar::Archive::new(BufReader::with_capacity(256 * 1024, f));
    ar.set_preserve_permissions(false);
    ar.set_overwrite(true);
    ar.unpack(into).map_err(|e| match TarProblem::of(&e) {
        TarProblem::System(source) => SourceError::Io {
            path: archive.to_path_buf(),
            source,
        },
        TarProblem::Format => SourceError::NotTar {
            path: archive.to_path_buf(),
        },
    })?;
    let root = fs::canonicalize(into).map_err(io_err(into))?;
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            let kind = fs::symlink_metadata(&path)
                .map_err(io_err(&path))?
                .file_type();
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_symlink() {
                // A link that resolves nowhere is left: reading it fails anyway.
                if let Ok(target) = fs::canonicalize(&path)
                    && !target.starts_with(&root)
                {
                    return Err(SourceError::LinkOutside {
                        path: archive.to_path_buf(),
                        entry: path
                            .strip_prefix(&root)
                            .unwrap_or(&path)
                            .display()
                            .to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// A registry repository at a tag or digest, read through registries.conf: from
/// its mirrors, then its location (see `registry::mirrors`), always under the
/// name the user gave.
pub struct RegistrySource {
    pub client: Arc<RegistryClient>,
    pub image: ImageReference,
    endpoints: PullEndpoints,
}

impl RegistrySource {
    /// An error when registries.conf blocks the name.
    pub fn new(client: Arc<RegistryClient>, image: ImageReference) -> Result<Self, SourceError> {
        let endpoints = PullEndpoints::resolve(&client, &image)?;
        Ok(RegistrySource {
            client,
            image,
            endpoints,
        })
    }

    /// Where the image is read from, in order.
    pub fn endpoints(&self) -> &PullEndpoints {
        &self.endpoints
    }
}

impl ImageSource for RegistrySource {
    fn name(&self) -> String {
        self.image.to_string()
    }
    fn fetch_manifest(&self, digest: Option<&Digest>) -> Result<FetchedManifest, SourceError> {
        let reference = match digest {
            Some(d) => d.to_string(),
            None => self.image.manifest_reference(),
        };
        Ok(self
            .endpoints
            .manifest(|at| self.client.fetch_manifest(at, &reference))?)
    }
    fn open_blob(&self, desc: &Descriptor) -> Result<BlobStream, SourceError> {
        Ok(self
            .endpoints
            .blob(|at| self.client.open_blob(at, &desc.digest))?)
    }
    fn origin(&self) -> Option<String> {
        // Where the blobs really are (a mount source must be a real repository).
        let at = &self.endpoints.preferred().reference;
        Some(format!("{}/{}", at.registry(), at.repository()))
    }
    fn pinned_digest(&self) -> Option<Digest> {
        self.image.digest()
    }
    fn current_digest(&self) -> Result<Option<Digest>, SourceError> {
        if let Some(d) = self.image.digest() {
            return Ok(Some(d));
        }
        let tag = self.image.manifest_reference();
        Ok(self
            .endpoints
            .manifest(|at| self.client.head_manifest(at, &tag))?)
    }
    fn repo_tags(&self) -> Result<Vec<String>, SourceError> {
        Ok(self.client.all_tags(&self.image)?.unwrap_or_default())
    }
}

/// An OCI image layout directory (also an unpacked oci-archive).
pub struct LayoutSource {
    root: PathBuf,
    shown: PathBuf,
    tag: Option<String>,
    top: IndexEntry,
    /// When the layout's index.json itself is the index (untagged multi-platform).
    top_is_index_json: bool,
}

impl LayoutSource {
    fn open(root: &Path, tag: Option<String>, shown: Option<PathBuf>) -> Result<Self, SourceError> {
        let shown = shown.unwrap_or_else(|| root.to_path_buf());
        let not_layout = |detail: String| SourceError::NotLayout {
            path: shown.clone(),
            detail,
        };
        if !layout::is_layout(root) {
            return Err(if root.exists() {
                not_layout("no oci-layout file".into())
            } else {
                SourceError::Io {
                    path: shown.clone(),
                    source: io::Error::from(io::ErrorKind::NotFound),
                }
            });
        }
        let (index, bytes) = layout::read_index(root).map_err(|e| match e {
            ReadIndexError::Io { path, source } => SourceError::Io { path, source },
            ReadIndexError::Json { source, .. } => not_layout(format!("index.json: {source}")),
        })?;
        let tags: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|m| m.ref_name().map(str::to_string))
            .collect();
        let available = if tags.is_empty() {
            "none".to_string()
        } else {
            tags.join(", ")
        };
        let (top, top_is_index_json) = match &tag {
            Some(t) => {
                let found = index.manifests.iter().find(|m| {
                    m.ref_name() == Some(t.as_str())
                        || m.annotations.get("io.containerd.image.name") == Some(t)
                });
                match found {
                    Some(e) => (e.clone(), false),
                    None => {
                        return Err(SourceError::NoTag {
                            path: shown,
                            tag: t.clone(),
                            available,
                        });
                    }
                }
            }
            None => match index.manifests.as_slice() {
                [] => return Err(not_layout("index.json lists no image".into())),
                [one] => (one.clone(), false),
                many if many.iter().all(|m| m.platform.is_some()) => (
                    IndexEntry::new(OCI_INDEX, Digest::of(&bytes), bytes.len() as u64),
                    true,
                ),
                _ => {
                    return Err(SourceError::Ambiguous {
                        path: shown,
                        available,
                    });
                }
            },
        };
        Ok(LayoutSource {
            root: root.to_path_buf(),
            shown,
            tag,
            top,
            top_is_index_json,
        })
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        layout::blob_path(&self.root, d)
    }

    fn read_small(&self, d: &Digest) -> Result<Vec<u8>, SourceError> {
        fs::read(self.blob_path(d)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                SourceError::MissingBlob {
                    path: self.shown.clone(),
                    digest: d.clone(),
                }
            } else {
                SourceError::Io {
                    path: self.blob_path(d),
                    source: e,
                }
            }
        })
    }
}

impl ImageSource for LayoutSource {
    fn name(&self) -> String {
        // An unpacked archive is shown as the archive it came from.
        let transport = if self.shown == self.root {
            "oci"
        } else {
            "oci-archive"
        };
        match &self.tag {
            Some(t) => format!("{transport}:{}:{t}", self.shown.display()),
            None => format!("{transport}:{}", self.shown.display()),
        }
    }
    fn fetch_manifest(&self, digest: Option<&Digest>) -> Result<FetchedManifest, SourceError> {
        let (bytes, media_type) = match digest {
            None if self.top_is_index_json => (
                fs::read(layout::index_path(&self.root)).map_err(io_err(&self.root))?,
                OCI_INDEX.to_string(),
            ),
            None => (
                self.read_small(&self.top.digest)?,
                self.top.media_type.clone(),
            ),
            // The media type of a child comes from its descriptor in the index; the
            // parser sniffs the document when this is vague.
            Some(d) => (self.read_small(d)?, String::new()),
        };
        // Named by a sha512 digest, a manifest is hashed with sha512 (and verified so).
        let algorithm = digest.map_or(self.top.digest.alg(), Digest::alg);
        let digest = Digest::of_with(algorithm, &bytes);
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }
    fn open_blob(&self, desc: &Descriptor) -> Result<BlobStream, SourceError> {
        let path = self.blob_path(&desc.digest);
        let f = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SourceError::MissingBlob {
                path: self.shown.clone(),
                digest: desc.digest.clone(),
            },
            _ => SourceError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        let len = f.metadata().ok().map(|m| m.len());
        Ok(BlobStream {
            reader: Box::new(f),
            content_length: len,
        })
    }
}

/// A `docker save` archive (unpacked). Its manifest.json names a config file and
/// layer tars; a Docker schema 2 manifest is made for them, as skopeo does.
pub struct DockerArchiveSource {
    root: PathBuf,
    shown: PathBuf,
    manifest: Vec<u8>,
    /// digest -> file inside the archive
    files: Vec<(Digest, PathBuf)>,
}

impl DockerArchiveSource {
    fn open(root: &Path, shown: &Path, reference: Option<&str>) -> Result<Self, SourceError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let bad = |detail: String| SourceError::NotDockerArchive {
            path: shown.to_path_buf(),
            detail,
        };
        let mpath = root.join("manifest.json");
        let bytes = fs::read(&mpath).map_err(|_| bad("no manifest.json".into()))?;
        let entries: Vec<Entry> = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("manifest.json: {}", ParseError::json(&e))))?;
        let tags = |e: &Entry| e.repo_tags.clone().unwrap_or_default();
        let entry = match reference {
            Some(r) => entries
                .iter()
                .find(|e| {
                    tags(e)
                        .iter()
                        .any(|t| t == r || normalise_tag(t) == normalise_tag(r))
                })
                .ok_or_else(|| SourceError::NoTag {
                    path: shown.to_path_buf(),
                    tag: r.to_string(),
                    available: entries.iter().flat_map(tags).collect::<Vec<_>>().join(", "),
                })?,
            None if entries.len() == 1 => &entries[0],
            None if entries.is_empty() => return Err(bad("manifest.json lists no image".into())),
            None => {
                return Err(SourceError::Ambiguous {
                    path: shown.to_path_buf(),
                    available: entries.iter().flat_map(tags).collect::<Vec<_>>().join(", "),
                });
            }
        };
        let inside = |p: &str| -> Result<PathBuf, SourceError> {
            let rel = Path::new(p);
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(bad(format!("unsafe path {p:?} in manifest.json")));
            }
            Ok(root.join(rel))
        };
        let mut files = Vec::new();
        let config_path = inside(&entry.config)?;
        let (config_digest, config_size, _) = hash_file(&config_path)?;
        files.push((config_digest.clone(), config_path));
        let mut layers = Vec::new();
        for l in &entry.layers {
            let p = inside(l)?;
            let (digest, size, gz) = hash_file(&p)?;
            let mt = if gz {
                DOCKER_LAYER_GZIP
            } else {
                DOCKER_LAYER_TAR
            };
            layers.push(Descriptor::new(mt, digest.clone(), size));
            files.push((digest, p));
        }
        let manifest = ImageManifest::new(
            MediaFamily::Docker,
            Descriptor::new(DOCKER_CONFIG, config_digest, config_size),
            layers,
        );
        Ok(DockerArchiveSource {
            root: root.to_path_buf(),
            shown: shown.to_path_buf(),
            manifest: manifest.to_bytes(),
            files,
        })
    }
}

fn normalise_tag(t: &str) -> String {
    t.parse::<ImageReference>()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Digest, size and whether it starts with the gzip magic.
fn hash_file(path: &Path) -> Result<(Digest, u64, bool), SourceError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut first = None;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        if first.is_none() {
            first = Some(buf[..n.min(2)].to_vec());
        }
        h.update(&buf[..n]);
    }
    let gz = first.as_deref() == Some(&[0x1f, 0x8b]);
    let (d, n) = h.finish();
    Ok((d, n, gz))
}

impl ImageSource for DockerArchiveSource {
    fn name(&self) -> String {
        format!("docker-archive:{}", self.shown.display())
    }
    fn fetch_manifest(&self, digest: Option<&Digest>) -> Result<FetchedManifest, SourceError> {
        let d = Digest::of(&self.manifest);
        if let Some(want) = digest
            && want != &d
        {
            return Err(SourceError::MissingBlob {
                path: self.shown.clone(),
                digest: want.clone(),
            });
        }
        Ok(FetchedManifest {
            bytes: self.manifest.clone(),
            media_type: crate::oci::manifest::DOCKER_MANIFEST.to_string(),
            digest: d,
        })
    }
    fn open_blob(&self, desc: &Descriptor) -> Result<BlobStream, SourceError> {
        let (_, path) = self
            .files
            .iter()
            .find(|(d, _)| d == &desc.digest)
            .ok_or_else(|| SourceError::MissingBlob {
                path: self.shown.clone(),
                digest: desc.digest.clone(),
            })?;
        let f = File::open(path).map_err(io_err(&self.root))?;
        Ok(BlobStream {
            reader: Box::new(f),
            content_length: Some(desc.size),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A docker-archive whose layer is `layer` (a symlink to `link` when given).
    fn docker_archive(dir: &Path, link: Option<&Path>) -> PathBuf {
        let config = br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let manifest =
            br#"[{"Config":"config.json","RepoTags":["localhost/x:1"],"Layers":["l/layer.tar"]}]"#;
        let path = dir.join("in.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        let mut add = |name: &str, bytes: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, bytes).unwrap();
        };
        add("config.json", config);
        add("manifest.json", manifest);
        match link {
            Some(target) => {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, "l/layer.tar", target).unwrap();
            }
            None => add("l/layer.tar", b"not a secret"),
        }
        b.into_inner().unwrap();
        path
    }

    fn open_docker(archive: &Path, scratch: &Path) -> Result<Box<dyn ImageSource>, SourceError> {
        let client = Arc::new(RegistryClient::builder().build());
        let location = ImageLocation::DockerArchive {
            path: archive.to_path_buf(),
            reference: None,
        };
        open(&location, &client, scratch)
    }

    /// Found by the `docker_archive` fuzz target (tests/fuzz): a layer entry that
    /// is a symlink out of the archive made ocibench read that file as a layer.
    #[test]
    fn archive_symlinks_out_of_the_archive_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let secret = d.path().join("secret");
        fs::write(&secret, b"a file of this machine").unwrap();
        for target in [secret.clone(), PathBuf::from("../../secret")] {
            let scratch = tempfile::tempdir_in(d.path()).unwrap();
            let archive = docker_archive(d.path(), Some(&target));
            match open_docker(&archive, scratch.path()) {
                Err(SourceError::LinkOutside { entry, .. }) => {
                    assert_eq!(entry, "l/layer.tar", "{target:?}")
                }
                Err(e) => panic!("{target:?}: unexpected error {e}"),
                Ok(src) => {
                    let m = src.fetch_manifest(None).unwrap();
                    let m: ImageManifest = serde_json::from_slice(&m.bytes).unwrap();
                    let mut layer = Vec::new();
                    src.open_blob(&m.layers[0])
                        .unwrap()
                        .reader
                        .read_to_end(&mut layer)
                        .unwrap();
                    panic!(
                        "{target:?}: opened; the layer reads {:?}",
                        String::from_utf8_lossy(&layer)
                    );
                }
            }
        }
    }

    #[test]
    fn archive_symlinks_inside_the_archive_still_work() {
        let d = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir_in(d.path()).unwrap();
        // As Docker 25's `docker save`: the layer links to a file beside it.
        let archive = docker_archive(d.path(), Some(Path::new("../config.json")));
        let src = open_docker(&archive, scratch.path()).unwrap();
        let m = src.fetch_manifest(None).unwrap();
        let m: ImageManifest = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(m.layers[0].digest, m.config.digest);
        let plain = docker_archive(d.path(), None);
        let scratch = tempfile::tempdir_in(d.path()).unwrap();
        assert!(open_docker(&plain, scratch.path()).is_ok());
    }
}
