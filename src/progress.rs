//! Progress reporting, as a trait the libraries call and only the binary draws.
//!
//! Libraries (`oci`, `loadgen`) never print: they push events into a `Reporter`.
//! The binary implements it with indicatif bars on a terminal and with nothing
//! elsewhere, so `--json` output and pipes stay clean.

/// Receives progress events from long operations (pull, push, build).
///
/// Implementations must be cheap and thread-safe: blobs are transferred on
/// several threads at once.
pub trait Reporter: Send + Sync {
    /// A task of `total` bytes (or units) starts; `label` names it for a bar.
    fn start(&self, _id: u64, _label: &str, _total: Option<u64>) {}
    /// `delta` more bytes of task `id` are done.
    fn advance(&self, _id: u64, _delta: u64) {}
    /// Task `id` is finished (successfully or not).
    fn finish(&self, _id: u64) {}
    /// A one-line status message (e.g. "using cached manifest").
    fn message(&self, _msg: &str) {}
}

/// A reporter that ignores everything.
pub struct NoProgress;

impl Reporter for NoProgress {}
