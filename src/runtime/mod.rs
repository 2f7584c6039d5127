//! The event loop itself: [`EventLoop`](core::EventLoop), its iteration, timers, clock, fd
//! watchers, executor offloading and cross-thread entry points.

pub mod clock;
pub(crate) mod core;
pub(crate) mod fds;
pub(crate) mod inbox;
mod iteration;
mod offload;
mod quad_heap;
pub(crate) mod ready;
pub(crate) mod running;
pub(crate) mod slot_queue;
pub(crate) mod task_table;
pub(crate) mod thread_loops;
mod threads;
pub(crate) mod timers;

pub use offload::ExecutorFuture;
pub use threads::ConcurrentFuture;
