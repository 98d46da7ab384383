//! The `ocibench` binary: parse, run, and turn errors into `error:`/`hint:` lines
//! and exit statuses (0 success, 1 runtime failure, 2 bad usage or input).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
mod app;

use app::explain::ExitKind;
use app::output::StdoutClosed;

fn main() -> ExitCode {
    let cli = match app::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints its own `error:` and usage; help and version go to stdout, exit 0.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = app::run(cli);
    // A Ctrl-C's cleanup under way decides the exit status (130) itself.
    ocibench::runner::cleanup::wait_for_signal_cleanup();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Prints the error chain and the first hint found in it; picks the exit status.
fn report(err: &anyhow::Error) -> ExitCode {
    // The report's reader went away after the work was done: see app::output.
    if err.downcast_ref::<StdoutClosed>().is_some() {
        return ExitCode::SUCCESS;
    }
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err:#}");
    let mut kind = ExitKind::Runtime;
    let mut hint = None;
    for cause in err.chain() {
        if let Some((h, k)) = app::explain::explain(cause) {
            if hint.is_none() {
                hint = h;
            }
            if k == ExitKind::Usage {
                kind = k;
            }
        }
    }
    if let Some(h) = hint {
        let _ = writeln!(stderr, "hint: {h}");
    }
    ExitCode::from(kind.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broken pipe that is not stdout's (a registry closing an upload, a
    /// credential helper gone) is a failure, never a quiet exit 0.
    #[test]
    fn a_broken_pipe_elsewhere_is_a_failure() {
        let err = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("uploading blob sha256:abc");
        assert_eq!(report(&err), ExitCode::from(1));
    }
}
