//! [`ThreadedChildWatcher`]: one thread per child, blocking in `waitpid(pid)`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rustix::io::Errno;
use rustix::process::{waitpid, Pid, WaitOptions};

use super::{
    attachment, check_pid, reaped_elsewhere, returncode, ChildCallback, ChildWatcher, Guarded,
};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::{EventLoop, LoopHandle};
use crate::runtime::running::try_running_loop;

#[derive(Default)]
struct State {
    /// Registered children: the loop to report on, and the callback.
    handlers: HashMap<i32, (LoopHandle, ChildCallback)>,
    /// Children with a thread of their own, from registration until their exit is delivered
    /// (or dropped): a registration for one of them replaces the callback, so until the exit
    /// reaches a loop the later registration wins.
    waiting: HashSet<i32>,
    attached: Option<LoopHandle>,
    /// Tests: runs on a waiter thread once the exit it reaped is on its way to the loop.
    #[cfg(test)]
    after_reap: Option<Arc<dyn Fn(i32) + Send + Sync>>,
}

type Inner = Guarded<State>;

/// Reaps each child on a thread of its own that blocks in `waitpid(pid, 0)`, then hands the
/// return code to the loop with `call_soon_threadsafe`.
///
/// Works with loops on any thread and needs no signal handler; costs one small thread per
/// running child. The fallback default where pidfds are not available.
///
/// A second registration for a pid replaces the first until the exit has been delivered (its
/// callback taken on the loop), even when the child was already reaped: one thread per child,
/// one report, to the later callback.
#[derive(Clone, Default)]
pub struct ThreadedChildWatcher {
    inner: Arc<Inner>,
}

impl ThreadedChildWatcher {
    /// A new watcher.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many children are being watched: waited for, or their exit on its way to the loop.
    pub fn waiting_count(&self) -> usize {
        self.inner.lock().waiting.len()
    }
}

impl std::fmt::Debug for ThreadedChildWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedChildWatcher")
            .field("waiting", &self.waiting_count())
            .field("closed", &self.inner.is_closed())
            .finish()
    }
}

fn wait_blocking(pid: i32) -> i32 {
    let Some(p) = Pid::from_raw(pid) else {
        return reaped_elsewhere(pid);
    };
    loop {
        match waitpid(Some(p), WaitOptions::empty()) {
            Ok(Some((_, status))) => return returncode(status),
            Ok(None) => continue,
            Err(Errno::INTR) => continue,
            Err(_) => return reaped_elsewhere(pid),
        }
    }
}

/// After the waiter thread of `pid` reaped it: queues the delivery on the loop of the current
/// registration. The callback is looked up again when the delivery runs, so a registration
/// until then replaces it (and gets the real return code, not 255).
fn hand_over(inner: &Arc<Inner>, pid: i32, rc: i32) {
    let handle = {
        let mut state = inner.lock();
        let handle = state.handlers.get(&pid).map(|(h, _)| h.clone());
        if handle.is_none() {
            // Removed (or the watcher closed): reaped silently.
            state.waiting.remove(&pid);
        }
        handle
    };
    if let Some(handle) = handle {
        let (from, loop_id) = (inner.clone(), handle.id());
        if handle
            .call_soon_threadsafe(move || deliver(&from, pid, rc, loop_id))
            .is_err()
        {
            let entry = take_entry(inner, pid);
            drop(entry); // the callback's `Drop` runs outside the lock
            log_undelivered(pid, rc);
        }
    }
    #[cfg(test)]
    {
        let hook = inner.lock().after_reap.clone();
        if let Some(hook) = hook {
            hook(pid);
        }
    }
}

/// On the loop `loop_id`: runs the current callback for `pid`, or forwards it to the loop it
/// was registered from since.
fn deliver(inner: &Inner, pid: i32, rc: i32, loop_id: u64) {
    let Some((handle, cb)) = take_entry(inner, pid) else {
        return; // removed meanwhile
    };
    if handle.id() == loop_id {
        cb(pid, rc);
    } else if handle.call_soon_threadsafe(move || cb(pid, rc)).is_err() {
        log_undelivered(pid, rc);
    }
}

/// Ends the watch of `pid`: its entry, if it still has one.
fn take_entry(inner: &Inner, pid: i32) -> Option<(LoopHandle, ChildCallback)> {
    let mut state = inner.lock();
    state.waiting.remove(&pid);
    state.handlers.remove(&pid)
}

fn log_undelivered(pid: i32, rc: i32) {
    crate::events::log_warning(&format!(
        "Loop closed before the exit of child {pid} (returncode {rc}) could be reported"
    ));
}

impl ChildWatcher for ThreadedChildWatcher {
    fn add_child_handler(&self, pid: i32, callback: ChildCallback) -> Result<()> {
        self.inner.check_open()?;
        check_pid(pid)?;
        let mut state = self.inner.lock();
        let handle = match try_running_loop() {
            Some(lp) => lp.handle(),
            None => state
                .attached
                .clone()
                .ok_or_else(|| Error::new(ErrorKind::NoRunningLoop, "no running event loop"))?,
        };
        state.handlers.insert(pid, (handle, callback));
        if !state.waiting.insert(pid) {
            return Ok(()); // A thread waits already; the new callback replaced the old one.
        }
        drop(state);
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("asyncio-waitpid-{pid}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                let rc = wait_blocking(pid);
                hand_over(&inner, pid, rc);
            });
        if let Err(e) = spawned {
            drop(take_entry(&self.inner, pid));
            return Err(e.into());
        }
        Ok(())
    }

    fn remove_child_handler(&self, pid: i32) -> bool {
        self.inner.lock().handlers.remove(&pid).is_some()
    }

    fn attach_loop(&self, event_loop: Option<&EventLoop>) -> Result<()> {
        self.inner.lock().attached = attachment(event_loop)?;
        Ok(())
    }

    fn is_active(&self) -> bool {
        !self.inner.is_closed()
    }

    fn close(&self) {
        self.inner.set_closed();
        let handlers = std::mem::take(&mut self.inner.lock().handlers);
        // The waiting threads still reap their children; nobody is told.
        drop(handlers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Mutex};
    use std::time::Duration;

    /// Generous bound for anything that should happen "soon".
    const BOUND: Duration = Duration::from_secs(10);

    /// The later of two registrations for a pid wins even when the child was reaped in between,
    /// as long as its exit has not reached the loop yet: only the later callback runs, with the
    /// real code (it used to run both, the later one with a made-up 255 and an "Unknown child
    /// process" warning). The hook makes the window wide: the second registration comes after
    /// the waiter thread handed the exit over.
    #[test]
    #[allow(clippy::zombie_processes)] // the watcher under test reaps them, not std
    fn the_later_registration_wins_until_the_exit_is_delivered() {
        let event_loop = EventLoop::new().unwrap();
        let watcher = ThreadedChildWatcher::new();
        watcher.attach_loop(Some(&event_loop)).unwrap();
        let (handed_over_tx, handed_over_rx) = mpsc::channel();
        let handed_over_tx = Mutex::new(handed_over_tx);
        watcher.inner.lock().after_reap = Some(Arc::new(move |pid| {
            let _ = handed_over_tx.lock().unwrap().send(pid);
        }));

        let reports = Arc::new(Mutex::new(Vec::new()));
        let callback = |tag: &'static str| -> ChildCallback {
            let (reports, handle) = (reports.clone(), event_loop.handle());
            Box::new(move |_pid, rc| {
                reports.lock().unwrap().push((tag, rc));
                handle.stop();
            })
        };
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // The loop is not running: the exit waits in its inbox.
        watcher.add_child_handler(pid, callback("first")).unwrap();
        assert_eq!(handed_over_rx.recv_timeout(BOUND), Ok(pid));
        watcher.add_child_handler(pid, callback("second")).unwrap();

        let handle = event_loop.handle();
        event_loop
            .call_later(BOUND.as_secs_f64(), move || handle.stop())
            .unwrap();
        event_loop.run_forever().unwrap();
        assert_eq!(reports.lock().unwrap().first(), Some(&("second", 3)));
        // Nothing else is on its way: no thread waits, and a later exit comes next.
        assert_eq!(watcher.waiting_count(), 0);
        let sentinel = std::process::Command::new("true").spawn().unwrap();
        let sentinel_pid = sentinel.id() as i32;
        watcher
            .add_child_handler(sentinel_pid, callback("sentinel"))
            .unwrap();
        assert_eq!(handed_over_rx.recv_timeout(BOUND), Ok(sentinel_pid));
        event_loop.run_forever().unwrap();
        assert_eq!(*reports.lock().unwrap(), [("second", 3), ("sentinel", 0)]);
        watcher.close();
        event_loop.close().unwrap();
    }
}
