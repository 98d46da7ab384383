//! Request deadlines without a timer per request.
//!
//! A tokio timer per request (register, reset, poll, waker clone) cost about 4%
//! of the load generator's CPU. Here each client instead writes its deadline
//! into a `Slot` (plain `Cell`s: one thread), and one watchdog task per worker
//! wakes every `tick` (and exactly at the `-z` end), expires the slots whose
//! deadline has passed and wakes their clients. A timeout is thus noticed up to
//! one tick late; it is still recorded at its nominal value.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// One client's deadline, shared with its worker's watchdog.
#[derive(Debug, Default)]
pub struct Slot {
    deadline: Cell<Option<Instant>>,
    expired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Slot {
    /// Runs `fut` until it finishes (`Some`) or `deadline` passes (`None`).
    /// Takes the future pinned by the caller: moving a large future per
    /// request costs a visible share of the CPU.
    pub async fn bound<F: Future>(
        &self,
        deadline: Option<Instant>,
        mut fut: Pin<&mut F>,
    ) -> Option<F::Output> {
        if deadline.is_none() {
            return Some(fut.await);
        }
        self.expired.set(false);
        self.deadline.set(deadline);
        let out = std::future::poll_fn(|cx| {
            if self.expired.get() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            let mut w = self.waker.borrow_mut();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        self.deadline.set(None);
        out
    }

    /// Expires the slot if its deadline is at or before `now`; else returns it.
    fn check(&self, now: Instant) -> Option<Instant> {
        let d = self.deadline.get()?;
        if d > now {
            return Some(d);
        }
        self.deadline.set(None);
        self.expired.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
        None
    }
}

/// How often the watchdog looks: a sixteenth of the timeout, within 1..=100 ms.
pub fn tick_for(timeout: Option<Duration>) -> Duration {
    timeout.map_or(Duration::from_millis(100), |t| {
        (t / 16).clamp(Duration::from_millis(1), Duration::from_millis(100))
    })
}

/// Expires the `slots` as their deadlines pass, until dropped (aborted).
/// `run_end` is the `-z` deadline once known (`timed` runs): the watchdog
/// looks every millisecond until it is, then wakes exactly at it.
pub async fn watchdog(
    slots: &[Slot],
    tick: Duration,
    timed: bool,
    run_end: &Cell<Option<Instant>>,
) {
    loop {
        let now = Instant::now();
        let wait = if timed && run_end.get().is_none() {
            tick.min(Duration::from_millis(1))
        } else {
            tick
        };
        let mut next = now + wait;
        for s in slots {
            if let Some(d) = s.check(now) {
                next = next.min(d);
            }
        }
        if let Some(end) = run_end.get().filter(|e| *e > now) {
            next = next.min(end);
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn finishes_before_the_deadline() {
        let slot = Slot::default();
        let out = rt().block_on(slot.bound(
            Some(Instant::now() + Duration::from_secs(5)),
            pin!(async { 7 }),
        ));
        assert_eq!(out, Some(7));
        assert!(slot.deadline.get().is_none());
    }

    #[test]
    fn watchdog_expires_a_stuck_future() {
        let slots = [Slot::default(), Slot::default()];
        let run_end = Cell::new(None);
        let started = Instant::now();
        let out = rt().block_on(async {
            let d = Some(Instant::now() + Duration::from_millis(30));
            let stuck = pin!(std::future::pending::<()>());
            tokio::select! {
                r = slots[0].bound(d, stuck) => r,
                () = watchdog(&slots, tick_for(Some(Duration::from_millis(30))), false, &run_end) => unreachable!(),
            }
        });
        assert_eq!(out, None);
        assert!(started.elapsed() >= Duration::from_millis(30));
        // The slot is reusable.
        let out = rt().block_on(slots[0].bound(
            Some(Instant::now() + Duration::from_secs(1)),
            pin!(async { 1 }),
        ));
        assert_eq!(out, Some(1));
    }

    #[test]
    fn ticks_scale_with_the_timeout() {
        assert_eq!(tick_for(None), Duration::from_millis(100));
        assert_eq!(
            tick_for(Some(Duration::from_secs(30))),
            Duration::from_millis(100)
        );
        assert_eq!(
            tick_for(Some(Duration::from_millis(160))),
            Duration::from_millis(10)
        );
        assert_eq!(
            tick_for(Some(Duration::from_millis(5))),
            Duration::from_millis(1)
        );
    }
}
