//! [`ThreadPoolExecutor`]: a lazily grown pool of worker threads with an idle timeout.
//!
//! Design (close to tokio's blocking pool):
//!
//! * One `Mutex<State>` guards the job queue and all the bookkeeping; one `Condvar` wakes idle
//!   workers, another wakes threads waiting in `shutdown(true)`.
//! * `num_idle` counts workers waiting for work that nobody has claimed yet. `submit` claims one
//!   (`num_idle -= 1; num_notify += 1`) and wakes exactly one worker with `notify_one`; if no worker
//!   is idle and the pool is below `max_workers`, it starts a thread instead. A waking worker
//!   consumes a `num_notify` token; so `num_idle + num_notify` is always the number of workers
//!   blocked in the wait loop, and a wake-up is never lost even if a different worker than the
//!   one signalled picks it up.
//! * Workers never hold the lock while running a job, and run each job under `catch_unwind`.
//! * Workers hold only the inner `Arc<Inner>`; the user-facing [`ThreadPoolExecutor`] shuts the
//!   pool down (without waiting) when dropped.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{default_max_workers, Executor, Job};
use crate::error::{Error, ErrorKind, Result};

/// How long an idle worker waits for a job before exiting, unless the builder says otherwise.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The thread name prefix unless the builder says otherwise (threads are `asyncio_0`, ...).
const DEFAULT_PREFIX: &str = "asyncio";

/// Source of unique pool ids, so a worker thread can tell which pool it belongs to.
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id of the pool this thread is a worker of; 0 for threads that are no pool's worker.
    static WORKER_OF: Cell<u64> = const { Cell::new(0) };
}

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

/// The part of the pool shared with the worker threads.
struct Inner {
    state: Mutex<State>,
    /// Wakes idle workers (one per submitted job, all on shutdown).
    work_cond: Condvar,
    /// Wakes `shutdown(true)` callers when a worker exits.
    exit_cond: Condvar,
    max_workers: usize,
    prefix: String,
    idle_timeout: Duration,
    /// Unique id of this pool (for [`WORKER_OF`]).
    id: u64,
    /// Tests: runs in a worker that leaves on its idle timeout, after it released the lock.
    #[cfg(test)]
    idle_exit_hook: Mutex<Option<Box<dyn Fn() + Send>>>,
}

struct State {
    queue: VecDeque<Job>,
    shutdown: bool,
    /// Workers alive (started and not yet exited).
    num_threads: usize,
    /// Workers waiting for work and not yet claimed by a `submit`.
    num_idle: usize,
    /// Wake-ups sent to idle workers and not yet consumed.
    num_notify: usize,
    /// The suffix of the next thread's name.
    next_id: usize,
    /// Handles of started threads not yet joined; finished ones are pruned when spawning.
    handles: Vec<JoinHandle<()>>,
    /// Workers of this pool blocked inside their own `shutdown(true)` call (from a job).
    /// Another worker's `shutdown(true)` does not wait for them: they wait for it.
    num_shutting_down: usize,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under the lock, so poisoning cannot leave the state inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_current_worker(&self) -> bool {
        WORKER_OF.with(|w| w.get() == self.id)
    }
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
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    shutdown: false,
                    num_threads: 0,
                    num_idle: 0,
                    num_notify: 0,
                    next_id: 0,
                    handles: Vec::new(),
                    num_shutting_down: 0,
                }),
                work_cond: Condvar::new(),
                exit_cond: Condvar::new(),
                max_workers: builder.max_workers,
                prefix: builder.prefix,
                idle_timeout: builder.idle_timeout,
                id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
                #[cfg(test)]
                idle_exit_hook: Mutex::new(None),
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
        if state.shutdown {
            drop(state);
            return Err(Error::new(
                ErrorKind::ExecutorShutdown,
                "cannot schedule new futures after shutdown",
            ));
        }
        state.queue.push_back(job);

        if state.num_idle > 0 {
            // Claim one idle worker and wake exactly it (or whichever idle worker wakes first).
            state.num_idle -= 1;
            state.num_notify += 1;
            drop(state);
            inner.work_cond.notify_one();
            return Ok(());
        }
        if state.num_threads >= inner.max_workers {
            // Every worker is busy; one of them takes the job when it is done with its own.
            return Ok(());
        }

        // Forget threads that have completely exited (their handles need no join).
        state.handles.retain(|h| !h.is_finished());
        let name = format!("{}_{}", inner.prefix, state.next_id);
        let worker_inner = Arc::clone(inner);
        match thread::Builder::new()
            .name(name)
            .spawn(move || worker_main(worker_inner))
        {
            Ok(handle) => {
                state.next_id += 1;
                state.num_threads += 1;
                state.handles.push(handle);
                Ok(())
            }
            Err(e) if state.num_threads == 0 => {
                // No worker could ever run the job: take it back and report.
                let job = state.queue.pop_back();
                drop(state);
                drop(job);
                Err(Error::from(e))
            }
            Err(e) => {
                // Busy workers will still get to the job.
                drop(state);
                log::warn!("ThreadPoolExecutor: could not start a worker thread: {e}");
                Ok(())
            }
        }
    }

    fn shutdown(&self, wait: bool) {
        let inner = &self.inner;
        let mut state = inner.lock();
        state.shutdown = true;
        inner.work_cond.notify_all();
        if !wait {
            return;
        }
        if inner.is_current_worker() {
            // From a job: join nothing (not even ourselves), and wait only for the workers
            // that are not themselves inside `shutdown(true)`; those wait for us, and exit once
            // their job returns. Counting ourselves in may be what the others wait for.
            state.num_shutting_down += 1;
            inner.exit_cond.notify_all();
            while state.num_threads > state.num_shutting_down {
                state = inner
                    .exit_cond
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.num_shutting_down -= 1;
            return;
        }
        let handles = std::mem::take(&mut state.handles);
        drop(state);

        for handle in handles {
            // A worker's panic is already caught per job; nothing else can be reported here.
            let _ = handle.join();
        }

        // Another concurrent `shutdown(true)` may have taken (and be joining) some handles: wait
        // until every worker is gone.
        let mut state = inner.lock();
        while state.num_threads > 0 {
            state = inner
                .exit_cond
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
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

/// Decrements the thread count when a worker exits, even by unwinding.
struct ExitGuard<'a> {
    inner: &'a Inner,
    /// The worker already took itself out of `num_threads` (an idle exit, under the same lock
    /// as its decision to exit).
    counted_out: bool,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        if !self.counted_out {
            state.num_threads -= 1;
        }
        let shutdown = state.shutdown;
        drop(state);
        if shutdown {
            self.inner.exit_cond.notify_all();
        }
    }
}

/// Runs a job, surviving its panic (and a panic while dropping the panic's payload).
fn run_job(job: Job) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            // Dropping this one could panic again; leak it instead.
            std::mem::forget(again);
        }
    }
}

/// The body of a worker thread.
fn worker_main(inner: Arc<Inner>) {
    WORKER_OF.with(|w| w.set(inner.id));
    let mut exit = ExitGuard {
        inner: &inner,
        counted_out: false,
    };
    let mut state = inner.lock();
    'main: loop {
        while let Some(job) = state.queue.pop_front() {
            drop(state);
            run_job(job);
            state = inner.lock();
        }
        if state.shutdown {
            break;
        }

        state.num_idle += 1;
        let deadline = Instant::now().checked_add(inner.idle_timeout);
        loop {
            if state.num_notify > 0 {
                // A submit claimed an idle worker (maybe another one, but it is the same).
                state.num_notify -= 1;
                continue 'main;
            }
            if state.shutdown {
                state.num_idle -= 1;
                continue 'main; // drain whatever is queued, then exit
            }
            match deadline {
                None => {
                    state = inner
                        .work_cond
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Leave the count in the same critical section: a `submit` that still
                        // counted this thread as alive would not start a new one, and with
                        // the pool at `max_workers` its job could wait for a worker that is
                        // gone.
                        state.num_idle -= 1;
                        state.num_threads -= 1;
                        exit.counted_out = true;
                        break 'main;
                    }
                    state = inner
                        .work_cond
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
    drop(state);
    #[cfg(test)]
    if exit.counted_out {
        if let Some(hook) = &*inner.idle_exit_hook.lock().unwrap() {
            hook();
        }
    }
    // `exit` now wakes `shutdown(true)` waiters (and counts the thread out if still counted).
    drop(exit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    /// Generous bound for anything that should happen "soon".
    const BOUND: Duration = Duration::from_secs(10);

    /// A gate jobs can block on until the test opens it (bounded, so nothing hangs).
    struct Gate {
        open: Mutex<bool>,
        cond: Condvar,
    }

    impl Gate {
        fn new() -> Arc<Gate> {
            Arc::new(Gate {
                open: Mutex::new(false),
                cond: Condvar::new(),
            })
        }

        fn wait(&self) {
            let deadline = Instant::now() + BOUND;
            let mut open = self.open.lock().unwrap();
            while !*open {
                let now = Instant::now();
                assert!(now < deadline, "gate never opened");
                open = self.cond.wait_timeout(open, deadline - now).unwrap().0;
            }
        }

        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.cond.notify_all();
        }
    }

    fn pool(max: usize) -> ThreadPoolExecutor {
        ThreadPoolExecutor::builder()
            .max_workers(max)
            .build()
            .unwrap()
    }

    /// Polls `cond` every few milliseconds for up to 5 s.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if cond() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Runs `shutdown(true)` on another thread and fails the test if it does not return.
    fn shutdown_wait_bounded(pool: &Arc<ThreadPoolExecutor>) {
        let (tx, rx) = mpsc::channel();
        let p = Arc::clone(pool);
        thread::spawn(move || {
            p.shutdown(true);
            tx.send(()).unwrap();
        });
        rx.recv_timeout(BOUND)
            .expect("shutdown(true) did not return");
    }

    fn thread_name() -> String {
        thread::current().name().unwrap_or("").to_owned()
    }

    /// The name of the worker thread that runs a job submitted now.
    fn next_worker_name(pool: &ThreadPoolExecutor) -> String {
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(thread_name()).unwrap()))
            .unwrap();
        rx.recv_timeout(BOUND).unwrap()
    }

    #[test]
    fn jobs_run_and_results_come_back() {
        let pool = pool(4);
        let (tx, rx) = mpsc::channel();
        for i in 0..50u32 {
            let tx = tx.clone();
            pool.submit(Box::new(move || tx.send(i * 2).unwrap()))
                .unwrap();
        }
        let mut got: Vec<u32> = (0..50).map(|_| rx.recv_timeout(BOUND).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        assert!(pool.thread_count() <= 4);
    }

    #[test]
    fn threads_start_lazily() {
        let pool = pool(4);
        assert_eq!(pool.thread_count(), 0);
        assert_eq!(pool.max_workers(), 4);
        assert_eq!(next_worker_name(&pool), "asyncio_0");
        assert_eq!(pool.thread_count(), 1);
    }

    #[test]
    fn idle_worker_is_reused() {
        let pool = pool(4);
        for _ in 0..20 {
            // Once the worker waits for work, a submit wakes it instead of starting a thread.
            assert!(eventually(|| {
                let state = pool.inner.lock();
                state.num_idle == state.num_threads
            }));
            assert_eq!(next_worker_name(&pool), "asyncio_0");
        }
        assert_eq!(pool.thread_count(), 1);
    }

    #[test]
    fn threads_are_named_prefix_n() {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(3)
            .thread_name_prefix("testpool")
            .build()
            .unwrap();
        let gate = Gate::new();
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let (tx, gate) = (tx.clone(), Arc::clone(&gate));
            pool.submit(Box::new(move || {
                tx.send(thread_name()).unwrap();
                gate.wait();
            }))
            .unwrap();
        }
        let mut names: Vec<String> = (0..3).map(|_| rx.recv_timeout(BOUND).unwrap()).collect();
        gate.open();
        names.sort();
        assert_eq!(names, ["testpool_0", "testpool_1", "testpool_2"]);
        assert_eq!(pool.thread_count(), 3);
    }

    #[test]
    fn max_workers_is_respected() {
        let pool = pool(4);
        let gate = Gate::new();
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let (tx, gate) = (tx.clone(), Arc::clone(&gate));
            let (active, peak) = (Arc::clone(&active), Arc::clone(&peak));
            pool.submit(Box::new(move || {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.wait();
                active.fetch_sub(1, Ordering::SeqCst);
                tx.send(i).unwrap();
            }))
            .unwrap();
        }
        // Every started worker is blocked in a job, so each of the first 4 submits started one.
        assert_eq!(pool.thread_count(), 4);
        gate.open();
        let mut got: Vec<i32> = (0..100).map(|_| rx.recv_timeout(BOUND).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert!(pool.thread_count() <= 4);
    }

    #[test]
    fn panicking_job_leaves_the_pool_usable() {
        let pool = pool(1);
        // `resume_unwind` unwinds without running the panic hook, so the test output stays clean.
        pool.submit(Box::new(|| std::panic::resume_unwind(Box::new("boom"))))
            .unwrap();

        // A payload whose destructor panics too.
        struct Nasty;
        impl Drop for Nasty {
            fn drop(&mut self) {
                std::panic::resume_unwind(Box::new("boom again"));
            }
        }
        pool.submit(Box::new(|| std::panic::resume_unwind(Box::new(Nasty))))
            .unwrap();

        // Same (only) worker: it survived both panics.
        assert_eq!(next_worker_name(&pool), "asyncio_0");
        assert_eq!(pool.thread_count(), 1);
    }

    #[test]
    fn submit_after_shutdown_fails() {
        let pool = pool(2);
        assert!(!pool.is_shutdown());
        pool.shutdown(false);
        assert!(pool.is_shutdown());
        let err = pool.submit(Box::new(|| ())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
        assert_eq!(
            err.to_string(),
            "cannot schedule new futures after shutdown"
        );
        // Idempotent.
        pool.shutdown(false);
        pool.shutdown(true);
        assert_eq!(pool.thread_count(), 0);
    }

    #[test]
    fn rejected_job_is_dropped() {
        let pool = pool(1);
        pool.shutdown(false);
        let token = Arc::new(());
        let held = Arc::clone(&token);
        assert!(pool.submit(Box::new(move || drop(held))).is_err());
        assert_eq!(Arc::strong_count(&token), 1);
    }

    #[test]
    fn shutdown_wait_joins_and_queued_jobs_still_run() {
        let pool = Arc::new(pool(1));
        let gate = Gate::new();
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let (gate, ran) = (Arc::clone(&gate), Arc::clone(&ran));
            pool.submit(Box::new(move || {
                gate.wait();
                ran.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        for _ in 0..9 {
            let ran = Arc::clone(&ran);
            pool.submit(Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        // The single worker is blocked; nine jobs are queued when the pool is shut down.
        pool.shutdown(false);
        assert!(pool.submit(Box::new(|| ())).is_err());
        gate.open();
        shutdown_wait_bounded(&pool);
        assert_eq!(ran.load(Ordering::SeqCst), 10);
        assert_eq!(pool.thread_count(), 0);
    }

    #[test]
    fn concurrent_shutdown_waits_all_return_after_workers_exit() {
        let pool = Arc::new(pool(4));
        let gate = Gate::new();
        for _ in 0..4 {
            let gate = Arc::clone(&gate);
            pool.submit(Box::new(move || gate.wait())).unwrap();
        }
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let (p, tx) = (Arc::clone(&pool), tx.clone());
            thread::spawn(move || {
                p.shutdown(true);
                tx.send(p.thread_count()).unwrap();
            });
        }
        gate.open();
        for _ in 0..3 {
            assert_eq!(rx.recv_timeout(BOUND).unwrap(), 0);
        }
    }

    #[test]
    fn shutdown_from_inside_a_job_does_not_deadlock() {
        let pool = Arc::new(pool(2));
        let gate = Gate::new();
        {
            // Keeps worker 0 busy until the other job is inside shutdown.
            let gate = Arc::clone(&gate);
            pool.submit(Box::new(move || gate.wait())).unwrap();
        }
        let (tx, rx) = mpsc::channel();
        {
            let p = Arc::clone(&pool);
            pool.submit(Box::new(move || {
                tx.send(None).unwrap();
                p.shutdown(true);
                // Worker 0 was joined; only this thread is left.
                tx.send(Some(p.thread_count())).unwrap();
            }))
            .unwrap();
        }
        assert_eq!(rx.recv_timeout(BOUND).unwrap(), None);
        gate.open();
        assert_eq!(rx.recv_timeout(BOUND).unwrap(), Some(1));
        assert!(pool.is_shutdown());
        shutdown_wait_bounded(&pool);
        assert_eq!(pool.thread_count(), 0);
    }

    #[test]
    fn two_workers_calling_shutdown_wait_from_their_jobs_do_not_deadlock() {
        // Each worker's shutdown(true) used to wait for the other worker to exit: a deadlock.
        let pool = Arc::new(pool(2));
        let both_running = Arc::new(std::sync::Barrier::new(2));
        let (tx, rx) = mpsc::channel();
        for _ in 0..2 {
            let (p, tx, both_running) = (Arc::clone(&pool), tx.clone(), Arc::clone(&both_running));
            pool.submit(Box::new(move || {
                both_running.wait();
                p.shutdown(true);
                tx.send(thread_name()).unwrap();
            }))
            .unwrap();
        }
        let mut names: Vec<String> = (0..2)
            .map(|_| {
                rx.recv_timeout(BOUND)
                    .expect("shutdown(true) in two workers deadlocked")
            })
            .collect();
        names.sort();
        assert_eq!(names, ["asyncio_0", "asyncio_1"]);
        shutdown_wait_bounded(&pool);
        assert_eq!(pool.thread_count(), 0);
    }

    #[test]
    fn idle_workers_time_out_and_restart_lazily() {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(4)
            .idle_timeout(Duration::from_millis(20))
            .build()
            .unwrap();
        let gate = Gate::new();
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let (tx, gate) = (tx.clone(), Arc::clone(&gate));
            pool.submit(Box::new(move || {
                gate.wait();
                tx.send(()).unwrap();
            }))
            .unwrap();
        }
        assert_eq!(pool.thread_count(), 4);
        gate.open();
        for _ in 0..4 {
            rx.recv_timeout(BOUND).unwrap();
        }
        assert!(eventually(|| pool.thread_count() == 0));

        // A new worker starts when needed, numbered after the earlier ones.
        assert_eq!(next_worker_name(&pool), "asyncio_4");
    }

    #[test]
    fn no_lost_wakeups_under_churn() {
        // A 1 ms idle timeout makes workers exit and restart constantly while four threads
        // submit: every job must still run.
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(3)
                .idle_timeout(Duration::from_millis(1))
                .build()
                .unwrap(),
        );
        let (tx, rx) = mpsc::channel();
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let (p, tx) = (Arc::clone(&pool), tx.clone());
                thread::spawn(move || {
                    for i in 0..500 {
                        let tx = tx.clone();
                        p.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
                        if i % 50 == 0 {
                            thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        for _ in 0..2000 {
            rx.recv_timeout(BOUND).expect("a job was lost");
        }
        for s in submitters {
            s.join().unwrap();
        }
        assert!(pool.thread_count() <= 3);
        shutdown_wait_bounded(&pool);
        assert_eq!(pool.thread_count(), 0);
    }

    #[test]
    fn a_submit_racing_the_last_workers_idle_exit_still_runs() {
        // The only worker of a one-worker pool times out and has decided to leave; a job
        // submitted before the thread is gone must get a new worker, not wait for the old one.
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .idle_timeout(Duration::from_millis(1))
                .build()
                .unwrap(),
        );
        let (leaving_tx, leaving_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let go_rx = Mutex::new(go_rx);
        *pool.inner.idle_exit_hook.lock().unwrap() = Some(Box::new(move || {
            let _ = leaving_tx.send(());
            let _ = go_rx.lock().unwrap().recv_timeout(BOUND);
        }));
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        pool.submit(Box::new(move || tx2.send(1).unwrap())).unwrap();
        assert_eq!(rx.recv_timeout(BOUND).unwrap(), 1);
        // The worker is idle, times out, and stops in the hook, past its decision to exit.
        leaving_rx
            .recv_timeout(BOUND)
            .expect("the worker did not time out");
        pool.submit(Box::new(move || tx.send(2).unwrap())).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5));
        // Let the leaving worker go; later ones pass the hook at once (disconnected).
        go_tx.send(()).unwrap();
        drop(go_tx);
        assert_eq!(
            got.expect("the job waited for a worker that was leaving"),
            2
        );
        *pool.inner.idle_exit_hook.lock().unwrap() = None;
        shutdown_wait_bounded(&pool);
        assert_eq!(pool.thread_count(), 0);
    }

    #[test]
    fn dropping_the_executor_lets_threads_exit() {
        let pool = pool(3);
        let gate = Gate::new();
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let (tx, gate) = (tx.clone(), Arc::clone(&gate));
            pool.submit(Box::new(move || {
                gate.wait();
                tx.send(()).unwrap();
            }))
            .unwrap();
        }
        // One queued job too: it still runs after the drop.
        pool.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
        let inner = Arc::clone(&pool.inner);
        drop(pool);
        assert!(inner.lock().shutdown);
        gate.open();
        for _ in 0..4 {
            rx.recv_timeout(BOUND).unwrap();
        }
        assert!(eventually(|| inner.lock().num_threads == 0));
        // Every worker has released its reference to the shared state.
        assert!(eventually(|| Arc::strong_count(&inner) == 1));
    }

    #[test]
    fn idle_threads_exit_on_drop() {
        // Idle workers with a long timeout must not linger after the executor is dropped.
        let pool = pool(2);
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
        rx.recv_timeout(BOUND).unwrap();
        let inner = Arc::clone(&pool.inner);
        drop(pool);
        assert!(eventually(|| Arc::strong_count(&inner) == 1));
        assert_eq!(inner.lock().num_threads, 0);
    }

    #[test]
    fn dropping_the_last_handle_inside_a_job_is_fine() {
        let pool = Arc::new(pool(1));
        let inner = Arc::clone(&pool.inner);
        let gate = Gate::new();
        let (tx, rx) = mpsc::channel();
        let (p, g) = (Arc::clone(&pool), Arc::clone(&gate));
        pool.submit(Box::new(move || {
            g.wait();
            // The last handle: its Drop (shutdown(false)) runs on the worker itself.
            drop(p);
            tx.send(()).unwrap();
        }))
        .unwrap();
        drop(pool);
        assert!(!inner.lock().shutdown);
        gate.open();
        rx.recv_timeout(BOUND).unwrap();
        assert!(inner.lock().shutdown);
        assert!(eventually(|| Arc::strong_count(&inner) == 1));
        assert_eq!(inner.lock().num_threads, 0);
    }

    #[test]
    fn builder_validates_and_defaults() {
        let err = ThreadPoolExecutor::builder()
            .max_workers(0)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(err.to_string(), "max_workers must be greater than 0");

        let n = default_max_workers();
        assert!((5..=32).contains(&n));
        assert_eq!(ThreadPoolExecutor::new().max_workers(), n);
        assert_eq!(ThreadPoolExecutor::default().max_workers(), n);
        assert_eq!(ThreadPoolExecutor::new().thread_count(), 0);
    }

    #[test]
    fn usable_as_shared_trait_object() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<ThreadPoolExecutor>();
        assert_send_sync::<ThreadPoolBuilder>();

        let executor: Arc<dyn Executor> = Arc::new(pool(2));
        let (tx, rx) = mpsc::channel();
        let e2 = Arc::clone(&executor);
        thread::spawn(move || e2.submit(Box::new(move || tx.send(7).unwrap())).unwrap())
            .join()
            .unwrap();
        assert_eq!(rx.recv_timeout(BOUND).unwrap(), 7);
        executor.shutdown(true);
        assert!(executor.is_shutdown());
    }
}
