//! A small work queue for transfers: up to N threads, each taking the next item
//! when free, so one large blob does not hold up the small ones behind it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `work(index, item)` for every item on up to `threads` scoped threads.
/// A thread that meets an error stops taking items; the others finish theirs.
/// Returns the first error in thread order.
pub fn for_each<T: Sync, E: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(usize, &T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, items.len().max(1));
    let results: Vec<Result<(), E>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return Ok(());
                        };
                        work(i, item)?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("transfer thread panicked"))
            .collect()
    });
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    #[test]
    fn every_item_once_and_errors_surface() {
        let seen = Mutex::new(Vec::new());
        super::for_each(&[10, 20, 30, 40, 50], 3, |i, x| {
            seen.lock().unwrap().push((i, *x));
            Ok::<(), ()>(())
        })
        .unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, vec![(0, 10), (1, 20), (2, 30), (3, 40), (4, 50)]);
        let r = super::for_each(&[1, 2, 3], 2, |_, x| if *x == 2 { Err(*x) } else { Ok(()) });
        assert_eq!(r, Err(2));
        assert_eq!(super::for_each::<u8, ()>(&[], 4, |_, _| Ok(())), Ok(()));
    }
}
