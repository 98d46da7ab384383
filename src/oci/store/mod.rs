//! The content-addressed blob store: an OCI image layout on disk.
//!
//! Being a layout (`oci::layout`) makes the cache readable by skopeo and umoci
//! (`oci:ROOT:NAME`), and by other users: files are 0644, directories 0755. Every
//! write goes to a locked temporary file (`oci::temp`) in the blob folder, is
//! verified against its expected digest and size, and only then renamed into place:
//! an interrupted or corrupt transfer never leaves a partial blob under a digest's
//! name, and what a killed process left is swept by the next one to open the store.
//!
//! Beside the layout, `root/ocibench/` keeps what the layout has no place for:
//! - `layers/<hex>.json`: each layer's uncompressed length and diff_id, computed
//!   once while the layer streamed in, so that sizing a cached image reads no layer
//!   data;
//! - `verified/<hex>`: the file identity (size, mtime, inode) a blob had when its
//!   content was last hashed (`stamp`): the cheap check that a cached blob is still
//!   the one verified (a rewrite in place changes its mtime);
//! - `origins/<hex>`: the registry repositories a blob is known to live in;
//! - `gc.lock`: held shared by every process using the store, exclusively by
//!   `prune` and `verify --repair` (`maintain`), which remove blobs.

mod maintain;
mod stamp;
mod writer;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{FlockOperation, flock};

use crate::oci::compress::measure::{CHUNK, measure_layer};
use crate::oci::digest::{Algorithm, Digest, Hasher};
use crate::oci::layout::{self, ReadIndexError};
pub use crate::oci::layout::{Index, IndexEntry, REF_NAME};
use crate::oci::manifest::Compression;
use crate::oci::temp::{self, TempDir};
pub use maintain::{CorruptBlob, PruneReport, VerifyReport};
pub use writer::{BlobWriter, write_atomic};

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
    #[error("cache corrupt: blob {digest} at {} hashes to {actual}", path.display())]
    Corrupt {
        digest: Digest,
        path: PathBuf,
        actual: Digest,
    },
    #[error("blob {0} is not in the store")]
    Missing(Digest),
    #[error("index.json in {path} is not valid JSON")]
    BadIndex {
        path: PathBuf,
        #[source]
        source: crate::oci::parse_error::ParseError,
    },
    #[error("the cache at {0} is in use by another ocibench process")]
    Busy(PathBuf),
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

/// What a stored blob is, against what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobState {
    Missing,
    /// Stored with another length (the length it has).
    WrongSize(u64),
    /// Its content hashes to its name (now, or when last hashed and unchanged since).
    Intact,
    /// Its content hashes to this instead.
    Corrupt(Digest),
}

/// An OCI image layout used as a content-addressed cache.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// `gc.lock`, held while the store is open (none on a read-only cache).
    _gc: Option<Arc<File>>,
    /// What opening swept (for `prune`'s report).
    swept_at_open: temp::Swept,
}

const TEMP_PREFIX: &str = ".tmp-";

/// The annotation of an index entry naming the digest of the manifest its name
/// pointed to when pulled (an index's, when the entry is one platform of it): the
/// next pull of the tag compares it with the registry's HEAD, and reads that
/// manifest from here when they agree.
pub const SOURCE_DIGEST: &str = "org.ocibench.source.digest";
/// The scratch directories made inside the cache (`scratch_dir`).
const SCRATCH_PREFIXES: [&str; 2] = [".unpack-", ".run-"];

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

    /// Opens (creating if needed) the layout at `root`, and sweeps what killed
    /// processes left in it. A cache that exists but cannot be written (read-only,
    /// another user's) opens for reading.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::open_with(root.into(), FlockOperation::LockShared)
    }

    /// Opens the store for removing blobs: no other process may be using it
    /// (`StoreError::Busy` otherwise), and none can start until this one is dropped.
    pub fn open_exclusive(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::open_with(root.into(), FlockOperation::NonBlockingLockExclusive)
    }

    fn open_with(root: PathBuf, lock: FlockOperation) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: root.clone(),
            source,
        };
        if !root.is_dir() {
            fs::create_dir_all(&root).map_err(open_err)?;
            fs::set_permissions(
                &root,
                std::os::unix::fs::PermissionsExt::from_mode(temp::DIR_MODE),
            )
            .map_err(open_err)?;
        }
        for dir in [
            layout::blob_dir(&root)
                .parent()
                .expect("blobs/ALG")
                .to_path_buf(),
            layout::blob_dir(&root),
            root.join("ocibench"),
            root.join("ocibench").join("layers"),
        ] {
            temp::create_dir(&dir).map_err(open_err)?;
        }
        layout::create(&root, write_atomic).map_err(open_err)?;
        let gc = gc_lock(&root, lock)?;
        let mut store = BlobStore {
            root,
            _gc: gc,
            swept_at_open: temp::Swept::default(),
        };
        store.swept_at_open = store.sweep();
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes what killed processes left (temporaries no live process holds).
    fn sweep(&self) -> temp::Swept {
        let private = self.root.join("ocibench");
        let mut swept = temp::sweep(&self.blob_dir(), TEMP_PREFIX);
        swept += temp::sweep(&self.root, TEMP_PREFIX);
        for prefix in SCRATCH_PREFIXES.into_iter().chain([TEMP_PREFIX]) {
            swept += temp::sweep(&private, prefix);
        }
        for sub in ["layers", "origins", "verified"] {
            swept += temp::sweep(&private.join(sub), TEMP_PREFIX);
        }
        swept
    }

    /// A fresh scratch directory inside the cache (`ocibench/PREFIXxxxx`, PREFIX one
    /// of `.unpack-`, `.run-`), on the same file system as the blobs; removed when
    /// the returned value drops, or by a signal, or by the next run if killed.
    pub fn scratch_dir(&self, prefix: &str) -> io::Result<TempDir> {
        debug_assert!(SCRATCH_PREFIXES.contains(&prefix));
        TempDir::new_in(&self.root.join("ocibench"), prefix)
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

    /// Reads a small blob (manifest, config) whole, verified against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        let path = self.blob_path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(io_err(&path))?;
        let actual = Digest::of_with(digest.alg(), &buf);
        if &actual != digest {
            return Err(StoreError::Corrupt {
                digest: digest.clone(),
                path,
                actual,
            });
        }
        Ok(buf)
    }

    /// Hashes a stored blob.
    pub fn hash_blob(&self, digest: &Digest) -> Result<(Digest, u64), StoreError> {
        let path = self.blob_path(digest);
        let mut f = self.open_blob(digest)?;
        let mut hasher = Hasher::with_algorithm(digest.alg());
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(&path)(e)),
            };
            hasher.update(&buf[..n]);
        }
        Ok(hasher.finish())
    }

    /// Whether blob `digest` is stored whole, `size` bytes long. The cheap check
    /// first: a blob whose file is unchanged (size, mtime, inode) since its content
    /// was last hashed is taken as intact; any other is hashed now (and, when
    /// intact, stamped, if the cache can be written).
    pub fn check_blob(&self, digest: &Digest, size: u64) -> Result<BlobState, StoreError> {
        let path = self.blob_path(digest);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BlobState::Missing),
            Err(e) => return Err(io_err(&path)(e)),
        };
        if meta.len() != size {
            return Ok(BlobState::WrongSize(meta.len()));
        }
        if stamp::is_current(&self.root, digest, &meta) {
            return Ok(BlobState::Intact);
        }
        self.verify_now(digest)
    }

    /// Hashes blob `digest` now; stamps it when intact.
    pub fn verify_now(&self, digest: &Digest) -> Result<BlobState, StoreError> {
        let path = self.blob_path(digest);
        let before = fs::metadata(&path).map_err(io_err(&path))?;
        let (actual, _) = self.hash_blob(digest)?;
        if &actual != digest {
            return Ok(BlobState::Corrupt(actual));
        }
        let _ = stamp::record(&self.root, digest, &before);
        Ok(BlobState::Intact)
    }

    /// Removes a stored blob (damaged, or unreachable) and what is known of its file.
    pub fn remove_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        if fs::symlink_metadata(&path).is_err() {
            // Nothing to remove (and a read-only cache would refuse even that).
            return Ok(());
        }
        stamp::forget(&self.root, digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Starts writing a new blob. Nothing is visible until `commit`.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        BlobWriter::new(&self.root, Algorithm::Sha256)
    }

    /// Starts writing a blob expected under `digest`: hashed with its algorithm
    /// (sha512 content is verified as sha512 and stored under `blobs/sha512`).
    pub fn writer_for(&self, digest: &Digest) -> Result<BlobWriter, StoreError> {
        BlobWriter::new(&self.root, digest.alg())
    }

    /// Stores a small blob given whole; returns its digest. A stored copy that
    /// differs (damaged) is replaced.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        self.put_bytes_with(Algorithm::Sha256, bytes)
    }

    /// `put_bytes` under a digest of `algorithm` (a manifest named by sha512 is
    /// stored where that name finds it).
    pub fn put_bytes_with(&self, algorithm: Algorithm, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of_with(algorithm, bytes);
        if self.blob_size(&digest) == Some(bytes.len() as u64)
            && fs::read(self.blob_path(&digest)).is_ok_and(|b| b == bytes)
        {
            return Ok(digest);
        }
        let mut w = BlobWriter::new(&self.root, algorithm)?;
        io::Write::write_all(&mut w, bytes).map_err(io_err(&self.root))?;
        w.commit_replacing(Some((&digest, bytes.len() as u64)))?;
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
        let algorithm = expected.map_or(Algorithm::Sha256, Digest::alg);
        let meta =
            measure_layer(blob, compression, algorithm).map_err(|source| MeasureError::Data {
                digest: digest.clone(),
                source,
            })?;
        let _ = self.put_layer_meta(digest, &meta);
        Ok(meta)
    }

    pub fn put_layer_meta(&self, digest: &Digest, meta: &LayerMeta) -> Result<(), StoreError> {
        let path = self.meta_path(digest);
        if self.layer_meta(digest).as_ref() == Some(meta) {
            return Ok(());
        }
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
        temp::create_dir(dir).map_err(io_err(dir))?;
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
    /// so that `skopeo inspect oci:ROOT:NAME` finds the image. An entry already
    /// recorded as given is not written again (so a read-only cache serves).
    pub fn tag(&self, name: &str, manifest: IndexEntry) -> Result<(), StoreError> {
        let wanted = manifest.clone().named(Some(name));
        if self.read_index()?.find(name) == Some(&wanted) {
            return Ok(());
        }
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        index.tag(name, manifest);
        self.write_index(&index)
    }

    fn write_index(&self, index: &Index) -> Result<(), StoreError> {
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
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        flock(&f, FlockOperation::LockExclusive).map_err(|e| io_err(&path)(e.into()))?;
        Ok(f)
    }
}

/// Takes `gc.lock` as asked. A cache that cannot be written has no lock file to
/// create: it is used without one (its owner's `prune` is not held off).
fn gc_lock(root: &Path, op: FlockOperation) -> Result<Option<Arc<File>>, StoreError> {
    let path = root.join("ocibench").join("gc.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .or_else(|_| File::open(&path));
    let Ok(file) = file else {
        if op == FlockOperation::NonBlockingLockExclusive {
            return Err(StoreError::Open {
                path: root.to_path_buf(),
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            });
        }
        return Ok(None);
    };
    match flock(&file, op) {
        Ok(()) => Ok(Some(Arc::new(file))),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(StoreError::Busy(root.to_path_buf())),
        Err(e) => Err(io_err(&path)(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
    fn sha512_blobs_are_verified_as_sha512_and_stored_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let want = Digest::of_with(Algorithm::Sha512, b"hello");
        let mut w = store.writer_for(&want).unwrap();
        w.write_all(b"hello").unwrap();
        assert_eq!(w.commit(Some((&want, 5))).unwrap(), (want.clone(), 5));
        assert_eq!(
            store.blob_path(&want),
            dir.path().join("blobs/sha512").join(want.hex())
        );
        assert_eq!(store.read_blob(&want).unwrap(), b"hello");
        assert_eq!(store.check_blob(&want, 5).unwrap(), BlobState::Intact);
        // Other bytes under that name are refused, and nothing is stored.
        let other = Digest::of_with(Algorithm::Sha512, b"other");
        let mut w = store.writer_for(&other).unwrap();
        w.write_all(b"hello").unwrap();
        assert!(matches!(
            w.commit(Some((&other, 5))),
            Err(StoreError::Mismatch { .. })
        ));
        assert!(!store.has(&other));
        assert_eq!(
            store.put_bytes_with(Algorithm::Sha512, b"hello").unwrap(),
            want
        );
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
    fn store_files_and_directories_are_readable_by_all() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let store = BlobStore::open(&root).unwrap();
        let d = store.put_bytes(b"hello").unwrap();
        store
            .tag("x:1", IndexEntry::new("m", d.clone(), 5))
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for f in [
            store.blob_path(&d),
            root.join("index.json"),
            root.join("oci-layout"),
        ] {
            assert_eq!(mode(&f), 0o644, "{}", f.display());
        }
        for d in [root.clone(), root.join("blobs"), layout::blob_dir(&root)] {
            assert_eq!(mode(&d), 0o755, "{}", d.display());
        }
    }

    #[test]
    fn a_blob_changed_in_place_is_noticed_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"hello world").unwrap();
        let (d, n) = w.commit(None).unwrap();
        assert_eq!(store.check_blob(&d, n).unwrap(), BlobState::Intact);
        fs::write(store.blob_path(&d), b"hello World").unwrap();
        // (A later write: on a coarse clock, one this quick may keep the mtime.)
        let f = File::options()
            .write(true)
            .open(store.blob_path(&d))
            .unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(2))
            .unwrap();
        assert_eq!(
            store.check_blob(&d, n).unwrap(),
            BlobState::Corrupt(Digest::of(b"hello World"))
        );
        assert!(matches!(
            store.read_blob(&d),
            Err(StoreError::Corrupt { .. })
        ));
        // Writing the blob again replaces the damaged copy (same size).
        let mut w = store.writer().unwrap();
        w.write_all(b"hello world").unwrap();
        w.commit(Some((&d, n))).unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), b"hello world");
        assert_eq!(store.check_blob(&d, n).unwrap(), BlobState::Intact);
        assert_eq!(
            store.check_blob(&d, n + 1).unwrap(),
            BlobState::WrongSize(n)
        );
    }

    #[test]
    fn tagging_an_image_already_tagged_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put_bytes(b"{}").unwrap();
        let entry = IndexEntry::new("m", d.clone(), 2);
        store.tag("x:1", entry.clone()).unwrap();
        let index = layout::index_path(dir.path());
        fs::set_permissions(&index, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
        let before = fs::metadata(&index).unwrap().modified().unwrap();
        store.tag("x:1", entry).unwrap();
        assert_eq!(fs::metadata(&index).unwrap().modified().unwrap(), before);
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
