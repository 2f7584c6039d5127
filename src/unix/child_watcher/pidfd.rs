//! [`PidfdChildWatcher`]: Linux pidfds watched by the loop's selector.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use rustix::io::Errno;
use rustix::process::{pidfd_open, waitpid, Pid, PidfdFlags, WaitOptions};

use super::{attachment, reaped_elsewhere, returncode, ChildCallback, ChildWatcher, Guarded};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::{EventLoop, LoopHandle};
use crate::runtime::running::try_running_loop;

struct Entry {
    callback: Option<ChildCallback>,
}

#[derive(Default)]
struct State {
    entries: HashMap<i32, Entry>,
    attached: Option<LoopHandle>,
}

type Inner = Guarded<State>;

impl Inner {
    /// The child is gone: reap it and run its callback (we are on the loop thread).
    fn finish(&self, pid: i32) {
        let rc = reap_now(pid);
        let entry = self.lock().entries.remove(&pid);
        if let Some(Entry { callback: Some(cb) }) = entry {
            cb(pid, rc);
        }
    }
}

fn reap_now(pid: i32) -> i32 {
    let Some(p) = Pid::from_raw(pid) else {
        return reaped_elsewhere(pid);
    };
    loop {
        match waitpid(Some(p), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => return returncode(status),
            // The pidfd said it exited; a not-yet-visible status is a kernel race: retry.
            Ok(None) => std::thread::yield_now(),
            Err(Errno::INTR) => continue,
            Err(_) => return reaped_elsewhere(pid),
        }
    }
}

/// Watches each child through a Linux pidfd (`pidfd_open`, kernel 5.3+) registered as a reader
/// on the loop: no signals, no threads. The default where the kernel allows it.
///
/// `add_child_handler` must run on a thread whose loop is running, or the watcher must be
/// attached to a loop (the pidfd is then registered on that loop through
/// `call_soon_threadsafe`).
#[derive(Clone, Default)]
pub struct PidfdChildWatcher {
    inner: Arc<Inner>,
}

impl PidfdChildWatcher {
    /// A new watcher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `pidfd_open` works here (Linux 5.3+, not blocked by seccomp).
    pub fn is_supported() -> bool {
        static SUPPORTED: OnceLock<bool> = OnceLock::new();
        *SUPPORTED
            .get_or_init(|| pidfd_open(rustix::process::getpid(), PidfdFlags::empty()).is_ok())
    }
}

impl std::fmt::Debug for PidfdChildWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PidfdChildWatcher")
            .field("watched", &self.inner.lock().entries.len())
            .field("closed", &self.inner.is_closed())
            .finish()
    }
}

/// Registers `pidfd` on the running loop of this thread.
fn register(inner: Arc<Inner>, lp: &EventLoop, pid: i32, pidfd: OwnedFd) -> Result<()> {
    let fd = pidfd.as_raw_fd();
    let weak = std::rc::Rc::downgrade(&lp.inner);
    let mut pidfd = Some(pidfd);
    lp.watch_reader(fd, move || {
        if let Some(l) = weak.upgrade() {
            EventLoop::from_inner(l).unwatch_reader(fd);
        }
        // Close the pidfd after deregistering it.
        drop(pidfd.take());
        inner.finish(pid);
    })?;
    Ok(())
}

impl ChildWatcher for PidfdChildWatcher {
    fn add_child_handler(&self, pid: i32, callback: ChildCallback) -> Result<()> {
        self.add(pid, None, callback)
    }

    fn add_child_handler_with_pidfd(
        &self,
        pid: i32,
        pidfd: Option<BorrowedFd<'_>>,
        callback: ChildCallback,
    ) -> Result<()> {
        self.add(pid, pidfd, callback)
    }

    fn remove_child_handler(&self, pid: i32) -> bool {
        // The pidfd stays registered so the child is still reaped; only the callback goes.
        match self.inner.lock().entries.get_mut(&pid) {
            Some(e) => e.callback.take().is_some(),
            None => false,
        }
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
        for e in self.inner.lock().entries.values_mut() {
            e.callback = None;
        }
    }
}

impl PidfdChildWatcher {
    /// `add_child_handler`, with a duplicate of `given` (a pidfd of `pid` the caller holds)
    /// as the watched pidfd when there is one, else a new one from `pidfd_open`.
    fn add(&self, pid: i32, given: Option<BorrowedFd<'_>>, callback: ChildCallback) -> Result<()> {
        self.inner.check_open()?;
        let p = Pid::from_raw(pid)
            .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, format!("invalid pid {pid}")))?;
        let running = try_running_loop();
        let attached = {
            let mut state = self.inner.lock();
            if let Some(e) = state.entries.get_mut(&pid) {
                // Already watched: the new callback replaces the old one.
                e.callback = Some(callback);
                return Ok(());
            }
            if running.is_none() && state.attached.is_none() {
                return Err(Error::new(
                    ErrorKind::NoRunningLoop,
                    "no running event loop",
                ));
            }
            state.entries.insert(
                pid,
                Entry {
                    callback: Some(callback),
                },
            );
            state.attached.clone()
        };
        let opened = match given {
            Some(fd) => rustix::io::fcntl_dupfd_cloexec(fd, 0),
            None => pidfd_open(p, PidfdFlags::empty()),
        };
        let pidfd = match opened {
            Ok(fd) => fd,
            Err(Errno::SRCH) => {
                // No such process: someone else reaped it. Report 255 through the loop.
                let inner = self.inner.clone();
                let report = move || {
                    let entry = inner.lock().entries.remove(&pid);
                    if let Some(Entry { callback: Some(cb) }) = entry {
                        cb(pid, reaped_elsewhere(pid));
                    }
                };
                match (&running, &attached) {
                    (Some(lp), _) => {
                        lp.call_soon(report)?;
                    }
                    (None, Some(h)) => {
                        h.call_soon_threadsafe(report)?;
                    }
                    (None, None) => {}
                }
                return Ok(());
            }
            Err(e) => {
                self.inner.lock().entries.remove(&pid);
                return Err(std::io::Error::from(e).into());
            }
        };
        let result = match (running, attached) {
            (Some(lp), _) => register(self.inner.clone(), &lp, pid, pidfd),
            (None, Some(handle)) => {
                let inner = self.inner.clone();
                handle
                    .call_soon_threadsafe(move || {
                        if let Some(lp) = try_running_loop() {
                            if let Err(e) = register(inner.clone(), &lp, pid, pidfd) {
                                crate::events::log_error(&format!("cannot watch child {pid}: {e}"));
                            }
                        }
                    })
                    .map(|_| ())
            }
            (None, None) => Err(Error::new(
                ErrorKind::NoRunningLoop,
                "no running event loop",
            )),
        };
        if result.is_err() {
            self.inner.lock().entries.remove(&pid);
        }
        result
    }
}
