//! The cheap check that a cached blob is still the one that was verified: the
//! identity its file had (length, modification time to the nanosecond, inode) when
//! its content was last hashed, kept in `ocibench/verified/<hex>`. Rewriting a blob
//! in place changes its mtime; replacing it changes its inode. What this cannot see
//! (bit rot under an unchanged mtime, a rewrite that puts the mtime back) is caught
//! where a blob is copied out of the cache (hashed on the way) and by
//! `ocibench cache verify`.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::oci::digest::Digest;
use crate::oci::store::write_atomic;
use crate::oci::temp;

fn path(root: &Path, digest: &Digest) -> PathBuf {
    root.join("ocibench").join("verified").join(digest.hex())
}

fn identity(m: &Metadata) -> String {
    format!("{} {} {} {}", m.len(), m.mtime(), m.mtime_nsec(), m.ino())
}

/// Whether the blob's file (`meta`) is as it was when last hashed.
pub(super) fn is_current(root: &Path, digest: &Digest, meta: &Metadata) -> bool {
    fs::read_to_string(path(root, digest)).is_ok_and(|s| s.trim() == identity(meta))
}

/// Remembers `meta` as the identity of the blob's file, just hashed and intact.
pub(super) fn record(root: &Path, digest: &Digest, meta: &Metadata) -> io::Result<()> {
    let p = path(root, digest);
    temp::create_dir(p.parent().expect("stamp has a parent"))?;
    write_atomic(&p, identity(meta).as_bytes())
}

/// Forgets the blob's identity (it is being removed or replaced).
pub(super) fn forget(root: &Path, digest: &Digest) {
    let _ = fs::remove_file(path(root, digest));
}
