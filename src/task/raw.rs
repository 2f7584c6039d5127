//! The task cell behind [`Task`](super::Task) and [`TaskRef`](super::TaskRef).
//!
//! A task is one allocation: a `TaskCell<F>` holding the [`Header`] that wakers point to (see
//! `refs.rs`), then the future, its output and its bookkeeping, which only the loop thread
//! touches. Waking never touches the future: it only queues the task, on the loop's local ready
//! queue when woken on the loop thread (no atomics beyond the `scheduled` flag) or on the
//! cross-thread inbox otherwise. The future is polled and dropped only on the loop thread, so
//! futures need not be `Send`.

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::refs::{Flags, Header, TaskPtr, TaskVtable};
use crate::error::{Error, ErrorKind, Result};
use crate::events::ExceptionContext;
use crate::runtime::core::{EventLoop, LoopAnchor};
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

/// Type-erased task operations, used by the loop and by [`TaskRef`]. (The status and flags live
/// in the [`Header`]: reading them needs no call through this vtable.)
pub(crate) trait TaskRun {
    /// Runs one step with `waker`; returns true when the task has finished.
    fn poll_step(&self, waker: &Waker) -> bool;
    /// The last local reference is going: drops everything that must stay on the loop thread
    /// (the future or its output, callbacks) and returns the loop reference, which the caller
    /// drops once it no longer reads the header's pointer to the loop. See `refs.rs`.
    fn release_local(&self) -> Option<Rc<LoopAnchor>>;
    /// Drops the future without running it further (loop closing); returns the panic of the
    /// future's `Drop`, if it panicked, for the exception handler.
    fn destroy(&self) -> Option<Error>;
    fn id(&self) -> u64;
    fn name(&self) -> String;
    fn set_name(&self, name: String);
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
    /// The done callbacks, taken; `None` when the task never had any (no allocation).
    fn take_done_callbacks(&self) -> Option<Vec<TaskCallback>>;
    fn event_loop(&self) -> Option<EventLoop>;
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
///
/// Kept small, as a trivial task is mostly its allocation: the header (40 bytes on 64-bit
/// targets, status and flags included), then single-word `Cell`s (taken and put back, never
/// borrowed across user code) for the loop reference, the joiner's waker and the rarely used
/// [`Extra`], then the future's stage in an `UnsafeCell` guarded by a header flag (a `RefCell`
/// without its word). A trivial task's cell is 104 bytes (the size test below), under the 120
/// bytes that glibc serves from its fast bins.
#[repr(C)]
pub(crate) struct TaskCell<F: Future> {
    header: Header,
    id: u64,
    /// Taken when the task is released (an `Rc` must be dropped on the loop thread).
    event_loop: Cell<Option<Rc<LoopAnchor>>>,
    join_waker: Cell<Option<Waker>>,
    /// Rarely used state, allocated on first use: keeps the common task small.
    extra: Cell<Option<Box<Extra>>>,
    /// Reached only through [`with_stage`](TaskCell::with_stage).
    stage: UnsafeCell<Stage<F>>,
}

impl<F: Future + 'static> TaskCell<F> {
    const VTABLE: TaskVtable = TaskVtable {
        as_dyn: Self::as_dyn,
        dealloc: Self::dealloc,
        // SAFETY: a function pointer's type erased; `JoinPtr::get` transmutes it back to this
        // type before calling it.
        as_join: unsafe {
            std::mem::transmute::<
                unsafe fn(NonNull<Header>) -> NonNull<dyn TaskJoin<F::Output>>,
                unsafe fn(),
            >(Self::as_join)
        },
    };

    /// # Safety
    /// `header` is the header of a live `TaskCell<F>`.
    unsafe fn as_join(header: NonNull<Header>) -> NonNull<dyn TaskJoin<F::Output>> {
        header.cast::<Self>()
    }

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
    fn new(header: Header, event_loop: Rc<LoopAnchor>, id: u64, future: F) -> TaskPtr<Self> {
        let cell = Box::new(TaskCell {
            header,
            id,
            event_loop: Cell::new(Some(event_loop)),
            join_waker: Cell::new(None),
            extra: Cell::new(None),
            stage: UnsafeCell::new(Stage::Running(future)),
        });
        // SAFETY: a fresh allocation with its header first; `Header::new` counted this local
        // reference and the local side's atomic one.
        unsafe { TaskPtr::from_raw(NonNull::from(Box::leak(cell))) }
    }

    /// Runs `f` on the stage, unless it is in use further up the stack (a re-entrant call from
    /// the future's `poll` or `Drop`, or from the output's `Clone`): then `None`, as a failed
    /// `RefCell` borrow would.
    fn with_stage<R>(&self, f: impl FnOnce(&mut Stage<F>) -> R) -> Option<R> {
        /// Clears the busy flag, also when `f` unwinds.
        struct Unbusy<'a>(&'a Header);
        impl Drop for Unbusy<'_> {
            fn drop(&mut self) {
                self.0.set_flag(Flags::STAGE_BUSY, false);
            }
        }
        if self.header.flag(Flags::STAGE_BUSY) {
            return None;
        }
        self.header.set_flag(Flags::STAGE_BUSY, true);
        let _unbusy = Unbusy(&self.header);
        // SAFETY: a task cell is reached only through `TaskPtr`s, on its loop thread (they are
        // `!Send`), and every access to the stage goes through this function, which the busy
        // flag keeps from nesting: this is the only reference to the stage while `f` runs.
        Some(f(unsafe { &mut *self.stage.get() }))
    }

    /// Replaces the stage in place (dropping a running future where it lies), catching a panic
    /// from the future's `Drop`.
    fn set_stage(&self, stage: Stage<F>) -> Option<Error> {
        self.with_stage(|slot| {
            catch_unwind(AssertUnwindSafe(|| *slot = stage))
                .err()
                .map(|p| Error::from_panic(&*p))
        })
        .flatten()
    }

    /// Runs `f` on the extra state, allocating it on first use. The state is taken out of its
    /// cell meanwhile, so `f` holds no borrow: code that `f` runs (a drop) and that reaches this
    /// task again sees no extra state rather than a borrow error.
    fn with_extra<R>(&self, f: impl FnOnce(&mut Extra) -> R) -> R {
        self.header.set_flag(Flags::HAS_EXTRA, true);
        let mut extra = self.extra.take().unwrap_or_default();
        let out = f(&mut extra);
        self.extra.set(Some(extra));
        out
    }

    /// Reads the extra state, if any (taken out and put back, as in `with_extra`).
    fn read_extra<R>(&self, f: impl FnOnce(&Extra) -> R) -> Option<R> {
        let extra = self.extra.take()?;
        let out = f(&extra);
        self.extra.set(Some(extra));
        Some(out)
    }

    fn cancel_requested(&self) -> bool {
        self.header.flag(Flags::CANCEL_REQUESTED)
    }

    /// Ends the task cancelled. Only an error with the message given to `cancel_with` is
    /// stored: a plain cancellation's error is implied by the status (see `error`), so a task
    /// cancelled without a message allocates no extra state.
    fn finish_cancelled(&self) {
        let message = self.read_extra(|x| x.cancel_message.clone()).flatten();
        self.finish(
            Status::Cancelled,
            message.map(|m| Error::new(ErrorKind::Cancelled, m)),
        );
    }

    fn finish(&self, status: Status, error: Option<Error>) {
        if let Some(error) = error {
            self.with_extra(|x| x.error = Some(error));
        }
        self.header.set_status(status);
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
    }
}

impl<F: Future + 'static> TaskRun for TaskCell<F> {
    fn poll_step(&self, waker: &Waker) -> bool {
        if self.header.status() != Status::Pending {
            return true;
        }
        if self.cancel_requested() {
            // Dropping the future is its `finally`: a panic there ends the task with that
            // panic (as a raising `finally` does in asyncio) instead of vanishing.
            match self.set_stage(Stage::Gone) {
                Some(err) => self.finish(Status::Failed, Some(err)),
                None => self.finish_cancelled(),
            }
            return true;
        }
        let mut cx = Context::from_waker(waker);
        let polled = self.with_stage(|stage| {
            let Stage::Running(future) = stage else {
                return None;
            };
            // SAFETY: the future lives inside the task's allocation, which never moves it: it
            // is only ever dropped in place (`set_stage` assigns over it), never moved out, so
            // the pinning guarantee holds for as long as the future exists.
            let future = unsafe { Pin::new_unchecked(future) };
            Some(catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))))
        });
        let polled = match polled {
            // A re-entrant step (from inside this task's own poll): nothing to do.
            None => return false,
            // Not running any more.
            Some(None) => return true,
            Some(Some(polled)) => polled,
        };
        match polled {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(output)) => {
                if self.cancel_requested() {
                    // Cancelled while running its last step: asyncio reports it cancelled.
                    self.set_stage(Stage::Gone);
                    self.finish_cancelled();
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
        if self.header.status() != Status::Pending {
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
        match self.read_extra(|x| x.name.clone()).flatten() {
            Some(n) => n,
            None => format!("Task-{}", self.id),
        }
    }

    fn set_name(&self, name: String) {
        // The old name is dropped after the extra state is back in its cell.
        drop(self.with_extra(|x| x.name.replace(name)));
    }

    fn cancel(&self, message: Option<String>) -> bool {
        if self.header.status() != Status::Pending {
            return false;
        }
        self.header.set_flag(Flags::CANCEL_REQUESTED, true);
        // A plain request is counted in the header (no allocation, as most cancels are);
        // one with a message, or past the header's count, in the extra state.
        let plain = self.header.cancels();
        if message.is_none() && plain.get() < u8::MAX {
            plain.set(plain.get() + 1);
            return true;
        }
        let old = self.with_extra(|x| {
            x.cancels += 1;
            match message {
                Some(m) => x.cancel_message.replace(m),
                None => None,
            }
        });
        drop(old);
        true
    }

    fn cancelling(&self) -> u32 {
        u32::from(self.header.cancels().get()) + self.read_extra(|x| x.cancels).unwrap_or(0)
    }

    fn uncancel(&self) -> u32 {
        // One request fewer: the extra state's count first, then the header's.
        let plain = self.header.cancels();
        let in_extra = self.read_extra(|x| x.cancels).unwrap_or(0);
        if in_extra > 0 {
            self.with_extra(|x| x.cancels -= 1);
        } else if plain.get() > 0 {
            plain.set(plain.get() - 1);
        } else {
            return 0;
        }
        let left = u32::from(plain.get()) + in_extra.saturating_sub(1);
        if left == 0 && self.header.status() == Status::Pending {
            self.header.set_flag(Flags::CANCEL_REQUESTED, false);
        }
        left
    }

    fn error(&self) -> Option<Error> {
        let stored = self.read_extra(|x| x.error.clone()).flatten();
        match stored {
            None if self.header.status() == Status::Cancelled => Some(Error::cancelled()),
            stored => stored,
        }
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
        let removed = self
            .read_extra(|_| ())
            .map(|()| {
                self.with_extra(|x| {
                    let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut x.callbacks)
                        .into_iter()
                        .partition(|(i, _)| *i == id);
                    x.callbacks = kept;
                    gone
                })
            })
            .unwrap_or_default();
        let n = removed.len();
        // Dropped outside the extra state: a callback's captures may touch this task.
        drop(removed);
        n
    }

    fn take_done_callbacks(&self) -> Option<Vec<TaskCallback>> {
        let mut extra = self.extra.take()?;
        let callbacks = std::mem::take(&mut extra.callbacks);
        self.extra.set(Some(extra));
        Some(callbacks.into_iter().map(|(_, cb)| cb).collect())
    }

    fn event_loop(&self) -> Option<EventLoop> {
        let anchor = self.event_loop.take()?;
        let inner = anchor.inner.upgrade();
        self.event_loop.set(Some(anchor));
        Some(EventLoop::from_inner(inner?))
    }

    fn release_local(&self) -> Option<Rc<LoopAnchor>> {
        self.set_stage(Stage::Gone);
        drop(self.join_waker.take());
        if self.header.flag(Flags::HAS_EXTRA) {
            drop(self.extra.take());
        }
        self.event_loop.take()
    }
}

impl<F: Future + 'static> TaskJoin<F::Output> for TaskCell<F> {
    fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.header.status() != Status::Pending {
            return Poll::Ready(());
        }
        let waker = match self.join_waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            old => {
                drop(old);
                cx.waker().clone()
            }
        };
        self.join_waker.set(Some(waker));
        Poll::Pending
    }

    fn take_output(&self) -> Option<F::Output> {
        self.with_stage(|stage| match stage {
            Stage::Finished(out) => out.take(),
            _ => None,
        })
        .flatten()
    }

    fn clone_output(&self) -> Option<F::Output>
    where
        F::Output: Clone,
    {
        self.with_stage(|stage| match stage {
            Stage::Finished(out) => out.clone(),
            _ => None,
        })
        .flatten()
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
    let header = task.header();
    header.scheduled.begin_poll(header.refs());
    // Not a counted reference: `task` keeps the task alive until the old value is back, which
    // the guard puts back even if a panic leaves the step (a join waker of the user's that
    // panics when the task finishes): a stale pointer there would outlive the task.
    let previous = inner.current_task.replace(Some(NonNull::from(header)));
    let restore = RestoreCurrent { inner, previous };
    let done = task.with_waker(|waker| task.poll_step(waker));
    drop(restore);
    if done {
        if header.flag(Flags::IN_TABLE) {
            header.set_flag(Flags::IN_TABLE, false);
            // The table's slot holds a reference to this task: emptied without being read.
            inner.tasks.borrow_mut().forget(header.key);
            // SAFETY: the reference in that slot was just leaked; `task` is another one.
            unsafe { task.release_forgotten() };
        }
        task_finished(lp, &task);
    }
    inner.debug.get().then(|| task.name())
}

/// Puts the loop's previous current task back when a step ends, normally or by a panic.
struct RestoreCurrent<'a> {
    inner: &'a crate::runtime::core::Inner,
    previous: Option<NonNull<Header>>,
}

impl Drop for RestoreCurrent<'_> {
    fn drop(&mut self) {
        self.inner.current_task.set(self.previous);
    }
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
    if !task.header().flag(Flags::HAS_EXTRA) {
        // No done callbacks, and no error to report.
        return;
    }
    for cb in task.take_done_callbacks().into_iter().flatten() {
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
    let header = Header::new(entry.key(), &inner.anchor.shared, &TaskCell::<F>::VTABLE);
    let cell = TaskCell::new(header, inner.anchor.clone(), id, future);
    entry.insert(cell.untyped_sized());
    drop(tasks);
    inner.ready.borrow_mut().push_task(cell.untyped_sized());
    cell.map(|p| -> NonNull<dyn TaskJoin<F::Output>> { p })
}

/// An error for a task result read too early.
pub(crate) fn not_done() -> Error {
    Error::new(ErrorKind::InvalidState, "Result is not set.")
}

/// The outcome of a finished task as a `Result`, given its typed output.
#[inline]
pub(crate) fn outcome<D: ?Sized + TaskRun, T>(raw: &TaskPtr<D>, output: Option<T>) -> Result<T> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cell_size<F: Future>(_: &F) -> usize {
        std::mem::size_of::<TaskCell<F>>()
    }

    /// A task's future that reaches its own task from inside its step and from its `Drop`
    /// (the stage is in use then) gets "not done" instead of a second reference to the stage.
    #[test]
    fn a_future_touching_its_own_task_during_its_step_and_drop() {
        use std::cell::RefCell;
        use std::rc::Rc;
        struct OnDrop(
            Rc<RefCell<Option<crate::Task<u8>>>>,
            Rc<Cell<Option<ErrorKind>>>,
        );
        impl Drop for OnDrop {
            fn drop(&mut self) {
                if let Some(task) = &*self.0.borrow() {
                    self.1.set(task.result().err().map(|e| e.kind()));
                }
            }
        }
        let lp = EventLoop::new().unwrap();
        let slot: Rc<RefCell<Option<crate::Task<u8>>>> = Rc::default();
        let in_step = Rc::new(Cell::new(None));
        let in_drop = Rc::new(Cell::new(None));
        let (s, seen, guard) = (
            slot.clone(),
            in_step.clone(),
            OnDrop(slot.clone(), in_drop.clone()),
        );
        let task = lp
            .create_task(async move {
                let _guard = guard;
                let task = s.borrow_mut().take().unwrap();
                seen.set(task.take_result().err().map(|e| e.kind()));
                *s.borrow_mut() = Some(task);
                5u8
            })
            .unwrap();
        *slot.borrow_mut() = Some(task);
        lp.run_until_complete(crate::sleep(0.0)).unwrap().unwrap();
        assert_eq!(in_step.get(), Some(ErrorKind::InvalidState));
        // The future (and its guard) was dropped when it finished, with the stage in use.
        assert_eq!(in_drop.get(), Some(ErrorKind::InvalidState));
        let task = slot.borrow_mut().take().unwrap();
        assert_eq!(task.result().unwrap(), 5);
        assert_eq!(task.take_result().unwrap(), 5);
        lp.close().unwrap();
    }

    /// A trivial task is mostly its allocation: its cell stays within the 120 bytes that
    /// glibc's malloc serves from its fast bins (larger blocks go through the coalescing bins,
    /// a quarter of a trivial task's cost when 200k of them are freed). 40 bytes of header (two
    /// counts, the status, flags and plain-cancel count, the table key, the loop's shared part,
    /// the vtable), the id, the loop reference, the joiner's waker, the extra state, and the
    /// future's stage.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_trivial_task_cell_fits_mallocs_fast_bins() {
        assert_eq!(std::mem::size_of::<Header>(), 40);
        let i = 7u64;
        let trivial = async move { i };
        eprintln!("cell {}", cell_size(&trivial));
        assert!(cell_size(&trivial) <= 104, "{}", cell_size(&trivial));
        assert!(cell_size(&async {}) <= 96, "{}", cell_size(&async {}));
    }

    /// A plain `cancel()` counts in the header and allocates no extra state; a message, or
    /// more than 255 plain requests, go to the extra state, and `cancelling` / `uncancel` see
    /// the sum (asyncio 3.11+: `uncancel` at zero leaves the task uncancelled). A task
    /// cancelled without a message still reports `Cancelled` as its exception.
    #[test]
    fn cancel_counts_without_allocating_and_spills_to_the_extra_state() {
        let lp = EventLoop::new().unwrap();
        let task = lp.create_task(std::future::pending::<()>()).unwrap();
        let raw = task.raw.get();
        assert!(raw.cancel(None));
        assert!(raw.cancel(None));
        assert_eq!(raw.cancelling(), 2);
        assert!(!task.raw.header().flag(Flags::HAS_EXTRA), "no allocation");
        assert_eq!(raw.uncancel(), 1);
        assert_eq!(raw.uncancel(), 0);
        assert!(!task.raw.header().flag(Flags::CANCEL_REQUESTED));
        assert_eq!(raw.uncancel(), 0);
        for _ in 0..300 {
            raw.cancel(None);
        }
        raw.cancel(Some("why".into()));
        assert_eq!(raw.cancelling(), 301);
        for left in (0..301).rev() {
            assert_eq!(raw.uncancel(), left);
        }
        assert!(!task.raw.header().flag(Flags::CANCEL_REQUESTED));
        // A plain cancel: the status says what the error is.
        raw.cancel(None);
        lp.run_until_complete(async {
            for _ in 0..3 {
                crate::sleep(0.0).await.unwrap();
            }
        })
        .unwrap();
        assert_eq!(task.exception().unwrap().kind(), ErrorKind::Cancelled);
        assert_eq!(task.take_result().unwrap_err().kind(), ErrorKind::Cancelled);
        // With a message, the error carries it.
        let t2 = lp.create_task(std::future::pending::<()>()).unwrap();
        t2.raw.get().cancel(Some("stop now".into()));
        lp.run_until_complete(crate::sleep(0.0)).unwrap().unwrap();
        let err = t2.exception().unwrap();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert_eq!(err.message(), "stop now");
        lp.close().unwrap();
    }

    /// A panic that leaves a task's step (here the join waker of the user's, woken when the
    /// task finishes) does not leave the loop naming a task as current, which would outlive
    /// it. (Found in review.)
    #[test]
    fn a_panic_leaving_a_step_does_not_leave_a_current_task() {
        use std::task::Context;
        let lp = EventLoop::new().unwrap();
        let mut task = lp.create_task(async { 1u32 }).unwrap();
        let waker = crate::task::panicking_waker("join waker panics");
        let polled = std::pin::Pin::new(&mut task).poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending());
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = lp.run_until_complete(async {});
        }));
        assert!(run.is_err(), "the waker's panic reaches the caller");
        assert!(task.done());
        assert!(lp.current_task().is_none(), "no stale current task");
        drop(task);
        lp.close().unwrap();
        assert!(lp.current_task().is_none());
    }

    /// A `Task<T>` handle is one pointer (a program keeps many: a vector of 200k handles is
    /// 1.6 MB, not 3.2 MB), and `Option<Task<T>>` too.
    #[test]
    fn a_task_handle_is_one_word() {
        use crate::task::Task;
        let word = std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<Task<u64>>(), word);
        assert_eq!(std::mem::size_of::<Option<Task<String>>>(), word);
    }

    /// The typed operations reached through the one-word handle's erased vtable entry read
    /// and take the right output (run under Miri by `.ci/sanitizers`).
    #[test]
    fn a_task_handle_reaches_its_typed_output() {
        let lp = EventLoop::new().unwrap();
        let text = lp.create_task(async { String::from("out") }).unwrap();
        let pair = lp.create_task(async { (1u8, vec![2u16, 3]) }).unwrap();
        lp.run_until_complete(async {}).unwrap();
        while !(text.done() && pair.done()) {
            lp.run_until_complete(crate::sleep(0.0)).unwrap().unwrap();
        }
        assert_eq!(text.result().unwrap(), "out");
        assert_eq!(text.take_result().unwrap(), "out");
        assert!(text.take_result().is_err(), "taken already");
        assert_eq!(pair.take_result().unwrap(), (1, vec![2, 3]));
        drop((text, pair));
        lp.close().unwrap();
    }
}
