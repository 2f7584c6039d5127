//! `locks::threadsafe`: the `Send + Sync` Lock, Event, Condition, Semaphore, BoundedSemaphore and
//! Barrier, awaited
//! by tasks on two loops on two threads (and by plain threads): FIFO order across threads, a
//! cancelled waiter passing its turn on, no lost wake-ups under contention.

mod locks_support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use asyncio::locks::threadsafe::{Barrier, BoundedSemaphore, Condition, Event, Lock, Semaphore};
use asyncio::{ConcurrentFuture, ErrorKind, EventLoop, LoopHandle};
use futures::task::{waker, ArcWake};
use locks_support::watchdog;

/// Two loops, each on its own thread; stopped and joined by `finish`.
struct TwoLoops {
    loops: Vec<(LoopHandle, std::thread::JoinHandle<asyncio::Result<()>>)>,
}

impl TwoLoops {
    fn new() -> Self {
        TwoLoops {
            loops: (0..2).map(|_| EventLoop::spawn_thread().unwrap()).collect(),
        }
    }

    /// Runs the coroutine `make` builds (on that loop's thread) as a task on loop `i`.
    fn submit<M, F>(&self, i: usize, make: M) -> ConcurrentFuture<F::Output>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        self.loops[i].0.run_coroutine_threadsafe_with(make).unwrap()
    }

    fn finish(self) {
        for (handle, thread) in self.loops {
            handle.stop();
            thread.join().unwrap().unwrap();
        }
    }
}

/// Spins (yielding the thread) until `cond` holds: the deterministic hook that orders waiters
/// on different threads. Bounded by the test's watchdog.
fn until(cond: impl Fn() -> bool) {
    while !cond() {
        std::thread::yield_now();
    }
}

#[test]
fn lock_is_fifo_across_two_loops() {
    let _w = watchdog("lock_is_fifo_across_two_loops");
    let loops = TwoLoops::new();
    let lock = Lock::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = lock.try_acquire().unwrap();
    let mut done = Vec::new();
    // a on loop 0, b on loop 1, c on loop 0 again: queued in that order.
    for (n, (name, on)) in [("a", 0), ("b", 1), ("c", 0), ("d", 1)]
        .into_iter()
        .enumerate()
    {
        let (l, order) = (lock.clone(), order.clone());
        done.push(loops.submit(on, move || async move {
            let _guard = l.acquire().await;
            order.lock().unwrap().push(name);
            asyncio::sleep(0.0).await.unwrap(); // held across a loop iteration
        }));
        until(|| lock.waiters() == n + 1);
    }
    assert!(order.lock().unwrap().is_empty());
    drop(held);
    for d in done {
        d.result(None).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["a", "b", "c", "d"]);
    assert!(!lock.locked());
    loops.finish();
}

#[test]
fn cancelled_waiter_on_one_loop_gives_its_turn_to_a_waiter_on_the_other() {
    let _w = watchdog("cancelled_waiter_on_one_loop_gives_its_turn_to_a_waiter_on_the_other");
    let loops = TwoLoops::new();
    let sem = BoundedSemaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let s = sem.clone();
    let first = loops.submit(0, move || async move { drop(s.acquire().await) });
    until(|| sem.waiters() == 1);
    let s = sem.clone();
    let second = loops.submit(1, move || async move { drop(s.acquire().await) });
    until(|| sem.waiters() == 2);
    assert!(first.cancel());
    until(|| sem.waiters() == 1);
    drop(held);
    second.result(None).unwrap();
    assert_eq!(first.result(None).unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(sem.value(), 1);
    loops.finish();
}

/// Counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl ArcWake for Count {
    fn wake_by_ref(me: &Arc<Self>) {
        me.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll<F: Future + Unpin>(f: &mut F, count: &Arc<Count>) -> Poll<F::Output> {
    let w = waker(count.clone());
    Pin::new(f).poll(&mut Context::from_waker(&w))
}

/// The race asyncio fixed in bpo-45997 / gh-90155, stepped by hand: the permit is handed to
/// the first waiter, which is then cancelled before it runs; the second waiter is woken and
/// gets the permit, and the count is exact.
#[test]
fn woken_then_cancelled_waiter_passes_the_permit_on() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let (c1, c2) = (Arc::new(Count::default()), Arc::new(Count::default()));
    let mut first = sem.acquire();
    let mut second = sem.acquire();
    assert!(poll(&mut first, &c1).is_pending());
    assert!(poll(&mut second, &c2).is_pending());
    drop(held);
    assert_eq!(c1.0.load(Ordering::SeqCst), 1);
    assert_eq!(c2.0.load(Ordering::SeqCst), 0);
    assert_eq!(
        sem.value(),
        0,
        "the permit is reserved for the woken waiter"
    );
    // A newcomer cannot barge in while the woken waiter has not run.
    assert!(sem.try_acquire().is_none());
    drop(first);
    assert_eq!(c2.0.load(Ordering::SeqCst), 1, "the wake-up passed on");
    let Poll::Ready(guard) = poll(&mut second, &c2) else {
        panic!("the second waiter was woken but did not get the permit")
    };
    drop(guard);
    assert_eq!(sem.value(), 1);
    assert_eq!(sem.waiters(), 0);
}

/// Same for the lock, whose waiter also re-registers a new waker when polled twice.
#[test]
fn lock_waiter_keeps_its_latest_waker_and_a_cancelled_one_passes_on() {
    let lock = Lock::new();
    let held = lock.try_acquire().unwrap();
    let (old, c1, c2) = (
        Arc::new(Count::default()),
        Arc::new(Count::default()),
        Arc::new(Count::default()),
    );
    let mut first = lock.acquire();
    let mut second = lock.acquire();
    assert!(poll(&mut first, &old).is_pending());
    assert!(poll(&mut first, &c1).is_pending()); // moved to another task: new waker
    assert!(poll(&mut second, &c2).is_pending());
    drop(held);
    assert_eq!(old.0.load(Ordering::SeqCst), 0);
    assert_eq!(c1.0.load(Ordering::SeqCst), 1);
    drop(first);
    assert_eq!(c2.0.load(Ordering::SeqCst), 1);
    assert!(poll(&mut second, &c2).is_ready());
    assert!(!lock.locked());
    let err = lock.release().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), "Lock is not acquired.");
}

/// A `Send` `sleep(0)`: pending once, waking itself.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

#[test]
fn semaphore_under_contention_from_two_loops_and_a_thread_loses_no_wake_up() {
    let _w = watchdog("semaphore_under_contention_from_two_loops_and_a_thread_loses_no_wake_up");
    const PERMITS: usize = 2;
    const ROUNDS: usize = 200;
    let loops = TwoLoops::new();
    let sem = Semaphore::new(PERMITS);
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let worker = |sem: Semaphore, inside: Arc<AtomicUsize>, max: Arc<AtomicUsize>| async move {
        for _ in 0..ROUNDS {
            let _permit = sem.acquire().await;
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            yield_once().await; // held across a suspension
            inside.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let mut done = Vec::new();
    for i in 0..6 {
        let task = worker(sem.clone(), inside.clone(), max_inside.clone());
        done.push(loops.submit(i % 2, move || async move {
            task.await;
        }));
    }
    let plain = {
        let task = worker(sem.clone(), inside.clone(), max_inside.clone());
        std::thread::spawn(move || futures::executor::block_on(task))
    };
    for d in done {
        d.result(None).unwrap();
    }
    plain.join().unwrap();
    assert!(max_inside.load(Ordering::SeqCst) <= PERMITS);
    assert_eq!(sem.value(), PERMITS);
    assert_eq!(sem.waiters(), 0);
    loops.finish();
}

#[test]
fn event_set_on_one_thread_wakes_waiters_on_two_loops() {
    let _w = watchdog("event_set_on_one_thread_wakes_waiters_on_two_loops");
    let loops = TwoLoops::new();
    let event = Event::new();
    let waiting: Vec<_> = (0..4)
        .map(|i| {
            let e = event.clone();
            loops.submit(i % 2, move || async move {
                e.wait().await;
                i
            })
        })
        .collect();
    until(|| event.waiters() == 4);
    event.set();
    event.clear(); // a woken waiter still returns
    let got: Vec<usize> = waiting
        .into_iter()
        .map(|w| w.result(None).unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2, 3]);
    assert!(!event.is_set());
    assert_eq!(event.waiters(), 0);
    loops.finish();
}

#[test]
fn bounded_semaphore_refuses_a_release_above_its_bound_from_any_thread() {
    let sem = BoundedSemaphore::new(2);
    let a = sem.try_acquire().unwrap();
    let s = sem.clone();
    std::thread::spawn(move || {
        drop(a);
        let err = s.release().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert_eq!(err.to_string(), "BoundedSemaphore released too many times");
    })
    .join()
    .unwrap();
    assert_eq!(sem.value(), 2);
}

/// `notify(1)` from this thread wakes the waiters of two loops strictly in the order they
/// started waiting; `notify(2)` wakes two.
#[test]
fn condition_notifies_waiters_on_two_loops_in_fifo_order() {
    let _w = watchdog("condition_notifies_waiters_on_two_loops_in_fifo_order");
    let loops = TwoLoops::new();
    let cond = Condition::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut done = Vec::new();
    for (n, (name, on)) in [("a", 0), ("b", 1), ("c", 0), ("d", 1)]
        .into_iter()
        .enumerate()
    {
        let (c, order) = (cond.clone(), order.clone());
        done.push(loops.submit(on, move || async move {
            let guard = c.acquire().await;
            let _guard = c.wait(guard).await.unwrap();
            order.lock().unwrap().push(name);
        }));
        until(|| cond.waiters() == n + 1);
    }
    let notify = |n: usize| {
        let guard = futures::executor::block_on(cond.acquire());
        cond.notify(n).unwrap();
        drop(guard);
    };
    notify(1);
    until(|| order.lock().unwrap().len() == 1);
    notify(1);
    until(|| order.lock().unwrap().len() == 2);
    assert_eq!(*order.lock().unwrap(), ["a", "b"]);
    notify(2);
    until(|| order.lock().unwrap().len() == 4);
    for d in done {
        d.result(None).unwrap();
    }
    let mut rest = order.lock().unwrap()[2..].to_vec();
    rest.sort();
    assert_eq!(rest, ["c", "d"]);
    assert_eq!(cond.waiters(), 0);
    assert!(!cond.locked());
    loops.finish();
}

/// gh-112202 stepped by hand: a waiter notified and then dropped before it had the lock back
/// passes the notification to the next waiter; none is lost.
#[test]
fn condition_notified_then_cancelled_waiter_passes_the_notification_on() {
    let cond = Condition::new();
    let (c1, c2) = (Arc::new(Count::default()), Arc::new(Count::default()));
    let g = futures::executor::block_on(cond.acquire());
    let mut first = Box::pin(cond.wait(g));
    assert!(poll(&mut first, &c1).is_pending()); // queued, lock released
    let g = futures::executor::block_on(cond.acquire());
    let mut second = Box::pin(cond.wait(g));
    assert!(poll(&mut second, &c2).is_pending());
    assert_eq!(cond.waiters(), 2);
    let g = futures::executor::block_on(cond.acquire());
    cond.notify(1).unwrap();
    assert_eq!(c1.0.load(Ordering::SeqCst), 1);
    assert_eq!(c2.0.load(Ordering::SeqCst), 0);
    drop(g);
    drop(first);
    assert_eq!(c2.0.load(Ordering::SeqCst), 1, "the notification passed on");
    let Poll::Ready(guard) = poll(&mut second, &c2) else {
        panic!("the second waiter was notified but did not return")
    };
    drop(guard.unwrap());
    assert_eq!(cond.waiters(), 0);
    assert!(!cond.locked());
}

#[test]
fn condition_refuses_a_foreign_guard_and_a_notify_without_the_lock() {
    let cond = Condition::new();
    let err = cond.notify(1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), "cannot notify on un-acquired lock");
    let other = Lock::new();
    let foreign = other.try_acquire().unwrap();
    let err = futures::executor::block_on(cond.wait(foreign)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(!other.locked(), "the foreign guard was released");
    // `Condition::with_lock` shares a lock other code holds.
    let shared = Condition::with_lock(other.clone());
    let g = other.try_acquire().unwrap();
    shared.notify_all().unwrap();
    drop(g);
}

/// Three parties (a task on each of two loops and a plain thread) pass the barrier together,
/// five rounds in a row: the barrier is reusable and every round hands out 0, 1 and 2.
#[test]
fn barrier_is_reused_by_two_loops_and_a_thread() {
    let _w = watchdog("barrier_is_reused_by_two_loops_and_a_thread");
    const ROUNDS: usize = 5;
    let loops = TwoLoops::new();
    let barrier = Barrier::new(3).unwrap();
    let run = |b: Barrier| async move {
        let mut got = Vec::new();
        for _ in 0..ROUNDS {
            got.push(b.wait().await.unwrap());
        }
        got
    };
    let (b0, b1, b2) = (barrier.clone(), barrier.clone(), barrier.clone());
    let on0 = loops.submit(0, move || run(b0));
    let on1 = loops.submit(1, move || run(b1));
    let plain = std::thread::spawn(move || futures::executor::block_on(run(b2)));
    let rounds = [
        on0.result(None).unwrap(),
        on1.result(None).unwrap(),
        plain.join().unwrap(),
    ];
    for r in 0..ROUNDS {
        let mut indices: Vec<usize> = rounds.iter().map(|got| got[r]).collect();
        indices.sort();
        assert_eq!(indices, [0, 1, 2], "round {r}");
    }
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
    loops.finish();
}

/// `abort` from this thread breaks the waiters on both loops; a later `wait` fails at once;
/// `reset` repairs the barrier for a full round.
#[test]
fn barrier_abort_reaches_waiters_on_two_loops_and_reset_repairs_it() {
    let _w = watchdog("barrier_abort_reaches_waiters_on_two_loops_and_reset_repairs_it");
    let loops = TwoLoops::new();
    let barrier = Barrier::new(3).unwrap();
    let (b0, b1) = (barrier.clone(), barrier.clone());
    let w0 = loops.submit(0, move || async move { b0.wait().await });
    let w1 = loops.submit(1, move || async move { b1.wait().await });
    until(|| barrier.n_waiting() == 2);
    barrier.abort();
    for w in [w0, w1] {
        let err = w.result(None).unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenBarrier);
        assert_eq!(err.to_string(), "Abort or reset of barrier");
    }
    assert!(barrier.broken());
    let err = futures::executor::block_on(barrier.wait()).unwrap_err();
    assert_eq!(err.to_string(), "Barrier aborted");
    barrier.reset();
    assert!(!barrier.broken());
    let (b0, b1) = (barrier.clone(), barrier.clone());
    let w0 = loops.submit(0, move || async move { b0.wait().await });
    let w1 = loops.submit(1, move || async move { b1.wait().await });
    let mine = futures::executor::block_on(barrier.wait()).unwrap();
    let mut indices = vec![
        mine,
        w0.result(None).unwrap().unwrap(),
        w1.result(None).unwrap().unwrap(),
    ];
    indices.sort();
    assert_eq!(indices, [0, 1, 2]);
    assert_eq!(
        Barrier::new(0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    loops.finish();
}
