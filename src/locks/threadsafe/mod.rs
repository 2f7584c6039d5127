//! `Send + Sync` versions of [`Lock`], [`Event`], [`Condition`], [`Semaphore`],
//! [`BoundedSemaphore`] and [`Barrier`], for tasks on different loops and threads (and plain
//! threads, through any `block_on`).
//!
//! They keep the promises of their loop-thread siblings in [`locks`](crate::locks): waiters are
//! served strictly first come, first served, now across every thread that waits; a waiter whose
//! future is dropped (its task cancelled, a `timeout` that ran out) leaves the queue at once, and
//! a permit or lock already handed to it passes to the next waiter, so no wake-up is lost. Each
//! primitive is one `Arc<Mutex<..>>` holding its state and its FIFO of waiters: a check and the
//! registration of a waker are one step under that mutex, and wakers are woken after it is
//! released. The futures are `Send`, so `run_coroutine_threadsafe` can carry them to a loop on
//! another thread; a task waiting on one loop is woken through that loop's thread-safe wake-up
//! when another thread releases.
//!
//! Use the loop-thread primitives when every user is on one loop: they need no lock and no
//! atomic. There is deliberately no thread-safe queue:
//! asyncio has none (Python programs reach for the third-party janus), and in Rust the
//! `async-channel` crate already is one (MPMC, `Send`, bounded or not, runs on this loop
//! unchanged, see the book's "Using other crates").
//!
//! ```
//! use asyncio::locks::threadsafe::Semaphore;
//! use asyncio::EventLoop;
//!
//! // At most two jobs at a time, over two loops on two threads.
//! let sem = Semaphore::new(2);
//! let (a, thread_a) = EventLoop::spawn_thread()?;
//! let (b, thread_b) = EventLoop::spawn_thread()?;
//! let jobs: Vec<_> = (0..6)
//!     .map(|i| {
//!         let sem = sem.clone();
//!         let on = if i % 2 == 0 { &a } else { &b };
//!         on.run_coroutine_threadsafe(async move {
//!             let _permit = sem.acquire().await;
//!             i
//!         })
//!     })
//!     .collect::<Result<_, _>>()?;
//! let done: Vec<i32> = jobs.into_iter().map(|j| j.result(None)).collect::<Result<_, _>>()?;
//! assert_eq!(done, [0, 1, 2, 3, 4, 5]);
//! assert_eq!(sem.value(), 2);
//! for (handle, thread) in [(a, thread_a), (b, thread_b)] {
//!     handle.stop();
//!     thread.join().unwrap()?;
//! }
//! # Ok::<(), asyncio::Error>(())
//! ```

mod barrier;
mod condition;
mod event;
mod lock;
mod semaphore;
mod waiters;

pub use barrier::Barrier;
pub use condition::Condition;
pub use event::{Event, EventWait};
pub use lock::{Lock, LockAcquire, LockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreAcquire, SemaphoreGuard};

/// Loom models of the waiter protocol (`RUSTFLAGS="--cfg loom" cargo test --release --lib
/// loom`, run by `.ci/loom`): the real primitives over loom's `Arc` and `Mutex` (the
/// `crate::sync` shim), driven by loom's `block_on`, whose park/unpark makes a lost wake-up a
/// deadlock that loom reports.
#[cfg(all(test, loom))]
mod loom_models {
    use super::{Barrier, Condition, Event, Lock, Semaphore};
    use crate::runtime::inbox::loom_models::model;
    use futures::task::noop_waker;
    use loom::future::block_on;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Context;

    /// Two threads take the lock, each holding it while it checks nobody else is inside: never
    /// two owners, and each waiter is woken (no deadlock).
    #[test]
    fn loom_threadsafe_lock_excludes_and_wakes_its_waiter() {
        model(3, || {
            let lock = Lock::new();
            let inside = Arc::new(AtomicUsize::new(0));
            let critical = |lock: &Lock, inside: &AtomicUsize| {
                let guard = block_on(lock.acquire());
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two owners");
                inside.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
            };
            let (l, i) = (lock.clone(), inside.clone());
            let other = thread::spawn(move || critical(&l, &i));
            critical(&lock, &inside);
            other.join().unwrap();
            assert!(!lock.locked());
            assert_eq!(lock.waiters(), 0);
        });
    }

    /// A waiter that queues and then gives up, racing the release: whether or not the permit
    /// was handed to it, the waiter that stays gets it, and the permit count ends where it
    /// started.
    #[test]
    fn loom_threadsafe_semaphore_cancelled_waiter_passes_its_wake_up_on() {
        model(3, || {
            let sem = Semaphore::new(1);
            let held = sem.try_acquire().unwrap();
            let s = sem.clone();
            let quitter = thread::spawn(move || {
                let mut acquire = s.acquire();
                let waker = noop_waker();
                let polled = Pin::new(&mut acquire).poll(&mut Context::from_waker(&waker));
                drop(polled); // a permit it got at once goes back here
                drop(acquire); // cancelled: a permit handed to it passes on
            });
            let s = sem.clone();
            let stayer = thread::spawn(move || drop(block_on(s.acquire())));
            drop(held);
            quitter.join().unwrap();
            stayer.join().unwrap();
            assert_eq!(sem.value(), 1);
            assert_eq!(sem.waiters(), 0);
        });
    }

    /// `set` from one thread always reaches a waiter on another, however the two interleave
    /// (the waiter checks the flag and queues in one step under the mutex).
    #[test]
    fn loom_threadsafe_event_set_reaches_the_waiter() {
        model(3, || {
            let event = Event::new();
            let e = event.clone();
            let waiter = thread::spawn(move || block_on(e.wait()));
            event.set();
            waiter.join().unwrap();
            assert_eq!(event.waiters(), 0);
        });
    }

    /// Once the waiter is queued, a `clear` right after the `set` does not take the wake-up
    /// back (asyncio: the waiter's future is already done).
    #[test]
    fn loom_threadsafe_event_clear_after_set_keeps_the_wake_up() {
        model(3, || {
            let event = Event::new();
            let e = event.clone();
            let waiter = thread::spawn(move || block_on(e.wait()));
            while event.waiters() == 0 {
                thread::yield_now();
            }
            event.set();
            event.clear();
            waiter.join().unwrap();
            assert_eq!(event.waiters(), 0);
        });
    }

    /// A waiter on one thread, a notifier on another: however they interleave, the waiter
    /// sees the flag (it queues before it releases the lock, and `notify` needs the lock).
    #[test]
    fn loom_threadsafe_condition_notify_reaches_the_waiter() {
        model(3, || {
            let cond = Condition::new();
            let flag = Arc::new(AtomicUsize::new(0));
            let (c, f) = (cond.clone(), flag.clone());
            let waiter = thread::spawn(move || {
                let guard = block_on(c.acquire());
                let guard = block_on(c.wait_for(guard, || f.load(Ordering::SeqCst) == 1));
                drop(guard.unwrap());
            });
            let guard = block_on(cond.acquire());
            flag.store(1, Ordering::SeqCst);
            cond.notify_all().unwrap();
            drop(guard);
            waiter.join().unwrap();
            assert_eq!(cond.waiters(), 0);
            assert!(!cond.locked());
        });
    }

    /// Two parties on two threads: both pass, their indices are 0 and 1, and the barrier is
    /// empty and filling again afterwards.
    #[test]
    fn loom_threadsafe_barrier_releases_both_parties() {
        model(3, || {
            let barrier = Barrier::new(2).unwrap();
            let b = barrier.clone();
            let other = thread::spawn(move || block_on(b.wait()).unwrap());
            let mine = block_on(barrier.wait()).unwrap();
            let theirs = other.join().unwrap();
            assert_eq!(mine + theirs, 1);
            assert_eq!(barrier.n_waiting(), 0);
            assert!(!barrier.broken());
        });
    }
}
