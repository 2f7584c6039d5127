//! [`ExecutorPolicy`]: a policy whose loops all offload to one shared executor.

use std::fmt;
use std::sync::Arc;

use asyncio::{DefaultEventLoopPolicy, Executor, PolicyWrapper};

/// A policy whose loops all use one executor for `run_in_executor(None, ..)`.
///
/// Offloading is a policy concern: which pool blocking work lands on, how large it may grow and
/// what happens when it is full are process-wide decisions, like which loop a thread uses. With
/// this policy installed, every loop made through it (by `new_event_loop`, by the implicit
/// creation of `get_event_loop`, by [`asyncio::run`] and [`asyncio::Runner`]) shares `executor`
/// instead of each starting its own thread pool. Combine it with
/// [`BoundedExecutor`](crate::BoundedExecutor) to cap the blocking work of the whole process, or
/// with [`BlockingExecutor`](crate::BlockingExecutor) to use the `blocking` crate's pool.
///
/// The loops never shut a shared executor down (not on `close`, not in
/// `shutdown_default_executor`); the owner does, with [`Executor::shutdown`] on
/// [`executor`](ExecutorPolicy::executor).
///
/// Built subclass-style: it overrides only `default_executor`, and the default
/// `new_event_loop` asks the outermost policy for it (open recursion).
///
/// ```
/// use asyncio::{EventLoopPolicy, Executor, ThreadPoolExecutor};
/// use asyncio_policies::ExecutorPolicy;
/// use std::sync::Arc;
///
/// let pool = Arc::new(ThreadPoolExecutor::builder().max_workers(2).build()?);
/// let policy = ExecutorPolicy::new(pool.clone());
/// let event_loop = policy.new_event_loop()?;
/// let lp = event_loop.clone();
/// let name = event_loop.run_until_complete(async move {
///     lp.run_in_executor(None, || std::thread::current().name().map(str::to_owned))?.await
/// })??;
/// assert_eq!(name.as_deref(), Some("asyncio_0"));
/// event_loop.close()?;
/// assert!(!pool.is_shutdown()); // the loop does not own it
/// policy.executor().shutdown(true);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct ExecutorPolicy {
    base: DefaultEventLoopPolicy,
    executor: Arc<dyn Executor>,
}

impl ExecutorPolicy {
    /// A policy whose loops share `executor`.
    pub fn new(executor: Arc<dyn Executor>) -> Self {
        Self::with_base(DefaultEventLoopPolicy::new(), executor)
    }

    /// Like [`new`](ExecutorPolicy::new), over a given base policy.
    pub fn with_base(base: DefaultEventLoopPolicy, executor: Arc<dyn Executor>) -> Self {
        ExecutorPolicy { base, executor }
    }

    /// The shared executor.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }
}

impl fmt::Debug for ExecutorPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorPolicy")
            .field("base", &self.base)
            .field("executor_shutdown", &self.executor.is_shutdown())
            .finish()
    }
}

impl PolicyWrapper for ExecutorPolicy {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }

    fn default_executor(&self) -> Option<Arc<dyn Executor>> {
        Some(self.executor.clone())
    }
}
