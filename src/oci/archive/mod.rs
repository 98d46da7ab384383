//! The two archive formats: `oci-archive` (a tar of an OCI image layout) and
//! `docker-archive` (what `docker save` writes and `podman load` reads).
//!
//! Both are written as one sorted list of entries, streamed blob by blob from the
//! cache (each hashed on the way) into a locked temp file beside the destination
//! (`oci::temp`), then renamed over it. Entries
//! carry mtime 0, uid/gid 0, no user or group names and fixed modes, so the same
//! image gives the same archive bytes on any machine.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::oci::compress::decompressed;
use crate::oci::digest::{Digest, Hasher};
use crate::oci::export::{ExportError, ExportImage, check_store_blob, store_error, write_err};
use crate::oci::layout::{self, ArchiveEntry};
use crate::oci::manifest::{Compression, Descriptor, layer_compression};
use crate::oci::store::{BlobStore, MeasureError};
use crate::oci::temp::{self, TempFile};
use crate::progress::{Reporter, Task};

const BLOCK: usize = 512;
const CHUNK: usize = 256 * 1024;

/// What one archive entry holds.
enum Content<'a> {
    Dir,
    Bytes(Vec<u8>),
    /// A blob copied as stored, verified against its digest.
    Blob(&'a Descriptor),
    /// A layer written uncompressed (docker-archive), verified against its diff_id.
    Layer {
        desc: &'a Descriptor,
        diff_id: Digest,
        size: u64,
        compression: Compression,
    },
}

struct Entry<'a> {
    path: String,
    content: Content<'a>,
}

impl Entry<'_> {
    fn size(&self) -> u64 {
        match &self.content {
            Content::Dir => 0,
            Content::Bytes(b) => b.len() as u64,
            Content::Blob(d) => d.size,
            Content::Layer { size, .. } => *size,
        }
    }
}

/// Writes `oci-archive:PATH[:TAG]`; returns the archive's size.
pub(crate) fn oci_archive(
    store: &BlobStore,
    image: &ExportImage,
    path: &Path,
    tag: Option<&str>,
    progress: &dyn Reporter,
) -> Result<u64, ExportError> {
    check_target(path)?;
    let blobs = image.blobs();
    for d in &blobs {
        check_store_blob(store, d)?;
    }
    let mut entries: Vec<Entry> = layout::archive_entries(image.index_entry(tag))
        .into_iter()
        .map(|e| match e {
            ArchiveEntry::Dir(path) => dir(&path),
            ArchiveEntry::File(path, b) => bytes(&path, b),
        })
        .collect();
    for d in blobs {
        if d.digest != image.digest {
            entries.push(Entry {
                path: layout::blob_name(&d.digest),
                content: Content::Blob(d),
            });
        }
    }
    entries.push(bytes(
        &layout::blob_name(&image.digest),
        image.bytes.clone(),
    ));
    let label = format!("oci-archive:{}", path.display());
    write_archive(store, path, &label, entries, progress)
}

/// One image in `manifest.json` of a `docker save` archive (Docker's field order).
#[derive(Serialize)]
struct DockerManifestItem<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<&'a str>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes `docker-archive:PATH[:REF]`; returns the archive's size. Layers are
/// written uncompressed as `<diff_id hex>/layer.tar`, as `docker save` does, and
/// the config is the stored config, byte for byte.
pub(crate) fn docker_archive(
    store: &BlobStore,
    image: &ExportImage,
    path: &Path,
    reference: Option<&str>,
    progress: &dyn Reporter,
) -> Result<u64, ExportError> {
    check_target(path)?;
    let config_desc = &image.manifest.config;
    check_store_blob(store, config_desc)?;
    for d in &image.manifest.layers {
        check_store_blob(store, d)?;
    }
    let config = store
        .read_blob(&config_desc.digest)
        .map_err(|e| store_error(store, &config_desc.digest, e))?;
    if !config_desc.digest.matches(&config) {
        return Err(ExportError::BlobCorrupt {
            digest: config_desc.digest.clone(),
            path: store.blob_path(&config_desc.digest),
            detail: "its content does not match its digest".into(),
        });
    }
    let diff_ids = config_diff_ids(&config, &config_desc.digest)?;
    if diff_ids.len() != image.manifest.layers.len() {
        return Err(ExportError::LayerCount {
            diff_ids: diff_ids.len(),
            layers: image.manifest.layers.len(),
        });
    }

    let config_name = format!("{}.json", config_desc.digest.hex());
    let mut entries = Vec::new();
    let mut layer_paths = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (desc, diff_id) in image.manifest.layers.iter().zip(diff_ids) {
        let layer_path = format!("{}/layer.tar", diff_id.hex());
        layer_paths.push(layer_path.clone());
        if !seen.insert(diff_id.clone()) {
            continue;
        }
        let (compression, size) = uncompressed_layer_size(store, desc, &diff_id)?;
        entries.push(dir(&format!("{}/", diff_id.hex())));
        entries.push(Entry {
            path: layer_path,
            content: Content::Layer {
                desc,
                diff_id,
                size,
                compression,
            },
        });
    }
    let item = DockerManifestItem {
        config: config_name.clone(),
        repo_tags: reference.into_iter().collect(),
        layers: layer_paths,
    };
    let manifest_json = serde_json::to_vec(&[item]).expect("manifest.json serializes");
    entries.push(bytes(&config_name, config));
    entries.push(bytes("manifest.json", manifest_json));
    let label = format!("docker-archive:{}", path.display());
    write_archive(store, path, &label, entries, progress)
}

/// `rootfs.diff_ids` of a config.
fn config_diff_ids(config: &[u8], digest: &Digest) -> Result<Vec<Digest>, ExportError> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: Rootfs,
    }
    #[derive(serde::Deserialize)]
    struct Rootfs {
        #[serde(default)]
        diff_ids: Vec<Digest>,
    }
    serde_json::from_slice::<Config>(config)
        .map(|c| c.rootfs.diff_ids)
        .map_err(|e| ExportError::BadConfig {
            digest: digest.clone(),
            source: crate::oci::parse_error::ParseError::json(&e),
        })
}

/// A layer's compression and its uncompressed length: from the cache's layer
/// record when it agrees with the config, else measured (and recorded) in a
/// first pass, since a tar header must give the length before the data.
fn uncompressed_layer_size(
    store: &BlobStore,
    desc: &Descriptor,
    diff_id: &Digest,
) -> Result<(Compression, u64), ExportError> {
    match layer_compression(&desc.media_type) {
        Some(Compression::None) => Ok((Compression::None, desc.size)),
        Some(compression) => {
            let meta = store
                .layer_meta_or_measure(&desc.digest, compression, Some(diff_id))
                .map_err(|e| match e {
                    MeasureError::Store(e) => store_error(store, &desc.digest, e),
                    MeasureError::Data { source, .. } => ExportError::ReadBlob {
                        digest: desc.digest.clone(),
                        path: store.blob_path(&desc.digest),
                        source,
                    },
                })?;
            if &meta.diff_id != diff_id {
                return Err(diff_id_mismatch(
                    desc,
                    &store.blob_path(&desc.digest),
                    diff_id,
                    &meta.diff_id,
                ));
            }
            Ok((compression, meta.uncompressed_bytes))
        }
        None => Err(ExportError::UnsupportedLayer {
            digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
        }),
    }
}

fn diff_id_mismatch(desc: &Descriptor, src: &Path, want: &Digest, got: &Digest) -> ExportError {
    ExportError::BlobCorrupt {
        digest: desc.digest.clone(),
        path: src.to_path_buf(),
        detail: format!("it unpacks to {got}, the image config says {want}"),
    }
}

fn dir(path: &str) -> Entry<'static> {
    Entry {
        path: path.to_string(),
        content: Content::Dir,
    }
}

fn bytes(path: &str, b: Vec<u8>) -> Entry<'static> {
    Entry {
        path: path.to_string(),
        content: Content::Bytes(b),
    }
}

/// Checks an archive can go to `path` (before any slow work); returns its directory.
fn check_target(path: &Path) -> Result<std::path::PathBuf, ExportError> {
    if path.is_dir() {
        return Err(ExportError::IsADirectory(path.to_path_buf()));
    }
    Ok(layout::existing_parent(path)?)
}

/// Streams `entries` (sorted here) into `FILE.tmp-XXXX` beside `path`, then
/// renames it to `path`. On any error the temp file is removed on drop and an
/// existing `path` is untouched.
fn write_archive(
    store: &BlobStore,
    path: &Path,
    label: &str,
    mut entries: Vec<Entry<'_>>,
    progress: &dyn Reporter,
) -> Result<u64, ExportError> {
    let parent = check_target(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    // What a killed export of this file left beside it, then our own temp file.
    let prefix = format!("{name}.tmp-");
    temp::sweep(&parent, &prefix);
    let tmp = TempFile::new_in(&parent, &prefix).map_err(write_err(path))?;
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));

    let id = progress.start(Task::Write {
        destination: label,
        bytes: entries.iter().map(Entry::size).sum(),
    });
    let result = (|| -> Result<u64, ExportError> {
        let mut out = TarOut {
            w: BufWriter::with_capacity(CHUNK, tmp.as_file()),
            written: 0,
            dest: path,
        };
        for e in &entries {
            out.entry(store, e, &|n| progress.advance(id, n))?;
        }
        out.write(&[0u8; 2 * BLOCK])?;
        let written = out.written;
        out.w
            .into_inner()
            .map_err(|e| write_err(path)(e.into_error()))?;
        Ok(written)
    })();
    progress.finish(id);
    let written = result?;
    tmp.as_file().sync_all().map_err(write_err(path))?;
    tmp.persist(path).map_err(write_err(path))?;
    Ok(written)
}

/// A tar stream being written, counting bytes; errors name the destination.
struct TarOut<'p, W: Write> {
    w: W,
    written: u64,
    dest: &'p Path,
}

impl<W: Write> TarOut<'_, W> {
    fn write(&mut self, b: &[u8]) -> Result<(), ExportError> {
        self.w.write_all(b).map_err(write_err(self.dest))?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn entry(
        &mut self,
        store: &BlobStore,
        e: &Entry<'_>,
        advance: &dyn Fn(u64),
    ) -> Result<(), ExportError> {
        let is_dir = matches!(e.content, Content::Dir);
        let header = headers(&e.path, e.size(), is_dir).map_err(write_err(self.dest))?;
        self.write(&header)?;
        match &e.content {
            Content::Dir => {}
            Content::Bytes(b) => {
                self.write(b)?;
                advance(b.len() as u64);
            }
            Content::Blob(d) => {
                let src = store.blob_path(&d.digest);
                let file = store
                    .open_blob(&d.digest)
                    .map_err(|err| store_error(store, &d.digest, err))?;
                let (digest, _) = self.stream(file, d.size, &d.digest, &src, advance)?;
                if digest != d.digest {
                    return Err(ExportError::BlobCorrupt {
                        digest: d.digest.clone(),
                        path: src,
                        detail: format!("its content hashes to {digest}"),
                    });
                }
            }
            Content::Layer {
                desc,
                diff_id,
                size,
                compression,
            } => {
                let src = store.blob_path(&desc.digest);
                let file = store
                    .open_blob(&desc.digest)
                    .map_err(|err| store_error(store, &desc.digest, err))?;
                let reader = decompressed(BufReader::with_capacity(CHUNK, file), *compression)
                    .map_err(|source| ExportError::ReadBlob {
                        digest: desc.digest.clone(),
                        path: src.clone(),
                        source,
                    })?;
                // Data that does not inflate is a damaged blob, as is one that
                // inflates to the wrong diff_id.
                let (actual, _) = self
                    .stream(reader, *size, &desc.digest, &src, advance)
                    .map_err(|e| match e {
                        ExportError::ReadBlob { source, .. }
                            if source.kind() == io::ErrorKind::InvalidData =>
                        {
                            ExportError::BlobCorrupt {
                                digest: desc.digest.clone(),
                                path: src.clone(),
                                detail: format!("it does not decompress: {source}"),
                            }
                        }
                        other => other,
                    })?;
                if &actual != diff_id {
                    return Err(diff_id_mismatch(desc, &src, diff_id, &actual));
                }
            }
        }
        let pad = (BLOCK - (e.size() % BLOCK as u64) as usize) % BLOCK;
        self.write(&[0u8; BLOCK][..pad])
    }

    /// Copies exactly `size` bytes of `from` (a blob of the cache at `src`),
    /// hashing them; more or fewer bytes is an error naming the blob.
    fn stream(
        &mut self,
        mut from: impl Read,
        size: u64,
        digest: &Digest,
        src: &Path,
        advance: &dyn Fn(u64),
    ) -> Result<(Digest, u64), ExportError> {
        let read_err = |source| ExportError::ReadBlob {
            digest: digest.clone(),
            path: src.to_path_buf(),
            source,
        };
        let mut hasher = Hasher::with_algorithm(digest.alg());
        let mut buf = vec![0u8; CHUNK];
        let mut left = size;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            if n as u64 > left {
                return Err(ExportError::BlobCorrupt {
                    digest: digest.clone(),
                    path: src.to_path_buf(),
                    detail: format!("it is longer than the {size} bytes expected"),
                });
            }
            left -= n as u64;
            hasher.update(&buf[..n]);
            self.write(&buf[..n])?;
            advance(n as u64);
        }
        if left != 0 {
            return Err(ExportError::BlobCorrupt {
                digest: digest.clone(),
                path: src.to_path_buf(),
                detail: format!("it is shorter than the {size} bytes expected"),
            });
        }
        Ok(hasher.finish())
    }
}

/// The header blocks of an entry: a path longer than ustar holds (a sha512
/// blob's `blobs/sha512/<128 hex>`) goes first into a PAX `path` record, as Go's
/// archive/tar (skopeo, podman) writes it and reads it back; the ustar header then
/// holds the directory in `prefix` and the name cut to 100 bytes, for old readers.
fn headers(path: &str, size: u64, is_dir: bool) -> io::Result<Vec<u8>> {
    if let Ok(h) = header(path, size, is_dir, None) {
        return Ok(h.as_bytes().to_vec());
    }
    let record = pax_record("path", path);
    let mut pax = tar::Header::new_ustar();
    pax.set_size(record.len() as u64);
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_mode(0o644);
    pax.set_mtime(0);
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let short = &name[..name.len().min(100)];
    pax.set_path(format!("PaxHeaders/{}", &short[..short.len().min(89)]))?;
    pax.set_cksum();
    let mut out = pax.as_bytes().to_vec();
    out.extend_from_slice(record.as_bytes());
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(header(path, size, is_dir, Some((dir, short)))?.as_bytes());
    Ok(out)
}

/// One PAX record, `"<len> <key>=<value>\n"`, its length counting its own digits.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len != body.len() + len.to_string().len() {
        len = body.len() + len.to_string().len();
    }
    format!("{len}{body}")
}

/// A ustar header with everything that varies between machines fixed; `split`
/// puts a directory and a (cut) name straight into `prefix` and `name`.
fn header(
    path: &str,
    size: u64,
    is_dir: bool,
    split: Option<(&str, &str)>,
) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    match split {
        None => h.set_path(path)?,
        Some((dir, name)) => {
            let ustar = h.as_ustar_mut().expect("a ustar header");
            ustar.prefix[..dir.len()].copy_from_slice(dir.as_bytes());
            ustar.name[..name.len()].copy_from_slice(name.as_bytes());
        }
    }
    h.set_size(size);
    h.set_mode(if is_dir { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(if is_dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_cksum();
    Ok(h)
}
