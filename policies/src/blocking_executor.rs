//! [`BlockingExecutor`]: an [`Executor`] over the `blocking` crate's thread pool
//! (`blocking::unblock`), the pool that smol and async-std use.

use std::cell::Cell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use asyncio::executor::Job;
use asyncio::{Error, ErrorKind, Executor, Result};

#[derive(Default)]
struct State {
    in_flight: usize,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

thread_local! {
    /// The `Shared` (by address) whose job this thread is running, so that `shutdown(true)`
    /// from inside a job does not wait for itself.
    static RUNNING_JOB_OF: Cell<usize> = const { Cell::new(0) };
}

/// Marks one job finished when dropped (after it ran or panicked, or if the pool dropped it).
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        if state.in_flight <= 1 {
            self.0.idle.notify_all();
        }
    }
}

/// Runs jobs on the `blocking` crate's process-wide thread pool with `blocking::unblock`.
///
/// The pool is shared by every user of `blocking` in the process (smol, async-fs,
/// async-process, ...), grows on demand up to `BLOCKING_MAX_THREADS` (500 by default) and lets
/// idle threads exit after about a second, so a program that stops offloading work has no
/// threads left soon after. Use it with [`ExecutorPolicy`](crate::ExecutorPolicy) so that asyncio
/// loops and smol code share one pool, or pass it to `run_in_executor` explicitly.
///
/// The pool itself cannot be shut down; this adapter's [`shutdown`](Executor::shutdown) stops
/// *it* from accepting jobs ([`ErrorKind::ExecutorShutdown`], "cannot schedule new futures after
/// shutdown") and, with `wait`, blocks until the jobs it submitted have finished (called from
/// one of those jobs, it does not wait for that job). A panicking job is caught and logged at
/// error level on the `asyncio_policies` target; the pool thread lives on.
///
/// ```
/// use asyncio::{EventLoop, Executor};
/// use asyncio_policies::BlockingExecutor;
/// use std::sync::Arc;
///
/// let executor: Arc<dyn Executor> = Arc::new(BlockingExecutor::new());
/// let event_loop = EventLoop::new()?;
/// let lp = event_loop.clone();
/// let ex = executor.clone();
/// let sum = event_loop.run_until_complete(async move {
///     lp.run_in_executor(Some(ex), || (1..=100u32).sum::<u32>())?.await
/// })??;
/// assert_eq!(sum, 5050);
/// event_loop.close()?;
/// executor.shutdown(true);
/// assert_eq!(executor.submit(Box::new(|| ())).unwrap_err().kind(), asyncio::ErrorKind::ExecutorShutdown);
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Default)]
pub struct BlockingExecutor {
    shared: Arc<Shared>,
}

impl BlockingExecutor {
    /// An adapter over the `blocking` pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Jobs submitted through this adapter that have not finished yet.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().in_flight
    }

    fn key(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }
}

impl fmt::Debug for BlockingExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("BlockingExecutor")
            .field("in_flight", &state.in_flight)
            .field("shutdown", &state.shutdown)
            .finish()
    }
}

impl Executor for BlockingExecutor {
    fn submit(&self, job: Job) -> Result<()> {
        {
            // Checked and counted under one lock, so `shutdown(true)` cannot miss a job.
            let mut state = self.shared.lock();
            if state.shutdown {
                return Err(Error::new(
                    ErrorKind::ExecutorShutdown,
                    "cannot schedule new futures after shutdown",
                ));
            }
            state.in_flight += 1;
        }
        let guard = InFlight(self.shared.clone());
        let key = self.key();
        blocking::unblock(move || {
            let _guard = guard;
            let outer = RUNNING_JOB_OF.with(|r| r.replace(key));
            if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
                let message = Error::from_panic(&*payload);
                log::error!(target: "asyncio_policies", "executor job panicked: {message}");
            }
            RUNNING_JOB_OF.with(|r| r.set(outer));
        })
        .detach();
        Ok(())
    }

    fn shutdown(&self, wait: bool) {
        let mut state = self.shared.lock();
        state.shutdown = true;
        if !wait {
            return;
        }
        let own = usize::from(RUNNING_JOB_OF.with(Cell::get) == self.key());
        while state.in_flight > own {
            state = self
                .shared
                .idle
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn is_shutdown(&self) -> bool {
        self.shared.lock().shutdown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn the_running_job_marker_is_set_during_a_job_only() {
        let ex = BlockingExecutor::new();
        let key = ex.key();
        let (tx, rx) = mpsc::channel();
        ex.submit(Box::new(move || {
            tx.send(RUNNING_JOB_OF.with(Cell::get)).unwrap();
        }))
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), key);
        ex.shutdown(true);
        assert_eq!(RUNNING_JOB_OF.with(Cell::get), 0);
        assert_ne!(BlockingExecutor::new().key(), key);
    }
}
