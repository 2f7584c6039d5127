//! asyncio's synchronization primitives: [`Lock`], [`Event`], [`Condition`], [`Semaphore`],
//! [`BoundedSemaphore`] and [`Barrier`].
//!
//! They are loop-thread objects, as in asyncio: `Rc` inside (cloning shares one primitive), not
//! `Send`, no atomics. Every blocked task waits in a FIFO deque and is served strictly first
//! come, first served; a waiter whose future is dropped (its task cancelled, a `timeout` that
//! ran out) leaves the deque at once, and a wake-up it had already received passes to the next
//! waiter, so none is lost (asyncio's bpo-45997 and gh-90155 fixes). Guards stand for Python's
//! `async with`: dropping a [`LockGuard`] or [`SemaphoreGuard`] releases.
//!
//! Nothing here needs a running loop: the futures only use their `Waker`, so they work under
//! any executor on one thread. For tasks on several loops or threads, [`threadsafe`] has
//! `Send + Sync` versions of all six with the same FIFO promise; to hand other work across threads, use
//! [`LoopHandle::call_soon_threadsafe`](crate::LoopHandle::call_soon_threadsafe).
//!
//! ```
//! use asyncio::locks::Semaphore;
//!
//! let event_loop = asyncio::EventLoop::new()?;
//! let sem = Semaphore::new(2); // at most two at a time
//! let out = event_loop.run_until_complete(async move {
//!     asyncio::gather((0..5).map(|i| {
//!         let sem = sem.clone();
//!         async move {
//!             let _permit = sem.acquire().await;
//!             asyncio::sleep(0.001).await.unwrap();
//!             i
//!         }
//!     }))
//!     .await
//! })??;
//! assert_eq!(out, [0, 1, 2, 3, 4]);
//! # Ok::<(), asyncio::Error>(())
//! ```

mod barrier;
mod condition;
mod event;
mod lock;
mod semaphore;
pub mod threadsafe;
pub(crate) mod waiters;

pub use barrier::Barrier;
pub use condition::Condition;
pub use event::{Event, EventWait};
pub use lock::{Acquire, Lock, LockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreAcquire, SemaphoreGuard};
