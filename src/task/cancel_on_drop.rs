//! [`CancelOnDrop`]: a task handle that cancels its task when dropped unfinished.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Task;
use crate::error::Result;

/// A [`Task`] handle that cancels the task when it is dropped before the task finished, from
/// [`Task::cancel_on_drop`].
///
/// A plain `Task` detaches when dropped (the task runs on, as with tokio's `JoinHandle`). This
/// wrapper gives asyncio's behaviour where the awaiting side's fate decides the task's:
/// `asyncio::wait_for(task, t)` in Python cancels `task` on timeout, and so does
/// [`wait_for`](crate::wait_for)`(task.cancel_on_drop(), t)` here, because the timeout drops the
/// future it gave up on.
///
/// ```
/// use asyncio::ErrorKind;
///
/// let event_loop = asyncio::EventLoop::new()?;
/// let task = event_loop.create_task(asyncio::sleep(3600.0))?;
/// let probe = task.as_task_ref();
/// let r = event_loop.run_until_complete(asyncio::wait_for(task.cancel_on_drop(), 0.01))?;
/// assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
/// event_loop.run_until_complete(asyncio::sleep(0.0))??; // the cancelled task's last step
/// assert!(probe.cancelled());
/// # Ok::<(), asyncio::Error>(())
/// ```
#[must_use = "dropping it cancels the task at once"]
pub struct CancelOnDrop<T: 'static> {
    task: Task<T>,
}

impl<T: 'static> CancelOnDrop<T> {
    pub(super) fn new(task: Task<T>) -> Self {
        CancelOnDrop { task }
    }

    /// The task, for its name, id or [`cancel`](Task::cancel).
    pub fn task(&self) -> &Task<T> {
        &self.task
    }

    /// Gives the plain handle back: dropping that one detaches again.
    pub fn into_inner(self) -> Task<T> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is a `ManuallyDrop` that is neither used nor dropped after this read,
        // so the handle is moved out exactly once and `CancelOnDrop::drop` never runs for it.
        unsafe { std::ptr::read(&this.task) }
    }
}

impl<T: 'static> Future for CancelOnDrop<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        // `Task` is `Unpin`.
        Pin::new(&mut self.get_mut().task).poll(cx)
    }
}

impl<T: 'static> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        self.task.cancel();
    }
}

impl<T: 'static> fmt::Debug for CancelOnDrop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CancelOnDrop").field(&self.task).finish()
    }
}
