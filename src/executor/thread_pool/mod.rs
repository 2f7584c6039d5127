//! [`ThreadPoolExecutor`]: a lazily grown pool of worker threads with an idle timeout.
//!
//! Design (close to tokio's blocking pool):
//!
//! * One `Mutex<State>` guards the job queue and all the bookkeeping; one `Condvar` wakes idle
//!   workers, another wakes threads waiting in `shutdown(true)`. The accounting and its
//!   transitions are in `state.rs`, the worker threads in `worker.rs`, `shutdown` in
//!   `shutdown.rs`. They synchronise through `sync.rs`: std's types, or loom's under
//!   `cfg(loom)`, where `loom_tests.rs` models the accounting and shutdown races (`.ci/loom`).
//! * Workers never hold the lock while running a job, and run each job under `catch_unwind`.
//! * Workers hold only the inner `Arc<Inner>`; the user-facing [`ThreadPoolExecutor`] shuts the
//!   pool down (without waiting) when dropped.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{default_max_workers, Executor, Job};
use crate::error::{Error, ErrorKind, Result};

mod shutdown;
mod state;
mod sync;
mod worker;

use state::{Inner, Placement, State};
use sync::{Arc, Condvar, Mutex};

/// How long an idle worker waits for a job before exiting, unless the builder says otherwise.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The thread name prefix unless the builder says otherwise (threads are `asyncio_0`, ...).
const DEFAULT_PREFIX: &str = "asyncio";

/// Source of unique pool ids, so a worker thread can tell which pool it belongs to.
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// A pool of worker threads running blocking [`Job`]s, like Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Threads are started lazily: a [`submit`](Executor::submit) starts one when no worker is idle
/// and fewer than [`max_workers`](ThreadPoolExecutor::max_workers) are running. They are named
/// `{prefix}_{n}` (`asyncio_0`, `asyncio_1`, ... by default), and an idle worker exits after the
/// [idle timeout](ThreadPoolBuilder::idle_timeout). A job that panics does not kill its worker.
///
/// Share it as `Arc<ThreadPoolExecutor>` or `Arc<dyn Executor>`; dropping the last handle shuts
/// the pool down without waiting (queued jobs still run, then the workers exit).
///
/// `shutdown(true)` called from one of the pool's own jobs never deadlocks on the pool itself:
/// it joins no thread, and waits until every worker has exited except its own and those of
/// other jobs that are inside `shutdown(true)` too (they wait in the same way, and exit once
/// their jobs return). It still waits for the queued jobs and the jobs running on the other
/// workers. (CPython raises "cannot join current thread" there.)
///
/// ```
/// use asyncio::executor::{Executor, ThreadPoolExecutor};
/// use std::sync::mpsc;
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(4)
///     .thread_name_prefix("blocking")
///     .build()
///     .unwrap();
/// assert_eq!(pool.thread_count(), 0); // nothing started yet
///
/// let (tx, rx) = mpsc::channel();
/// pool.submit(Box::new(move || {
///     let name = std::thread::current().name().map(str::to_owned);
///     tx.send(name).unwrap();
/// }))
/// .unwrap();
/// assert_eq!(rx.recv().unwrap().as_deref(), Some("blocking_0"));
/// pool.shutdown(true);
/// ```
pub struct ThreadPoolExecutor {
    inner: Arc<Inner>,
}

/// Configures and builds a [`ThreadPoolExecutor`]; see [`ThreadPoolExecutor::builder`].
///
/// ```
/// use asyncio::executor::ThreadPoolExecutor;
/// use std::time::Duration;
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(8)
///     .thread_name_prefix("io")
///     .idle_timeout(Duration::from_secs(1))
///     .build()
///     .unwrap();
/// assert_eq!(pool.max_workers(), 8);
///
/// let err = ThreadPoolExecutor::builder().max_workers(0).build().unwrap_err();
/// assert_eq!(err.kind(), asyncio::ErrorKind::InvalidArgument);
/// ```
#[derive(Clone)]
pub struct ThreadPoolBuilder {
    max_workers: usize,
    prefix: String,
    idle_timeout: Duration,
}

impl ThreadPoolExecutor {
    /// A pool of [`default_max_workers`] threads named `asyncio_0`, `asyncio_1`, ..., whose idle
    /// workers exit after 10 seconds.
    pub fn new() -> Self {
        Self::from_builder(ThreadPoolBuilder::default())
    }

    /// A builder to configure the number of workers, thread names and idle timeout.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// Builds the pool; `builder.max_workers` has been checked to be non-zero.
    fn from_builder(builder: ThreadPoolBuilder) -> Self {
        ThreadPoolExecutor {
            inner: Arc::new(Inner {
                state: Mutex::new(State::new()),
                work_cond: Condvar::new(),
                exit_cond: Condvar::new(),
                max_workers: builder.max_workers,
                prefix: builder.prefix,
                idle_timeout: builder.idle_timeout,
                id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
                #[cfg(all(test, not(loom)))]
                idle_exit_hook: std::sync::Mutex::new(None),
            }),
        }
    }

    /// The most worker threads the pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.inner.max_workers
    }

    /// The number of worker threads started so far that are still alive (0 before the first
    /// [`submit`](Executor::submit), and again after idle workers timed out or the pool was shut
    /// down).
    pub fn thread_count(&self) -> usize {
        self.inner.lock().num_threads
    }
}

impl Default for ThreadPoolExecutor {
    /// Same as [`ThreadPoolExecutor::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ThreadPoolExecutor {
    /// Shuts the pool down without waiting: queued jobs still run, then the workers exit.
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.inner.max_workers)
            .field("thread_name_prefix", &self.inner.prefix)
            .field("idle_timeout", &self.inner.idle_timeout)
            .field("threads", &state.num_threads)
            .field("idle", &state.num_idle)
            .field("queued", &state.queue.len())
            .field("shutdown", &state.shutdown)
            .finish()
    }
}

impl Executor for ThreadPoolExecutor {
    fn submit(&self, job: Job) -> Result<()> {
        let inner = &self.inner;
        let mut state = inner.lock();
        match state.place(job, inner.max_workers) {
            Err(job) => {
                drop(state);
                drop(job);
                Err(Error::new(
                    ErrorKind::ExecutorShutdown,
                    "cannot schedule new futures after shutdown",
                ))
            }
            Ok(Placement::Claimed) => {
                drop(state);
                inner.work_cond.notify_one();
                Ok(())
            }
            Ok(Placement::Queued) => Ok(()),
            Ok(Placement::StartWorker) => worker::start(inner, state),
        }
    }

    fn shutdown(&self, wait: bool) {
        self.inner.shutdown(wait);
    }

    fn is_shutdown(&self) -> bool {
        self.inner.lock().shutdown
    }
}

impl ThreadPoolBuilder {
    /// The most worker threads to run at once (default: [`default_max_workers`]). Must be
    /// greater than 0.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n;
        self
    }

    /// The prefix of the worker threads' names: threads are named `{prefix}_0`, `{prefix}_1`,
    /// ... (default: `asyncio`).
    pub fn thread_name_prefix(mut self, p: impl Into<String>) -> Self {
        self.prefix = p.into();
        self
    }

    /// How long an idle worker waits for a job before it exits (default: 10 s, like tokio's
    /// blocking pool). A new worker is started lazily when needed again.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Builds the pool. No thread is started until the first job is submitted.
    ///
    /// Fails with [`ErrorKind::InvalidArgument`] ("max_workers must be greater than 0") if
    /// `max_workers` is 0.
    pub fn build(self) -> Result<ThreadPoolExecutor> {
        if self.max_workers == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "max_workers must be greater than 0",
            ));
        }
        Ok(ThreadPoolExecutor::from_builder(self))
    }
}

impl Default for ThreadPoolBuilder {
    /// [`default_max_workers`] workers, prefix `asyncio`, a 10 s idle timeout.
    fn default() -> Self {
        ThreadPoolBuilder {
            max_workers: default_max_workers(),
            prefix: DEFAULT_PREFIX.to_owned(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.prefix)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
