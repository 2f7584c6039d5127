//! [`EventLoop`], its builder, and its thread-safe side [`LoopHandle`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{ExceptionContext, ExceptionHandler};
use crate::executor::Executor;
use crate::handles::{
    Handle, HandleRun, OnceCell, ThreadsafeCell, ThreadsafeHandle, ThreadsafeRun,
};
use crate::handles::{TimerHandle, TimerSlot};
use crate::runtime::clock::{deadline_after, Clock, IntoDeadline, IntoDelay, MonotonicClock};
use crate::runtime::inbox::Inbox;
use crate::runtime::ready::ReadyQueue;
use crate::runtime::slot_queue::{LoopRef, Popped};
use crate::runtime::task_table::TaskTable;
use crate::runtime::timers::Timers;
use crate::selector::{ReadyEvent, Selector, SelectorWaker};
use crate::task::raw::AnyTask;
use crate::task::refs::RemoteTask;

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// One entry of the ready queue.
pub(crate) enum Ready {
    /// A callback (`call_soon`, a due timer, an fd watcher, a done callback).
    Handle(Rc<dyn HandleRun>),
    /// One step of a task.
    Task(AnyTask),
    /// A sleep's timer came due: its slot in the timer heap (see `runtime::timers`).
    Timer(u32),
    /// A `call_soon_threadsafe` callback from the loop's own thread.
    Remote(Arc<dyn ThreadsafeRun>),
    /// A `call_soon_threadsafe` callback from another thread, still in its inbox slot (its
    /// handle can cancel it until it runs).
    Queued(LoopRef<Remote>),
}

/// A callback sent from another thread: the closure (a zero-sized one is not allocated) and
/// its type's name, for exception contexts.
pub(crate) struct Call {
    pub(crate) f: Box<dyn FnOnce() + Send>,
    pub(crate) name: fn() -> &'static str,
}

/// Work sent to the loop from other threads.
pub(crate) enum Remote {
    /// Pushed with a handle ([`Inbox::push_cancellable`]).
    Call(Call),
    Task(RemoteTask),
    Stop,
    /// Nothing to run: only makes the loop look again (a `block_on` future woken elsewhere).
    Wake,
}

/// The part of a loop that other threads may touch.
pub(crate) struct Shared {
    pub(crate) id: u64,
    /// Work from other threads, and whether the selector needs a wake-up for it.
    inbox: Inbox<Remote>,
    waker: Arc<dyn SelectorWaker>,
    pub(crate) running: AtomicBool,
    pub(crate) closed: AtomicBool,
}

impl Shared {
    /// Queues `item` and wakes the selector (once per batch). Fails once the loop is closed:
    /// the queue is closed atomically with `close()`, so there is no check-then-act race.
    pub(crate) fn push_remote(&self, item: Remote) -> std::result::Result<(), Remote> {
        if self.inbox.push(item)? {
            // A failed wake-up means the selector is gone: the loop is closing.
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// Queues a callback as [`push_remote`](Shared::push_remote) does, with a handle that can
    /// cancel it until it runs.
    fn push_call<F: FnOnce() + Send + 'static>(&self, f: F) -> Option<ThreadsafeHandle> {
        let call = Call {
            f: Box::new(f),
            name: std::any::type_name::<F>,
        };
        let (slot, wake) = self.inbox.push_cancellable(Remote::Call(call)).ok()?;
        if wake {
            let _ = self.waker.wake();
        }
        Some(ThreadsafeHandle::queued(slot, std::any::type_name::<F>()))
    }

    /// Called by the loop right before it blocks in the selector: re-arms the wake-up and says
    /// whether blocking is safe. Until then `notified` stays set while the loop is busy, so
    /// pushers do not pay a wake-up syscall for a loop that is awake anyway; after the reset, an
    /// item pushed before it is seen here and one pushed after it writes the wake-up (the
    /// orderings: see `inbox.rs`).
    pub(crate) fn prepare_to_block(&self) -> bool {
        self.inbox.prepare_to_block()
    }
}

/// What each task holds of its loop (a count of one `Rc`, not atomic, where an `Arc<Shared>` per
/// task cost two atomic operations): the loop itself, weakly (`get_loop`), and its thread-safe
/// part, which keeps the plain pointer in the task's header valid while the task has local
/// references. (Wakers that outlive those take their own count of it then: see `refs.rs`.)
pub(crate) struct LoopAnchor {
    pub(crate) inner: std::rc::Weak<Inner>,
    pub(crate) shared: Arc<Shared>,
}

/// An fd's registered watchers.
#[derive(Default)]
pub(crate) struct FdWatch {
    pub(crate) reader: Option<Rc<dyn HandleRun>>,
    pub(crate) writer: Option<Rc<dyn HandleRun>>,
}

/// The loop's state, owned by the loop thread.
pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    /// What the loop's tasks hold of it.
    pub(crate) anchor: Rc<LoopAnchor>,
    pub(crate) ready: RefCell<ReadyQueue>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) selector: RefCell<Box<dyn Selector>>,
    pub(crate) events: RefCell<Vec<ReadyEvent>>,
    pub(crate) fds: RefCell<HashMap<RawFd, FdWatch>>,
    /// The fds that open transports own (asyncio's `_transports`).
    pub(crate) transports: RefCell<HashMap<RawFd, std::rc::Weak<dyn crate::runtime::fds::FdOwner>>>,
    pub(crate) clock: Rc<dyn Clock>,
    /// The clock itself when it is the default one: read without a virtual call.
    monotonic: Option<MonotonicClock>,
    pub(crate) tasks: RefCell<TaskTable<AnyTask>>,
    /// The task whose step is running (set by `run_task` for the step's length only).
    pub(crate) current_task: Cell<Option<std::ptr::NonNull<crate::task::refs::Header>>>,
    pub(crate) stopping: Cell<bool>,
    /// A [`Remote::Wake`] was drained and not yet looked at: the iteration must not block.
    pub(crate) remote_wake: Cell<bool>,
    pub(crate) running: Cell<bool>,
    pub(crate) closed: Cell<bool>,
    pub(crate) debug: Cell<bool>,
    pub(crate) slow_callback_duration: Cell<Duration>,
    pub(crate) exception_handler: RefCell<Option<ExceptionHandler>>,
    pub(crate) default_executor: RefCell<Option<Arc<dyn Executor>>>,
    /// Whether the loop shuts its default executor down on close (false when shared).
    pub(crate) executor_owned: Cell<bool>,
    pub(crate) executor_shutdown_called: Cell<bool>,
    pub(crate) next_task_id: Cell<u64>,
    pub(crate) iterations: Cell<u64>,
    pub(crate) signals: RefCell<Option<crate::unix::signals::LoopSignals>>,
    /// `set_task_factory`'s hook, used by `create_task`.
    pub(crate) task_factory: RefCell<Option<crate::task::TaskFactory>>,
}

impl Inner {
    /// The loop's time ([`EventLoop::time`]).
    #[inline]
    pub(crate) fn now(&self) -> f64 {
        match &self.monotonic {
            Some(clock) => clock.now(),
            None => self.clock.now(),
        }
    }

    /// Removes a cancelled timer, the one whose cell is at `cell`, from the heap (if it is
    /// still there). The heap's reference is dropped after the borrow ends.
    pub(crate) fn timer_cancelled(&self, slot: u32, cell: *const ()) {
        let removed = match self.timers.try_borrow_mut() {
            Ok(mut t) => t.cancel(slot, cell),
            Err(_) => None,
        };
        drop(removed);
    }

    #[inline(always)]
    pub(crate) fn push_ready(&self, item: Ready) {
        self.ready.borrow_mut().push(item);
    }

    /// Drains the cross-thread inbox into the ready queue. Takes only what is there now:
    /// threads that keep pushing must not keep the loop here forever. Later items wait for the
    /// next drain; their pushers have woken the selector.
    pub(crate) fn drain_inbox(&self) {
        let mut ready = self.ready.borrow_mut();
        self.shared.inbox.drain(|entry| match entry {
            // Cancellable until it runs: it stays in its slot.
            Popped::Cancellable(slot) => ready.push(Ready::Queued(slot)),
            Popped::Item(Remote::Task(t)) => {
                if let Some(t) = t.into_local() {
                    ready.push_task(t);
                }
            }
            // Requested while not running, it makes the next run a pre-stopped one.
            Popped::Item(Remote::Stop) => self.stopping.set(true),
            // The wake-up is the item itself: remember it, or the loop could block with the
            // woken `block_on` future never polled again.
            Popped::Item(Remote::Wake) => self.remote_wake.set(true),
            // Calls are pushed with handles; one without would run all the same.
            Popped::Item(Remote::Call(call)) => {
                ready.push(Ready::Remote(ThreadsafeCell::new_arc(call.f)))
            }
        });
    }

    /// Releases everything the loop holds: queues, timers, fds, tasks. Runs on `close()` and on
    /// drop; user `Drop` code may run, so no borrow is held while dropping. A panicking `Drop`
    /// does not stop the release (CPython ignores exceptions raised while finalizing): the
    /// panics are returned, for the exception handler.
    pub(crate) fn release_all(&self) -> Vec<Error> {
        let mut panics = Vec::new();
        self.shared.inbox.close();
        let mut remote = Vec::new();
        while let Some(item) = self.shared.inbox.pop() {
            remote.push(item);
        }
        drop_caught(remote, &mut panics);
        let ready = std::mem::take(&mut *self.ready.borrow_mut());
        drop_caught(ready, &mut panics);
        let timers = self.timers.borrow_mut().take_all();
        drop_caught(timers, &mut panics);
        let fds = std::mem::take(&mut *self.fds.borrow_mut());
        if let Ok(mut sel) = self.selector.try_borrow_mut() {
            for fd in fds.keys() {
                let _ = sel.deregister(*fd);
            }
        }
        drop_caught(fds, &mut panics);
        // Signal handlers go with the loop (R42): dispositions are restored.
        let signals = self.signals.borrow_mut().take();
        drop_caught(signals, &mut panics);
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for task in tasks.into_values() {
            task.header()
                .set_flag(crate::task::refs::Flags::IN_TABLE, false);
            // A panic in the future's `Drop` is reported like any other (its `finally` raised).
            panics.extend(task.destroy());
            drop_caught(task, &mut panics);
        }
        panics
    }
}

/// Drops `value`, catching a panic from user `Drop` code into `panics`.
fn drop_caught<T>(value: T, panics: &mut Vec<Error>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        panics.push(Error::from_panic(&*payload));
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        for e in self.release_all() {
            crate::events::log_error(&format!(
                "Exception while dropping the pending work of a dropped event loop: {e}"
            ));
        }
        if let Some(ex) = self.default_executor.get_mut().take() {
            if self.executor_owned.get() {
                ex.shutdown(false);
            }
        }
    }
}

/// An asyncio event loop: a single-threaded `Future` executor with asyncio's scheduling contract.
///
/// One FIFO ready queue is shared by callbacks and task steps; a timer heap and an I/O selector
/// feed it. Each iteration runs exactly the callbacks that were ready when it started (work they
/// schedule runs in the next iteration), and due timers queue behind callbacks that were already
/// ready. See the book's "The event loop" chapter and `spec/asyncio-semantics.md` R1-R32.
///
/// `EventLoop` is cheap to clone (all clones are the same loop) and `!Send`: it lives on the
/// thread that made it, so closures and futures handed to it need not be `Send`. Other threads
/// use its [`LoopHandle`].
///
/// A loop holds the callbacks and tasks it runs, and those may hold a clone of their loop: a
/// reference cycle. Call [`close`](EventLoop::close) (or use [`run`](crate::run) /
/// [`Runner`](crate::Runner), which do) to release them, as asyncio warns about unclosed loops.
/// A loop still open when its thread ends is closed then. Inside a callback, prefer
/// [`get_running_loop`](crate::get_running_loop) or a [`WeakEventLoop`] to a clone.
///
/// ```
/// use asyncio::{get_running_loop, EventLoop};
///
/// let event_loop = EventLoop::new()?;
/// event_loop.call_soon(|| {
///     println!("Hello World");
///     get_running_loop().unwrap().stop();
/// })?;
/// event_loop.run_forever()?;
/// event_loop.close()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct EventLoop {
    pub(crate) inner: Rc<Inner>,
}

/// A reference to an [`EventLoop`] that does not keep it alive: what a callback or task stored
/// in the loop should hold, so that dropping the last [`EventLoop`] releases the loop without a
/// [`close`](EventLoop::close) (a clone in the loop's own queues would be a reference cycle).
/// `!Send`, like the loop.
///
/// ```
/// use asyncio::EventLoop;
///
/// let event_loop = EventLoop::new()?;
/// let weak = event_loop.downgrade();
/// event_loop.call_soon(move || {
///     if let Some(lp) = weak.upgrade() {
///         lp.stop();
///     }
/// })?;
/// event_loop.run_forever()?;
/// let weak = event_loop.downgrade();
/// drop(event_loop);
/// // The queued callback held no strong reference: the loop is gone.
/// assert!(weak.upgrade().is_none());
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct WeakEventLoop {
    inner: std::rc::Weak<Inner>,
}

impl WeakEventLoop {
    /// The loop, unless every [`EventLoop`] of it was dropped.
    pub fn upgrade(&self) -> Option<EventLoop> {
        self.inner.upgrade().map(EventLoop::from_inner)
    }
}

impl fmt::Debug for WeakEventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakEventLoop")
            .field("alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

/// Builds an [`EventLoop`] with pluggable parts: selector, clock, default executor, debug mode.
///
/// ```
/// use asyncio::{EventLoop, VirtualClock};
/// use std::rc::Rc;
///
/// let event_loop = EventLoop::builder()
///     .clock(Rc::new(VirtualClock::new()))
///     .debug(true)
///     .build()?;
/// assert!(event_loop.get_debug());
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Default)]
pub struct EventLoopBuilder {
    selector: Option<Box<dyn Selector>>,
    clock: Option<Rc<dyn Clock>>,
    executor: Option<Arc<dyn Executor>>,
    executor_shared: bool,
    debug: Option<bool>,
    slow_callback_duration: Option<Duration>,
}

impl EventLoopBuilder {
    /// Uses `selector` for I/O readiness instead of the default
    /// ([`default_selector`](crate::selector::default_selector)).
    pub fn selector(mut self, selector: Box<dyn Selector>) -> Self {
        self.selector = Some(selector);
        self
    }

    /// Uses `clock` for [`EventLoop::time`] and timers (a [`VirtualClock`](crate::VirtualClock)
    /// for deterministic tests).
    pub fn clock(mut self, clock: Rc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses `executor` as the default executor for [`EventLoop::run_in_executor`] instead of a
    /// lazily created [`ThreadPoolExecutor`](crate::ThreadPoolExecutor).
    pub fn default_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self.executor_shared = false;
        self
    }

    /// Like [`default_executor`](EventLoopBuilder::default_executor), for an executor shared
    /// with other loops: the loop uses it but never shuts it down (not on `close`, not in
    /// `shutdown_default_executor`).
    pub fn shared_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self.executor_shared = true;
        self
    }

    /// Sets debug mode (default: on when the `PYTHONASYNCIODEBUG` or `ASYNCIO_DEBUG` environment
    /// variable is non-empty, as asyncio does).
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = Some(debug);
        self
    }

    /// Sets the debug-mode threshold above which a callback is logged as slow (default 100 ms).
    pub fn slow_callback_duration(mut self, d: Duration) -> Self {
        self.slow_callback_duration = Some(d);
        self
    }

    /// Creates the loop.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the default selector cannot be created (for example when out of file
    /// descriptors).
    pub fn build(self) -> Result<EventLoop> {
        let selector: Box<dyn Selector> = match self.selector {
            Some(s) => s,
            None => crate::selector::default_selector()?,
        };
        let shared = Arc::new(Shared {
            id: NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed),
            inbox: Inbox::new(),
            waker: selector.waker(),
            running: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let debug = self.debug.unwrap_or_else(debug_from_env);
        let (clock, monotonic): (Rc<dyn Clock>, _) = match self.clock {
            Some(clock) => (clock, None),
            None => {
                let clock = MonotonicClock::new();
                (Rc::new(clock), Some(clock))
            }
        };
        let event_loop = EventLoop {
            inner: Rc::new_cyclic(|weak| Inner {
                anchor: Rc::new(LoopAnchor {
                    inner: weak.clone(),
                    shared: shared.clone(),
                }),
                shared,
                ready: RefCell::new(ReadyQueue::default()),
                timers: RefCell::new(Timers::default()),
                selector: RefCell::new(selector),
                events: RefCell::new(Vec::new()),
                fds: RefCell::new(HashMap::new()),
                transports: RefCell::new(HashMap::new()),
                monotonic,
                clock,
                tasks: RefCell::new(TaskTable::new()),
                current_task: Cell::new(None),
                stopping: Cell::new(false),
                remote_wake: Cell::new(false),
                running: Cell::new(false),
                closed: Cell::new(false),
                debug: Cell::new(debug),
                slow_callback_duration: Cell::new(
                    self.slow_callback_duration
                        .unwrap_or(Duration::from_millis(100)),
                ),
                exception_handler: RefCell::new(None),
                default_executor: RefCell::new(self.executor),
                executor_owned: Cell::new(!self.executor_shared),
                executor_shutdown_called: Cell::new(false),
                next_task_id: Cell::new(1),
                iterations: Cell::new(0),
                signals: RefCell::new(None),
                task_factory: RefCell::new(None),
            }),
        };
        crate::runtime::thread_loops::register(&event_loop.inner);
        Ok(event_loop)
    }
}

impl fmt::Debug for EventLoopBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoopBuilder")
            .field("custom_selector", &self.selector.is_some())
            .field("custom_clock", &self.clock.is_some())
            .field("executor", &self.executor.is_some())
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

fn debug_from_env() -> bool {
    ["PYTHONASYNCIODEBUG", "ASYNCIO_DEBUG"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

impl EventLoop {
    /// Creates a loop with the default selector and clock.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the OS poller cannot be created.
    pub fn new() -> Result<EventLoop> {
        EventLoopBuilder::default().build()
    }

    /// A builder for a loop with custom parts.
    pub fn builder() -> EventLoopBuilder {
        EventLoopBuilder::default()
    }

    pub(crate) fn from_inner(inner: Rc<Inner>) -> Self {
        EventLoop { inner }
    }

    /// The thread-safe handle of this loop, for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            shared: self.inner.shared.clone(),
        }
    }

    /// A [`WeakEventLoop`]: a reference that does not keep the loop alive.
    pub fn downgrade(&self) -> WeakEventLoop {
        WeakEventLoop {
            inner: Rc::downgrade(&self.inner),
        }
    }

    /// A number that identifies this loop among all loops of the process.
    pub fn id(&self) -> u64 {
        self.inner.shared.id
    }

    /// Whether two `EventLoop` values are the same loop.
    pub fn ptr_eq(&self, other: &EventLoop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    #[inline]
    pub(crate) fn check_closed(&self) -> Result<()> {
        if self.inner.closed.get() {
            Err(Error::closed())
        } else {
            Ok(())
        }
    }

    /// The loop's current time in seconds, from its [`Clock`] (monotonic; works on a closed
    /// loop).
    pub fn time(&self) -> f64 {
        self.inner.now()
    }

    /// Schedules `callback` to run on the next iteration, after the callbacks already queued
    /// (FIFO).
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] on a closed loop.
    pub fn call_soon<F: FnOnce() + 'static>(&self, callback: F) -> Result<Handle> {
        self.check_closed()?;
        let cell = OnceCell::new_rc(callback);
        self.inner.push_ready(Ready::Handle(cell.clone()));
        Ok(Handle::new(cell))
    }

    /// Schedules `callback` to run `delay` from now: `f64` seconds or a `Duration`. A negative
    /// delay (down to `-inf`) means now (ordered by deadline); `f64::INFINITY`, or a deadline
    /// past `f64::MAX`, means never. The full table is at [`IntoDelay`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a NaN delay; [`ErrorKind::Closed`] on a closed loop.
    pub fn call_later<D: IntoDelay, F: FnOnce() + 'static>(
        &self,
        delay: D,
        callback: F,
    ) -> Result<TimerHandle> {
        let delay = delay.into_delay()?;
        self.check_closed()?;
        let when = deadline_after(self.time(), delay)?;
        Ok(self.schedule_at(when, OnceCell::new_rc(callback)))
    }

    /// Arms a sleep: a timer `delay` from now that wakes `waker` (see `Timers::push_wake`).
    pub(crate) fn call_later_wake(&self, delay: f64, waker: Waker) -> Result<TimerSlot> {
        self.check_closed()?;
        let when = deadline_after(self.time(), delay)?;
        let slot = self.inner.timers.borrow_mut().push_wake(when, waker);
        Ok(TimerSlot::new(Rc::downgrade(&self.inner), slot))
    }

    /// Schedules `callback` at `when`: loop time (`f64`, see [`time`](EventLoop::time)) or an
    /// `Instant`. Timers with equal deadlines run in the order they were scheduled. A past
    /// deadline (down to `-inf`) means now, `+inf` never (the table is at [`IntoDelay`]).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for NaN; [`ErrorKind::Closed`] on a closed loop.
    pub fn call_at<W: IntoDeadline, F: FnOnce() + 'static>(
        &self,
        when: W,
        callback: F,
    ) -> Result<TimerHandle> {
        let when = when.into_deadline(&*self.inner.clock)?;
        self.check_closed()?;
        Ok(self.schedule_at(when, OnceCell::new_rc(callback)))
    }

    fn schedule_at(&self, when: f64, cell: Rc<dyn HandleRun>) -> TimerHandle {
        let slot = self.inner.timers.borrow_mut().push(when, cell.clone());
        TimerHandle::new(
            Handle::new(cell),
            when,
            TimerSlot::new(Rc::downgrade(&self.inner), slot),
        )
    }

    /// Schedules `callback` from any thread; same as [`LoopHandle::call_soon_threadsafe`]. From
    /// the loop thread it shares the FIFO queue with [`call_soon`](EventLoop::call_soon).
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] on a closed loop.
    pub fn call_soon_threadsafe<F: FnOnce() + Send + 'static>(
        &self,
        callback: F,
    ) -> Result<ThreadsafeHandle> {
        self.check_closed()?;
        let cell = ThreadsafeCell::new_arc(callback);
        self.inner.push_ready(Ready::Remote(cell.clone()));
        Ok(ThreadsafeHandle::local(cell))
    }

    /// Asks the loop to stop: [`run_forever`](EventLoop::run_forever) returns after the current
    /// iteration (callbacks already ready still run; callbacks they schedule wait for the next
    /// run). Called before `run_forever`, the next run does exactly one iteration. Works on a
    /// closed loop (a no-op).
    pub fn stop(&self) {
        self.inner.stopping.set(true);
    }

    /// Whether the loop is running.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether [`close`](EventLoop::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the loop: drops every queued callback, timer, fd watcher and pending task (their
    /// `Drop` runs, which plays `finally`), and shuts the default executor down without waiting.
    /// Idempotent and irreversible.
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyRunning`] ("Cannot close a running event loop") while running.
    pub fn close(&self) -> Result<()> {
        if self.inner.running.get() {
            return Err(Error::new(
                ErrorKind::AlreadyRunning,
                "Cannot close a running event loop",
            ));
        }
        if self.inner.closed.replace(true) {
            return Ok(());
        }
        self.inner.shared.closed.store(true, Ordering::Release);
        self.inner.stopping.set(false);
        self.inner.executor_shutdown_called.set(true);
        let pending: Vec<_> = self
            .inner
            .tasks
            .borrow()
            .iter()
            .map(|(_, t)| t.clone())
            .collect();
        for task in &pending {
            let mut ctx = ExceptionContext::new("Task was destroyed but it is pending!");
            ctx.task = Some(crate::task::TaskRef::from_raw(task.clone()));
            self.call_exception_handler(&ctx);
        }
        drop(pending);
        for e in self.inner.release_all() {
            let ctx =
                ExceptionContext::new("Exception while dropping the pending work of a closed loop")
                    .with_exception(e);
            self.call_exception_handler(&ctx);
        }
        let executor = self.inner.default_executor.borrow_mut().take();
        if let Some(ex) = executor {
            if self.inner.executor_owned.get() {
                ex.shutdown(false);
            }
        }
        Ok(())
    }

    /// Turns debug mode on or off: slow callbacks (over
    /// [`slow_callback_duration`](EventLoop::slow_callback_duration)) are logged.
    pub fn set_debug(&self, enabled: bool) {
        self.inner.debug.set(enabled);
    }

    /// Whether debug mode is on.
    pub fn get_debug(&self) -> bool {
        self.inner.debug.get()
    }

    /// The debug-mode slow-callback threshold (default 100 ms).
    pub fn slow_callback_duration(&self) -> Duration {
        self.inner.slow_callback_duration.get()
    }

    /// Sets the debug-mode slow-callback threshold.
    pub fn set_slow_callback_duration(&self, d: Duration) {
        self.inner.slow_callback_duration.set(d);
    }

    /// Diagnostics: the number of scheduled timers (a cancelled timer leaves the heap when it is
    /// cancelled; a timer that fired, when it comes due).
    pub fn timer_heap_len(&self) -> usize {
        self.inner.timers.borrow().len()
    }

    /// Diagnostics: how many cancelled timers are still in the heap. Always 0: a cancelled timer
    /// is removed at once (unlike asyncio's, which stay until they reach the head of the heap).
    pub fn cancelled_timer_count(&self) -> usize {
        self.inner.timers.borrow().cancelled_count()
    }

    /// The number of iterations run so far (for tests and diagnostics).
    pub fn iteration_count(&self) -> u64 {
        self.inner.iterations.get()
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.id())
            .field("running", &self.is_running())
            .field("closed", &self.is_closed())
            .field("debug", &self.get_debug())
            .finish()
    }
}

/// The thread-safe side of an [`EventLoop`]: `Send + Sync + Clone`.
///
/// It offers only what asyncio allows from other threads: `call_soon_threadsafe`, `stop`,
/// `is_running`, `is_closed`, and `run_coroutine_threadsafe`.
///
/// ```
/// use asyncio::EventLoop;
///
/// let (handle, thread) = EventLoop::spawn_thread()?;
/// let answer = handle.run_coroutine_threadsafe(async { 6 * 7 })?.result(None)?;
/// assert_eq!(answer, 42);
/// handle.stop();
/// thread.join().unwrap()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    pub(crate) shared: Arc<Shared>,
}

impl LoopHandle {
    /// Schedules `callback` on the loop from any thread and wakes the loop.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] once the loop is closed. The check is atomic with `close()`: a call
    /// that returns `Ok` before `close()` begins runs on the loop, unless close drops it with
    /// the rest of the queue.
    pub fn call_soon_threadsafe<F: FnOnce() + Send + 'static>(
        &self,
        callback: F,
    ) -> Result<ThreadsafeHandle> {
        // On the loop's own thread, share the FIFO queue with `call_soon` (R1), as
        // `EventLoop::call_soon_threadsafe` does; elsewhere, the inbox, where the callback
        // stays in its slot until it runs.
        let mut callback = Some(callback);
        let local = crate::runtime::running::with_running(|inner| {
            if !Arc::ptr_eq(&inner.shared, &self.shared) || inner.closed.get() {
                return None;
            }
            let cell = ThreadsafeCell::new_arc(callback.take()?);
            inner.push_ready(Ready::Remote(cell.clone()));
            Some(ThreadsafeHandle::local(cell))
        })
        .flatten();
        match (local, callback) {
            (Some(handle), _) => Ok(handle),
            (None, Some(callback)) => self.shared.push_call(callback).ok_or_else(Error::closed),
            (None, None) => Err(Error::closed()),
        }
    }

    /// Asks the loop to stop after its current iteration, and wakes it. Unlike CPython's
    /// `loop.stop()` from a foreign thread, the loop does not sleep through the request. A no-op
    /// on a closed loop.
    pub fn stop(&self) {
        let _ = self.shared.push_remote(Remote::Stop);
    }

    /// Whether the loop is running.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire)
    }

    /// Whether the loop is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// The [`EventLoop::id`] of the loop.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Whether `event_loop` is the loop this handle refers to.
    pub fn is_handle_of(&self, event_loop: &EventLoop) -> bool {
        Arc::ptr_eq(&self.shared, &event_loop.inner.shared)
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("id", &self.id())
            .field("running", &self.is_running())
            .field("closed", &self.is_closed())
            .finish()
    }
}
