//! Time limits on registry traffic, so that a slow or stalled registry cannot hold
//! a command for hours: a low-speed limit (curl's `--speed-limit`/`--speed-time`:
//! an attempt moving fewer than N bytes a second, averaged over T seconds, is
//! abandoned and retried like a broken connection) and an overall deadline for a
//! whole command (`--timeout`), after which nothing is retried.
//!
//! Both are enforced on bodies by [`Watched`], which wraps blob downloads, upload
//! bodies and the small bodies read whole; a read or write with no progress at all
//! fails after two windows (ureq's per-read and per-write timeouts); the deadline
//! also bounds every request through ureq's per-request `timeout_global`.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// Fewer than `bytes_per_sec` bytes a second, averaged over `over`, aborts the
/// attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeedLimit {
    pub bytes_per_sec: u64,
    pub over: Duration,
}

impl Default for SpeedLimit {
    /// 1 KiB/s over 30 s: far below any working link (a healthy registry sends
    /// megabytes a second), far above a server trickling bytes to keep a
    /// connection alive (one byte a second kept a 200 KB blob going for ~55 h).
    fn default() -> Self {
        SpeedLimit {
            bytes_per_sec: 1024,
            over: Duration::from_secs(30),
        }
    }
}

/// Why a transfer was cut short: carried inside the `io::Error` a body read returns
/// (kind `TimedOut`), so that callers can tell a retryable stall from the end.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransferTimeout {
    /// Below the low-speed limit: worth another attempt.
    #[error(
        "the registry sent fewer than {} bytes/s for {} ({bytes} bytes in {})",
        limit.bytes_per_sec,
        humantime::format_duration(limit.over),
        humantime::format_duration(round_ms(*elapsed))
    )]
    TooSlow {
        limit: SpeedLimit,
        bytes: u64,
        elapsed: Duration,
    },
    /// The command's `--timeout` passed: nothing more is tried.
    #[error("timed out after {}", humantime::format_duration(*after))]
    Deadline { after: Duration },
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

impl TransferTimeout {
    /// The `TransferTimeout` inside an I/O error, if that is what it is.
    pub fn of(e: &io::Error) -> Option<&TransferTimeout> {
        e.get_ref()?.downcast_ref()
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, self)
    }
}

/// The end of a command's time, if it has one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline {
    at: Option<(Instant, Duration)>,
}

impl Deadline {
    /// `timeout` from now; `None` is no deadline.
    pub fn after(timeout: Option<Duration>) -> Self {
        Deadline {
            at: timeout.map(|t| (Instant::now() + t, t)),
        }
    }

    /// Time left: `None` without a deadline, zero once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|(at, _)| at.saturating_duration_since(Instant::now()))
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_some_and(|r| r.is_zero())
    }

    /// The timeout this deadline was set with.
    pub fn timeout(&self) -> Option<Duration> {
        self.at.map(|(_, t)| t)
    }

    pub(super) fn error(&self) -> TransferTimeout {
        TransferTimeout::Deadline {
            after: self.timeout().unwrap_or_default(),
        }
    }
}

/// Runs `req` on `agent` within what is left of `deadline` (ureq's `timeout_global`
/// keeps running while the response body is read).
pub(super) fn run<B: ureq::AsSendBody>(
    agent: &ureq::Agent,
    req: http::Request<B>,
    deadline: Deadline,
) -> Result<http::Response<ureq::Body>, ureq::Error> {
    match deadline.remaining() {
        None => agent.run(req),
        Some(left) => agent.run(
            agent
                .configure_request(req)
                .timeout_global(Some(left))
                .build(),
        ),
    }
}

/// Reads a small body whole (a manifest, a tag list, an error, a token) under the
/// low-speed limit and the deadline: a few bytes a second must not stretch even a
/// 64 KiB error body over hours. `Ok(None)` when it holds more than `limit` bytes.
pub(super) fn read_capped(
    body: ureq::Body,
    limit: u64,
    speed: Option<SpeedLimit>,
    deadline: Deadline,
) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    Watched::new(body.into_reader(), speed, deadline)
        .take(limit + 1)
        .read_to_end(&mut buf)?;
    Ok((buf.len() as u64 <= limit).then_some(buf))
}

/// A body (download or upload) watched for the low-speed limit and the deadline.
pub(super) struct Watched<R> {
    inner: R,
    limit: Option<SpeedLimit>,
    deadline: Deadline,
    window_start: Instant,
    window_bytes: u64,
}

impl<R> Watched<R> {
    pub(super) fn new(inner: R, limit: Option<SpeedLimit>, deadline: Deadline) -> Self {
        Watched {
            inner,
            limit: limit.filter(|l| l.bytes_per_sec > 0 && !l.over.is_zero()),
            deadline,
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }

    /// Checks the window that ends now: too few bytes in `over` is an error; a
    /// window that passed the test starts afresh.
    fn check(&mut self) -> io::Result<()> {
        if self.deadline.passed() {
            return Err(self.deadline.error().into_io());
        }
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let elapsed = self.window_start.elapsed();
        if elapsed < limit.over {
            return Ok(());
        }
        let wanted = limit.bytes_per_sec as f64 * elapsed.as_secs_f64();
        if (self.window_bytes as f64) < wanted {
            return Err(TransferTimeout::TooSlow {
                limit,
                bytes: self.window_bytes,
                elapsed,
            }
            .into_io());
        }
        self.window_start = Instant::now();
        self.window_bytes = 0;
        Ok(())
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            // A read cut by ureq's own timers (per read, the global budget) says
            // which limit it was, so the caller knows whether to try again.
            Err(e) if TransferTimeout::of(&e).is_none() => {
                if self.deadline.passed() {
                    return Err(self.deadline.error().into_io());
                }
                if is_timeout(&e)
                    && let Some(limit) = self.limit
                {
                    return Err(TransferTimeout::TooSlow {
                        limit,
                        bytes: self.window_bytes,
                        elapsed: self.window_start.elapsed(),
                    }
                    .into_io());
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.window_bytes += n as u64;
        if n > 0 {
            self.check()?;
        }
        Ok(n)
    }
}

/// Whether a read failed on a timer: the OS's, or ureq's (which it hands over as
/// `io::Error::other(ureq::Error::Timeout(..))`).
fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|i| i.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives `step` bytes per read, sleeping `pause` before each.
    struct Trickle {
        left: usize,
        step: usize,
        pause: Duration,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.pause);
            let n = self.step.min(self.left).min(buf.len());
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_trickle_below_the_limit_is_cut_and_says_so() {
        let slow = Trickle {
            left: 1 << 20,
            step: 1,
            pause: Duration::from_millis(10),
        };
        let limit = SpeedLimit {
            bytes_per_sec: 1000,
            over: Duration::from_millis(100),
        };
        let mut w = Watched::new(slow, Some(limit), Deadline::default());
        let e = io::copy(&mut w, &mut io::sink()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            matches!(
                TransferTimeout::of(&e),
                Some(TransferTimeout::TooSlow { .. })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("fewer than 1000 bytes/s"), "{e}");
    }

    #[test]
    fn no_limit_and_no_deadline_read_everything() {
        let slow = Trickle {
            left: 50,
            step: 1,
            pause: Duration::ZERO,
        };
        let mut w = Watched::new(slow, None, Deadline::after(None));
        assert_eq!(io::copy(&mut w, &mut io::sink()).unwrap(), 50);
    }

    #[test]
    fn a_passed_deadline_ends_the_read() {
        let d = Deadline::after(Some(Duration::ZERO));
        assert!(d.passed());
        let mut w = Watched::new(&b"abc"[..], None, d);
        let e = w.read(&mut [0; 8]).unwrap_err();
        assert!(
            matches!(
                TransferTimeout::of(&e),
                Some(TransferTimeout::Deadline { .. })
            ),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "timed out after 0s");
    }
}
