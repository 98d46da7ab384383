//! `index.json`, the entry point of an OCI image layout: its types, reading it,
//! and the two ways an image gets into it (the cache's typed rewrite, and an
//! export's edit that keeps whatever else a user's layout holds).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::oci::digest::Digest;
use crate::oci::image_config::to_canonical_bytes;
use crate::oci::layout::dir::{LayoutError, write_file};
use crate::oci::layout::paths::index_path;
use crate::oci::manifest::OCI_INDEX;

/// The annotation naming an image in a layout (`oci:DIR:NAME`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `index.json` of an OCI layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<IndexEntry>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
        }
    }
}

impl Index {
    /// Records `entry` under `name`, replacing an older entry of that name.
    pub fn tag(&mut self, name: &str, entry: IndexEntry) {
        self.manifests.retain(|m| m.ref_name() != Some(name));
        self.manifests.push(entry.named(Some(name)));
    }

    /// The entry recorded under `name`, if any.
    pub fn find(&self, name: &str) -> Option<&IndexEntry> {
        self.manifests.iter().find(|m| m.ref_name() == Some(name))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("index serializes")
    }

    /// The canonical `index.json` of a layout holding exactly one image.
    pub fn single(entry: IndexEntry) -> Vec<u8> {
        let index = Index {
            manifests: vec![entry],
            ..Index::default()
        };
        to_canonical_bytes(&serde_json::to_value(index).expect("index serializes"))
    }
}

/// One descriptor in `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl IndexEntry {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        IndexEntry {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: Default::default(),
        }
    }

    /// The entry named `name` (unchanged when `None`).
    pub fn named(mut self, name: Option<&str>) -> Self {
        if let Some(name) = name {
            self.annotations
                .insert(REF_NAME.to_string(), name.to_string());
        }
        self
    }

    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// Why `index.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadIndexError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// By position and kind only (see `parse_error`): never the file's text.
    #[error("{path} is not valid JSON")]
    Json {
        path: PathBuf,
        #[source]
        source: crate::oci::parse_error::ParseError,
    },
}

/// The parsed `index.json` of the layout at `root`, and its bytes as read.
pub fn read_index(root: &Path) -> Result<(Index, Vec<u8>), ReadIndexError> {
    let path = index_path(root);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(source) => return Err(ReadIndexError::Io { path, source }),
    };
    match serde_json::from_slice(&bytes) {
        Ok(index) => Ok((index, bytes)),
        Err(e) => Err(ReadIndexError::Json {
            path,
            source: crate::oci::parse_error::ParseError::json(&e),
        }),
    }
}

/// Adds `entry` to `index.json` of the layout at `dir`, replacing an entry with
/// the same name. An unnamed entry is not added again when an unnamed entry for
/// its digest already exists. Other entries and unknown fields are kept as they are.
pub fn add_to_index(dir: &Path, entry: &IndexEntry) -> Result<(), LayoutError> {
    let path = index_path(dir);
    let bad = |detail: &str| LayoutError::BadIndex {
        path: dir.to_path_buf(),
        detail: detail.to_string(),
    };
    let mut index: Value = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| bad(&crate::oci::parse_error::ParseError::json(&e).to_string()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            serde_json::to_value(Index::default()).expect("index serializes")
        }
        Err(source) => return Err(LayoutError::Write { path, source }),
    };
    let obj = index.as_object_mut().ok_or_else(|| bad("not an object"))?;
    let manifests = obj
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()));
    if manifests.is_null() {
        *manifests = Value::Array(Vec::new());
    }
    let manifests = manifests
        .as_array_mut()
        .ok_or_else(|| bad("`manifests` is not a list"))?;
    let ref_name = |e: &Value| {
        e.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match entry.ref_name() {
        Some(t) => manifests.retain(|e| ref_name(e).as_deref() != Some(t)),
        None => {
            let digest = entry.digest.to_string();
            if manifests
                .iter()
                .any(|e| ref_name(e).is_none() && e["digest"].as_str() == Some(digest.as_str()))
            {
                return Ok(());
            }
        }
    }
    manifests.push(serde_json::to_value(entry).expect("index entry serializes"));
    write_file(&path, &to_canonical_bytes(&index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::manifest::OCI_MANIFEST;

    fn entry(bytes: &[u8], name: Option<&str>) -> IndexEntry {
        IndexEntry::new(OCI_MANIFEST, Digest::of(bytes), bytes.len() as u64).named(name)
    }

    #[test]
    fn single_image_index_is_canonical() {
        let d = Digest::of(b"m");
        assert_eq!(
            String::from_utf8(Index::single(entry(b"m", Some("t")))).unwrap(),
            format!(
                r#"{{"manifests":[{{"annotations":{{"{REF_NAME}":"t"}},"digest":"{d}","mediaType":"{OCI_MANIFEST}","size":1}}],"mediaType":"{OCI_INDEX}","schemaVersion":2}}"#
            )
        );
    }

    #[test]
    fn add_to_index_replaces_names_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            index_path(dir.path()),
            r#"{"schemaVersion":2,"x-mine":{"b":1},"manifests":[{"mediaType":"m","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"annotations":{"org.opencontainers.image.ref.name":"a","other":"kept"}}]}"#,
        )
        .unwrap();
        add_to_index(dir.path(), &entry(b"one", Some("a"))).unwrap();
        add_to_index(dir.path(), &entry(b"two", None)).unwrap();
        add_to_index(dir.path(), &entry(b"two", None)).unwrap();
        let (index, bytes) = read_index(dir.path()).unwrap();
        let names: Vec<_> = index.manifests.iter().map(|m| m.ref_name()).collect();
        assert_eq!(names, [Some("a"), None], "one entry per name, one untagged");
        assert_eq!(index.find("a").unwrap().digest, Digest::of(b"one"));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["x-mine"]["b"], 1, "unknown fields are kept");
    }

    #[test]
    fn add_to_index_refuses_a_bad_index() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(index_path(dir.path()), r#"{"manifests":3}"#).unwrap();
        let err = add_to_index(dir.path(), &entry(b"one", None)).unwrap_err();
        assert!(
            matches!(&err, LayoutError::BadIndex { detail, .. } if detail == "`manifests` is not a list"),
            "{err}"
        );
    }

    #[test]
    fn tag_replaces_an_older_entry_of_the_name() {
        let mut index = Index::default();
        index.tag("x", entry(b"1", None));
        index.tag("y", entry(b"2", None));
        index.tag("x", entry(b"3", None));
        assert_eq!(index.find("x").unwrap().digest, Digest::of(b"3"));
        assert_eq!(index.manifests.len(), 2);
    }
}
