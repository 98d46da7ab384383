//! The hot loop: one current-thread tokio runtime per worker thread, running
//! that worker's share of the concurrent clients as local tasks.
//!
//! Every client loops over its `Sender` (its own HTTP/1.1 connection, or its
//! stream on a shared HTTP/2 connection): claim a request from the shared
//! budget (`-n`) or check the clock (`-z`), send, read the whole response, and
//! count it in its worker's `Tally` (shared by the worker's tasks through an
//! `Rc<RefCell<_>>`: one thread, no atomics, no channel). A deadline slot per
//! client, watched by one watchdog task per worker, bounds each request by
//! `--timeout` and by the `-z` deadline.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hyper::client::conn::{http1, http2};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::connection::RequestTemplate;
use super::deadline::{self, Slot};
use super::http2::{Http2Group, Http2Sender, LocalExec};
use super::result::{ErrorKind, Tally};
use super::sender::{Http1Sender, Sender};
use super::transport::TlsClient;

/// One worker's share of an open-loop schedule (`--rate`): its requests are
/// due at `start + offset + k * interval`, k = 0, 1, ... (below `limit` for a
/// `-n` run, before the end for a `-z` run). Workers' offsets interleave their
/// slots, so together they send at the whole rate, evenly spaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerSchedule {
    /// Seconds between this worker's requests.
    pub interval: f64,
    /// Seconds from the start to this worker's first request.
    pub offset: f64,
    /// `-n` runs: this worker's share of the requests.
    pub limit: Option<u64>,
}

impl WorkerSchedule {
    /// When request `k` is due, after the start.
    fn due(&self, k: u64) -> Duration {
        Duration::from_secs_f64(self.offset + k as f64 * self.interval)
    }

    /// Request slots this schedule holds: its `limit`, or those due before
    /// `duration` (exactly the slots `claim` hands out).
    pub fn slots(&self, duration: Option<Duration>) -> u64 {
        match (self.limit, duration) {
            (Some(n), _) => n,
            (None, Some(d)) => {
                // An estimate, then corrected with the very test `claim` uses.
                let mut k = ((d.as_secs_f64() - self.offset) / self.interval)
                    .ceil()
                    .max(0.0) as u64;
                while k > 0 && self.due(k - 1) >= d {
                    k -= 1;
                }
                while self.due(k) < d {
                    k += 1;
                }
                k
            }
            (None, None) => 0,
        }
    }

    /// Takes the next slot: when it is due, or `None` once the schedule is done.
    #[inline]
    fn claim(&self, next: &Cell<u64>, start: Instant, end: Option<Instant>) -> Option<Instant> {
        let k = next.get();
        if self.limit.is_some_and(|n| k >= n) {
            return None;
        }
        let at = start + self.due(k);
        if end.is_some_and(|e| at >= e) {
            return None;
        }
        next.set(k + 1);
        Some(at)
    }
}

/// How many requests a client counts before publishing them to `Progress`.
const PROGRESS_BATCH: u64 = 16;

/// Requests left to hand out; shared by every client of every worker.
#[derive(Debug)]
pub struct Budget(AtomicI64);

impl Budget {
    pub fn new(n: u64) -> Budget {
        Budget(AtomicI64::new(i64::try_from(n).unwrap_or(i64::MAX)))
    }
    /// Takes one request; false once all are taken. Over-claims only drive
    /// the counter below zero, so exactly `n` claims ever succeed.
    #[inline]
    pub fn claim(&self) -> bool {
        self.0.fetch_sub(1, Ordering::Relaxed) > 0
    }

    /// Takes one request, through a worker's `reserve`: refilled from the
    /// shared counter a few at a time, so workers rarely touch the shared
    /// cache line. Chunks shrink to one near the end; exactly `n` succeed.
    #[inline]
    pub fn claim_via(&self, reserve: &Cell<u64>) -> bool {
        let left = reserve.get();
        if left > 0 {
            reserve.set(left - 1);
            return true;
        }
        let remaining = self.0.load(Ordering::Relaxed);
        if remaining <= 0 {
            return false;
        }
        let want = (remaining / 512).clamp(1, 32);
        let before = self.0.fetch_sub(want, Ordering::Relaxed);
        if before <= 0 {
            return false;
        }
        // Granted: min(before, want); the sum of grants telescopes to `n`.
        reserve.set(before.min(want) as u64 - 1);
        true
    }

    /// Hands out nothing more (a run stopped early); the few requests already
    /// in workers' reserves still go.
    pub fn close(&self) {
        self.0.store(i64::MIN / 2, Ordering::Relaxed);
    }
}

/// Everything the clients of all workers share, read-only but for atomics.
#[derive(Debug)]
pub struct Shared {
    pub addr: SocketAddr,
    pub http1: http1::Builder,
    /// `--http2`: every connection is HTTP/2, shared by `streams` clients.
    pub http2: Option<http2::Builder<LocalExec>>,
    pub streams: u64,
    /// `https://`: the TLS client every connection goes through.
    pub tls: Option<TlsClient>,
    /// Set when a server over TLS did not choose ALPN `h2` for an `--http2`
    /// run (to the protocol it chose, if any): the run stops.
    pub refused_http2: OnceLock<Option<String>>,
    pub request: RequestTemplate,
    pub keepalive: bool,
    pub timeout: Option<Duration>,
    /// `-n` budget, or `None` for a timed run.
    pub budget: Option<Budget>,
    pub duration: Option<Duration>,
    /// Open loop: the whole run's target, requests per second.
    pub rate: Option<f64>,
    pub warmup: Budget,
    /// Every client waits here after its warm-up, so the clock starts once.
    pub barrier: tokio::sync::Barrier,
    /// When the measured run started (set by the first client past the barrier).
    pub start: OnceLock<Instant>,
    /// Requests counted so far, for progress bars.
    pub progress: Arc<AtomicU64>,
    /// Opens once every worker thread is running (or tells them all to leave).
    pub gate: tokio::sync::watch::Receiver<Gate>,
}

impl Shared {
    /// The server will not speak HTTP/2: stops the run (see `refused_http2`).
    pub fn refuse_http2(&self, chosen: Option<String>) {
        let _ = self.refused_http2.set(chosen);
        if let Some(b) = &self.budget {
            b.close();
        }
    }

    /// Whether the run was stopped early (`-z` runs look, `-n` runs find
    /// their budget closed).
    #[inline]
    fn stopped(&self) -> bool {
        self.refused_http2.get().is_some()
    }
}

/// Whether the run may start: the start barrier needs every client present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Wait,
    Go,
    Abort,
}

/// State the clients of one worker share (one thread: no atomics).
struct WorkerLocal {
    tally: RefCell<Tally>,
    /// Requests this worker took from the shared `-n` budget but has not sent.
    reserve: Cell<u64>,
    /// One deadline slot per client, watched by the worker's watchdog.
    slots: Vec<Slot>,
    /// The `-z` deadline, once the run has started.
    run_end: Cell<Option<Instant>>,
    /// Open loop: this worker's schedule and its next slot.
    schedule: Option<WorkerSchedule>,
    next_slot: Cell<u64>,
}

/// What one worker thread measured.
pub struct WorkerReport {
    pub tally: Tally,
    /// When its last client finished.
    pub end: Instant,
}

/// Runs `connections` connections' clients on this thread, on `rt`, until the
/// run ends: one client per connection, or `streams` per HTTP/2 connection;
/// open loop when given a `schedule`.
pub fn run_worker(
    shared: Arc<Shared>,
    connections: u64,
    schedule: Option<WorkerSchedule>,
    rt: tokio::runtime::Runtime,
) -> WorkerReport {
    let clients = connections * shared.streams;
    let local = tokio::task::LocalSet::new();
    let mut tally = Tally::new();
    if let (Some(rate), Some(s)) = (shared.rate, &schedule) {
        tally.open_loop(rate);
        tally.schedule.scheduled = s.slots(shared.duration);
    }
    let state = Rc::new(WorkerLocal {
        tally: RefCell::new(tally),
        reserve: Cell::new(0),
        slots: (0..clients).map(|_| Slot::default()).collect(),
        run_end: Cell::new(None),
        schedule,
        next_slot: Cell::new(0),
    });
    local.block_on(&rt, async {
        let watchdog = (shared.timeout.is_some() || shared.duration.is_some()).then(|| {
            let state = state.clone();
            let tick = deadline::tick_for(shared.timeout);
            let timed = shared.duration.is_some();
            tokio::task::spawn_local(async move {
                deadline::watchdog(&state.slots, tick, timed, &state.run_end).await;
            })
        });
        let n = clients as usize;
        let tasks = match (&shared.http2, &shared.tls) {
            (None, None) => spawn_clients(
                &shared,
                &state,
                (0..n).map(|_| Http1Sender::<TcpStream>::new()),
            ),
            (None, Some(_)) => spawn_clients(
                &shared,
                &state,
                (0..n).map(|_| Http1Sender::<TlsStream<TcpStream>>::new()),
            ),
            (Some(_), _) => {
                // Clients i*N..(i+1)*N share connection i.
                let groups: Vec<_> = (0..connections)
                    .map(|_| Rc::new(Http2Group::default()))
                    .collect();
                let streams = shared.streams as usize;
                spawn_clients(
                    &shared,
                    &state,
                    (0..n).map(|i| Http2Sender::new(groups[i / streams].clone())),
                )
            }
        };
        for t in tasks {
            // A client cannot panic short of a bug; a panic is re-raised here.
            if let Err(e) = t.await {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        if let Some(w) = watchdog {
            w.abort();
        }
    });
    let end = Instant::now();
    drop(local);
    // Taken, not cloned: a clone writes every bucket of both histograms
    // (~190 KiB each), pages a fresh histogram never touches.
    let tally = state.tally.take();
    WorkerReport { tally, end }
}

/// Spawns one client per sender on this thread's `LocalSet`.
fn spawn_clients<S: Sender + 'static>(
    shared: &Arc<Shared>,
    state: &Rc<WorkerLocal>,
    senders: impl Iterator<Item = S>,
) -> Vec<tokio::task::JoinHandle<()>> {
    senders
        .enumerate()
        .map(|(i, sender)| {
            tokio::task::spawn_local(client(shared.clone(), state.clone(), i, sender))
        })
        .collect()
}

/// One client: warm-up, wait for all, then the measured loop.
async fn client<S: Sender>(
    shared: Arc<Shared>,
    state: Rc<WorkerLocal>,
    index: usize,
    mut sender: S,
) {
    let slot = &state.slots[index];
    let mut gate = shared.gate.clone();
    if !matches!(
        gate.wait_for(|g| *g != Gate::Wait).await.as_deref(),
        Ok(Gate::Go)
    ) {
        return;
    }

    while shared.warmup.claim() {
        let deadline = shared.timeout.map(|t| Instant::now() + t);
        if slot
            .bound(deadline, pin!(sender.send(&shared, None)))
            .await
            .is_none()
        {
            sender.abandon();
        }
    }
    shared.barrier.wait().await;
    let start = *shared.start.get_or_init(Instant::now);
    let run_deadline = shared.duration.map(|d| start + d);
    state.run_end.set(run_deadline);

    let mut unpublished = 0u64;
    loop {
        // Closed loop: the next request now. Open loop: the next slot, and
        // the time latency counts from (see `wait_for_slot`).
        let mut from = None;
        if let Some(schedule) = &state.schedule {
            let Some(at) = schedule.claim(&state.next_slot, start, run_deadline) else {
                break;
            };
            match wait_for_slot(at, run_deadline).await {
                Some(f) => from = Some(f),
                // The run ended while every connection was busy: the slot is
                // never sent (the report's `scheduled` minus `sent`).
                None => break,
            }
            if shared.stopped() {
                break;
            }
        } else {
            match (&shared.budget, run_deadline) {
                (Some(b), _) if !b.claim_via(&state.reserve) => break,
                (None, Some(end)) if Instant::now() >= end || shared.stopped() => break,
                _ => {}
            }
        }
        let sent = Instant::now();
        let from = match from {
            Some((at, behind)) => {
                state
                    .tally
                    .borrow_mut()
                    .schedule
                    .sent(sent.saturating_duration_since(at), behind);
                if behind { at } else { sent }
            }
            None => sent,
        };
        let timeout_at = shared.timeout.map(|t| sent + t);
        let deadline = match (timeout_at, run_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let outcome = slot
            .bound(deadline, pin!(sender.send(&shared, Some(&state.tally))))
            .await;
        let done = Instant::now();
        let mut tally = state.tally.borrow_mut();
        if run_deadline.is_some_and(|end| done > end) && timeout_at.is_none_or(|t| done < t) {
            // Cut at the `-z` deadline, or finished just after it (the watchdog
            // is a tick late at most): in flight when the run ended. Neither a
            // response nor a failure, but reported, never silently dropped.
            tally.unfinished();
            break;
        }
        match outcome {
            Some(Ok(resp)) => {
                tally.response(resp.status, resp.bytes, done - from);
                tally.uncorrected(done - sent);
            }
            Some(Err(kind)) => tally.failure(kind, None),
            None => {
                sender.abandon();
                if let (true, Some(t)) = (timeout_at.is_some_and(|t| done >= t), shared.timeout) {
                    tally.failure(ErrorKind::Timeout, Some(t + (sent - from)));
                    tally.uncorrected(t);
                } else {
                    // Cut at the `-z` deadline (exactly at it): as above.
                    tally.unfinished();
                    break;
                }
            }
        }
        drop(tally);
        unpublished += 1;
        if unpublished == PROGRESS_BATCH {
            shared.progress.fetch_add(unpublished, Ordering::Relaxed);
            unpublished = 0;
        }
    }
    shared.progress.fetch_add(unpublished, Ordering::Relaxed);
}

/// Waits until slot `at` is due. Returns when latency counts from: `at` when
/// the slot was already due as this client became free (`true`: every
/// connection was busy, the server held the request up, and that wait is part
/// of its latency, coordinated omission corrected), else the moment it left
/// (`false`: the client waited for the timer, which wakes up to 1 ms late:
/// the generator's jitter, not the server's). `None` when the run ended while
/// every connection was busy: that slot is never sent. A slot claimed in time
/// is always sent, even if the timer wakes after the end (it is then cut at
/// once and counted unfinished), so a healthy run sends exactly its schedule.
async fn wait_for_slot(at: Instant, end: Option<Instant>) -> Option<(Instant, bool)> {
    let now = Instant::now();
    if at <= now {
        if end.is_some_and(|e| now >= e) {
            return None;
        }
        return Some((at, true));
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    Some((at, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_hands_out_exactly_n() {
        let b = Arc::new(Budget::new(1000));
        let claimed: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let b = b.clone();
                    s.spawn(move || (0..10_000).filter(|_| b.claim()).count() as u64)
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(claimed, 1000);
        assert!(!Budget::new(0).claim());
    }

    #[test]
    fn chunked_claims_hand_out_exactly_n() {
        for n in [0u64, 1, 5, 511, 512, 513, 10_000, 123_457] {
            let b = Arc::new(Budget::new(n));
            let claimed: u64 = std::thread::scope(|s| {
                let hs: Vec<_> = (0..3)
                    .map(|_| {
                        let b = b.clone();
                        s.spawn(move || {
                            let reserve = Cell::new(0);
                            let mut k = 0u64;
                            while b.claim_via(&reserve) {
                                k += 1;
                            }
                            k
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(claimed, n);
        }
    }
}
