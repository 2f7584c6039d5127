//! Handles to scheduled callbacks: [`Handle`], [`TimerHandle`] and [`ThreadsafeHandle`].
//!
//! A handle is what `call_soon`, `call_later`, `call_at` and `call_soon_threadsafe` return. Its
//! only use is to cancel the callback before it runs (asyncio's `Handle.cancel()`); cancelling
//! drops the closure at once, and a cancelled callback that is already in the ready queue is
//! skipped (rule R7). Cancelling a callback that already ran is a harmless no-op that still makes
//! `cancelled()` true, as in CPython.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use crate::runtime::core::{Inner, Remote};
use crate::runtime::slot_queue::SlotHandle;
use crate::runtime::timers::WakeState;

/// What the ready queue runs: a callback cell behind a handle.
pub(crate) trait HandleRun {
    /// Runs the callback (once for plain callbacks, every time for fd watchers).
    fn run(&self);
    /// Marks the handle cancelled and drops its closure; returns whether it was not cancelled
    /// before.
    fn cancel(&self) -> bool;
    /// Whether `cancel` was called.
    fn is_cancelled(&self) -> bool;
    /// The callback's type name, for exception contexts and slow-callback logs.
    fn name(&self) -> &'static str;
}

/// A one-shot callback cell: one allocation holds the flags and the closure.
pub(crate) struct OnceCell<F> {
    cancelled: Cell<bool>,
    f: Cell<Option<F>>,
}

impl<F: FnOnce() + 'static> OnceCell<F> {
    pub(crate) fn new_rc(f: F) -> Rc<dyn HandleRun> {
        Rc::new(OnceCell {
            cancelled: Cell::new(false),
            f: Cell::new(Some(f)),
        })
    }
}

impl<F: FnOnce() + 'static> HandleRun for OnceCell<F> {
    fn run(&self) {
        if let Some(f) = self.f.take() {
            f()
        }
    }
    fn cancel(&self) -> bool {
        let first = !self.cancelled.replace(true);
        drop(self.f.take());
        first
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }
    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// A repeating callback cell, for fd readiness watchers (`add_reader`, `add_writer`).
pub(crate) struct RepeatCell<F> {
    cancelled: Cell<bool>,
    f: RefCell<Option<F>>,
}

impl<F: FnMut() + 'static> RepeatCell<F> {
    pub(crate) fn new_rc(f: F) -> Rc<dyn HandleRun> {
        Rc::new(RepeatCell {
            cancelled: Cell::new(false),
            f: RefCell::new(Some(f)),
        })
    }
}

impl<F: FnMut() + 'static> HandleRun for RepeatCell<F> {
    fn run(&self) {
        // A watcher cannot re-enter itself; if it somehow does, the inner call is skipped.
        if let Ok(mut slot) = self.f.try_borrow_mut() {
            if let Some(f) = slot.as_mut() {
                f()
            }
        }
    }
    fn cancel(&self) -> bool {
        let first = !self.cancelled.replace(true);
        if let Ok(mut slot) = self.f.try_borrow_mut() {
            drop(slot.take());
        }
        first
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }
    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// A callback scheduled with `call_soon` (or an fd watcher registered with `add_reader`).
///
/// Cloning a handle is cheap; all clones refer to the same callback.
///
/// ```
/// use asyncio::EventLoop;
/// use std::{cell::Cell, rc::Rc};
///
/// let event_loop = EventLoop::new().unwrap();
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let handle = event_loop.call_soon(move || r.set(true)).unwrap();
/// handle.cancel();
/// assert!(handle.cancelled());
/// event_loop.run_until_complete(async {}).unwrap();
/// assert!(!ran.get());
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) cell: Rc<dyn HandleRun>,
}

impl Handle {
    pub(crate) fn new(cell: Rc<dyn HandleRun>) -> Self {
        Handle { cell }
    }

    /// Cancels the callback: it will not run, and its closure is dropped now. Idempotent.
    pub fn cancel(&self) {
        self.cell.cancel();
    }

    /// Whether [`cancel`](Handle::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// The callback's type name, as used in exception contexts.
    pub fn callback_name(&self) -> &'static str {
        self.cell.name()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("callback", &self.cell.name())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

/// Where an armed timer sits in its loop's heap: what a [`TimerHandle`] needs to take its timer
/// out again, and all that a `sleep` holds of its timer (16 bytes).
#[derive(Clone)]
pub(crate) struct TimerSlot {
    event_loop: Weak<Inner>,
    slot: u32,
}

impl TimerSlot {
    pub(crate) fn new(event_loop: Weak<Inner>, slot: u32) -> Self {
        TimerSlot { event_loop, slot }
    }

    /// Takes the timer whose cell is `cell` out of the heap, if it is still there (call it
    /// after cancelling the cell).
    pub(crate) fn remove<C: HandleRun + ?Sized>(&self, cell: &Rc<C>) {
        if let Some(inner) = self.event_loop.upgrade() {
            inner.timer_cancelled(self.slot, Rc::as_ptr(cell).cast());
        }
    }

    /// For a sleep's slot (`call_later_wake`): whether it fired (the slot is then released),
    /// else makes `waker` the one it wakes. A sleep whose loop is gone or closed never fires.
    pub(crate) fn poll_wake(&self, waker: &Waker) -> WakeState {
        let Some(inner) = self.event_loop.upgrade() else {
            return WakeState::Gone;
        };
        let Ok(mut timers) = inner.timers.try_borrow_mut() else {
            // Not reachable (no user code runs while the timers are borrowed); asked again.
            waker.wake_by_ref();
            return WakeState::Waiting;
        };
        let (state, replaced) = timers.poll_wake(self.slot, waker);
        drop(timers);
        drop(replaced);
        state
    }

    /// A sleep's slot is let go (the sleep is dropped): its timer is disarmed.
    pub(crate) fn release_wake(&self) {
        if let Some(inner) = self.event_loop.upgrade() {
            let released = match inner.timers.try_borrow_mut() {
                Ok(mut timers) => timers.release_wake(self.slot),
                Err(_) => None,
            };
            drop(released);
        }
    }
}

/// A callback scheduled with `call_later` or `call_at`.
///
/// ```
/// use asyncio::EventLoop;
///
/// let event_loop = EventLoop::new().unwrap();
/// let timer = event_loop.call_later(3600.0, || unreachable!()).unwrap();
/// assert!(timer.when() >= event_loop.time() + 3599.0);
/// timer.cancel();
/// assert!(timer.cancelled());
/// ```
#[derive(Clone)]
pub struct TimerHandle {
    pub(crate) handle: Handle,
    when: f64,
    /// Where the timer sits in the loop's timer heap (see `Timers::cancel`).
    at: TimerSlot,
}

impl TimerHandle {
    pub(crate) fn new(handle: Handle, when: f64, at: TimerSlot) -> Self {
        TimerHandle { handle, when, at }
    }

    /// Cancels the timer: it will not run, its closure is dropped now, and the loop removes it
    /// from its timer heap at once. Idempotent.
    pub fn cancel(&self) {
        if self.handle.cell.cancel() {
            self.at.remove(&self.handle.cell);
        }
    }

    /// Whether [`cancel`](TimerHandle::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.handle.cancelled()
    }

    /// The scheduled time, in the loop's [`time`](crate::EventLoop::time) scale.
    pub fn when(&self) -> f64 {
        self.when
    }

    /// The callback's type name.
    pub fn callback_name(&self) -> &'static str {
        self.handle.callback_name()
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("when", &self.when)
            .field("callback", &self.handle.cell.name())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

/// The closure of a `call_soon_threadsafe` callback, shareable across threads.
pub(crate) trait ThreadsafeRun: Send + Sync {
    fn run(&self);
    fn cancel(&self);
    fn is_cancelled(&self) -> bool;
    fn name(&self) -> &'static str;
}

pub(crate) struct ThreadsafeCell<F> {
    cancelled: AtomicBool,
    f: Mutex<Option<F>>,
}

impl<F: FnOnce() + Send + 'static> ThreadsafeCell<F> {
    pub(crate) fn new_arc(f: F) -> Arc<dyn ThreadsafeRun> {
        Arc::new(ThreadsafeCell {
            cancelled: AtomicBool::new(false),
            f: Mutex::new(Some(f)),
        })
    }

    fn take(&self) -> Option<F> {
        match self.f.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

impl<F: FnOnce() + Send + 'static> ThreadsafeRun for ThreadsafeCell<F> {
    fn run(&self) {
        if self.cancelled.load(Ordering::Acquire) {
            return;
        }
        if let Some(f) = self.take() {
            f()
        }
    }
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        drop(self.take());
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// A callback scheduled with `call_soon_threadsafe`; it may be cancelled from any thread.
#[derive(Clone)]
pub struct ThreadsafeHandle {
    cell: ThreadsafeRef,
    name: &'static str,
}

/// Where a threadsafe callback waits: the loop's ready queue (scheduled from the loop's own
/// thread) or its inbox slot (from another thread).
#[derive(Clone)]
enum ThreadsafeRef {
    Local(Arc<dyn ThreadsafeRun>),
    Queued(SlotHandle<Remote>),
}

impl ThreadsafeHandle {
    pub(crate) fn local(cell: Arc<dyn ThreadsafeRun>) -> Self {
        let name = cell.name();
        ThreadsafeHandle {
            cell: ThreadsafeRef::Local(cell),
            name,
        }
    }

    pub(crate) fn queued(slot: SlotHandle<Remote>, name: &'static str) -> Self {
        ThreadsafeHandle {
            cell: ThreadsafeRef::Queued(slot),
            name,
        }
    }

    /// Cancels the callback if it has not run yet (its closure is dropped now). Idempotent;
    /// callable from any thread.
    pub fn cancel(&self) {
        match &self.cell {
            ThreadsafeRef::Local(cell) => cell.cancel(),
            ThreadsafeRef::Queued(slot) => {
                slot.cancel();
            }
        }
    }

    /// Whether [`cancel`](ThreadsafeHandle::cancel) was called.
    pub fn cancelled(&self) -> bool {
        match &self.cell {
            ThreadsafeRef::Local(cell) => cell.is_cancelled(),
            ThreadsafeRef::Queued(slot) => slot.is_cancelled(),
        }
    }
}

impl fmt::Debug for ThreadsafeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadsafeHandle")
            .field("callback", &self.name)
            .field("cancelled", &self.cancelled())
            .finish()
    }
}
