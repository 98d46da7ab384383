//! The content-addressed blob store: an OCI image layout on disk.
//!
//! Being a layout (`oci::layout`) makes the cache readable by skopeo and umoci
//! (`oci:ROOT:NAME`). Every write goes to a
//! temporary file in the blob folder, is verified against its expected digest
//! and size, and only then renamed into place: an interrupted or corrupt
//! transfer never leaves a partial blob under a digest's name.
//!
//! Beside the layout, `root/ocibench/layers/<hex>.json` remembers each layer's
//! uncompressed length and diff_id, computed once while the layer streamed in,
//! so that sizing a cached image reads no layer data.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::oci::compress::measure::{CHUNK, measure_layer};
use crate::oci::digest::{Digest, Hasher};
use crate::oci::layout::{self, ReadIndexError};
pub use crate::oci::layout::{Index, IndexEntry, REF_NAME};
use crate::oci::manifest::Compression;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use cache directory {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("I/O error in the blob store at {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "content does not match its digest: expected {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)"
    )]
    Mismatch {
        expected: Digest,
        expected_size: u64,
        actual: Digest,
        actual_size: u64,
    },
    #[error("blob {0} is not in the store")]
    Missing(Digest),
    #[error("index.json in {path} is not valid JSON")]
    BadIndex {
        path: PathBuf,
        #[source]
        source: crate::oci::parse_error::ParseError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub use crate::oci::compress::measure::LayerMeta;

/// Why a stored layer could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob is not valid data of its compression.
    #[error("layer {digest} cannot be decompressed")]
    Data {
        digest: Digest,
        #[source]
        source: io::Error,
    },
}

/// An OCI image layout used as a content-addressed cache.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// Temp files older than this are left-overs of killed processes.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);
const TEMP_PREFIX: &str = ".tmp-";

impl BlobStore {
    /// The default cache root: `$OCIBENCH_CACHE`, else `$XDG_CACHE_HOME/ocibench`,
    /// else `~/.cache/ocibench`.
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os("OCIBENCH_CACHE").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
            return PathBuf::from(p).join("ocibench");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        PathBuf::from(home).join(".cache").join("ocibench")
    }

    /// Opens (creating if needed) the layout at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let open_err = |source| StoreError::Open {
            path: root.clone(),
            source,
        };
        fs::create_dir_all(root.join("ocibench").join("layers")).map_err(open_err)?;
        layout::create(&root, write_atomic).map_err(open_err)?;
        let store = BlobStore { root };
        store.remove_stale_temps();
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh scratch directory inside the cache (`ocibench/PREFIXxxxx`), on the
    /// same file system as the blobs; removed when the returned value drops.
    pub fn scratch_dir(&self, prefix: &str) -> io::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.root.join("ocibench"))
    }

    fn blob_dir(&self) -> PathBuf {
        layout::blob_dir(&self.root)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        layout::blob_path(&self.root, digest)
    }

    /// Size of the stored blob, or `None` when it is not stored.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest)).ok().map(|m| m.len())
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_size(digest).is_some()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::Missing(digest.clone())
            } else {
                StoreError::Io { path, source }
            }
        })
    }

    /// Reads a small blob (manifest, config) whole.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        let path = self.blob_path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(io_err(&path))?;
        Ok(buf)
    }

    /// Starts writing a new blob. Nothing is visible until `commit`.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let dir = self.blob_dir();
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        Ok(BlobWriter {
            file: BufWriter::with_capacity(256 * 1024, tmp),
            hasher: Hasher::new(),
            dir,
        })
    }

    /// Stores a small blob given whole; returns its digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.blob_size(&digest) == Some(bytes.len() as u64) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_err(&self.root))?;
        w.commit(Some((&digest, bytes.len() as u64)))?;
        Ok(digest)
    }

    fn meta_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("ocibench")
            .join("layers")
            .join(format!("{}.json", digest.hex()))
    }

    /// What was recorded about a layer when it was stored, if anything.
    pub fn layer_meta(&self, digest: &Digest) -> Option<LayerMeta> {
        let bytes = fs::read(self.meta_path(digest)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// A stored layer's diff_id and uncompressed length: remembered beside the
    /// blob, else measured from it (one pass: inflate, hash) and remembered. A
    /// record that disagrees with `expected` is measured again. Remembering is
    /// best-effort: a cache that cannot be written still answers.
    pub fn layer_meta_or_measure(
        &self,
        digest: &Digest,
        compression: Compression,
        expected: Option<&Digest>,
    ) -> Result<LayerMeta, MeasureError> {
        if let Some(meta) = self.layer_meta(digest)
            && expected.is_none_or(|d| *d == meta.diff_id)
        {
            return Ok(meta);
        }
        let blob = io::BufReader::with_capacity(CHUNK, self.open_blob(digest)?);
        let meta = measure_layer(blob, compression).map_err(|source| MeasureError::Data {
            digest: digest.clone(),
            source,
        })?;
        let _ = self.put_layer_meta(digest, &meta);
        Ok(meta)
    }

    pub fn put_layer_meta(&self, digest: &Digest, meta: &LayerMeta) -> Result<(), StoreError> {
        let path = self.meta_path(digest);
        let json = serde_json::to_vec(meta).expect("layer meta serializes");
        write_atomic(&path, &json).map_err(io_err(&path))
    }

    fn origin_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("ocibench")
            .join("origins")
            .join(digest.hex())
    }

    /// Remembers that `digest` lives in `repo` (`REGISTRY/REPOSITORY`), so a push to
    /// another repository of that registry can mount it instead of uploading.
    pub fn record_origin(&self, digest: &Digest, repo: &str) -> Result<(), StoreError> {
        let mut known = self.origins(digest);
        if known.iter().any(|r| r == repo) {
            return Ok(());
        }
        known.push(repo.to_string());
        let path = self.origin_path(digest);
        let dir = path.parent().expect("origin path has a parent");
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        write_atomic(&path, known.join("\n").as_bytes()).map_err(io_err(&path))
    }

    /// Repositories `digest` is known to live in.
    pub fn origins(&self, digest: &Digest) -> Vec<String> {
        fs::read_to_string(self.origin_path(digest))
            .map(|s| {
                s.lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records `name` -> manifest in `index.json` (replacing an older entry of that name),
    /// so that `skopeo inspect oci:ROOT:NAME` finds the image.
    pub fn tag(&self, name: &str, manifest: IndexEntry) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        index.tag(name, manifest);
        let path = layout::index_path(&self.root);
        write_atomic(&path, &index.to_bytes()).map_err(io_err(&path))
    }

    /// The manifest entry recorded under `name`, if any.
    pub fn resolve(&self, name: &str) -> Result<Option<IndexEntry>, StoreError> {
        Ok(self.read_index()?.find(name).cloned())
    }

    fn read_index(&self) -> Result<Index, StoreError> {
        match layout::read_index(&self.root) {
            Ok((index, _)) => Ok(index),
            Err(ReadIndexError::Io { path, source }) => Err(StoreError::Io { path, source }),
            Err(ReadIndexError::Json { path, source }) => {
                Err(StoreError::BadIndex { path, source })
            }
        }
    }

    /// An exclusive lock on the index, released on drop (flock: dies with the process).
    fn lock(&self) -> Result<File, StoreError> {
        let path = self.root.join("ocibench").join("index.lock");
        let f = File::create(&path).map_err(io_err(&path))?;
        layout::lock_exclusive(&f).map_err(io_err(&path))?;
        Ok(f)
    }

    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(self.blob_dir()) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// A blob being written: hashed as it goes, renamed into place only once verified.
/// Dropping it without `commit` deletes the temporary file.
pub struct BlobWriter {
    file: BufWriter<tempfile::NamedTempFile>,
    hasher: Hasher,
    dir: PathBuf,
}

impl BlobWriter {
    pub fn bytes_written(&self) -> u64 {
        self.hasher.len()
    }

    /// Digest and length of what was written so far.
    pub fn digest_so_far(&self) -> (Digest, u64) {
        self.hasher.clone().finish()
    }

    /// Verifies against `expected` (digest and size) when given, then makes the blob
    /// visible under its digest. On mismatch the temporary file is removed.
    pub fn commit(self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64), StoreError> {
        let BlobWriter { file, hasher, dir } = self;
        let (digest, size) = hasher.finish();
        if let Some((want, want_size)) = expected
            && (want != &digest || want_size != size)
        {
            return Err(StoreError::Mismatch {
                expected: want.clone(),
                expected_size: want_size,
                actual: digest,
                actual_size: size,
            });
        }
        let tmp = file.into_inner().map_err(|e| StoreError::Io {
            path: dir.clone(),
            source: e.into_error(),
        })?;
        let target = dir.join(digest.hex());
        // A blob already stored under this digest holds these bytes (the rule
        // `put_bytes` follows): keep it and drop the copy. Renaming over it
        // would cost far more than writing it: ext4 (auto_da_alloc) starts
        // writeback of the new file and frees the old one's blocks, ~0.15 s
        // for a 200 MB layer, as when a build makes the same layer again.
        if fs::metadata(&target).is_ok_and(|m| m.is_file() && m.len() == size) {
            drop(tmp);
            return Ok((digest, size));
        }
        tmp.persist(&target).map_err(|e| StoreError::Io {
            path: target.clone(),
            source: e.error,
        })?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.hasher.update(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes `bytes` to `path` through a temp file and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_verifies_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let good = Digest::of(b"hello");
        let mut w = store.writer().unwrap();
        w.write_all(b"hello").unwrap();
        let (d, n) = w.commit(Some((&good, 5))).unwrap();
        assert_eq!((d.clone(), n), (good.clone(), 5));
        assert_eq!(store.read_blob(&good).unwrap(), b"hello");
    }

    #[test]
    fn committing_a_stored_blob_keeps_the_stored_file() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put_bytes(b"hello").unwrap();
        let inode = fs::metadata(store.blob_path(&d)).unwrap().ino();
        let mut w = store.writer().unwrap();
        w.write_all(b"hello").unwrap();
        assert_eq!(w.commit(None).unwrap(), (d.clone(), 5));
        assert_eq!(fs::metadata(store.blob_path(&d)).unwrap().ino(), inode);
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        let names: Vec<_> = fs::read_dir(layout::blob_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [d.hex()], "the copy is removed");
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let want = Digest::of(b"hello");
        let mut w = store.writer().unwrap();
        w.write_all(b"hellO").unwrap();
        let err = w.commit(Some((&want, 5))).unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }));
        assert!(!store.has(&want));
        let left: Vec<_> = fs::read_dir(layout::blob_dir(dir.path()))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "temp file left behind: {left:?}");
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(
            fs::read_dir(layout::blob_dir(dir.path())).unwrap().count(),
            0
        );
    }

    #[test]
    fn tags_replace_and_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put_bytes(b"{}").unwrap();
        let b = store.put_bytes(b"{ }").unwrap();
        let mt = "application/vnd.oci.image.manifest.v1+json";
        store.tag("x:1", IndexEntry::new(mt, a.clone(), 2)).unwrap();
        store.tag("x:1", IndexEntry::new(mt, b.clone(), 3)).unwrap();
        store.tag("y:1", IndexEntry::new(mt, a.clone(), 2)).unwrap();
        assert_eq!(store.resolve("x:1").unwrap().unwrap().digest, b);
        assert_eq!(store.resolve("y:1").unwrap().unwrap().digest, a);
        assert!(store.resolve("z:1").unwrap().is_none());
    }

    #[test]
    fn origins_accumulate() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of(b"blob");
        assert!(store.origins(&d).is_empty());
        store.record_origin(&d, "localhost:5000/a").unwrap();
        store.record_origin(&d, "localhost:5000/b").unwrap();
        store.record_origin(&d, "localhost:5000/a").unwrap();
        assert_eq!(
            store.origins(&d),
            vec!["localhost:5000/a", "localhost:5000/b"]
        );
    }

    #[test]
    fn layer_meta_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        assert!(store.layer_meta(&d).is_none());
        let meta = LayerMeta {
            diff_id: Digest::of(b"tar"),
            uncompressed_bytes: 10240,
        };
        store.put_layer_meta(&d, &meta).unwrap();
        assert_eq!(store.layer_meta(&d), Some(meta));
    }
}
