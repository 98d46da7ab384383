//! Writing into the store: a blob through a locked temporary file, hashed as it
//! goes and renamed under its digest only once verified; small files whole.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::oci::digest::{Algorithm, Digest, Hasher};
use crate::oci::layout;
use crate::oci::store::{StoreError, TEMP_PREFIX, stamp};
use crate::oci::temp::TempFile;

/// A blob being written: hashed as it goes, renamed into place only once verified.
/// Dropping it without `commit` deletes the temporary file.
pub struct BlobWriter {
    file: BufWriter<TempFile>,
    hasher: Hasher,
    root: PathBuf,
}

impl BlobWriter {
    pub(super) fn new(root: &Path, algorithm: Algorithm) -> Result<BlobWriter, StoreError> {
        let dir = layout::blob_dir(root);
        let tmp = TempFile::new_in(&dir, TEMP_PREFIX).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(BlobWriter {
            file: BufWriter::with_capacity(256 * 1024, tmp),
            hasher: Hasher::with_algorithm(algorithm),
            root: root.to_path_buf(),
        })
    }

    pub fn bytes_written(&self) -> u64 {
        self.hasher.len()
    }

    /// Digest and length of what was written so far.
    pub fn digest_so_far(&self) -> (Digest, u64) {
        self.hasher.clone().finish()
    }

    /// Verifies against `expected` (digest and size) when given, then makes the blob
    /// visible under its digest (mode 0644). On mismatch the temporary file is removed.
    pub fn commit(self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64), StoreError> {
        self.commit_inner(expected, true)
    }

    /// `commit`, replacing a stored copy of the same size even when its file looks
    /// unchanged since it was verified (it was found damaged).
    pub(super) fn commit_replacing(
        self,
        expected: Option<(&Digest, u64)>,
    ) -> Result<(Digest, u64), StoreError> {
        self.commit_inner(expected, false)
    }

    fn commit_inner(
        self,
        expected: Option<(&Digest, u64)>,
        trust_stored: bool,
    ) -> Result<(Digest, u64), StoreError> {
        let BlobWriter { file, hasher, root } = self;
        let dir = layout::blob_dir(&root);
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
        // The temporary file lives in `blobs/sha256` (same file system); a sha512
        // blob is renamed into `blobs/sha512`, made on first use.
        let target = layout::blob_path(&root, &digest);
        if digest.alg() != Algorithm::Sha256
            && let Some(parent) = target.parent()
        {
            fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // A blob already stored under this digest, unchanged since it was verified,
        // holds these bytes: keep it and drop the copy. Renaming over it would
        // cost far more than writing it: ext4 (auto_da_alloc) starts writeback of
        // the new file and frees the old one's blocks, ~0.15 s for a 200 MB layer,
        // as when a build makes the same layer again. A stored file that changed
        // since (or was never verified) is replaced.
        if trust_stored
            && fs::metadata(&target).is_ok_and(|m| {
                m.is_file() && m.len() == size && stamp::is_current(&root, &digest, &m)
            })
        {
            drop(tmp);
            return Ok((digest, size));
        }
        stamp::forget(&root, &digest);
        let file = tmp.persist(&target).map_err(|source| StoreError::Io {
            path: target.clone(),
            source,
        })?;
        // Just hashed: its file's identity is the cheap check from now on.
        if let Ok(m) = file.metadata() {
            let _ = stamp::record(&root, &digest, &m);
        }
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

/// Writes `bytes` to `path` (mode 0644) through a locked temp file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = TempFile::new_in(dir, TEMP_PREFIX)?;
    tmp.write_all(bytes)?;
    tmp.persist(path)?;
    Ok(())
}
