//! Progress reporting, as a trait the libraries call and only the binary draws.
//!
//! Libraries (`oci`) never print: they push events into a `Reporter`. An event
//! says what the task is (a `Task`, data, not text); the reporter hands out the
//! task's id and decides how to show it. The binary implements it with indicatif
//! bars on a terminal and with nothing elsewhere, so `--json` output and pipes
//! stay clean.

use std::sync::atomic::{AtomicU64, Ordering};

/// A running task, as handed out by `Reporter::start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId(pub u64);

/// What a task is. The reporter labels it; a library never formats a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task<'a> {
    /// A blob being pulled (`digest` as `sha256:...`).
    Download { digest: &'a str, bytes: u64 },
    /// A blob being pushed.
    Upload { digest: &'a str, bytes: u64 },
    /// A layer being built: its destination when it has one source, else the count.
    Layer {
        dest: Option<&'a str>,
        sources: usize,
    },
    /// An image being written to a local destination (`oci:DIR`, `oci-archive:FILE`, ...).
    Write { destination: &'a str, bytes: u64 },
}

impl Task<'_> {
    /// The task's size in bytes, where known up front.
    pub fn total_bytes(&self) -> Option<u64> {
        match *self {
            Task::Download { bytes, .. }
            | Task::Upload { bytes, .. }
            | Task::Write { bytes, .. } => Some(bytes),
            Task::Layer { .. } => None,
        }
    }
}

/// Receives progress events from long operations (pull, push, build, export).
///
/// Implementations must be cheap and thread-safe: blobs are transferred on
/// several threads at once.
pub trait Reporter: Send + Sync {
    /// A task starts; the returned id names it in later events.
    fn start(&self, task: Task<'_>) -> TaskId;
    /// `delta` more bytes of task `id` are done.
    fn advance(&self, _id: TaskId, _delta: u64) {}
    /// Task `id` is finished (successfully or not).
    fn finish(&self, _id: TaskId) {}
}

/// Hands out task ids, unique for the life of the process: for `Reporter`s.
pub fn next_task_id() -> TaskId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    TaskId(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A reporter that ignores everything.
pub struct NoProgress;

impl Reporter for NoProgress {
    fn start(&self, _task: Task<'_>) -> TaskId {
        TaskId(0)
    }
}
