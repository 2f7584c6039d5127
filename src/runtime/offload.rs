//! Offloading blocking work: `run_in_executor`, `set_default_executor`,
//! `shutdown_default_executor` (rules R28-R31).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;

use crate::error::{Error, ErrorKind, Result};
use crate::executor::{Executor, ThreadPoolExecutor};
use crate::runtime::core::EventLoop;

/// The future returned by [`EventLoop::run_in_executor`]: the job's return value.
///
/// Dropping it before the job starts cancels the job (it will not run); a job that already
/// started runs to the end and its result is discarded, as with asyncio.
#[must_use = "futures do nothing unless awaited"]
pub struct ExecutorFuture<T> {
    rx: oneshot::Receiver<Result<T>>,
}

impl<T> std::fmt::Debug for ExecutorFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorFuture").finish_non_exhaustive()
    }
}

impl<T> Future for ExecutorFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(r)) => Poll::Ready(r),
            // The executor dropped the job without running it (it was shut down).
            Poll::Ready(Err(_)) => Poll::Ready(Err(Error::new(
                ErrorKind::Cancelled,
                "the executor dropped the job without running it",
            ))),
        }
    }
}

impl EventLoop {
    /// Runs `job` on `executor` (or the loop's default executor, a lazily created
    /// [`ThreadPoolExecutor`]) and returns a future of its result. A panicking job gives an
    /// [`ErrorKind::Panicked`] result and leaves the worker alive.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] on a closed loop; [`ErrorKind::ExecutorShutdown`] ("Executor
    /// shutdown has been called") for the default executor after
    /// [`shutdown_default_executor`](EventLoop::shutdown_default_executor) or `close`, or when
    /// `executor` was shut down.
    ///
    /// ```
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let lp = event_loop.clone();
    /// let n = event_loop.run_until_complete(async move {
    ///     lp.run_in_executor(None, || (1..=10u64).product::<u64>()).unwrap().await
    /// })??;
    /// assert_eq!(n, 3_628_800);
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn run_in_executor<F, T>(
        &self,
        executor: Option<Arc<dyn Executor>>,
        job: F,
    ) -> Result<ExecutorFuture<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.check_closed()?;
        let executor = match executor {
            Some(e) => e,
            None => self.default_executor()?,
        };
        let (tx, rx) = oneshot::channel();
        executor.submit(Box::new(move || {
            if tx.is_canceled() {
                return;
            }
            let r = catch_unwind(AssertUnwindSafe(job)).map_err(|p| Error::from_panic(&*p));
            let _ = tx.send(r);
        }))?;
        Ok(ExecutorFuture { rx })
    }

    /// The default executor, created on first use.
    fn default_executor(&self) -> Result<Arc<dyn Executor>> {
        if self.inner.executor_shutdown_called.get() {
            return Err(Error::new(
                ErrorKind::ExecutorShutdown,
                "Executor shutdown has been called",
            ));
        }
        let mut slot = self.inner.default_executor.borrow_mut();
        if slot.is_none() {
            self.inner.executor_owned.set(true);
        }
        Ok(slot
            .get_or_insert_with(|| Arc::new(ThreadPoolExecutor::new()))
            .clone())
    }

    /// Replaces the default executor; the loop shuts it down on `close`. The old one is not shut
    /// down (it may be in use elsewhere). After
    /// `shutdown_default_executor` the loop still refuses default-executor work (the flag is
    /// sticky, as in asyncio).
    pub fn set_default_executor(&self, executor: Arc<dyn Executor>) {
        *self.inner.default_executor.borrow_mut() = Some(executor);
        self.inner.executor_owned.set(true);
    }

    /// Shuts the default executor down and waits, on a helper thread, for its workers to
    /// finish, at most `timeout` (`None`: no limit).
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] if the workers did not finish in time (they are left to finish
    /// on their own); [`ErrorKind::Io`] if the helper thread cannot start.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting, not the shutdown.
    pub async fn shutdown_default_executor(&self, timeout: Option<Duration>) -> Result<()> {
        self.inner.executor_shutdown_called.set(true);
        let executor = self.inner.default_executor.borrow_mut().take();
        let Some(executor) = executor else {
            return Ok(());
        };
        if !self.inner.executor_owned.get() {
            // Shared with other loops (see `EventLoopBuilder::shared_executor`): not ours to stop.
            return Ok(());
        }
        let (tx, rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("asyncio-executor-shutdown".into())
            .spawn(move || {
                executor.shutdown(true);
                let _ = tx.send(());
            })?;
        let joined = async {
            let _ = rx.await;
        };
        match timeout {
            None => {
                joined.await;
                Ok(())
            }
            Some(t) => crate::timeout(t, joined).await.inspect_err(|e| {
                if e.kind() == ErrorKind::Timeout {
                    crate::events::log_warning(&format!(
                        "The executor did not finishing joining its threads within {} seconds.",
                        t.as_secs_f64()
                    ));
                }
            }),
        }
    }
}
