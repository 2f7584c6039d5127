//! The task cell behind [`Task`](super::Task) and [`TaskRef`](super::TaskRef).
//!
//! A task is one allocation: a `TaskCell<F>` holding the [`Header`] that wakers point to (see
//! `refs.rs`), then the future, its output and its bookkeeping, which only the loop thread
//! touches. Waking never touches the future: it only queues the task, on the loop's local ready
//! queue when woken on the loop thread (no atomics beyond the `scheduled` flag) or on the
//! cross-thread inbox otherwise. The future is polled and dropped only on the loop thread, so
//! futures need not be `Send`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Weak;
use std::task::{Context, Poll, Waker};

use super::refs::{Header, TaskPtr, TaskVtable};
use crate::error::{Error, ErrorKind, Result};
use crate::events::ExceptionContext;
use crate::runtime::core::{EventLoop, Inner, Ready};
use crate::task::TaskRef;

/// The state of a task as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pending,
    Done,
    Cancelled,
    Failed,
}

enum Stage<F: Future> {
    Running(F),
    Finished(Option<F::Output>),
    Gone,
}

/// A done callback of a task.
pub(crate) type TaskCallback = Box<dyn FnOnce(&TaskRef)>;

/// Type-erased task operations, used by the loop and by [`TaskRef`].
pub(crate) trait TaskRun {
    /// Runs one step with `waker`; returns true when the task has finished.
    fn poll_step(&self, waker: &Waker) -> bool;
    /// The last local reference is going: drops everything that must stay on the loop thread
    /// (the future or its output, callbacks, the loop reference). See `refs.rs`.
    fn release_local(&self);
    /// Drops the future without running it further (loop closing); returns the panic of the
    /// future's `Drop`, if it panicked, for the exception handler.
    fn destroy(&self) -> Option<Error>;
    fn id(&self) -> u64;
    fn name(&self) -> String;
    fn set_name(&self, name: String);
    fn status(&self) -> Status;
    /// Requests cancellation (counted, with an optional message); false when the task has
    /// finished. The caller wakes the task.
    fn cancel(&self, message: Option<String>) -> bool;
    /// How many cancellation requests are pending (asyncio's `cancelling()`).
    fn cancelling(&self) -> u32;
    /// Withdraws one request; at zero the pending cancellation is dropped (asyncio 3.13).
    fn uncancel(&self) -> u32;
    fn error(&self) -> Option<Error>;
    /// Adds a done callback; returns its id for `remove_done_callback`.
    fn push_done_callback(&self, cb: Box<dyn FnOnce(&TaskRef)>) -> u64;
    /// Removes the done callback `id` if it has not run; returns how many were removed.
    fn remove_done_callback(&self, id: u64) -> usize;
    fn take_done_callbacks(&self) -> Vec<TaskCallback>;
    fn event_loop(&self) -> Option<EventLoop>;
    fn handle_alive(&self) -> bool;
    fn mark_retrieved(&self);
    fn retrieved(&self) -> bool;
}

/// Typed operations, used by [`Task<T>`](super::Task).
pub(crate) trait TaskJoin<T>: TaskRun {
    /// Registers `cx`'s waker; ready once the task has finished.
    fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()>;
    /// Takes the output of a finished task.
    fn take_output(&self) -> Option<T>;
    /// Clones the output of a finished task.
    fn clone_output(&self) -> Option<T>
    where
        T: Clone;
    fn set_handle_alive(&self, alive: bool);
}

/// The parts of a task that most tasks never use.
#[derive(Default)]
struct Extra {
    name: Option<String>,
    error: Option<Error>,
    callbacks: Vec<(u64, TaskCallback)>,
    next_callback: u64,
    /// Pending cancellation requests (asyncio's `_num_cancels_requested`).
    cancels: u32,
    cancel_message: Option<String>,
}

/// A task: `#[repr(C)]` with the header first, so that a pointer to the cell is a pointer to
/// its header (what wakers hold).
#[repr(C)]
pub(crate) struct TaskCell<F: Future> {
    header: Header,
    /// Taken when the task is released (a `Weak<Inner>` must be dropped on the loop thread).
    event_loop: RefCell<Option<Weak<Inner>>>,
    id: u64,
    status: Cell<Status>,
    cancel_requested: Cell<bool>,
    handle_alive: Cell<bool>,
    retrieved: Cell<bool>,
    stage: RefCell<Stage<F>>,
    join_waker: RefCell<Option<Waker>>,
    /// Rarely used state, allocated on first use: keeps the common task small.
    extra: RefCell<Option<Box<Extra>>>,
}

impl<F: Future + 'static> TaskCell<F> {
    const VTABLE: TaskVtable = TaskVtable {
        as_dyn: Self::as_dyn,
        dealloc: Self::dealloc,
    };

    /// # Safety
    /// `header` is the header of a live `TaskCell<F>`.
    unsafe fn as_dyn(header: NonNull<Header>) -> NonNull<dyn TaskRun> {
        header.cast::<Self>()
    }

    /// # Safety
    /// `header` is the header of a `TaskCell<F>` made by [`TaskCell::new`] that nobody else can
    /// reach any more.
    unsafe fn dealloc(header: NonNull<Header>) {
        // SAFETY: the allocation came from `Box::new` in `new`, and this is its last user.
        drop(unsafe { Box::from_raw(header.cast::<Self>().as_ptr()) });
    }

    /// A new task and its first local reference.
    fn new(header: Header, event_loop: Weak<Inner>, id: u64, future: F) -> TaskPtr<Self> {
        let cell = Box::new(TaskCell {
            header,
            event_loop: RefCell::new(Some(event_loop)),
            id,
            status: Cell::new(Status::Pending),
            cancel_requested: Cell::new(false),
            handle_alive: Cell::new(true),
            retrieved: Cell::new(false),
            stage: RefCell::new(Stage::Running(future)),
            join_waker: RefCell::new(None),
            extra: RefCell::new(None),
        });
        // SAFETY: a fresh allocation with its header first; `Header::new` counted this local
        // reference and the local side's atomic one.
        unsafe { TaskPtr::from_raw(NonNull::from(Box::leak(cell))) }
    }

    /// Replaces the stage in place (dropping a running future where it lies), catching a panic
    /// from the future's `Drop`.
    fn set_stage(&self, stage: Stage<F>) -> Option<Error> {
        let mut slot = match self.stage.try_borrow_mut() {
            Ok(s) => s,
            Err(_) => return None,
        };
        catch_unwind(AssertUnwindSafe(|| *slot = stage))
            .err()
            .map(|p| Error::from_panic(&*p))
    }

    fn with_extra<R>(&self, f: impl FnOnce(&mut Extra) -> R) -> R {
        let mut slot = self.extra.borrow_mut();
        f(slot.get_or_insert_with(Box::default))
    }

    /// `Cancelled`, with the message given to `cancel_with` if any.
    fn cancelled_error(&self) -> Error {
        let message = self
            .extra
            .borrow()
            .as_ref()
            .and_then(|x| x.cancel_message.clone());
        match message {
            Some(m) => Error::new(ErrorKind::Cancelled, m),
            None => Error::cancelled(),
        }
    }

    fn finish(&self, status: Status, error: Option<Error>) {
        if let Some(error) = error {
            self.with_extra(|x| x.error = Some(error));
        }
        self.status.set(status);
        if let Some(w) = self.join_waker.borrow_mut().take() {
            w.wake();
        }
    }
}

impl<F: Future + 'static> TaskRun for TaskCell<F> {
    fn poll_step(&self, waker: &Waker) -> bool {
        if self.status.get() != Status::Pending {
            return true;
        }
        if self.cancel_requested.get() {
            // Dropping the future is its `finally`: a panic there ends the task with that
            // panic (as a raising `finally` does in asyncio) instead of vanishing.
            match self.set_stage(Stage::Gone) {
                Some(err) => self.finish(Status::Failed, Some(err)),
                None => self.finish(Status::Cancelled, Some(self.cancelled_error())),
            }
            return true;
        }
        let mut cx = Context::from_waker(waker);
        let polled = {
            let mut stage = match self.stage.try_borrow_mut() {
                Ok(s) => s,
                Err(_) => return false,
            };
            let Stage::Running(future) = &mut *stage else {
                return true;
            };
            // SAFETY: the future lives inside the `Rc<TaskCell>` allocation, which never moves
            // it: it is only ever dropped in place (`set_stage` assigns over it), never moved
            // out, so the pinning guarantee holds for as long as the future exists.
            let future = unsafe { Pin::new_unchecked(future) };
            catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx)))
        };
        match polled {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(output)) => {
                if self.cancel_requested.get() {
                    // Cancelled while running its last step: asyncio reports it cancelled.
                    self.set_stage(Stage::Gone);
                    self.finish(Status::Cancelled, Some(self.cancelled_error()));
                } else {
                    self.set_stage(Stage::Finished(Some(output)));
                    self.finish(Status::Done, None);
                }
                true
            }
            Err(payload) => {
                let err = Error::from_panic(&*payload);
                self.set_stage(Stage::Gone);
                self.finish(Status::Failed, Some(err));
                true
            }
        }
    }

    fn destroy(&self) -> Option<Error> {
        if self.status.get() != Status::Pending {
            return None;
        }
        let panic = self.set_stage(Stage::Gone);
        self.finish(
            Status::Cancelled,
            Some(Error::new(
                ErrorKind::Cancelled,
                "Task was destroyed but it is pending!",
            )),
        );
        let callbacks = self.take_done_callbacks();
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(callbacks)));
        panic.or_else(|| dropped.err().map(|p| Error::from_panic(&*p)))
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn name(&self) -> String {
        match self.extra.borrow().as_ref().and_then(|x| x.name.clone()) {
            Some(n) => n,
            None => format!("Task-{}", self.id),
        }
    }

    fn set_name(&self, name: String) {
        self.with_extra(|x| x.name = Some(name));
    }

    fn status(&self) -> Status {
        self.status.get()
    }

    fn cancel(&self, message: Option<String>) -> bool {
        if self.status.get() != Status::Pending {
            return false;
        }
        self.cancel_requested.set(true);
        self.with_extra(|x| {
            x.cancels += 1;
            if message.is_some() {
                x.cancel_message = message;
            }
        });
        true
    }

    fn cancelling(&self) -> u32 {
        self.extra.borrow().as_ref().map_or(0, |x| x.cancels)
    }

    fn uncancel(&self) -> u32 {
        let left = match self.extra.borrow_mut().as_mut() {
            Some(x) if x.cancels > 0 => {
                x.cancels -= 1;
                x.cancels
            }
            _ => return 0,
        };
        if left == 0 && self.status.get() == Status::Pending {
            self.cancel_requested.set(false);
        }
        left
    }

    fn error(&self) -> Option<Error> {
        self.extra.borrow().as_ref().and_then(|x| x.error.clone())
    }

    fn push_done_callback(&self, cb: Box<dyn FnOnce(&TaskRef)>) -> u64 {
        self.with_extra(|x| {
            let id = x.next_callback;
            x.next_callback += 1;
            x.callbacks.push((id, cb));
            id
        })
    }

    fn remove_done_callback(&self, id: u64) -> usize {
        let removed = match self.extra.borrow_mut().as_mut() {
            Some(x) => {
                let before = x.callbacks.len();
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut x.callbacks)
                    .into_iter()
                    .partition(|(i, _)| *i == id);
                x.callbacks = kept;
                debug_assert_eq!(before, gone.len() + x.callbacks.len());
                gone
            }
            None => Vec::new(),
        };
        let n = removed.len();
        // Dropped outside the borrow: a callback's captures may touch this task.
        drop(removed);
        n
    }

    fn take_done_callbacks(&self) -> Vec<TaskCallback> {
        match self.extra.borrow_mut().as_mut() {
            Some(x) => std::mem::take(&mut x.callbacks)
                .into_iter()
                .map(|(_, cb)| cb)
                .collect(),
            None => Vec::new(),
        }
    }

    fn event_loop(&self) -> Option<EventLoop> {
        let inner = self.event_loop.borrow().as_ref()?.upgrade()?;
        Some(EventLoop::from_inner(inner))
    }

    fn release_local(&self) {
        self.set_stage(Stage::Gone);
        drop(self.join_waker.take());
        drop(self.extra.take());
        drop(self.event_loop.take());
    }

    fn handle_alive(&self) -> bool {
        self.handle_alive.get()
    }

    fn mark_retrieved(&self) {
        self.retrieved.set(true);
    }

    fn retrieved(&self) -> bool {
        self.retrieved.get()
    }
}

impl<F: Future + 'static> TaskJoin<F::Output> for TaskCell<F> {
    fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.status.get() != Status::Pending {
            return Poll::Ready(());
        }
        let mut slot = self.join_waker.borrow_mut();
        match &mut *slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn take_output(&self) -> Option<F::Output> {
        match self.stage.try_borrow_mut() {
            Ok(mut s) => match &mut *s {
                Stage::Finished(out) => out.take(),
                _ => None,
            },
            Err(_) => None,
        }
    }

    fn clone_output(&self) -> Option<F::Output>
    where
        F::Output: Clone,
    {
        match &*self.stage.try_borrow().ok()? {
            Stage::Finished(out) => out.clone(),
            _ => None,
        }
    }

    fn set_handle_alive(&self, alive: bool) {
        self.handle_alive.set(alive);
    }
}

/// A local reference to a task of any type.
pub(crate) type AnyTask = TaskPtr<dyn TaskRun>;

/// Runs one step of `task`; returns the task's name when debug mode wants it.
pub(crate) fn run_task(lp: &EventLoop, task: AnyTask) -> Option<String> {
    if task.status() != Status::Pending {
        // A stale wake-up of a finished (or destroyed) task.
        return None;
    }
    let inner = &lp.inner;
    // Wake-ups from now on queue another step; one that found the flag still set is ordered
    // before this point, so the poll below sees what its waker published (see `atomics.rs`).
    task.header().scheduled.begin_poll();
    let previous = inner.current_task.replace(Some(task.clone()));
    let done = task.with_waker(|waker| task.poll_step(waker));
    *inner.current_task.borrow_mut() = previous;
    if done {
        let removed = inner.tasks.borrow_mut().try_remove(task.header().key);
        drop(removed);
        task_finished(lp, &task);
    }
    inner.debug.get().then(|| task.name())
}

/// Requests cancellation of `task` and wakes it, so that its next step drops the future.
pub(crate) fn cancel<D: ?Sized + TaskRun>(task: &TaskPtr<D>, message: Option<String>) -> bool {
    let accepted = task.cancel(message);
    if accepted {
        task.wake_by_ref();
    }
    accepted
}

/// Schedules the done callbacks of a finished task and reports a panic nobody will see.
pub(crate) fn task_finished(lp: &EventLoop, task: &AnyTask) {
    for cb in task.take_done_callbacks() {
        let t = TaskRef::from_raw(task.clone());
        let _ = lp.call_soon(move || cb(&t));
    }
    if task.status() == Status::Failed && !task.handle_alive() {
        report_unretrieved(lp, task);
    }
}

/// asyncio's "Task exception was never retrieved".
pub(crate) fn report_unretrieved(lp: &EventLoop, task: &AnyTask) {
    if task.retrieved() {
        return;
    }
    task.mark_retrieved();
    let mut ctx = ExceptionContext::new("Task exception was never retrieved");
    ctx.exception = task.error();
    ctx.task = Some(TaskRef::from_raw(task.clone()));
    lp.call_exception_handler(&ctx);
}

/// Creates a task on `lp`: inserts it in the loop's task table and queues its first step.
pub(crate) fn spawn<F: Future + 'static>(
    lp: &EventLoop,
    future: F,
) -> TaskPtr<dyn TaskJoin<F::Output>> {
    let inner = &lp.inner;
    let id = inner.next_task_id.get();
    inner.next_task_id.set(id + 1);
    let mut tasks = inner.tasks.borrow_mut();
    let entry = tasks.vacant_entry();
    let header = Header::new(entry.key(), inner.shared.clone(), &TaskCell::<F>::VTABLE);
    let cell = TaskCell::new(header, std::rc::Rc::downgrade(inner), id, future);
    entry.insert(cell.untyped());
    drop(tasks);
    inner.push_ready(Ready::Task(cell.untyped()));
    cell.map(|p| -> NonNull<dyn TaskJoin<F::Output>> { p })
}

/// An error for a task result read too early.
pub(crate) fn not_done() -> Error {
    Error::new(ErrorKind::InvalidState, "Result is not set.")
}

/// The outcome of a finished task as a `Result`, given its typed output.
pub(crate) fn outcome<T>(raw: &dyn TaskRun, output: Option<T>) -> Result<T> {
    match raw.status() {
        Status::Pending => Err(not_done()),
        Status::Done => output.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidState,
                "the task's result was already taken",
            )
        }),
        Status::Cancelled | Status::Failed => Err(raw.error().unwrap_or_else(Error::cancelled)),
    }
}
