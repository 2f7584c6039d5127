//! [`TaskGroup`] (asyncio 3.11): structured concurrency. The group's children run as tasks;
//! the first failure cancels the rest; the group waits for every child and reports every
//! error together.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::EventLoop;
use crate::runtime::running::get_running_loop;
use crate::task::{Task, TaskRef};

/// The errors of a [`TaskGroup`]'s children (Python's `ExceptionGroup`), the source of an
/// [`ErrorKind::ExceptionGroup`] error.
///
/// ```
/// use asyncio::{Error, ErrorKind, ExceptionGroup};
/// let event_loop = asyncio::EventLoop::new()?;
/// let err = event_loop.run_until_complete(asyncio::task_group(|tg| async move {
///     tg.create_task(async { Err::<(), _>(Error::new(ErrorKind::InvalidArgument, "bad")) })?;
///     Ok(())
/// }))?.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ExceptionGroup);
/// assert_eq!(err.to_string(), "unhandled errors in a TaskGroup (1 sub-exception)");
/// let group = ExceptionGroup::of(&err).unwrap();
/// assert_eq!(group.errors()[0].to_string(), "bad");
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExceptionGroup {
    errors: Vec<Error>,
}

impl ExceptionGroup {
    /// The group carried by `error`, if it is an [`ErrorKind::ExceptionGroup`] error.
    pub fn of(error: &Error) -> Option<&ExceptionGroup> {
        std::error::Error::source(error)?.downcast_ref::<ExceptionGroup>()
    }

    /// The errors, in the order they happened.
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    fn into_error(self) -> Error {
        let n = self.errors.len();
        let s = if n == 1 { "" } else { "s" };
        Error::new(
            ErrorKind::ExceptionGroup,
            format!("unhandled errors in a TaskGroup ({n} sub-exception{s})"),
        )
        .with_source(self)
    }
}

impl fmt::Display for ExceptionGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.errors.iter().map(Error::to_string).collect();
        write!(f, "[{}]", list.join(", "))
    }
}

impl std::error::Error for ExceptionGroup {}

struct Inner {
    event_loop: EventLoop,
    /// Children not finished yet.
    children: RefCell<Vec<TaskRef>>,
    errors: RefCell<Vec<Error>>,
    aborting: Cell<bool>,
    finished: Cell<bool>,
    /// The task waiting in `join` (or the body's runner), woken on a failure and when the last
    /// child finishes.
    waiter: RefCell<Option<Waker>>,
}

impl Inner {
    fn wake(&self) {
        let w = self.waiter.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// The first failure: cancel every child (asyncio's `_abort`).
    fn fail(&self, error: Error) {
        self.errors.borrow_mut().push(error);
        self.abort();
    }

    /// Cancels every child but the one running now (a child failing in its last step must end
    /// with its own outcome, not as cancelled).
    fn abort(&self) {
        if !self.aborting.replace(true) {
            self.cancel_children();
        }
        self.wake();
    }

    fn cancel_children(&self) {
        let current = self.event_loop.current_task();
        let children = self.children.borrow().clone();
        for t in children {
            if !current.as_ref().is_some_and(|c| c.ptr_eq(&t)) {
                t.cancel();
            }
        }
    }

    /// A child finished (its done callback): forget it, note a panic.
    fn child_done(&self, task: &TaskRef) {
        self.children.borrow_mut().retain(|t| !t.ptr_eq(task));
        if task.raw_status_failed() {
            task.mark_retrieved();
            if let Some(e) = task.exception_peek() {
                self.fail(e);
            }
        }
        if self.children.borrow().is_empty() {
            self.wake();
        }
    }
}

/// asyncio's `TaskGroup`: [`create_task`](TaskGroup::create_task) runs children; the group
/// waits for all of them, and the first child that fails (returns `Err` or panics) cancels the
/// others. Every failure is collected into one [`ErrorKind::ExceptionGroup`] error.
///
/// Use it through [`task_group`], the `async with TaskGroup() as tg:` block: its body runs with
/// the group, is cancelled (dropped) when a child fails, and the block returns once every child
/// has finished. Or make one with [`TaskGroup::new`] and end it with
/// [`join`](TaskGroup::join). Dropping an unfinished group (the `join` or `task_group` future
/// included: the task awaiting it was cancelled, a `timeout` ran out) cancels its children.
///
/// A handle is an `Rc`: clone it into the children that start more children.
#[derive(Clone)]
pub struct TaskGroup {
    inner: Rc<Inner>,
}

impl TaskGroup {
    /// A new group on the running loop.
    ///
    /// # Errors
    /// [`ErrorKind::NoRunningLoop`] outside a running loop.
    pub fn new() -> Result<Self> {
        Ok(TaskGroup {
            inner: Rc::new(Inner {
                event_loop: get_running_loop()?,
                children: RefCell::new(Vec::new()),
                errors: RefCell::new(Vec::new()),
                aborting: Cell::new(false),
                finished: Cell::new(false),
                waiter: RefCell::new(None),
            }),
        })
    }

    /// Runs `future` as a child task. An `Err` output or a panic is a failure: it is collected
    /// and cancels the other children. The returned handle gives the child's own output.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "TaskGroup is finished" after the group ended, "TaskGroup is
    /// shutting down" once a child failed (`future` is dropped, as 3.13 closes the coroutine);
    /// [`ErrorKind::Closed`] on a closed loop.
    pub fn create_task<F, T>(&self, future: F) -> Result<Task<Result<T>>>
    where
        F: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        let inner = &self.inner;
        if inner.finished.get() {
            return Err(Error::new(ErrorKind::InvalidState, "TaskGroup is finished"));
        }
        if inner.aborting.get() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "TaskGroup is shutting down",
            ));
        }
        // The failure is acted on in the child's done callback, one `call_soon` after it
        // finished (asyncio's `_on_task_done`): children failing in the same iteration are
        // all collected before the cancellation lands.
        let failure: Rc<RefCell<Option<Error>>> = Rc::default();
        let slot = failure.clone();
        let task = inner.event_loop.create_task(async move {
            let r = future.await;
            if let Err(e) = &r {
                *slot.borrow_mut() = Some(e.clone());
            }
            r
        })?;
        let tr = task.as_task_ref();
        inner.children.borrow_mut().push(tr.clone());
        let weak = Rc::downgrade(inner);
        tr.add_done_callback(move |t| {
            if let Some(inner) = weak.upgrade() {
                if let Some(e) = failure.borrow_mut().take() {
                    inner.fail(e);
                }
                inner.child_done(t);
            }
        })?;
        Ok(task)
    }

    /// Waits for every child (asyncio's `__aexit__`), then ends the group.
    ///
    /// # Errors
    /// [`ErrorKind::ExceptionGroup`] with every failure (see [`ExceptionGroup`]).
    ///
    /// # Cancel safety
    /// Dropping the future cancels the children that have not finished.
    pub async fn join(self) -> Result<()> {
        let _end = EndGuard(&self.inner);
        self.wait_children().await;
        self.inner.finished.set(true);
        self.take_errors()
    }

    /// Cancels every unfinished child, as a failure does (without adding an error).
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// How many children have not finished.
    pub fn len(&self) -> usize {
        self.inner.children.borrow().len()
    }

    /// Whether every child has finished.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn wait_children(&self) {
        std::future::poll_fn(|cx| {
            if self.inner.children.borrow().is_empty() {
                return Poll::Ready(());
            }
            *self.inner.waiter.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn take_errors(&self) -> Result<()> {
        let errors = std::mem::take(&mut *self.inner.errors.borrow_mut());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ExceptionGroup { errors }.into_error())
        }
    }
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("children", &self.len())
            .field("errors", &self.inner.errors.borrow().len())
            .field("aborting", &self.inner.aborting.get())
            .finish()
    }
}

/// Cancels the children of a group whose end was never reached (its future was dropped).
struct EndGuard<'a>(&'a Rc<Inner>);

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        if !self.0.finished.replace(true) {
            self.0.cancel_children();
        }
    }
}

/// `async with asyncio.TaskGroup() as tg:` — runs `body` with a new [`TaskGroup`], then waits
/// for every child.
///
/// When a child fails, the others are cancelled and so is the body (its future is dropped,
/// as asyncio cancels the task running the `async with` block). An `Err` from the body is a
/// failure too. The result is the body's value, or [`ErrorKind::ExceptionGroup`] with every
/// failure once all children are done.
///
/// # Errors
/// [`ErrorKind::ExceptionGroup`]; [`ErrorKind::NoRunningLoop`] outside a running loop.
///
/// # Cancel safety
/// Dropping the future (the parent task is cancelled) drops the body and cancels every child.
///
/// ```
/// let event_loop = asyncio::EventLoop::new()?;
/// let (a, b) = event_loop.run_until_complete(asyncio::task_group(|tg| async move {
///     let a = tg.create_task(async { asyncio::sleep(0.01).await.map(|()| 1) })?;
///     let b = tg.create_task(async { Ok(2) })?;
///     Ok((a, b))
/// }))??;
/// // The group has waited for both.
/// assert_eq!((a.result()?.unwrap(), b.result()?.unwrap()), (1, 2));
/// # Ok::<(), asyncio::Error>(())
/// ```
pub async fn task_group<B, Fut, R>(body: B) -> Result<R>
where
    B: FnOnce(TaskGroup) -> Fut,
    Fut: Future<Output = Result<R>>,
{
    let tg = TaskGroup::new()?;
    let _end = EndGuard(&tg.inner);
    // Boxed so that it can be dropped (cancelled) before the group ends.
    let mut body = Box::pin(body(tg.clone()));
    // Run the body until it ends or a child fails (then it is cancelled: dropped).
    let outcome = std::future::poll_fn(|cx| {
        if tg.inner.aborting.get() {
            return Poll::Ready(None);
        }
        match body.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => {
                *tg.inner.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await;
    drop(body);
    let value = match outcome {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            tg.inner.fail(e);
            None
        }
        None => None,
    };
    tg.wait_children().await;
    tg.inner.finished.set(true);
    tg.take_errors()?;
    value.ok_or_else(|| Error::new(ErrorKind::Cancelled, "the TaskGroup was aborted"))
}
