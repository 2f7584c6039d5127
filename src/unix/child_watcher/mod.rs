//! Child watchers: how the loop learns that a child process exited (asyncio's
//! `AbstractChildWatcher` and its implementations).
//!
//! | watcher | mechanism | notes |
//! | --- | --- | --- |
//! | [`PidfdChildWatcher`] | Linux `pidfd_open`, the pidfd watched by the loop | no signals, no threads; the default where the kernel allows it |
//! | [`ThreadedChildWatcher`] | one thread per child, blocking `waitpid(pid)` | works everywhere, from any loop; the fallback default |
//! | [`SafeChildWatcher`] | `SIGCHLD` on the attached loop, `waitpid(pid, WNOHANG)` per child | O(children) per signal; needs an attached loop |
//! | [`FastChildWatcher`] | `SIGCHLD`, `waitpid(-1, WNOHANG)` | O(1), but reaps every child of the process |
//!
//! Every watcher keeps the documented contract (asyncio-semantics R53-R58, with the project's
//! choices in section 5): a second handler for a pid replaces the first; `remove_child_handler`
//! returns whether it removed something; a child that exited before its handler was added is
//! still reported once; exit code `n` is reported as `n`, death by signal `s` as `-s`, and a
//! child reaped by someone else as 255 with a warning. Callbacks run on the loop thread: the loop
//! running where `add_child_handler` was called, else the attached loop (for the `SIGCHLD`
//! watchers, Safe and Fast, always the attached loop).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::runtime::core::{EventLoop, LoopHandle};

/// What a watcher calls when a child exits: `(pid, returncode)`, on the loop thread.
pub type ChildCallback = Box<dyn FnOnce(i32, i32) + Send + 'static>;

/// Watches child processes and reports their exit (asyncio's `AbstractChildWatcher`).
///
/// Implementations are thread-safe; one watcher serves the whole process.
pub trait ChildWatcher: Send + Sync + 'static {
    /// Arranges for `callback(pid, returncode)` to run on the loop thread when `pid` exits.
    /// A second call for the same pid replaces the first callback.
    ///
    /// # Errors
    /// [`ErrorKind::NoRunningLoop`](crate::ErrorKind::NoRunningLoop) when the watcher needs a
    /// loop and neither a running loop nor an attached one is available;
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) after [`close`](ChildWatcher::close);
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the OS refuses (for example `pidfd_open`).
    fn add_child_handler(&self, pid: i32, callback: ChildCallback) -> Result<()>;

    /// [`add_child_handler`](ChildWatcher::add_child_handler) from a caller that holds a
    /// pidfd of the child (the subprocess transport): a watcher built on pidfds may duplicate
    /// it (`fcntl(F_DUPFD_CLOEXEC)`, no new file) instead of calling `pidfd_open` again. The
    /// default ignores `pidfd`.
    ///
    /// # Errors
    /// As [`add_child_handler`](ChildWatcher::add_child_handler).
    #[doc(hidden)]
    fn add_child_handler_with_pidfd(
        &self,
        pid: i32,
        pidfd: Option<std::os::fd::BorrowedFd<'_>>,
        callback: ChildCallback,
    ) -> Result<()> {
        let _ = pidfd;
        self.add_child_handler(pid, callback)
    }

    /// Removes the handler for `pid`; `true` if there was one. The child is still reaped.
    fn remove_child_handler(&self, pid: i32) -> bool;

    /// Attaches the watcher to `event_loop` (`None` detaches). Watchers that deliver through
    /// `SIGCHLD` need an attached loop; exits that happen while detached are reported on
    /// re-attachment.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) if the loop is closed; signal set-up
    /// errors.
    fn attach_loop(&self, event_loop: Option<&EventLoop>) -> Result<()>;

    /// Whether the watcher can deliver exit notifications now.
    fn is_active(&self) -> bool;

    /// Releases the watcher's resources (signal handlers, threads stop being used). Pending
    /// handlers are dropped. Idempotent.
    fn close(&self);
}

/// Maps a `waitpid` status to asyncio's return code: exit `n` -> `n`, signal `s` -> `-s`.
pub(crate) fn returncode(status: rustix::process::WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        -sig
    } else {
        255
    }
}

/// The warning and code for a child that someone else reaped.
pub(crate) fn reaped_elsewhere(pid: i32) -> i32 {
    crate::events::log_warning(&format!(
        "Unknown child process pid {pid}, will report returncode 255"
    ));
    255
}

/// A watcher's bookkeeping `S` behind a mutex, and whether the watcher is closed.
#[derive(Default)]
struct Guarded<S> {
    state: Mutex<S>,
    closed: AtomicBool,
}

impl<S> Guarded<S> {
    fn new(state: S) -> Self {
        Guarded {
            state: Mutex::new(state),
            closed: AtomicBool::new(false),
        }
    }

    /// Locks the bookkeeping (a lock poisoned by a panicking callback is still used).
    fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn set_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) once the watcher is closed.
    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::new(
                crate::ErrorKind::Closed,
                "the child watcher is closed",
            ));
        }
        Ok(())
    }
}

/// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) for a pid that cannot name
/// a child (`<= 0`).
fn check_pid(pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(Error::new(
            crate::ErrorKind::InvalidArgument,
            format!("invalid pid {pid}"),
        ));
    }
    Ok(())
}

/// What a watcher without signal handlers remembers on `attach_loop(event_loop)`: the loop's
/// handle, `None` to detach.
///
/// # Errors
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed) if the loop is closed.
fn attachment(event_loop: Option<&EventLoop>) -> Result<Option<LoopHandle>> {
    if let Some(lp) = event_loop {
        lp.check_closed()?;
    }
    Ok(event_loop.map(EventLoop::handle))
}

/// The default watcher: pidfd where the kernel allows it, else threaded.
pub fn default_watcher() -> Arc<dyn ChildWatcher> {
    if PidfdChildWatcher::is_supported() {
        Arc::new(PidfdChildWatcher::new())
    } else {
        Arc::new(ThreadedChildWatcher::new())
    }
}

mod fast;
mod pidfd;
mod safe;
mod sigchld;
mod threaded;

pub use fast::FastChildWatcher;
pub use pidfd::PidfdChildWatcher;
pub use safe::SafeChildWatcher;
pub use threaded::ThreadedChildWatcher;
