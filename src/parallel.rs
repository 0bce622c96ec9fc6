//! Order-preserving parallel map over the machine's cores, for the engine's embarrassingly parallel
//! loops (cross-validation folds, α candidates, evaluation, the weight build's blocks), and a
//! two-part fork-join for the steps that split in two (counting). Results never depend on the
//! number of threads: each item is computed alone and results come back in item order.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The number of worker threads to use: the available cores, at least 1.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `items.iter().map(f).collect()`, computed on up to `workers` threads, the calling thread among
/// them. Each thread claims the next item nobody has taken yet, so items of uneven cost still keep
/// every thread busy until the end. A panic in `f` is resumed on the calling thread.
pub fn map<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        let mut place = |results: Vec<(usize, R)>| {
            for (i, r) in results {
                slots[i] = Some(r);
            }
        };
        place(work());
        for helper in helpers {
            match helper.join() {
                Ok(results) => place(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    slots.into_iter().flatten().collect()
}

/// Runs `first` and `second`, on two threads with `concurrently` (the calling thread runs `first`;
/// a panic in either is resumed on it), else one after the other. What the engine's two-part steps
/// (counting, the weight build) do on a machine with two cores.
pub fn both<A: Send, B: Send>(
    concurrently: bool,
    first: impl FnOnce() -> A + Send,
    second: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !concurrently {
        let a = first();
        return (a, second());
    }
    std::thread::scope(|scope| {
        let worker = scope.spawn(second);
        let a = first();
        match worker.join() {
            Ok(b) => (a, b),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_item_order_for_any_number_of_workers() {
        let items: Vec<u64> = (0..101).collect();
        let expected: Vec<u64> = items.iter().map(|x| x * x).collect();
        for workers in [1, 2, 3, 8, 200] {
            assert_eq!(super::map(&items, workers, |x| x * x), expected);
        }
        assert!(super::map(&[] as &[u64], 4, |x| *x).is_empty());
    }

    #[test]
    fn both_gives_both_results_and_a_panic_in_either_reaches_the_caller() {
        for concurrently in [false, true] {
            assert_eq!(super::both(concurrently, || 1, || "two"), (1, "two"));
            for first_fails in [false, true] {
                let outcome = std::panic::catch_unwind(|| {
                    super::both(
                        concurrently,
                        || assert!(!first_fails, "the first fails"),
                        || assert!(first_fails, "the second fails"),
                    )
                });
                assert!(
                    outcome.is_err(),
                    "concurrently {concurrently}, first fails {first_fails}"
                );
            }
        }
    }

    #[test]
    fn a_panic_in_any_item_reaches_the_caller() {
        let items: Vec<u64> = (0..40).collect();
        for bad in [0, 1, 39] {
            let outcome = std::panic::catch_unwind(|| {
                super::map(&items, 2, |&x| {
                    assert_ne!(x, bad, "item {bad} fails");
                    x
                })
            });
            assert!(outcome.is_err(), "item {bad}");
        }
    }
}
