//! The OCI image layout format, known here and nowhere else: the `oci-layout`
//! file, `index.json` and `blobs/<alg>/<hex>`.
//!
//! Four things are layouts: the blob store (the cache), a user's `oci:DIR` read
//! as a source or written by an export, and an `oci-archive` (a layout in a
//! tar). They differ in how they write (the cache keeps its files private and
//! locks a file of its own; an export writes world-readable files and locks the
//! directory), so this module gives paths, the index and the few operations
//! they share, and leaves the rest to them.

mod index;

pub use index::{Index, IndexEntry, REF_NAME, ReadIndexError, add_to_index, read_index};

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::oci::digest::Digest;

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const LAYOUT_VERSION: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const BLOBS: &str = "blobs";
/// The only digest algorithm blobs are stored under.
const ALGORITHM: &str = "sha256";

/// Mode of every file an export creates (temp files start as 0600).
pub const FILE_MODE: u32 = 0o644;

/// Why a layout directory could not be made or written. Each names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot write {path}: {} is not an existing directory", parent.display())]
    ParentMissing { path: PathBuf, parent: PathBuf },
    #[error("{0} exists and is not an OCI image layout (no oci-layout file, not empty)")]
    NotALayout(PathBuf),
    #[error("{0} exists and is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} has an invalid index.json: {detail}")]
    BadIndex { path: PathBuf, detail: String },
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The path of a blob inside a layout, `/`-separated (`blobs/sha256/<hex>`):
/// the name of its tar entry in an oci-archive.
pub fn blob_name(digest: &Digest) -> String {
    format!("{BLOBS}/{}/{}", digest.algorithm(), digest.hex())
}

/// Where the layout at `root` keeps blob `digest`.
pub fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join(blob_name(digest))
}

/// The directory of the layout at `root` that holds the blobs (and the temp
/// files they are written through).
pub fn blob_dir(root: &Path) -> PathBuf {
    root.join(BLOBS).join(ALGORITHM)
}

pub fn index_path(root: &Path) -> PathBuf {
    root.join(INDEX_FILE)
}

/// Whether `root` has the `oci-layout` file that marks a layout.
pub fn is_layout(root: &Path) -> bool {
    root.join(LAYOUT_FILE).is_file()
}

/// Makes `root` (an existing directory) a layout where it is not yet one: the
/// blob directory, `oci-layout` and an empty `index.json`, each file written
/// with `write` (which must be atomic). Existing files are left alone.
pub fn create(root: &Path, write: impl Fn(&Path, &[u8]) -> io::Result<()>) -> io::Result<()> {
    fs::create_dir_all(blob_dir(root))?;
    let layout = root.join(LAYOUT_FILE);
    if !layout.exists() {
        write(&layout, LAYOUT_VERSION)?;
    }
    let index = index_path(root);
    if !index.exists() {
        write(&index, &Index::default().to_bytes())?;
    }
    Ok(())
}

/// One entry of a layout written as a tar, before its blobs.
pub enum ArchiveEntry {
    /// A directory; its name ends in `/`.
    Dir(String),
    File(String, Vec<u8>),
}

/// The directories and files of a layout holding one image (`entry`), blobs
/// aside: what an oci-archive holds besides `blob_name` entries.
pub fn archive_entries(entry: IndexEntry) -> Vec<ArchiveEntry> {
    vec![
        ArchiveEntry::Dir(format!("{BLOBS}/")),
        ArchiveEntry::Dir(format!("{BLOBS}/{ALGORITHM}/")),
        ArchiveEntry::File(LAYOUT_FILE.to_string(), LAYOUT_VERSION.to_vec()),
        ArchiveEntry::File(INDEX_FILE.to_string(), Index::single(entry)),
    ]
}

/// Checks DIR is usable as a layout and makes it one (`oci-layout` written),
/// creating DIR when missing, and its blob directory. Returns the layout's
/// lock: the checks run under it, so concurrent exports into one new directory
/// do not trip over each other.
pub fn open_locked(dir: &Path) -> Result<File, LayoutError> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(LayoutError::NotADirectory(dir.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            existing_parent(dir)?;
            match fs::create_dir(dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(write_err(dir)(e));
                }
                _ => {}
            }
        }
        Err(e) => return Err(write_err(dir)(e)),
    }
    let lock = lock_dir(dir)?;
    let layout = dir.join(LAYOUT_FILE);
    if layout.exists() {
        let ok = fs::read(&layout)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v.get("imageLayoutVersion").is_some());
        if !ok {
            return Err(LayoutError::NotALayout(dir.to_path_buf()));
        }
    } else {
        let empty = fs::read_dir(dir).map_err(write_err(dir))?.next().is_none();
        if !empty {
            return Err(LayoutError::NotALayout(dir.to_path_buf()));
        }
        write_file(&layout, LAYOUT_VERSION)?;
    }
    let blobs = blob_dir(dir);
    fs::create_dir_all(&blobs).map_err(write_err(&blobs))?;
    Ok(lock)
}

/// An exclusive lock on the layout directory itself (no extra file in the
/// user's layout), so two exports into one layout do not lose index entries.
fn lock_dir(dir: &Path) -> Result<File, LayoutError> {
    let f = File::open(dir).map_err(write_err(dir))?;
    lock_exclusive(&f).map_err(write_err(dir))?;
    Ok(f)
}

/// Takes an exclusive flock on `f`, waiting for it; released when `f` is
/// closed, and with the process.
pub fn lock_exclusive(f: &File) -> io::Result<()> {
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(f), libc::LOCK_EX) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The existing parent directory of `path` (`.` for a bare file name).
pub fn existing_parent(path: &Path) -> Result<PathBuf, LayoutError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(LayoutError::ParentMissing {
            path: path.to_path_buf(),
            parent,
        });
    }
    Ok(parent)
}

/// Writes `bytes` to `path` (mode `FILE_MODE`) via a temp file in the same
/// directory and a rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let dir = existing_parent(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(&dir)
        .map_err(write_err(&dir))?;
    tmp.write_all(bytes).map_err(write_err(tmp.path()))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(FILE_MODE))
        .map_err(write_err(tmp.path()))?;
    tmp.persist(path).map_err(|e| LayoutError::Write {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}
