//! The OCI image layout format, known here and nowhere else: the `oci-layout`
//! file, `index.json` and `blobs/<alg>/<hex>`.
//!
//! Four things are layouts: the blob store (the cache), a user's `oci:DIR` read
//! as a source or written by an export, and an `oci-archive` (a layout in a
//! tar). They differ in how they write (the cache keeps its files private and
//! locks a file of its own; an export writes world-readable files and locks the
//! directory), so this module gives paths (`paths`), the index (`index`) and
//! the writes an export makes (`dir`), and leaves the rest to them. The
//! submodules depend one way: `index` on `dir` and `paths`, `dir` on `paths`.

mod dir;
mod index;
mod paths;

pub use dir::{
    FILE_MODE, LayoutError, ensure_blob_dir, existing_parent, init, lock_exclusive, open_locked,
    write_file,
};
pub use index::{Index, IndexEntry, REF_NAME, ReadIndexError, add_to_index, read_index};
pub use paths::{blob_dir, blob_name, blob_path, index_path, is_layout};

use std::fs;
use std::io;
use std::path::Path;

use paths::{ALGORITHM, BLOBS, INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION};

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
