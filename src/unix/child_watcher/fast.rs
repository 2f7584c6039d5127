//! [`FastChildWatcher`]: `SIGCHLD` on the attached loop, then `waitpid(-1, WNOHANG)` until no
//! exited child is left. Attaching, registration and delivery are the `SIGCHLD` engine's
//! (`sigchld.rs`), shared with [`SafeChildWatcher`](super::SafeChildWatcher); this watcher's
//! pass is [`reap_any`].

use rustix::io::Errno;
use rustix::process::{waitpid, WaitOptions};

use super::returncode;
use super::sigchld::{poll_registered, sigchld_watcher, Exit, State};

/// How many exits of not-yet-registered children are kept; the oldest goes first.
const MAX_ZOMBIES: usize = 4096;

fn keep_zombie(state: &mut State, pid: i32, rc: i32) {
    // A pid exits once; an older entry with this pid belonged to a process whose pid was reused.
    state.zombies.retain(|&(p, _)| p != pid);
    if state.zombies.len() >= MAX_ZOMBIES {
        if let Some((old, old_rc)) = state.zombies.pop_front() {
            crate::events::log_warning(&format!(
                "Caught termination of unknown child pid {old} (returncode {old_rc}) and \
                 dropped it: more than {MAX_ZOMBIES} unclaimed exits are kept"
            ));
        }
    }
    state.zombies.push_back((pid, rc));
}

/// The Fast pass: reap every exited child of the process. Registered children are reported;
/// others are kept for a later `add_child_handler`. When the pass found nothing for us, or no
/// child is left at all, the registered pids are polled one by one, so that a child reaped by
/// someone else is reported as 255 instead of never.
fn reap_any(state: &mut State) -> Vec<Exit> {
    let mut exits = Vec::new();
    let mut found_registered = false;
    let mut no_children = false;
    loop {
        match waitpid(None, WaitOptions::NOHANG) {
            Ok(Some((p, status))) => {
                let pid = p.as_raw_nonzero().get();
                let rc = returncode(status);
                match state.handlers.remove(&pid) {
                    Some(Some(cb)) => {
                        found_registered = true;
                        exits.push((cb, pid, rc));
                    }
                    Some(None) => found_registered = true, // handler removed: reaped silently
                    None => keep_zombie(state, pid, rc),
                }
            }
            Ok(None) => break,
            Err(Errno::INTR) => continue,
            Err(Errno::CHILD) => {
                no_children = true;
                break;
            }
            Err(e) => {
                crate::events::log_error(&format!("waitpid(-1) failed in a SIGCHLD pass: {e}"));
                break;
            }
        }
    }
    if !state.handlers.is_empty() && (no_children || !found_registered) {
        exits.extend(poll_registered(state));
    }
    exits
}

sigchld_watcher! {
/// Watches children through `SIGCHLD` on the attached loop, reaping with `waitpid(-1, WNOHANG)`
/// (asyncio's `FastChildWatcher`).
///
/// O(1) per exit, whatever the number of children. **It reaps every child of the process**, not
/// only the ones registered with it: code elsewhere in the process that waits for its own
/// children (`std::process::Child::wait`, another watcher, `async-process`) will find them gone
/// (`ECHILD`). Use it only when this watcher owns all children of the process.
///
/// The exit of a child that has no handler yet is kept (up to 4096 exits, the oldest dropped
/// first with a warning) and delivered when its handler is added, so no context manager is
/// needed around spawning, unlike asyncio's. A kept exit is not handed to a live child that
/// has since been given the same pid: registration polls the pid first. Registration also polls the pid itself, and a
/// child someone else reaped is reported as 255 with a warning (asyncio's Fast watcher waits
/// forever there). Attaching, threads, detaching and closing behave as for
/// [`SafeChildWatcher`](super::SafeChildWatcher).
///
/// ```
/// use asyncio::{ChildWatcher, EventLoop, FastChildWatcher};
/// use std::sync::{Arc, Mutex};
///
/// let event_loop = EventLoop::new()?;
/// let watcher = FastChildWatcher::new();
/// watcher.attach_loop(Some(&event_loop))?;
/// let child = std::process::Command::new("sh").args(["-c", "exit 3"]).spawn()?;
/// let got = Arc::new(Mutex::new(None));
/// let (g, handle) = (got.clone(), event_loop.handle());
/// watcher.add_child_handler(child.id() as i32, Box::new(move |_pid, rc| {
///     *g.lock().unwrap() = Some(rc);
///     handle.stop();
/// }))?;
/// event_loop.run_forever()?;
/// assert_eq!(*got.lock().unwrap(), Some(3));
/// watcher.close();
/// event_loop.close()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
    FastChildWatcher,
    reap_any
}
