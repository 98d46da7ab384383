//! Looking after the cache as a whole (`ocibench cache verify|prune`): hashing every
//! blob against its name, removing the damaged ones and the index entries that
//! needed them (so the next pull fetches them again), and removing what no index
//! entry reaches, with the debris of killed processes.
//!
//! Both removals run under the store's exclusive `gc.lock` (`open_exclusive`): a
//! pull or build under way holds it shared, so its blobs, written before they are
//! tagged (or never tagged, for a build), are never taken from under it.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde::Serialize;

use crate::oci::digest::{Algorithm, Digest};
use crate::oci::layout;
use crate::oci::manifest::Manifest;
use crate::oci::store::{BlobState, BlobStore, Index, SCRATCH_PREFIXES, StoreError, TEMP_PREFIX};

/// A blob whose content does not hash to its name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CorruptBlob {
    pub digest: Digest,
    pub path: PathBuf,
    /// What its content hashes to.
    pub actual: Digest,
}

/// What `verify` found, and with `repair`, did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    pub cache: PathBuf,
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    pub corrupt: Vec<CorruptBlob>,
    /// Index entries (by name, or digest when unnamed) whose blobs are missing or
    /// damaged: a pull would not notice the damage until it copies them.
    pub broken_entries: Vec<String>,
    /// `index.json` is not valid JSON.
    pub index_corrupt: bool,
    /// Repair only: blobs removed, entries removed, and whether `index.json` was
    /// reset to an empty index (a corrupt one cannot be read for its names).
    pub removed_blobs: Vec<Digest>,
    pub removed_entries: Vec<String>,
    pub index_reset: bool,
    /// Files and directories others cannot read (an older ocibench wrote 0600),
    /// so the cache cannot be shared; not damage. Repair adds the read bits.
    pub unreadable: usize,
    pub permissions_fixed: usize,
}

impl VerifyReport {
    /// Whether the cache is damaged and left so (no repair, or a failed one).
    pub fn damaged(&self) -> bool {
        let repaired = self.removed_blobs.len() == self.corrupt.len()
            && self.removed_entries.len() == self.broken_entries.len()
            && self.index_reset == self.index_corrupt;
        !repaired
            && (!self.corrupt.is_empty() || !self.broken_entries.is_empty() || self.index_corrupt)
    }
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PruneReport {
    pub cache: PathBuf,
    pub removed_blobs: usize,
    pub removed_blob_bytes: u64,
    pub kept_blobs: usize,
    /// Temporaries and scratch directories of killed processes.
    pub removed_temporaries: usize,
    pub removed_temporary_bytes: u64,
    pub freed_bytes: u64,
}

/// The digests named in `blobs/sha256` and `blobs/sha512` (temporaries and strays
/// aside); the sha512 directory exists only once such a blob was stored.
fn stored_digests(store: &BlobStore) -> Result<Vec<Digest>, StoreError> {
    let mut out: Vec<Digest> = Vec::new();
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let dir = layout::blob_dir(store.root()).with_file_name(algorithm.name());
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if algorithm != Algorithm::Sha256 && e.kind() == io::ErrorKind::NotFound => {
                continue;
            }
            Err(source) => return Err(StoreError::Io { path: dir, source }),
        };
        out.extend(
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| {
                    format!("{}:{}", algorithm.name(), e.file_name().to_string_lossy())
                        .parse::<Digest>()
                        .ok()
                }),
        );
    }
    out.sort();
    Ok(out)
}

/// Every blob reachable from `digest` (a manifest or index) that is stored, and
/// whether any it needs is missing or damaged. Children of an index that are not
/// stored are fine: the cache keeps only the platform pulled.
fn reach(
    store: &BlobStore,
    digest: &Digest,
    bad: &HashSet<Digest>,
    out: &mut HashSet<Digest>,
) -> bool {
    out.insert(digest.clone());
    if bad.contains(digest) {
        return false;
    }
    let Ok(bytes) = store.read_blob(digest) else {
        return false;
    };
    let Ok((_, manifest)) = Manifest::parse("", &bytes) else {
        return false;
    };
    match manifest {
        Manifest::Image(m) => {
            let mut whole = true;
            for d in std::iter::once(&m.config).chain(&m.layers) {
                out.insert(d.digest.clone());
                whole &= !bad.contains(&d.digest) && store.blob_size(&d.digest) == Some(d.size);
            }
            whole
        }
        Manifest::Index(index) => {
            let mut whole = true;
            for child in &index.manifests {
                if store.has(&child.digest) {
                    whole &= reach(store, &child.digest, bad, out);
                }
            }
            whole
        }
    }
}

/// Files and directories under `root` that others cannot read, with the mode that
/// lets them (read bits for all; search bits on directories). Temporaries aside.
fn unreadable_paths(root: &std::path::Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(rd) = fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) || SCRATCH_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                continue;
            }
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            let mode = meta.permissions().mode();
            let want = if meta.is_dir() {
                todo.push(e.path());
                mode | 0o055
            } else if meta.is_file() {
                mode | 0o044
            } else {
                continue;
            };
            if want != mode {
                out.push((e.path(), want & 0o7777));
            }
        }
    }
    out
}

fn entry_name(e: &layout::IndexEntry) -> String {
    e.ref_name()
        .map(str::to_string)
        .unwrap_or_else(|| e.digest.to_string())
}

impl BlobStore {
    /// Hashes every blob against its name; reports damage. With `repair` (which
    /// needs a store from `open_exclusive`), removes the damaged blobs, the index
    /// entries that need them, and resets an unreadable `index.json`.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport {
            cache: self.root().to_path_buf(),
            ..VerifyReport::default()
        };
        let mut bad = HashSet::new();
        for digest in stored_digests(self)? {
            let size = self.blob_size(&digest).unwrap_or(0);
            report.blobs_checked += 1;
            report.bytes_checked += size;
            if let BlobState::Corrupt(actual) = self.verify_now(&digest)? {
                report.corrupt.push(CorruptBlob {
                    path: self.blob_path(&digest),
                    digest: digest.clone(),
                    actual,
                });
                bad.insert(digest);
            }
        }
        let index = match self.read_index() {
            Ok(index) => Some(index),
            Err(StoreError::BadIndex { .. }) => {
                report.index_corrupt = true;
                None
            }
            Err(e) => return Err(e),
        };
        let mut keep = Vec::new();
        if let Some(index) = &index {
            for e in &index.manifests {
                let mut seen = HashSet::new();
                if reach(self, &e.digest, &bad, &mut seen) {
                    keep.push(e.clone());
                } else {
                    report.broken_entries.push(entry_name(e));
                }
            }
        }
        let unreadable = unreadable_paths(self.root());
        report.unreadable = unreadable.len();
        if !repair {
            return Ok(report);
        }
        for (path, mode) in unreadable {
            if fs::set_permissions(&path, fs::Permissions::from_mode(mode)).is_ok() {
                report.permissions_fixed += 1;
            }
        }
        for c in &report.corrupt {
            self.remove_blob(&c.digest)?;
            report.removed_blobs.push(c.digest.clone());
        }
        if report.index_corrupt {
            self.write_index(&Index::default())?;
            report.index_reset = true;
        } else if !report.broken_entries.is_empty() {
            let _lock = self.lock()?;
            let mut index = self.read_index()?;
            index
                .manifests
                .retain(|e| !report.broken_entries.contains(&entry_name(e)));
            self.write_index(&index)?;
            report.removed_entries = report.broken_entries.clone();
        }
        Ok(report)
    }

    /// Removes blobs no index entry reaches, what is known of them, and the
    /// temporaries of killed processes. Needs a store from `open_exclusive`.
    pub fn prune(&self) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport {
            cache: self.root().to_path_buf(),
            ..PruneReport::default()
        };
        let mut swept = self.swept_at_open;
        swept += self.sweep();
        report.removed_temporaries = swept.count;
        report.removed_temporary_bytes = swept.bytes;
        let index = self.read_index()?;
        let mut reachable = HashSet::new();
        for e in &index.manifests {
            reach(self, &e.digest, &HashSet::new(), &mut reachable);
            // The index a platform's entry was chosen from: kept, so that the tag's
            // next pull is answered from here after a HEAD.
            if let Some(source) = e
                .annotations
                .get(super::SOURCE_DIGEST)
                .and_then(|d| d.parse::<Digest>().ok())
            {
                reach(self, &source, &HashSet::new(), &mut reachable);
            }
        }
        let mut kept: BTreeSet<String> = BTreeSet::new();
        for digest in stored_digests(self)? {
            if reachable.contains(&digest) {
                kept.insert(digest.hex().to_string());
                continue;
            }
            let size = self.blob_size(&digest).unwrap_or(0);
            self.remove_blob(&digest)?;
            report.removed_blobs += 1;
            report.removed_blob_bytes += size;
        }
        report.kept_blobs = kept.len();
        // What is known of blobs no longer stored: layer records, origins, stamps.
        let private = self.root().join("ocibench");
        for (sub, suffix) in [("layers", ".json"), ("origins", ""), ("verified", "")] {
            let Ok(rd) = fs::read_dir(private.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let hex = name.strip_suffix(suffix).unwrap_or(&name);
                if !kept.contains(hex) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        report.freed_bytes = report.removed_blob_bytes + report.removed_temporary_bytes;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    #[test]
    fn repair_makes_files_of_an_older_cache_readable_by_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put_bytes(b"blob").unwrap();
        // What ocibench before issue 12 wrote: 0600 files, a 0700 directory.
        let private = [store.blob_path(&d), layout::index_path(dir.path())];
        for p in &private {
            fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let layers = dir.path().join("ocibench/layers");
        fs::set_permissions(&layers, fs::Permissions::from_mode(0o700)).unwrap();
        let report = store.verify(false).unwrap();
        assert_eq!(report.unreadable, 3, "{report:?}");
        assert!(
            !report.damaged(),
            "not damage: nothing is wrong with the content"
        );
        let report = store.verify(true).unwrap();
        assert_eq!(report.permissions_fixed, 3, "{report:?}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for p in &private {
            assert_eq!(mode(p), 0o644);
        }
        assert_eq!(mode(&layers), 0o755);
        assert_eq!(store.verify(false).unwrap().unreadable, 0);
    }
}
