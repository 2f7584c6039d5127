//! Tasks and futures: [`Task<T>`], [`TaskRef`], [`LoopFuture<T>`], and the helpers `sleep`,
//! `wait_for`, `timeout`, `gather`, `shield`, `wait`, `current_task`, `all_tasks`.

mod atomics;
mod cancel_on_drop;
mod completion;
mod factory;
mod future;
mod group;
mod helpers;
mod join;
pub(crate) mod raw;
pub(crate) mod refs;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use cancel_on_drop::CancelOnDrop;
pub use completion::{as_completed, as_completed_tasks, AsCompleted};
pub use factory::{TaskBody, TaskFactory};
pub use future::LoopFuture;
pub use group::{task_group, ExceptionGroup, TaskGroup};
pub use helpers::{
    gather, gather_tasks, shield, sleep, timeout, wait, wait_for, Gather, GatherAll, ReturnWhen,
    Shield, Sleep, Timeout,
};
pub use join::{to_thread, GatherTuple};
#[doc(hidden)]
pub use join::{GatherSlot, GatherSlots};

use crate::error::{Error, Result};
use crate::runtime::core::EventLoop;
use crate::runtime::running::{check_owner, get_running_loop};
use raw::{AnyTask, Status, TaskJoin};
use refs::{Flags, JoinPtr, TaskPtr};

/// A future scheduled on an event loop, from [`EventLoop::create_task`].
///
/// The loop owns the task: it runs to completion even if this handle is dropped (dropping
/// *detaches*; use [`cancel`](Task::cancel) to stop it, or [`cancel_on_drop`](Task::cancel_on_drop)
/// for a handle whose drop cancels). Awaiting the handle gives the task's
/// output as `Result<T, Error>`, with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) or
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) when it did not finish normally, and with
/// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) when awaited while a
/// different loop runs (asyncio: "The future belongs to a different loop").
///
/// Cancelling drops the task's future at its next step, so its `Drop` code plays the part of
/// Python's `finally`.
///
/// ```
/// use asyncio::EventLoop;
///
/// let event_loop = EventLoop::new()?;
/// let out = event_loop.run_until_complete(async {
///     let lp = asyncio::get_running_loop().unwrap();
///     let task = lp.create_task(async { 40 + 2 }).unwrap();
///     task.set_name("answer");
///     assert_eq!(task.get_name(), "answer");
///     task.await
/// })?;
/// assert_eq!(out?, 42);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct Task<T> {
    raw: JoinPtr<T>,
}

impl<T: 'static> Task<T> {
    pub(crate) fn from_raw(raw: TaskPtr<dyn TaskJoin<T>>) -> Self {
        Task {
            raw: JoinPtr::new(raw),
        }
    }

    /// Whether the task has finished (normally, by panic, or cancelled).
    pub fn done(&self) -> bool {
        self.raw.header().status() != Status::Pending
    }

    /// Whether the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.raw.header().status() == Status::Cancelled
    }

    /// The task's name (`Task-<id>` unless set).
    pub fn get_name(&self) -> String {
        self.raw.get().name()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        self.raw.get().set_name(name.into())
    }

    /// A number unique among the tasks of its loop.
    pub fn id(&self) -> u64 {
        self.raw.get().id()
    }

    /// The error the task ended with, if it was cancelled or panicked; `None` while pending or
    /// after a normal finish.
    pub fn exception(&self) -> Option<Error> {
        self.raw.header().set_flag(Flags::RETRIEVED, true);
        self.raw.get().error()
    }

    /// Takes the output of a finished task.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`](crate::ErrorKind::InvalidState) if the task has not finished
    /// or the output was already taken; the task's error if it was cancelled or panicked.
    pub fn take_result(&self) -> Result<T> {
        self.raw.header().set_flag(Flags::RETRIEVED, true);
        let raw = self.raw.get();
        raw::outcome(&raw, raw.take_output())
    }

    /// A copy of the output of a finished task (asyncio's `Task.result()`).
    ///
    /// # Errors
    /// As [`take_result`](Task::take_result).
    pub fn result(&self) -> Result<T>
    where
        T: Clone,
    {
        self.raw.header().set_flag(Flags::RETRIEVED, true);
        let raw = self.raw.get();
        raw::outcome(&raw, raw.clone_output())
    }

    /// Schedules `callback` (with `call_soon`, never synchronously) once the task finishes; if it
    /// has finished already, it is scheduled now. The id removes it again
    /// ([`remove_done_callback`](Task::remove_done_callback)).
    ///
    /// # Errors
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) if the task is done and its loop is
    /// closed.
    pub fn add_done_callback(
        &self,
        callback: impl FnOnce(&TaskRef) + 'static,
    ) -> Result<DoneCallbackId> {
        self.as_task_ref().add_done_callback(callback)
    }

    /// Removes a done callback that has not been scheduled yet; returns how many were removed
    /// (0 or 1). Python compares callables; Rust closures have no identity, so the id from
    /// [`add_done_callback`](Task::add_done_callback) names the callback.
    ///
    /// ```
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let task = event_loop.create_task(async {})?;
    /// let id = task.add_done_callback(|_| unreachable!())?;
    /// assert_eq!(task.remove_done_callback(id), 1);
    /// assert_eq!(task.remove_done_callback(id), 0);
    /// event_loop.run_until_complete(task)??;
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn remove_done_callback(&self, id: DoneCallbackId) -> usize {
        self.raw.get().remove_done_callback(id.0)
    }

    /// Turns this handle into one that cancels the task when dropped before it finished, as
    /// asyncio's `wait_for(task, timeout)` cancels `task` on timeout. See [`CancelOnDrop`].
    pub fn cancel_on_drop(self) -> CancelOnDrop<T> {
        CancelOnDrop::new(self)
    }

    /// An untyped reference to this task.
    pub fn as_task_ref(&self) -> TaskRef {
        TaskRef {
            raw: self.raw.get().untyped(),
        }
    }

    /// Registers the waker and reports whether the task finished (used by `wait`).
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.raw.get().poll_done(cx)
    }
}

impl<T: 'static> Future for Task<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let owner = self.raw.header().shared();
        // The task lives on its loop's thread (it is `!Send`), and a thread runs one loop at a
        // time: when the task's own loop runs, it is the running loop, and the thread-local
        // look-up can be skipped.
        if !owner.running.load(Ordering::Relaxed) {
            if let Err(e) = check_owner(|running| std::ptr::eq(Arc::as_ptr(&running.shared), owner))
            {
                return Poll::Ready(Err(e));
            }
        }
        match self.raw.get().poll_done(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(self.take_result()),
        }
    }
}

// Without the `T: 'static` bound, so that `Drop` impls can cancel.
impl<T> Task<T> {
    /// Requests cancellation: the future is dropped at the task's next step and the task ends
    /// with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) (or
    /// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) if the future's `Drop` panics, as a
    /// raising `finally` does in asyncio). Returns `false` if the task had already finished.
    pub fn cancel(&self) -> bool {
        raw::cancel(&self.raw.get(), None)
    }

    /// [`cancel`](Task::cancel) with a message (Python's `cancel(msg)`): the task's
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) error carries it.
    ///
    /// ```
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let task = event_loop.create_task(asyncio::sleep(3600.0))?;
    /// task.cancel_with("shutting down");
    /// let err = event_loop.run_until_complete(task)?.unwrap_err();
    /// assert!(err.is_cancelled());
    /// assert_eq!(err.to_string(), "shutting down");
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn cancel_with(&self, message: impl Into<String>) -> bool {
        raw::cancel(&self.raw.get(), Some(message.into()))
    }

    /// How many cancellation requests are pending (Python's `cancelling()`): each accepted
    /// [`cancel`](Task::cancel) counts one, each [`uncancel`](Task::uncancel) takes one back.
    pub fn cancelling(&self) -> u32 {
        self.raw.get().cancelling()
    }

    /// Withdraws one cancellation request and returns how many are left (Python's
    /// `uncancel()`). When none is left before the task's next step, the cancellation does not
    /// happen (asyncio 3.13); once the step has dropped the future it cannot be undone.
    ///
    /// ```
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let task = event_loop.create_task(async { 7 })?;
    /// assert!(task.cancel());
    /// assert_eq!(task.cancelling(), 1);
    /// assert_eq!(task.uncancel(), 0);
    /// assert_eq!(event_loop.run_until_complete(task)??, 7);
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn uncancel(&self) -> u32 {
        self.raw.get().uncancel()
    }
}

/// Names a done callback added with [`Task::add_done_callback`] or
/// [`TaskRef::add_done_callback`], for `remove_done_callback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DoneCallbackId(u64);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.raw.header().set_flag(Flags::HANDLE_ALIVE, false);
        if self.raw.header().status() == Status::Failed && !self.raw.header().flag(Flags::RETRIEVED)
        {
            if let Some(lp) = self.raw.get().event_loop() {
                raw::report_unretrieved(&lp, &self.raw.get().untyped());
            }
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.raw.get().name())
            .field("status", &self.raw.header().status())
            .finish()
    }
}

/// An untyped reference to a task: what [`current_task`], [`all_tasks`] and done callbacks give.
#[derive(Clone)]
pub struct TaskRef {
    raw: AnyTask,
}

impl TaskRef {
    pub(crate) fn from_raw(raw: AnyTask) -> Self {
        TaskRef { raw }
    }

    /// Whether the task has finished.
    pub fn done(&self) -> bool {
        self.raw.header().status() != Status::Pending
    }

    /// Whether the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.raw.header().status() == Status::Cancelled
    }

    /// Requests cancellation (see [`Task::cancel`]).
    pub fn cancel(&self) -> bool {
        raw::cancel(&self.raw, None)
    }

    /// Requests cancellation with a message (see [`Task::cancel_with`]).
    pub fn cancel_with(&self, message: impl Into<String>) -> bool {
        raw::cancel(&self.raw, Some(message.into()))
    }

    /// Pending cancellation requests (see [`Task::cancelling`]).
    pub fn cancelling(&self) -> u32 {
        self.raw.cancelling()
    }

    /// Withdraws one cancellation request (see [`Task::uncancel`]).
    pub fn uncancel(&self) -> u32 {
        self.raw.uncancel()
    }

    /// Removes a done callback that has not been scheduled (see [`Task::remove_done_callback`]).
    pub fn remove_done_callback(&self, id: DoneCallbackId) -> usize {
        self.raw.remove_done_callback(id.0)
    }

    /// The task's name.
    pub fn get_name(&self) -> String {
        self.raw.name()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        self.raw.set_name(name.into())
    }

    /// The task's id, unique within its loop.
    pub fn id(&self) -> u64 {
        self.raw.id()
    }

    /// The error the task ended with (cancelled or panicked), if any.
    pub fn exception(&self) -> Option<Error> {
        self.raw.header().set_flag(Flags::RETRIEVED, true);
        self.raw.error()
    }

    /// Marks the task's outcome as taken care of (no "never retrieved" report).
    pub(crate) fn mark_retrieved(&self) {
        self.raw.mark_retrieved()
    }

    pub(crate) fn exception_peek(&self) -> Option<Error> {
        self.raw.error()
    }

    /// The loop the task belongs to, unless that loop is gone.
    pub fn get_loop(&self) -> Option<EventLoop> {
        self.raw.event_loop()
    }

    /// Whether two references name the same task.
    pub fn ptr_eq(&self, other: &TaskRef) -> bool {
        self.raw.ptr_eq(&other.raw)
    }

    /// Schedules `callback` once the task finishes (see [`Task::add_done_callback`]).
    ///
    /// # Errors
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) if the task is done and its loop closed.
    pub fn add_done_callback(
        &self,
        callback: impl FnOnce(&TaskRef) + 'static,
    ) -> Result<DoneCallbackId> {
        if self.done() {
            let lp = self.raw.event_loop().ok_or_else(Error::closed)?;
            let me = self.clone();
            lp.call_soon(move || callback(&me))?;
            // Scheduled already: no id can remove it.
            Ok(DoneCallbackId(u64::MAX))
        } else {
            Ok(DoneCallbackId(
                self.raw.push_done_callback(Box::new(callback)),
            ))
        }
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef")
            .field("name", &self.raw.name())
            .field("status", &self.raw.header().status())
            .finish()
    }
}

impl EventLoop {
    /// Wraps `future` in a [`Task`] and schedules its first step (FIFO with callbacks), through
    /// the [task factory](EventLoop::set_task_factory) if one is set.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) on a closed loop.
    pub fn create_task<F: Future + 'static>(&self, future: F) -> Result<Task<F::Output>> {
        self.check_closed()?;
        let factory = self.inner.task_factory.borrow().clone();
        let cell = match factory {
            None => raw::spawn(self, future),
            Some(f) => raw::spawn(self, factory::through_factory(self, &f, future)),
        };
        Ok(Task::from_raw(cell))
    }

    /// A new pending [`LoopFuture`] bound to this loop (works on a closed loop too, as in
    /// asyncio).
    pub fn create_future<T: 'static>(&self) -> LoopFuture<T> {
        LoopFuture::new(self)
    }

    /// The task whose step is running now, if any.
    pub fn current_task(&self) -> Option<TaskRef> {
        let header = self.inner.current_task.get()?;
        // SAFETY: `run_task` sets the pointer only for the length of the task's step, during
        // which it holds a local reference to the task, on this (the loop's) thread.
        unsafe { raw::AnyTask::from_header(header) }.map(TaskRef::from_raw)
    }

    /// Every task of this loop that has not finished.
    pub fn all_tasks(&self) -> Vec<TaskRef> {
        self.inner
            .tasks
            .borrow()
            .iter()
            .map(|(_, t)| TaskRef::from_raw(t.clone()))
            .collect()
    }
}

/// The task running on this thread's running loop, if any.
///
/// # Errors
/// [`ErrorKind::NoRunningLoop`](crate::ErrorKind::NoRunningLoop) when no loop is running.
pub fn current_task() -> Result<Option<TaskRef>> {
    Ok(get_running_loop()?.current_task())
}

/// The unfinished tasks of this thread's running loop.
///
/// # Errors
/// [`ErrorKind::NoRunningLoop`](crate::ErrorKind::NoRunningLoop) when no loop is running.
pub fn all_tasks() -> Result<Vec<TaskRef>> {
    Ok(get_running_loop()?.all_tasks())
}

/// A waker whose `wake` panics with `message`: for the unit tests of what the loop does when a
/// user's waker panics.
#[cfg(test)]
pub(crate) fn panicking_waker(message: &'static str) -> std::task::Waker {
    struct Boom(&'static str);
    impl std::task::Wake for Boom {
        fn wake(self: std::sync::Arc<Self>) {
            panic!("{}", self.0);
        }
    }
    std::task::Waker::from(std::sync::Arc::new(Boom(message)))
}
