//! Why a layer could not be built: the error of `layer` and of the directory
//! walk behind it (`layer_walk`), kept apart so that both use it and neither
//! imports the other for it.

use std::io;
use std::path::{Path, PathBuf};

use crate::oci::compress::LayerCompression;
use crate::oci::store::StoreError;

/// Why a layer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer destination {dest:?} is not valid: {reason}")]
    BadDest { dest: String, reason: &'static str },
    #[error("layer source {path} cannot be used")]
    Source {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is a {kind}; a layer holds only files, directories and links")]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("{path} changed size while the layer was being written")]
    Changed { path: PathBuf },
    #[error("{dest} in the layer is a directory in one source and not in another ({sources:?})")]
    Conflict { dest: String, sources: Vec<PathBuf> },
    #[error("SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds since 1970-01-01")]
    BadEpoch { value: String },
    #[error("{}", bad_level(.0))]
    BadLevel(LayerCompression),
    #[error("writing the layer failed")]
    Write {
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) fn read_err(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// "zstd level 23 is out of range 1..=22".
fn bad_level(c: &LayerCompression) -> String {
    match *c {
        LayerCompression::Gzip { level } => format!("gzip level {level} is out of range 0..=9"),
        LayerCompression::Zstd { level } => format!(
            "zstd level {level} is out of range 1..={}",
            crate::oci::compress::zstd_stream::MAX_LEVEL
        ),
    }
}
