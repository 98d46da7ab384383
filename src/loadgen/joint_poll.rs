//! Polls two futures that feed each other (a request exchange and the hyper
//! connection driving it) as one, without waking their task for each hand-off.
//!
//! hyper's client passes every request and response through internal channels
//! (an mpsc queue and a oneshot per request, a body channel per response), and
//! each pass wakes the other side. When both sides are polled by one task, each
//! such wake-up re-schedules that task for a poll that finds nothing new.
//! Here the two are polled with a waker of our own: a wake-up that comes while
//! they are being polled only asks for another round of the same poll; one
//! that comes from outside (socket readiness, through tokio's IO driver) is
//! passed on to the task. Measured on `benches/loadgen`'s set-up (nginx, one
//! worker, c=100, keep-alive): see `Connection::round_trip`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Rounds of one poll before the task is re-scheduled instead: a future that
/// keeps waking itself (tokio's cooperative budget, hyper's fairness yield)
/// must let the rest of the runtime run.
const MAX_ROUNDS: usize = 4;

/// The waker the joint futures see, shared with whoever they registered it with.
#[derive(Debug, Default)]
struct Signal {
    /// The futures are being polled: a wake-up asks for another round.
    polling: AtomicBool,
    /// A wake-up came since the current round began.
    woken: AtomicBool,
    /// The task that polls the futures, woken by wake-ups from outside.
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = task.as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

/// A waker for futures polled together; see the module header.
#[derive(Debug)]
pub struct JointPoll {
    signal: Arc<Signal>,
    /// `signal` as a `Waker`, made once: tokio compares wakers by identity
    /// (`will_wake`) and clones a new one only when it changes.
    waker: Waker,
}

impl Default for JointPoll {
    fn default() -> Self {
        let signal = Arc::new(Signal::default());
        let waker = Waker::from(signal.clone());
        JointPoll { signal, waker }
    }
}

impl JointPoll {
    /// Calls `round` (which polls the joint futures) with the shared waker,
    /// again while the previous round woke it, and returns once a round is
    /// ready or wakes nothing. Later wake-ups go to `cx`'s task.
    pub fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        mut round: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        {
            let mut task = self.signal.task.lock().unwrap_or_else(|e| e.into_inner());
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let signal = &*self.signal;
        signal.polling.store(true, Ordering::SeqCst);
        let mut inner = Context::from_waker(&self.waker);
        let mut out = Poll::Pending;
        for _ in 0..MAX_ROUNDS {
            signal.woken.store(false, Ordering::SeqCst);
            out = round(&mut inner);
            if out.is_ready() || !signal.woken.load(Ordering::SeqCst) {
                break;
            }
        }
        signal.polling.store(false, Ordering::SeqCst);
        // Woken in the last round (rounds exhausted), or from another thread
        // between that round's check and the store above: poll again later.
        if out.is_pending() && signal.woken.load(Ordering::SeqCst) {
            cx.waker().wake_by_ref();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn task() -> (Arc<CountingWaker>, Waker) {
        let count = Arc::new(CountingWaker::default());
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    #[test]
    fn wake_ups_inside_a_poll_run_another_round_not_the_task() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let joint = JointPoll::default();
        let mut rounds = 0;
        // Two rounds that wake (a hand-off between the futures), then ready.
        let out = joint.poll(&mut cx, |inner| {
            rounds += 1;
            if rounds < 3 {
                inner.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(rounds)
        });
        assert_eq!(out, Poll::Ready(3));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_quiet_round_ends_the_poll_and_outside_wake_ups_reach_the_task() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let joint = JointPoll::default();
        let mut registered = None;
        let mut rounds = 0;
        let out: Poll<()> = joint.poll(&mut cx, |inner| {
            rounds += 1;
            registered = Some(inner.waker().clone());
            Poll::Pending
        });
        assert_eq!((out, rounds), (Poll::Pending, 1));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        // The socket becomes readable: tokio wakes the waker it was given.
        registered.unwrap().wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_future_that_keeps_waking_yields_to_the_task() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let joint = JointPoll::default();
        let mut rounds = 0;
        let out: Poll<()> = joint.poll(&mut cx, |inner| {
            rounds += 1;
            inner.waker().wake_by_ref();
            Poll::Pending
        });
        assert_eq!((out, rounds), (Poll::Pending, MAX_ROUNDS));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
