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
    handlers: HashMap<i32, (LoopHandle, ChildCallback)>,
    waiting: HashSet<i32>,
    attached: Option<LoopHandle>,
}

type Inner = Guarded<State>;

/// Reaps each child on a thread of its own that blocks in `waitpid(pid, 0)`, then hands the
/// return code to the loop with `call_soon_threadsafe`.
///
/// Works with loops on any thread and needs no signal handler; costs one small thread per
/// running child. The fallback default where pidfds are not available.
#[derive(Clone, Default)]
pub struct ThreadedChildWatcher {
    inner: Arc<Inner>,
}

impl ThreadedChildWatcher {
    /// A new watcher.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many children are being waited for.
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
                let entry = {
                    let mut state = inner.lock();
                    state.waiting.remove(&pid);
                    state.handlers.remove(&pid)
                };
                if let Some((handle, cb)) = entry {
                    if handle.call_soon_threadsafe(move || cb(pid, rc)).is_err() {
                        crate::events::log_warning(&format!(
                            "Loop closed before the exit of child {pid} (returncode {rc}) could be reported"
                        ));
                    }
                }
            });
        if let Err(e) = spawned {
            let mut state = self.inner.lock();
            state.waiting.remove(&pid);
            state.handlers.remove(&pid);
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
