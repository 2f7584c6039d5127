//! Executors for blocking work: the Rust counterpart of `concurrent.futures.Executor`.
//!
//! The event loop's `run_in_executor` hands a [`Job`] to an [`Executor`]; the default one is a
//! [`ThreadPoolExecutor`], which starts worker threads lazily (up to
//! [`default_max_workers`] of them), names them `asyncio_0`, `asyncio_1`, ... like CPython, and
//! lets idle workers exit after a while.
//!
//! ```
//! use asyncio::executor::{Executor, ThreadPoolExecutor};
//! use std::sync::mpsc;
//!
//! let pool = ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
//! let (tx, rx) = mpsc::channel();
//! pool.submit(Box::new(move || tx.send(6 * 7).unwrap())).unwrap();
//! assert_eq!(rx.recv().unwrap(), 42);
//! pool.shutdown(true);
//! assert!(pool.is_shutdown());
//! assert_eq!(pool.thread_count(), 0);
//! ```

use crate::error::Result;

mod thread_pool;

pub use thread_pool::{ThreadPoolBuilder, ThreadPoolExecutor};

/// A unit of blocking work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Where blocking work is offloaded (asyncio's `concurrent.futures.Executor`).
///
/// Implementations must be shareable across threads; the event loop keeps one as
/// `Arc<dyn Executor>`.
///
/// ```
/// use asyncio::executor::{Executor, ThreadPoolExecutor};
/// use std::sync::{mpsc, Arc};
///
/// let executor: Arc<dyn Executor> = Arc::new(ThreadPoolExecutor::new());
/// let (tx, rx) = mpsc::channel();
/// executor.submit(Box::new(move || tx.send("done").unwrap())).unwrap();
/// assert_eq!(rx.recv().unwrap(), "done");
///
/// executor.shutdown(true);
/// let err = executor.submit(Box::new(|| ())).unwrap_err();
/// assert_eq!(err.kind(), asyncio::ErrorKind::ExecutorShutdown);
/// ```
pub trait Executor: Send + Sync + 'static {
    /// Queues `job` to run on some other thread.
    ///
    /// Once [`shutdown`](Executor::shutdown) was called this fails with
    /// [`ErrorKind::ExecutorShutdown`](crate::error::ErrorKind::ExecutorShutdown) and the
    /// message "cannot schedule new futures after shutdown" (CPython's wording); the job is
    /// dropped without running.
    fn submit(&self, job: Job) -> Result<()>;

    /// Stops accepting jobs. Jobs already queued still run.
    ///
    /// If `wait` is true, blocks until every worker thread has exited (been joined). Calling it
    /// again is harmless. Called from one of the executor's own worker threads it does not
    /// deadlock: that thread is not waited for.
    fn shutdown(&self, wait: bool);

    /// Whether [`shutdown`](Executor::shutdown) was called.
    fn is_shutdown(&self) -> bool;
}

/// The default number of workers: `min(32, cpus + 4)`, as CPython's `ThreadPoolExecutor`.
///
/// `cpus` is [`std::thread::available_parallelism`], or 1 if it cannot be determined.
///
/// ```
/// let n = asyncio::executor::default_max_workers();
/// assert!((5..=32).contains(&n));
/// ```
pub fn default_max_workers() -> usize {
    let cpus = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1);
    cpus.saturating_add(4).min(32)
}
