//! What SIGINT, SIGTERM and SIGHUP do to the commands that write into the cache or
//! an output (`pull`, `size`, `build`, `push`, `cache`): remove the temporaries the
//! library has under way (partial blobs, unpacked archives, staged layouts and
//! archives: `oci::temp`), say so on stderr, and exit 128 + the signal, the shell's
//! convention. `run` and `compare` have the podman runner's handler instead
//! (`args::podman_runner`), which removes these too: two handlers would race to exit.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::app::terminal::{signal_word, status};

/// A signal is being handled: the handler thread ends the process.
static HANDLING: AtomicBool = AtomicBool::new(false);

/// Called when a command returns: while a signal is being handled, waits for the
/// handler to end the process, so that a command failing because its files were
/// just removed does not exit 1 before the handler exits 128 + the signal.
pub fn wait_if_interrupted() {
    while HANDLING.load(Ordering::SeqCst) {
        std::thread::park();
    }
}

/// Installs the handler (once per process).
pub fn remove_temporaries_on_signal() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        // Without a handler, signals keep their default action; the next run
        // sweeps what that leaves (the temporaries are no longer locked).
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("ocibench-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    HANDLING.store(true, Ordering::SeqCst);
                    status(format_args!(
                        "ocibench: {}; removing partial files",
                        signal_word(sig)
                    ));
                    ocibench::oci::temp::remove_all_live();
                    std::process::exit(128 + sig);
                }
            });
    });
}
