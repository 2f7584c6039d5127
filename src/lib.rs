//! # asyncio for Rust
//!
//! Python asyncio's event loop, its scheduling contract and its pluggable pieces, as a Rust
//! `Future` executor.
//!
//! An [`EventLoop`] runs callbacks ([`call_soon`](EventLoop::call_soon),
//! [`call_later`](EventLoop::call_later), [`call_at`](EventLoop::call_at)), tasks
//! ([`create_task`](EventLoop::create_task)) and any `Future`
//! ([`run_until_complete`](EventLoop::run_until_complete), [`block_on`](EventLoop::block_on)),
//! watches file descriptors ([`add_reader`](EventLoop::add_reader)), and offloads blocking work
//! ([`run_in_executor`](EventLoop::run_in_executor)). It keeps asyncio's ordering rules exactly:
//! one FIFO ready queue for callbacks and task steps, one batch per iteration, due timers behind
//! callbacks that were ready first.
//!
//! ```
//! use asyncio::EventLoop;
//! use std::{cell::RefCell, rc::Rc};
//!
//! let event_loop = EventLoop::new()?;
//! let log = Rc::new(RefCell::new(Vec::new()));
//! let (a, b, c) = (log.clone(), log.clone(), log.clone());
//! event_loop.call_later(0.0, move || a.borrow_mut().push("timer"))?;
//! event_loop.call_soon(move || b.borrow_mut().push("soon"))?;
//! let out = event_loop.run_until_complete(async move {
//!     c.borrow_mut().push("task");
//!     asyncio::sleep(0.01).await?;
//!     Ok::<_, asyncio::Error>(7)
//! })??;
//! assert_eq!(out, 7);
//! assert_eq!(*log.borrow(), ["soon", "task", "timer"]);
//! event_loop.close()?;
//! # Ok::<(), asyncio::Error>(())
//! ```
//!
//! Other threads talk to a loop through its [`LoopHandle`]. Every misuse is an [`Error`] with a
//! matchable [`ErrorKind`]; library code does not panic. The book in `book/` is the guide.

pub mod error;
pub mod events;
pub mod executor;
pub mod handles;
pub mod locks;
pub mod net;
pub mod policy;
pub mod protocols;
pub mod queues;
mod runners;
pub mod runtime;
pub mod selector;
pub mod server;
pub mod streams;
#[cfg(unix)]
pub mod subprocess;
mod sync;
pub mod task;
pub mod tls;
pub mod transports;
#[cfg(unix)]
pub mod unix;

pub use error::{Error, ErrorKind, Result};
pub use events::{AbstractEventLoop, ExceptionContext, ExceptionHandler};
pub use executor::{Executor, ThreadPoolExecutor};
pub use handles::{Handle, ThreadsafeHandle, TimerHandle};
pub use net::{AddrInfo, AddrInfoHints, ConnectOptions, DatagramAddr, DatagramOptions};
pub use policy::{
    get_child_watcher, get_event_loop, get_event_loop_policy, new_event_loop, set_child_watcher,
    set_event_loop, set_event_loop_policy, DefaultEventLoopPolicy, EventLoopPolicy, PolicyWrapper,
};
pub use protocols::{
    BaseProtocol, BufferedProtocol, DatagramProtocol, Protocol, SubprocessProtocol,
};
pub use runners::{run, Runner, RunnerBuilder, THREAD_JOIN_TIMEOUT};
pub use runtime::clock::{Clock, IntoDeadline, IntoDelay, MonotonicClock, VirtualClock};
pub use runtime::core::{EventLoop, EventLoopBuilder, LoopHandle, WeakEventLoop};
pub use runtime::running::{get_running_loop, try_running_loop};
pub use runtime::{ConcurrentFuture, ExecutorFuture};
pub use selector::{Interest, PollingSelector, ReadyEvent, Selector, SelectorWaker};
pub use server::{Server, ServerOptions, ServerSocket};
#[cfg(unix)]
pub use subprocess::{Process, SubprocessTransport};
pub use task::{
    all_tasks, as_completed, as_completed_tasks, current_task, gather, gather_tasks, shield, sleep,
    task_group, timeout, to_thread, wait, wait_for, AsCompleted, CancelOnDrop, DoneCallbackId,
    ExceptionGroup, Gather, GatherAll, LoopFuture, ReturnWhen, Shield, Sleep, Task, TaskBody,
    TaskFactory, TaskGroup, TaskRef, Timeout,
};
pub use tls::{TlsContext, TlsVersion};
pub use transports::{Address, DatagramTransport, ExtraInfo, SendtoAddr, Transport};
pub use unix::child_watcher::{
    ChildCallback, ChildWatcher, FastChildWatcher, PidfdChildWatcher, SafeChildWatcher,
    ThreadedChildWatcher,
};
