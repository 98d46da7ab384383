//! The command's result on stdout, and what a closed stdout means.
//!
//! Every command does its work first and prints last, so when the reader goes
//! away (`ocibench size --json IMAGE | head -c 10`) the work is complete and only
//! the rest of the report is lost. That is no failure: like ripgrep, the command
//! exits 0 and says nothing (not `error: Broken pipe`). Exit 0 rather than 141
//! (128 + SIGPIPE, what a C program killed by the signal gives): under
//! `set -o pipefail` (GitHub Actions' `shell: bash`) a 141 would fail a CI step
//! whose every command did what it was asked. A failure of the command itself
//! (nothing answered a `bench`) still exits non-zero, its error on stderr.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe returns EPIPE; only writes
//! to stdout made through [`write_stdout`] become [`StdoutClosed`], so a broken
//! pipe elsewhere (a registry closing an upload) stays a failure.

use std::io::{self, Write};

/// Stdout's reader went away: the binary exits 0 quietly (see the module header).
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
pub struct StdoutClosed;

/// Writes the command's report to stdout with `write`, then flushes; a closed
/// stdout is [`StdoutClosed`], any other failure an error naming stdout.
pub fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) => Err(stdout_error(e)),
    }
}

fn stdout_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("cannot write to stdout")
    }
}

/// `value` as one pretty JSON document and a newline (the `--json` output).
pub fn json<T: serde::Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    // serde_json hands an I/O error back as it came (EPIPE stays EPIPE).
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_pipe_is_stdout_closed() {
        let e = stdout_error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(e.downcast_ref::<StdoutClosed>().is_some());
        let e = stdout_error(io::Error::from(io::ErrorKind::StorageFull));
        assert!(e.downcast_ref::<StdoutClosed>().is_none());
        assert!(
            format!("{e:#}").starts_with("cannot write to stdout"),
            "{e:#}"
        );
    }

    #[test]
    fn json_keeps_the_io_error_kind() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let e = json(&mut Closed, &serde_json::json!({"a": 1})).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
