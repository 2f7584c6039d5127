//! [`SafeChildWatcher`]: `SIGCHLD` on the attached loop, then `waitpid(pid, WNOHANG)` for every
//! registered child. Attaching, registration and delivery are the `SIGCHLD` engine's
//! (`sigchld.rs`); this watcher's pass is [`poll_registered`].

use super::sigchld::{poll_registered, sigchld_watcher};
#[cfg(doc)]
use crate::error::ErrorKind;

sigchld_watcher! {
/// Watches children through `SIGCHLD` on the attached loop, polling every registered child with
/// `waitpid(pid, WNOHANG)` on each signal (asyncio's `SafeChildWatcher`).
///
/// It only ever waits for the pids it was given, so it never steals another library's
/// children; the price is O(registered children) per `SIGCHLD`.
///
/// - [`attach_loop`](super::ChildWatcher::attach_loop) is required before
///   [`add_child_handler`](super::ChildWatcher::add_child_handler) (else
///   [`ErrorKind::NoRunningLoop`]: "Cannot add child handler, the child watcher does not have a
///   loop attached"). It installs the watcher's `SIGCHLD` handler on that loop, which works on
///   any thread (the signal router routes `SIGCHLD` to every loop that watches it), and polls
///   every registered child at once, so exits while detached are not lost.
/// - `add_child_handler` may be called from any thread. It polls the pid at once: a child that
///   exited before registration is reported (once).
/// - Callbacks run on the attached loop's thread, one ready-queue entry each.
/// - A loop has one `SIGCHLD` handler: attaching replaces any other `SIGCHLD` handler on that
///   loop, and a later `add_signal_handler(SIGCHLD, ..)` on it disconnects the watcher.
/// - Detaching (`attach_loop(None)`, also [`close`](super::ChildWatcher::close)) removes the handler
///   when done on the loop's thread; from another thread the old handler stays as a no-op until
///   that loop closes. Children exiting while detached stay zombies until re-attachment.
/// - After `close`, handlers are dropped and nothing is reaped any more.
///
/// ```
/// use asyncio::{ChildWatcher, EventLoop, SafeChildWatcher};
/// use std::sync::{Arc, Mutex};
///
/// let event_loop = EventLoop::new()?;
/// let watcher = SafeChildWatcher::new();
/// watcher.attach_loop(Some(&event_loop))?;
/// let child = std::process::Command::new("sh").args(["-c", "exit 7"]).spawn()?;
/// let got = Arc::new(Mutex::new(None));
/// let (g, handle) = (got.clone(), event_loop.handle());
/// watcher.add_child_handler(child.id() as i32, Box::new(move |_pid, rc| {
///     *g.lock().unwrap() = Some(rc);
///     handle.stop();
/// }))?;
/// event_loop.run_forever()?;
/// assert_eq!(*got.lock().unwrap(), Some(7));
/// watcher.close();
/// event_loop.close()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
    SafeChildWatcher,
    poll_registered
}
