//! The loop running on this thread (`get_running_loop`), and the guard that marks a run.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::{EventLoop, Inner};
use crate::unix::fork_generation;

/// The running loop, and the fork generation it started running in: after `fork()` the child
/// has no running loop, even inside the callback that forked (asyncio's `on_fork` resets it).
struct Running {
    event_loop: EventLoop,
    generation: u64,
}

impl Running {
    /// The loop, unless it runs in the parent of this (forked) process.
    fn current(&self) -> Option<&EventLoop> {
        (self.generation == fork_generation()).then_some(&self.event_loop)
    }
}

thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// The event loop running on this thread.
///
/// # Errors
/// [`ErrorKind::NoRunningLoop`] ("no running event loop") when no loop runs on this thread.
///
/// ```
/// use asyncio::{EventLoop, ErrorKind, get_running_loop};
///
/// assert_eq!(get_running_loop().unwrap_err().kind(), ErrorKind::NoRunningLoop);
/// let event_loop = EventLoop::new()?;
/// let same = event_loop.run_until_complete(async { get_running_loop().unwrap() })?;
/// assert!(same.ptr_eq(&event_loop));
/// # Ok::<(), asyncio::Error>(())
/// ```
pub fn get_running_loop() -> Result<EventLoop> {
    try_running_loop().ok_or_else(|| Error::new(ErrorKind::NoRunningLoop, "no running event loop"))
}

/// The loop running on this thread, if any.
pub fn try_running_loop() -> Option<EventLoop> {
    RUNNING
        .try_with(|r| r.try_borrow().ok()?.as_ref()?.current().cloned())
        .ok()
        .flatten()
}

/// Runs `f` with the running loop's state, if a loop runs on this thread.
pub(crate) fn with_running<R>(f: impl FnOnce(&Rc<Inner>) -> R) -> Option<R> {
    RUNNING
        .try_with(|r| {
            let running = r.try_borrow().ok()?;
            let event_loop = running.as_ref()?.current()?;
            Some(f(&event_loop.inner))
        })
        .ok()
        .flatten()
}

/// Refuses to await a task or future of another loop: `Ok` unless a loop runs on this thread and
/// `is_owner` says it is not the awaited object's loop. asyncio refuses the same
/// (`run_until_complete` of a foreign future, or a task awaiting one): that loop is not running,
/// so the await could only hang.
pub(crate) fn check_owner(is_owner: impl FnOnce(&Rc<Inner>) -> bool) -> Result<()> {
    match with_running(is_owner) {
        Some(false) => Err(Error::new(
            ErrorKind::InvalidArgument,
            "The future belongs to a different loop than the one it is awaited on",
        )),
        _ => Ok(()),
    }
}

/// Marks `event_loop` as running on this thread for the guard's lifetime.
pub(crate) struct RunGuard {
    event_loop: EventLoop,
}

impl RunGuard {
    /// Checks asyncio's preconditions for a run (closed, already running, another loop on this
    /// thread) and marks the loop running.
    pub(crate) fn enter(event_loop: &EventLoop) -> Result<RunGuard> {
        event_loop.check_closed()?;
        if event_loop.inner.running.get() {
            return Err(Error::new(
                ErrorKind::AlreadyRunning,
                "This event loop is already running",
            ));
        }
        if try_running_loop().is_some() {
            return Err(Error::new(
                ErrorKind::AnotherLoopRunning,
                "Cannot run the event loop while another loop is running",
            ));
        }
        let running = Running {
            event_loop: event_loop.clone(),
            generation: fork_generation(),
        };
        let previous = RUNNING.with(|r| r.borrow_mut().replace(running));
        // Only a forked child's stale entry can be there (its parent's loop): drop it.
        drop(previous);
        event_loop.inner.running.set(true);
        event_loop
            .inner
            .shared
            .running
            .store(true, Ordering::Release);
        Ok(RunGuard {
            event_loop: event_loop.clone(),
        })
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let inner = &self.event_loop.inner;
        inner.stopping.set(false);
        inner.running.set(false);
        inner.shared.running.store(false, Ordering::Release);
        let _ = RUNNING.try_with(|r| r.borrow_mut().take());
    }
}
