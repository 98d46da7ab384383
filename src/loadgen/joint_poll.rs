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
//! passed on to the task, and each future is polled again only when its own
//! waker was woken. Measured on `benches/loadgen`'s set-up (nginx, one worker,
//! c=100, keep-alive): see `Connection::round_trip`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Rounds of one poll before the task is re-scheduled instead: a future that
/// keeps waking itself (tokio's cooperative budget, hyper's fairness yield)
/// must let the rest of the runtime run.
const MAX_ROUNDS: usize = 4;

/// What the two futures' wakers share.
#[derive(Debug, Default)]
struct Shared {
    /// The futures are being polled: a wake-up asks for another round.
    polling: AtomicBool,
    /// The task that polls the futures, woken by wake-ups from outside.
    task: Mutex<Option<Waker>>,
}

/// One future's waker: says that this future, not the other, has news.
#[derive(Debug)]
struct Signal {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if !self.shared.polling.load(Ordering::SeqCst) {
            let task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = task.as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

/// A future's `Signal` and the `Waker` made of it once: tokio compares wakers
/// by identity (`will_wake`) and clones a new one only when it changes.
#[derive(Debug)]
struct Side {
    signal: Arc<Signal>,
    waker: Waker,
}

impl Side {
    fn new(shared: &Arc<Shared>) -> Side {
        // Never polled yet: due a first poll.
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            shared: shared.clone(),
        });
        let waker = Waker::from(signal.clone());
        Side { signal, waker }
    }

    /// Whether it was woken since last asked (and forgets it).
    fn take(&self) -> bool {
        self.signal.woken.swap(false, Ordering::SeqCst)
    }

    fn woken(&self) -> bool {
        self.signal.woken.load(Ordering::SeqCst)
    }
}

/// Wakers for two futures polled together; see the module header.
#[derive(Debug)]
pub struct JointPoll {
    shared: Arc<Shared>,
    first: Side,
    second: Side,
}

impl Default for JointPoll {
    fn default() -> Self {
        let shared = Arc::new(Shared::default());
        JointPoll {
            first: Side::new(&shared),
            second: Side::new(&shared),
            shared,
        }
    }
}

impl JointPoll {
    /// Says that `first` is a new future (the next request's exchange): the
    /// next `poll` polls it whether or not its waker was woken.
    pub fn renew_first(&self) {
        self.first.signal.woken.store(true, Ordering::SeqCst);
    }

    /// Polls `first` (whose output is the result) and `second` (which drives
    /// it; `Ready` means it finished, and `first` is polled once more), each
    /// with its own waker, in rounds: a round polls only the ones woken since
    /// they were last polled (or new), until one round wakes neither. Later
    /// wake-ups go to `cx`'s task, and say which one to poll then: a readable
    /// socket wakes the driver's waker only, so the exchange waits its turn.
    pub fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        mut first: impl FnMut(&mut Context<'_>) -> Poll<T>,
        mut second: impl FnMut(&mut Context<'_>) -> Poll<()>,
    ) -> Poll<T> {
        {
            let mut task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        self.shared.polling.store(true, Ordering::SeqCst);
        let mut out = Poll::Pending;
        for _ in 0..MAX_ROUNDS {
            if self.first.take() {
                out = first(&mut Context::from_waker(&self.first.waker));
                if out.is_ready() {
                    break;
                }
            }
            if self.second.take() && second(&mut Context::from_waker(&self.second.waker)).is_ready()
            {
                self.first.signal.woken.store(true, Ordering::SeqCst);
            }
            if !self.first.woken() && !self.second.woken() {
                break;
            }
        }
        self.shared.polling.store(false, Ordering::SeqCst);
        // Woken in the last round (rounds exhausted), or from another thread
        // between that round's check and the store above: poll again later.
        if out.is_pending() && (self.first.woken() || self.second.woken()) {
            cx.waker().wake_by_ref();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
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
    fn hand_offs_inside_a_poll_run_another_round_not_the_task() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let joint = JointPoll::default();
        let (mut firsts, mut seconds) = (0, 0);
        let first_waker: RefCell<Option<Waker>> = RefCell::new(None);
        // The first hands a request to the second (wakes it); the second
        // answers (wakes the first), which is then ready.
        let out = joint.poll(
            &mut cx,
            |cx| {
                firsts += 1;
                if firsts == 2 {
                    return Poll::Ready(firsts);
                }
                *first_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            },
            |_| {
                seconds += 1;
                first_waker.borrow_mut().take().unwrap().wake();
                Poll::Pending
            },
        );
        assert_eq!(out, Poll::Ready(2));
        assert_eq!(seconds, 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn only_the_woken_side_is_polled_again() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let joint = JointPoll::default();
        let (mut firsts, mut seconds) = (0, 0);
        let mut second_waker: Option<Waker> = None;
        let mut registered = None;
        // The first wakes the second (a request queued): the second runs in
        // the same round and is not polled again for it.
        let out: Poll<()> = joint.poll(
            &mut cx,
            |_| {
                firsts += 1;
                if let Some(w) = second_waker.take() {
                    w.wake();
                }
                Poll::Pending
            },
            |cx| {
                seconds += 1;
                registered = Some(cx.waker().clone());
                Poll::Pending
            },
        );
        assert_eq!((out, firsts, seconds), (Poll::Pending, 1, 1));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        // The socket becomes readable: tokio wakes the waker it was given,
        // which reaches the task; the task's next poll polls the second only.
        registered.take().unwrap().wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        let out: Poll<()> = joint.poll(&mut cx, |_| Poll::Pending, |_| Poll::Pending);
        assert_eq!(out, Poll::Pending);
        let out: Poll<()> = joint.poll(
            &mut cx,
            |_| panic!("the first was not woken"),
            |_| panic!("the second was not woken again"),
        );
        assert_eq!(out, Poll::Pending);
        // A new first is polled although nothing woke it.
        joint.renew_first();
        let out = joint.poll(&mut cx, |_| Poll::Ready(7), |_| Poll::Pending);
        assert_eq!(out, Poll::Ready(7));
    }

    #[test]
    fn a_finished_second_gets_the_first_polled_again() {
        let (_count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let joint = JointPoll::default();
        let mut firsts = 0;
        let out = joint.poll(
            &mut cx,
            |_| {
                firsts += 1;
                if firsts == 2 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            },
            |_| Poll::Ready(()),
        );
        assert_eq!((out, firsts), (Poll::Ready(()), 2));
    }

    #[test]
    fn a_future_that_keeps_waking_yields_to_the_task() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let joint = JointPoll::default();
        let mut rounds = 0;
        let out: Poll<()> = joint.poll(
            &mut cx,
            |cx| {
                rounds += 1;
                cx.waker().wake_by_ref();
                Poll::Pending
            },
            |_| Poll::Pending,
        );
        assert_eq!((out, rounds), (Poll::Pending, MAX_ROUNDS));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
