//! Where things are in a layout: the names the format fixes.

use std::path::{Path, PathBuf};

use crate::oci::digest::Digest;

pub(super) const LAYOUT_FILE: &str = "oci-layout";
pub(super) const INDEX_FILE: &str = "index.json";
pub(super) const LAYOUT_VERSION: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
pub(super) const BLOBS: &str = "blobs";
/// The only digest algorithm blobs are stored under.
pub(super) const ALGORITHM: &str = "sha256";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_fixes_these_names() {
        let d = Digest::of(b"x");
        let root = Path::new("/l");
        assert_eq!(blob_name(&d), format!("blobs/sha256/{}", d.hex()));
        assert_eq!(
            blob_path(root, &d),
            Path::new("/l/blobs/sha256").join(d.hex())
        );
        assert_eq!(blob_dir(root), Path::new("/l/blobs/sha256"));
        assert_eq!(index_path(root), Path::new("/l/index.json"));
        assert_eq!(LAYOUT_FILE, "oci-layout");
        assert_eq!(LAYOUT_VERSION, br#"{"imageLayoutVersion":"1.0.0"}"#);
    }
}
