//! What ocibench created in podman, for removal when the process is interrupted.
//!
//! Normal paths clean up in `Drop` (`RunningContainer`, `LoadedImage`), which
//! also runs on panics. A signal is different: SIGINT/SIGTERM/SIGHUP would kill
//! the process with containers still running. So every container, loaded image
//! and temporary archive is recorded here while it exists, and the first
//! registration installs a handler thread that, on a signal, waits for podman
//! commands still creating something (they run in their own process group, so a
//! terminal's Ctrl-C does not cut them in half), removes everything recorded,
//! and exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::RunnerError;

/// Something to remove on a signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resource {
    Container { podman: PathBuf, name: String },
    Image { podman: PathBuf, name: String },
    Path(PathBuf),
}

#[derive(Default)]
struct Registry {
    next: u64,
    live: Vec<(u64, Resource)>,
    /// podman commands under way that may create a resource not yet recorded.
    creating: usize,
    shutting_down: bool,
}

/// How long a signal waits for a `podman run` or `podman load` under way.
const CREATE_WAIT: Duration = Duration::from_secs(60);

fn registry() -> MutexGuard<'static, Registry> {
    state().0.lock().unwrap_or_else(|p| p.into_inner())
}

fn state() -> &'static (Mutex<Registry>, Condvar) {
    static STATE: OnceLock<(Mutex<Registry>, Condvar)> = OnceLock::new();
    STATE.get_or_init(Default::default)
}

/// A podman command under way that will create a resource; `record` it once
/// created. A signal arriving meanwhile waits for this guard to drop.
pub(crate) struct Creating {
    _private: (),
}

/// Announces a creating command; fails once a signal is being handled.
pub(crate) fn creating() -> Result<Creating, RunnerError> {
    install_handler();
    let mut r = registry();
    if r.shutting_down {
        return Err(RunnerError::Interrupted);
    }
    r.creating += 1;
    Ok(Creating { _private: () })
}

impl Creating {
    /// Records `resource` (created, or possibly created) for removal on a signal.
    pub(crate) fn record(&self, resource: Resource) -> Registration {
        record(resource)
    }
}

impl Drop for Creating {
    fn drop(&mut self) {
        let (_, cv) = state();
        let mut r = registry();
        r.creating -= 1;
        drop(r);
        cv.notify_all();
    }
}

fn record(resource: Resource) -> Registration {
    install_handler();
    let mut r = registry();
    r.next += 1;
    let id = r.next;
    r.live.push((id, resource));
    Registration { id }
}

/// A recorded resource; dropping it forgets the record (the owner removed it).
#[derive(Debug)]
pub struct Registration {
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        registry().live.retain(|(id, _)| *id != self.id);
    }
}

/// Removes `path` (a file or directory) if the process is interrupted while the
/// returned guard lives: for temporary archives the caller deletes itself
/// normally (e.g. a `tempfile::TempDir`).
pub fn remove_on_signal(path: &Path) -> Registration {
    record(Resource::Path(path.to_path_buf()))
}

/// What the binary does around the cleanup a signal triggers (the library never
/// prints and picks no exit status).
#[derive(Debug, Clone, Copy)]
pub struct OnSignal {
    /// Called on the signal thread before anything is removed: to say so.
    pub notice: fn(signal: i32),
    /// Called once everything is removed: ends the process.
    pub exit: fn(signal: i32) -> !,
}

static ON_SIGNAL: OnceLock<OnSignal> = OnceLock::new();

/// Sets what happens around a signal's cleanup (once per process; later calls are
/// ignored), and starts listening for the signals at once: a signal before
/// anything is recorded (while podman is probed or the image read) then ends
/// the process as one during the run does (`exit`, after removing nothing),
/// not by the signal's default action. Without it, the cleanup is followed by
/// the signal's default action.
pub fn on_signal(handling: OnSignal) {
    let _ = ON_SIGNAL.set(handling);
    install_handler();
}

/// Blocks for good if a signal's cleanup is under way (it ends the process).
///
/// The binary calls it before it exits on its own: an error caused by the
/// cleanup itself (a container removed under a waiting `run`) must not end the
/// process, with status 1, before the cleanup has removed everything and
/// exited with 128 + the signal.
pub fn wait_for_signal_cleanup() {
    if registry().shutting_down {
        loop {
            std::thread::park();
        }
    }
}

fn install_handler() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        // If the handler cannot be installed, signals keep their default
        // action: Drop still cleans up on errors and panics.
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            let _ = std::thread::Builder::new()
                .name("ocibench-signals".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        let handling = ON_SIGNAL.get().copied();
                        if let Some(h) = handling {
                            // Whatever it does, the containers still go.
                            let _ = std::panic::catch_unwind(|| (h.notice)(sig));
                        }
                        remove_all();
                        match handling {
                            Some(h) => (h.exit)(sig),
                            None => {
                                // As if the handler had never been there.
                                let _ = signal_hook::low_level::emulate_default_handler(sig);
                                std::process::abort();
                            }
                        }
                    }
                });
        }
    });
}

/// Stops new creations, waits for those under way, removes everything recorded.
fn remove_all() {
    let (_, cv) = state();
    let mut r = registry();
    r.shutting_down = true;
    let deadline = Instant::now() + CREATE_WAIT;
    while r.creating > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        r = cv
            .wait_timeout(r, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    let live: Vec<Resource> = r.live.drain(..).map(|(_, res)| res).collect();
    drop(r);
    // Containers first: an image in use by one cannot be removed.
    let mut containers: Vec<(&PathBuf, &str)> = Vec::new();
    for res in &live {
        if let Resource::Container { podman, name } = res {
            containers.push((podman, name));
        }
    }
    if let Some((podman, _)) = containers.first() {
        let _ = quiet(podman)
            .args(["rm", "-f", "-t", "0", "--ignore"])
            .args(containers.iter().map(|(_, n)| *n))
            .status();
    }
    for res in &live {
        match res {
            Resource::Image { podman, name } => {
                let _ = quiet(podman).args(["rmi", "--ignore", name]).status();
            }
            Resource::Path(p) => {
                let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
            }
            Resource::Container { .. } => {}
        }
    }
}

fn quiet(podman: &Path) -> Command {
    let mut c = super::podman::detached(podman);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}
