//! Terminal progress bars (indicatif): the binary's implementation of `Reporter`.
//! Drawn only when stderr is a terminal and `--quiet` is off.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use ocibench::progress::{NoProgress, Reporter, Task, TaskId, next_task_id};
use ocibench::report::units::human_bytes;

/// One bar per task (layer, blob, output), under a shared `MultiProgress`.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<TaskId, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

/// A bar's prefix and label for a task: `pull sha256:0123456789ab 12.3 MB`.
fn describe(task: &Task<'_>) -> (&'static str, String) {
    let short = |d: &str| {
        let hex = d.split_once(':').map_or(d, |(_, h)| h);
        hex[..hex.len().min(12)].to_string()
    };
    match *task {
        Task::Download { digest, bytes } => {
            ("pull", format!("{} {}", short(digest), human_bytes(bytes)))
        }
        Task::Upload { digest, bytes } => {
            ("push", format!("{} {}", short(digest), human_bytes(bytes)))
        }
        Task::Layer {
            dest: Some(dest), ..
        } => ("layer", format!("layer {dest}")),
        Task::Layer { sources, .. } => ("layer", format!("layer ({sources} sources)")),
        Task::Write { destination, .. } => ("write", destination.to_string()),
    }
}

impl Reporter for Bars {
    fn start(&self, task: Task<'_>) -> TaskId {
        let bar = match task.total_bytes() {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{prefix:>8} {msg:24} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        let (prefix, label) = describe(&task);
        bar.set_prefix(prefix);
        bar.set_message(label);
        let bar = self.multi.add(bar);
        let id = next_task_id();
        self.bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, bar);
        id
    }
    fn advance(&self, id: TaskId, delta: u64) {
        if let Some(b) = self.bars.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            b.inc(delta);
        }
    }
    fn finish(&self, id: TaskId) {
        if let Some(b) = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
        {
            b.finish_and_clear();
        }
    }
}

/// Bars when `show` is true, nothing otherwise.
pub fn reporter(show: bool) -> Box<dyn Reporter> {
    if show {
        Box::new(Bars::new())
    } else {
        Box::new(NoProgress)
    }
}
