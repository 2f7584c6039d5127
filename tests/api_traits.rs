//! The auto traits of every public type: what is `Send`, `Sync`, `Unpin` (and `Clone` where it
//! matters), and, as importantly, what is *not*: the loop side (`EventLoop`, tasks, futures,
//! handles) is `!Send` by design, and only the thread-safe surface (`LoopHandle`,
//! `ThreadsafeHandle`, `ConcurrentFuture`, executors, `Error`, `locks::threadsafe`) crosses
//! threads.
//!
//! The checks are made at compile time; a wrong auto trait fails the build of this test.

// Compile-time assertions, without a dependency.
//
// `assert_impl!(T: A, B)` compiles only if `T` implements every listed trait.
// `assert_not_impl!(T: A)` compiles only if `T` does not implement `A`: with a blanket impl of
// a helper trait for all types and a second one for the types implementing `A`, naming the
// helper's item on `T` is ambiguous (a compile error) exactly when `T: A`.
macro_rules! assert_impl {
    ($t:ty: $($tr:path),+ $(,)?) => {{
        fn check<T: ?Sized $(+ $tr)+>() {}
        check::<$t>();
    }};
}

macro_rules! assert_not_impl {
    ($t:ty: $($tr:path),+ $(,)?) => {{
        $({
            trait AmbiguousIfImpl<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
            #[allow(dead_code)]
            struct Invalid;
            impl<T: ?Sized + $tr> AmbiguousIfImpl<Invalid> for T {}
            let _ = <$t as AmbiguousIfImpl<_>>::some_item;
        })+
    }};
}

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomPinned;
use std::rc::Rc;
use std::sync::Arc;

use asyncio::executor::{Job, ThreadPoolBuilder};
use asyncio::{
    AbstractEventLoop, CancelOnDrop, ConcurrentFuture, Error, ErrorKind, EventLoop,
    EventLoopBuilder, ExceptionContext, ExceptionHandler, Executor, ExecutorFuture, Gather, Handle,
    Interest, LoopFuture, LoopHandle, MonotonicClock, PollingSelector, ReadyEvent, ReturnWhen,
    Runner, RunnerBuilder, Selector, SelectorWaker, Shield, Sleep, Task, TaskRef,
    ThreadPoolExecutor, ThreadsafeHandle, Timeout, TimerHandle, VirtualClock, WeakEventLoop,
};

fn is_static<T: 'static>() {}

/// A future that is not `Unpin`.
struct NotUnpin(PhantomPinned);

impl Future for NotUnpin {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
}

#[test]
fn the_loop_stays_on_its_thread_and_its_handle_travels() {
    assert_impl!(EventLoop: Clone, Unpin, std::fmt::Debug);
    assert_not_impl!(EventLoop: Send, Sync);
    assert_impl!(WeakEventLoop: Clone, Unpin, std::fmt::Debug);
    assert_not_impl!(WeakEventLoop: Send, Sync);
    assert_not_impl!(EventLoopBuilder: Send, Sync);
    assert_impl!(EventLoopBuilder: Default, Unpin);

    assert_impl!(LoopHandle: Send, Sync, Clone, Unpin, std::fmt::Debug);
    is_static::<LoopHandle>();

    // The object-safe trait serves `!Send` loops.
    assert_not_impl!(dyn AbstractEventLoop: Send, Sync);
}

#[test]
fn errors_cross_threads() {
    assert_impl!(Error: Send, Sync, Clone, Unpin, std::error::Error, std::fmt::Display);
    is_static::<Error>();
    assert_impl!(ErrorKind: Send, Sync, Copy, Eq, std::hash::Hash, std::fmt::Debug, Unpin);
    // `?` into the usual boxed error works.
    let boxed: Box<dyn std::error::Error + Send + Sync> =
        Error::from_kind(ErrorKind::Closed).into();
    assert_eq!(boxed.to_string(), "event loop closed");
    let _: asyncio::Result<()> = Ok(());
}

#[test]
fn exception_handling_types_are_loop_local() {
    assert_impl!(ExceptionContext: Clone, Default, std::fmt::Debug, Unpin);
    assert_not_impl!(ExceptionContext: Send, Sync);
    assert_not_impl!(ExceptionHandler: Send, Sync);
}

#[test]
fn handles() {
    assert_impl!(Handle: Clone, Unpin, std::fmt::Debug);
    assert_not_impl!(Handle: Send, Sync);
    assert_impl!(TimerHandle: Clone, Unpin, std::fmt::Debug);
    assert_not_impl!(TimerHandle: Send, Sync);
    assert_impl!(ThreadsafeHandle: Send, Sync, Clone, Unpin, std::fmt::Debug);
}

#[test]
fn tasks_and_loop_futures_are_loop_local() {
    // Even with a `Send` output, tasks hold the loop's `Rc`s.
    assert_not_impl!(Task<u8>: Send, Sync);
    assert_not_impl!(TaskRef: Send, Sync);
    assert_not_impl!(LoopFuture<u8>: Send, Sync);
    // Handles are `Unpin` whatever the output or the future.
    assert_impl!(Task<u8>: Unpin, Future<Output = asyncio::Result<u8>>, std::fmt::Debug);
    assert_impl!(Task<NotUnpin>: Unpin);
    assert_impl!(TaskRef: Clone, Unpin, std::fmt::Debug);
    assert_impl!(LoopFuture<u8>: Clone, Unpin, Future<Output = asyncio::Result<u8>>, std::fmt::Debug);
    assert_impl!(LoopFuture<NotUnpin>: Unpin, Clone);
}

#[test]
fn helper_futures() {
    assert_impl!(Sleep: Unpin, Future<Output = asyncio::Result<()>>);
    assert_not_impl!(Sleep: Send, Sync);

    assert_impl!(Timeout<std::future::Ready<u8>>: Unpin, Future<Output = asyncio::Result<u8>>);
    assert_not_impl!(Timeout<std::future::Ready<u8>>: Send, Sync);
    // Structural pinning: a `Timeout` is `Unpin` only if its future is.
    assert_not_impl!(Timeout<NotUnpin>: Unpin);

    assert_impl!(Gather<u8>: Unpin, Future<Output = asyncio::Result<Vec<u8>>>);
    assert_impl!(Gather<NotUnpin>: Unpin);
    assert_not_impl!(Gather<u8>: Send, Sync);
    assert_impl!(CancelOnDrop<u8>: Unpin, Future<Output = asyncio::Result<u8>>, std::fmt::Debug);
    assert_impl!(CancelOnDrop<NotUnpin>: Unpin);
    assert_not_impl!(CancelOnDrop<u8>: Send, Sync);

    assert_impl!(Shield<u8>: Unpin, Future<Output = asyncio::Result<u8>>);
    assert_impl!(Shield<NotUnpin>: Unpin);
    assert_not_impl!(Shield<u8>: Send, Sync);

    assert_impl!(ReturnWhen: Send, Sync, Copy, Eq, Unpin, std::fmt::Debug);
}

#[test]
fn cross_thread_futures_are_send_when_their_output_is() {
    assert_impl!(ConcurrentFuture<u8>: Send, Sync, Unpin, Future<Output = asyncio::Result<u8>>, std::fmt::Debug);
    assert_impl!(ConcurrentFuture<NotUnpin>: Unpin);
    assert_not_impl!(ConcurrentFuture<Rc<u8>>: Send, Sync);
    // `Cell` is `Send` but not `Sync`: the future is still shareable, as it hands the value
    // to one thread only.
    assert_impl!(ConcurrentFuture<Cell<u8>>: Send, Sync);

    assert_impl!(ExecutorFuture<u8>: Send, Sync, Unpin, Future<Output = asyncio::Result<u8>>, std::fmt::Debug);
    assert_impl!(ExecutorFuture<NotUnpin>: Unpin);
    assert_not_impl!(ExecutorFuture<Rc<u8>>: Send, Sync);
}

#[test]
fn executors_are_shareable() {
    assert_impl!(dyn Executor: Send, Sync);
    assert_impl!(Arc<dyn Executor>: Send, Sync, Clone);
    assert_impl!(ThreadPoolExecutor: Send, Sync, Unpin, Default, Executor, std::fmt::Debug);
    assert_impl!(ThreadPoolBuilder: Send, Sync, Clone, Unpin, Default, std::fmt::Debug);
    // A job moves to a worker once; it need not be shareable.
    assert_impl!(Job: Send);
    assert_not_impl!(Job: Sync);
}

#[test]
fn runners_are_loop_local() {
    assert_not_impl!(Runner: Send, Sync);
    assert_not_impl!(RunnerBuilder: Send, Sync);
    assert_impl!(Runner: Unpin, Default);
    assert_impl!(RunnerBuilder: Unpin, Default);
}

#[test]
fn clocks() {
    assert_impl!(MonotonicClock: Send, Sync, Copy, Unpin, Default, std::fmt::Debug);
    // A virtual clock is shared with its loop through `Rc`s.
    assert_impl!(VirtualClock: Clone, Unpin, Default, std::fmt::Debug);
    assert_not_impl!(VirtualClock: Send, Sync);
}

#[test]
fn selectors() {
    assert_impl!(Interest: Send, Sync, Copy, Eq, Unpin, Default, std::fmt::Debug);
    assert_impl!(ReadyEvent: Send, Sync, Copy, Eq, Unpin, std::fmt::Debug);
    // It can be built on one thread and handed to a loop on another, but it is driven by one
    // thread at a time.
    assert_impl!(PollingSelector: Send, Unpin, Selector);
    assert_not_impl!(PollingSelector: Sync);
    assert_impl!(dyn SelectorWaker: Send, Sync);
    // The trait itself does not demand `Send`: a loop's selector stays on the loop's thread.
    assert_not_impl!(dyn Selector: Send, Sync);
}

#[test]
fn policies_and_child_watchers_are_process_wide() {
    use asyncio::{ChildCallback, ChildWatcher, DefaultEventLoopPolicy, EventLoopPolicy};
    assert_impl!(dyn EventLoopPolicy: Send, Sync);
    assert_impl!(Arc<dyn EventLoopPolicy>: Send, Sync, Clone);
    assert_impl!(DefaultEventLoopPolicy: Send, Sync, Unpin, EventLoopPolicy);
    assert_impl!(dyn ChildWatcher: Send, Sync);
    assert_impl!(asyncio::ThreadedChildWatcher: Send, Sync, Unpin, ChildWatcher);
    assert_impl!(asyncio::PidfdChildWatcher: Send, Sync, Unpin, ChildWatcher);
    assert_impl!(ChildCallback: Send);
}

#[test]
fn policies_and_child_watchers_are_process_wide_so_send_and_sync() {
    use asyncio::{
        ChildCallback, ChildWatcher, DefaultEventLoopPolicy, EventLoopPolicy, FastChildWatcher,
        PidfdChildWatcher, SafeChildWatcher, ThreadedChildWatcher,
    };
    // One policy object serves every thread (it hands out `!Send` loops per thread).
    assert_impl!(DefaultEventLoopPolicy: Send, Sync, Default, Unpin, std::fmt::Debug);
    assert_impl!(dyn EventLoopPolicy: Send, Sync);
    is_static::<Arc<dyn EventLoopPolicy>>();
    // Watchers are shared by the policy and called from waiter threads and signal handlers.
    assert_impl!(dyn ChildWatcher: Send, Sync);
    assert_impl!(PidfdChildWatcher: Send, Sync, Clone, Default, Unpin, std::fmt::Debug);
    assert_impl!(ThreadedChildWatcher: Send, Sync, Clone, Default, Unpin, std::fmt::Debug);
    assert_impl!(SafeChildWatcher: Send, Sync, Clone, Default, Unpin, std::fmt::Debug);
    assert_impl!(FastChildWatcher: Send, Sync, Clone, Default, Unpin, std::fmt::Debug);
    // Exit callbacks travel from the reaping thread to the loop.
    assert_impl!(ChildCallback: Send);
}

#[test]
fn networking_objects_live_on_their_loop_and_plain_data_travels() {
    use asyncio::streams::{IncompleteReadError, LimitOverrunError, StreamReader, StreamWriter};
    use asyncio::{
        AddrInfo, AddrInfoHints, Address, ConnectOptions, DatagramAddr, DatagramOptions,
        DatagramTransport, ExtraInfo, Server, ServerOptions, ServerSocket, Transport,
    };
    // Transports, servers and streams call `!Send` protocols on the loop thread.
    assert_impl!(Transport: Clone, Unpin);
    assert_not_impl!(Transport: Send, Sync);
    assert_impl!(DatagramTransport: Clone, Unpin);
    assert_not_impl!(DatagramTransport: Send, Sync);
    assert_not_impl!(Server: Send, Sync);
    assert_impl!(StreamReader: Unpin, futures::io::AsyncRead);
    assert_not_impl!(StreamReader: Send, Sync);
    assert_impl!(StreamWriter: Unpin, Clone, futures::io::AsyncWrite);
    assert_not_impl!(StreamWriter: Send, Sync);
    // Options, addresses and errors are plain data.
    assert_impl!(ConnectOptions: Send, Default);
    assert_impl!(ServerOptions: Send, Default);
    assert_impl!(DatagramOptions: Send, Default);
    assert_impl!(AddrInfo: Send, Sync, Clone, std::fmt::Debug);
    assert_impl!(AddrInfoHints: Send, Sync, Clone, std::fmt::Debug);
    assert_impl!(Address: Send, Sync, Clone, std::fmt::Debug, std::fmt::Display);
    assert_impl!(DatagramAddr: Send, Sync, Clone, std::fmt::Debug);
    assert_impl!(ExtraInfo: Send, Sync, Clone, std::fmt::Debug);
    assert_impl!(ServerSocket: Send, Sync, Clone, std::fmt::Debug);
    assert_impl!(IncompleteReadError: Send, Sync, std::error::Error);
    assert_impl!(LimitOverrunError: Send, Sync, std::error::Error);
}

#[cfg(target_os = "linux")]
#[test]
fn the_linux_selector_stays_with_its_loop() {
    use asyncio::selector::EpollSelector;
    assert_impl!(EpollSelector: Unpin, std::fmt::Debug);
    is_static::<EpollSelector>();
}

#[test]
fn locks_are_loop_local_and_their_threadsafe_versions_travel() {
    use asyncio::locks::{self, threadsafe};
    assert_not_impl!(locks::Lock: Send);
    assert_not_impl!(locks::Semaphore: Sync);
    assert_impl!(threadsafe::Lock: Send, Sync, Clone, Unpin);
    assert_impl!(threadsafe::LockAcquire: Send, Sync, Unpin);
    assert_impl!(threadsafe::LockGuard: Send, Sync);
    assert_impl!(threadsafe::Event: Send, Sync, Clone, Unpin);
    assert_impl!(threadsafe::EventWait: Send, Sync, Unpin);
    assert_impl!(threadsafe::Semaphore: Send, Sync, Clone, Unpin);
    assert_impl!(threadsafe::Condition: Send, Sync, Clone, Unpin);
    assert_impl!(threadsafe::Barrier: Send, Sync, Clone, Unpin);
    assert_impl!(threadsafe::BoundedSemaphore: Send, Sync, Clone, Unpin);
    assert_impl!(threadsafe::SemaphoreAcquire: Send, Sync, Unpin);
    assert_impl!(threadsafe::SemaphoreGuard: Send, Sync);
}
