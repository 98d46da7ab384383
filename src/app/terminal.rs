//! Terminal progress bars (indicatif): the binary's implementation of `Reporter`.
//! Drawn only when stderr is a terminal and `--quiet` is off.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use ocibench::progress::{NoProgress, Reporter};

/// One bar per task (layer, blob), under a shared `MultiProgress`.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<u64, ProgressBar>>,
    prefix: String,
}

impl Bars {
    pub fn new(prefix: &str) -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
            prefix: prefix.to_string(),
        }
    }
}

impl Reporter for Bars {
    fn start(&self, id: u64, label: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{prefix:>8} {msg:24} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.set_prefix(self.prefix.clone());
        bar.set_message(label.to_string());
        let bar = self.multi.add(bar);
        self.bars.lock().expect("bars lock").insert(id, bar);
    }
    fn advance(&self, id: u64, delta: u64) {
        if let Some(b) = self.bars.lock().expect("bars lock").get(&id) {
            b.inc(delta);
        }
    }
    fn finish(&self, id: u64) {
        if let Some(b) = self.bars.lock().expect("bars lock").remove(&id) {
            b.finish_and_clear();
        }
    }
    fn message(&self, msg: &str) {
        let _ = self.multi.println(msg);
    }
}

/// Bars when `show` is true, nothing otherwise.
pub fn reporter(show: bool, prefix: &str) -> Box<dyn Reporter> {
    if show {
        Box::new(Bars::new(prefix))
    } else {
        Box::new(NoProgress)
    }
}
