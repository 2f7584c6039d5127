//! # asyncio-policies
//!
//! Ready-made event-loop policies and executor adapters for the [`asyncio`] crate, written only
//! against its public API: every policy here is what a user could write in their own crate.
//!
//! | item | what it is for |
//! | --- | --- |
//! | [`DebugEventLoopPolicy`] | every loop in debug mode, slow callbacks logged over a chosen threshold |
//! | [`StrictEventLoopPolicy`] | `get_event_loop` never creates a loop, on any thread (Python 3.14's rule) |
//! | [`VirtualTimePolicy`] | every loop on its own [`VirtualClock`](asyncio::VirtualClock): deterministic tests |
//! | [`ExecutorPolicy`] | every loop offloads `run_in_executor(None, ..)` to one shared executor |
//! | [`BoundedExecutor`] | an executor adapter that refuses jobs beyond a capacity instead of queueing without end |
//! | [`BlockingExecutor`] | an executor over the `blocking` crate's pool (`blocking::unblock`), shared with smol |
//!
//! Each policy is built subclass-style: a [`DefaultEventLoopPolicy`](asyncio::DefaultEventLoopPolicy)
//! wrapped in a type that implements [`PolicyWrapper`](asyncio::PolicyWrapper) and overrides one
//! method; the rest falls through to the default, including the default's own internal calls
//! (the default `get_event_loop` creates its loops with the overriding `new_event_loop`).
//!
//! ```
//! use asyncio::{EventLoopPolicy, ThreadPoolExecutor};
//! use asyncio_policies::{BoundedExecutor, ExecutorPolicy};
//! use std::sync::Arc;
//!
//! // All loops share one pool of 4 threads, with at most 64 jobs waiting or running.
//! let pool = Arc::new(ThreadPoolExecutor::builder().max_workers(4).build()?);
//! let bounded = Arc::new(BoundedExecutor::new(pool, 64)?);
//! asyncio::set_event_loop_policy(Some(Arc::new(ExecutorPolicy::new(bounded.clone()))));
//!
//! let n = asyncio::run(async {
//!     let lp = asyncio::get_running_loop()?;
//!     lp.run_in_executor(None, || 6 * 7)?.await
//! })??;
//! assert_eq!(n, 42);
//!
//! asyncio::set_event_loop_policy(None);
//! asyncio::Executor::shutdown(&*bounded, true);
//! # Ok::<(), asyncio::Error>(())
//! ```

mod blocking_executor;
mod bounded_executor;
mod debug_policy;
mod executor_policy;
mod strict_policy;
mod virtual_time_policy;

pub use blocking_executor::BlockingExecutor;
pub use bounded_executor::{BoundedExecutor, ExecutorFull};
pub use debug_policy::DebugEventLoopPolicy;
pub use executor_policy::ExecutorPolicy;
pub use strict_policy::StrictEventLoopPolicy;
pub use virtual_time_policy::VirtualTimePolicy;
