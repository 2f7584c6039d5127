//! [`BoundedExecutor`]: an executor adapter that caps the jobs queued or running, and
//! [`ExecutorFull`], the reason it gives when it refuses one.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use asyncio::executor::Job;
use asyncio::{Error, ErrorKind, Executor, Result};

/// Wraps any executor and admits at most `capacity` jobs at a time, counting those queued and
/// those running.
///
/// Rejection policy: a job submitted while `capacity` jobs are in flight is refused at once,
/// never waited for (the event loop must not block). [`submit`](Executor::submit) returns an
/// [`ErrorKind::InvalidState`] error whose message is
/// "executor is at capacity (N jobs queued or running)" and whose
/// [`source`](std::error::Error::source) is an [`ExecutorFull`];
/// [`BoundedExecutor::is_full_error`] tells such an error apart. The refused job is dropped
/// without running, so `run_in_executor` fails immediately and the caller decides: retry later,
/// shed load, or run the work elsewhere. A slot is freed when a job returns (also when it
/// panics) or when the inner executor drops it without running it. A job returns just after
/// delivering its result, so a `run_in_executor` future may resolve a moment before its slot
/// is free again.
///
/// Everything else is the inner executor's: shutting the adapter down shuts the inner executor
/// down, and after that `submit` fails with the inner executor's
/// [`ErrorKind::ExecutorShutdown`].
///
/// ```
/// use asyncio::{Executor, ThreadPoolExecutor};
/// use asyncio_policies::BoundedExecutor;
/// use std::sync::{mpsc, Arc};
///
/// let pool = Arc::new(ThreadPoolExecutor::builder().max_workers(1).build()?);
/// let bounded = BoundedExecutor::new(pool, 1)?;
/// let (release, wait) = mpsc::channel::<()>();
/// bounded.submit(Box::new(move || wait.recv().unwrap()))?; // occupies the only slot
///
/// let err = bounded.submit(Box::new(|| ())).unwrap_err();
/// assert!(BoundedExecutor::is_full_error(&err));
/// assert_eq!(err.to_string(), "executor is at capacity (1 jobs queued or running)");
///
/// release.send(()).unwrap();
/// bounded.shutdown(true);
/// assert_eq!(bounded.in_flight(), 0);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct BoundedExecutor {
    inner: Arc<dyn Executor>,
    capacity: usize,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    in_flight: AtomicUsize,
    rejected: AtomicU64,
}

/// Frees one slot when dropped: after the job ran (or panicked), or when the inner executor
/// dropped the job unrun.
struct Permit(Arc<Counters>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl BoundedExecutor {
    /// An adapter over `inner` admitting at most `capacity` jobs queued or running.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `capacity` is 0 (nothing could ever run).
    pub fn new(inner: Arc<dyn Executor>, capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "capacity must be greater than 0",
            ));
        }
        Ok(BoundedExecutor {
            inner,
            capacity,
            counters: Arc::default(),
        })
    }

    /// The most jobs admitted at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The jobs admitted and not finished yet (queued or running).
    pub fn in_flight(&self) -> usize {
        self.counters.in_flight.load(Ordering::Acquire)
    }

    /// How many jobs were refused because the executor was full.
    pub fn rejected_count(&self) -> u64 {
        self.counters.rejected.load(Ordering::Relaxed)
    }

    /// The wrapped executor.
    pub fn inner(&self) -> &Arc<dyn Executor> {
        &self.inner
    }

    /// Whether `error` is this adapter's "at capacity" refusal (also after it went through
    /// `run_in_executor`).
    pub fn is_full_error(error: &Error) -> bool {
        error.kind() == ErrorKind::InvalidState
            && std::error::Error::source(error).is_some_and(|s| s.is::<ExecutorFull>())
    }

    fn try_acquire(&self) -> Option<Permit> {
        self.counters
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(self.counters.clone()))
    }
}

impl fmt::Debug for BoundedExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedExecutor")
            .field("capacity", &self.capacity)
            .field("in_flight", &self.in_flight())
            .field("rejected", &self.rejected_count())
            .field("shutdown", &self.inner.is_shutdown())
            .finish()
    }
}

impl Executor for BoundedExecutor {
    fn submit(&self, job: Job) -> Result<()> {
        let Some(permit) = self.try_acquire() else {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            let full = ExecutorFull {
                capacity: self.capacity,
            };
            return Err(Error::new(ErrorKind::InvalidState, full.to_string()).with_source(full));
        };
        // On error the inner executor drops the job, and with it the permit.
        self.inner.submit(Box::new(move || {
            let _permit = permit;
            job();
        }))
    }

    fn shutdown(&self, wait: bool) {
        self.inner.shutdown(wait);
    }

    fn is_shutdown(&self) -> bool {
        self.inner.is_shutdown()
    }
}

/// Why a [`BoundedExecutor`] refused a job: `capacity` jobs were already queued or running.
///
/// It is the [`source`](std::error::Error::source) of the [`ErrorKind::InvalidState`] error
/// that `submit` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorFull {
    capacity: usize,
}

impl ExecutorFull {
    /// The capacity of the executor that refused.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl fmt::Display for ExecutorFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "executor is at capacity ({} jobs queued or running)",
            self.capacity
        )
    }
}

impl std::error::Error for ExecutorFull {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_permit_frees_its_slot() {
        let ex = BoundedExecutor::new(Arc::new(asyncio::ThreadPoolExecutor::new()), 2).unwrap();
        let p1 = ex.try_acquire().unwrap();
        let p2 = ex.try_acquire().unwrap();
        assert!(ex.try_acquire().is_none());
        assert_eq!(ex.in_flight(), 2);
        drop(p1);
        assert_eq!(ex.in_flight(), 1);
        drop(p2);
        assert_eq!(ex.in_flight(), 0);
        ex.shutdown(true);
    }

    #[test]
    fn executor_full_displays_its_capacity() {
        let full = ExecutorFull { capacity: 9 };
        assert_eq!(full.capacity(), 9);
        assert_eq!(
            full.to_string(),
            "executor is at capacity (9 jobs queued or running)"
        );
    }
}
