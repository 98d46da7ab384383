//! Writing into a user's layout directory (`oci:DIR`): making it a layout,
//! locking it, and writing files whole (temp file, then rename) and readable.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::oci::digest::Digest;
use crate::oci::layout::paths::{LAYOUT_FILE, LAYOUT_VERSION, blob_dir, blob_path};
pub use crate::oci::temp::FILE_MODE;
use crate::oci::temp::{self, TempFile};

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
            temp::create_dir(dir).map_err(write_err(dir))?;
        }
        Err(e) => return Err(write_err(dir)(e)),
    }
    let lock = lock_dir(dir)?;
    init(dir)?;
    Ok(lock)
}

/// Makes DIR (an existing directory, new or empty, or a layout) a layout: the
/// checks and writes of `open_locked`, for a directory the caller already holds
/// (a staging directory, locked by `oci::temp`).
pub fn init(dir: &Path) -> Result<(), LayoutError> {
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
    for d in [blobs.parent().expect("blobs/ALG"), &blobs] {
        temp::create_dir(d).map_err(write_err(d))?;
    }
    Ok(())
}

/// Makes the directory blob `digest` goes in, `blobs/<alg>`: `init` makes
/// `blobs/sha256`; a sha512 blob's is made on first use.
pub fn ensure_blob_dir(root: &Path, digest: &Digest) -> Result<(), LayoutError> {
    let path = blob_path(root, digest);
    let dir = path.parent().expect("blobs/ALG/HEX has a parent");
    if !dir.is_dir() {
        temp::create_dir(dir).map_err(write_err(dir))?;
    }
    Ok(())
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
    Ok(rustix::fs::flock(
        f,
        rustix::fs::FlockOperation::LockExclusive,
    )?)
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

/// Writes `bytes` to `path` (mode `FILE_MODE`) via a locked temp file in the same
/// directory and a rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let dir = existing_parent(path)?;
    let mut tmp = TempFile::new_in(&dir, ".tmp-").map_err(write_err(&dir))?;
    tmp.write_all(bytes).map_err(write_err(path))?;
    tmp.persist(path).map_err(write_err(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_locked_makes_a_layout_of_a_new_or_empty_directory_only() {
        let d = tempfile::tempdir().unwrap();
        let new = d.path().join("new");
        drop(open_locked(&new).unwrap());
        assert_eq!(
            fs::read(new.join("oci-layout")).unwrap(),
            br#"{"imageLayoutVersion":"1.0.0"}"#
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(new.join("oci-layout"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, FILE_MODE);
        assert!(new.join("blobs/sha256").is_dir());
        drop(open_locked(&new).unwrap());

        let full = d.path().join("full");
        fs::create_dir(&full).unwrap();
        fs::write(full.join("f"), "x").unwrap();
        assert!(matches!(
            open_locked(&full),
            Err(LayoutError::NotALayout(_))
        ));
        assert!(matches!(
            open_locked(&full.join("f")),
            Err(LayoutError::NotADirectory(_))
        ));
        assert!(matches!(
            open_locked(&d.path().join("no/such")),
            Err(LayoutError::ParentMissing { .. })
        ));
    }
}
