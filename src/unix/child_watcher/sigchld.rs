//! The `SIGCHLD` engine shared by [`SafeChildWatcher`](super::SafeChildWatcher) and
//! [`FastChildWatcher`](super::FastChildWatcher) ([`Sigchld`]): attaching to a loop, the signal
//! handler, registration, delivery. The two watchers differ only in how a pass finds exited
//! children (a [`Pass`]: `safe.rs` polls every registered child, `fast.rs` reaps any child);
//! [`sigchld_watcher!`] defines a public watcher type over the engine and a pass.
//!
//! # Attaching and detaching
//!
//! [`attach_loop`](super::ChildWatcher::attach_loop) receives an `&EventLoop`, so it runs on that loop's
//! thread; it installs a `SIGCHLD` handler there with
//! [`add_signal_handler`](EventLoop::add_signal_handler). The watcher itself is `Send + Sync` and
//! cannot keep the `!Send` loop, so:
//!
//! - every attachment gets a token, and the handler closure does nothing unless its token is
//!   still the watcher's current one (a stale handler is a no-op);
//! - the thread that attached remembers, in a thread-local, which token's handler it installed
//!   on which loop (a `Weak` reference to the loop). Detaching on that thread removes the handler
//!   with [`remove_signal_handler`](EventLoop::remove_signal_handler), which restores the
//!   previous `SIGCHLD` disposition when no other loop watches it. Detaching from another thread
//!   leaves the no-op handler on the old loop until that loop closes (or the watcher is attached
//!   to it again).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard};
use std::thread::ThreadId;

use rustix::io::Errno;
use rustix::process::{waitpid, Pid, WaitOptions};

use super::{check_pid, reaped_elsewhere, returncode, ChildCallback, Guarded};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::{EventLoop, Inner as LoopInner, LoopHandle};

/// asyncio's message for `add_child_handler` on a watcher without a loop.
const NO_LOOP: &str = "Cannot add child handler, the child watcher does not have a loop attached";

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Loops of this thread that carry a watcher's `SIGCHLD` handler: loop id -> (attachment
    /// token, the loop). Lets a detach on this thread remove the handler it installed.
    static INSTALLED: RefCell<HashMap<u64, (u64, Weak<LoopInner>)>> =
        RefCell::new(HashMap::new());
}

/// How a watcher finds the children that exited, on each `SIGCHLD` and on attaching: reaps
/// them and returns the exits to report (the callbacks taken out of [`State::handlers`]).
pub(super) type Pass = fn(&mut State) -> Vec<Exit>;

/// A child exit ready to report: `(callback, pid, returncode)`.
pub(super) type Exit = (ChildCallback, i32, i32);

/// The loop a watcher is attached to.
struct Attached {
    handle: LoopHandle,
    loop_id: u64,
    token: u64,
    thread: ThreadId,
}

/// What a `SIGCHLD` watcher knows, behind one lock. Every `waitpid` runs under it, so two passes
/// (the loop's and a registration on another thread) never split one child's status.
#[derive(Default)]
pub(super) struct State {
    /// Registered children. `None` once the handler was removed: the child is still reaped, and
    /// its exit is dropped silently.
    pub(super) handlers: HashMap<i32, Option<ChildCallback>>,
    /// Fast only: exits of children nobody had registered, oldest first.
    pub(super) zombies: VecDeque<(i32, i32)>,
    attached: Option<Attached>,
}

impl State {
    /// Takes the kept exit of `pid`, if a pass reaped it before its handler was added.
    fn take_zombie(&mut self, pid: i32) -> Option<i32> {
        let i = self.zombies.iter().rposition(|&(p, _)| p == pid)?;
        self.zombies.remove(i).map(|(_, rc)| rc)
    }
}

/// What `waitpid(pid, WNOHANG)` says about one child.
pub(super) enum PidState {
    Running,
    Exited(i32),
    /// Not our child (any more): reaped by someone else, or never ours.
    Gone,
}

/// Polls one child without blocking; reaps it if it exited.
pub(super) fn poll_pid(pid: i32) -> PidState {
    let Some(p) = Pid::from_raw(pid) else {
        return PidState::Gone;
    };
    loop {
        match waitpid(Some(p), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => return PidState::Exited(returncode(status)),
            Ok(None) => return PidState::Running,
            Err(Errno::INTR) => continue,
            Err(_) => return PidState::Gone,
        }
    }
}

/// Polls every registered child (the Safe pass, and Fast's fallback): exited children are
/// reaped and their callbacks returned; children reaped elsewhere report 255 with a warning.
pub(super) fn poll_registered(state: &mut State) -> Vec<Exit> {
    let mut exits = Vec::new();
    state.handlers.retain(|&pid, callback| {
        let rc = match poll_pid(pid) {
            PidState::Running => return true,
            PidState::Exited(rc) => rc,
            PidState::Gone if callback.is_some() => reaped_elsewhere(pid),
            PidState::Gone => return false,
        };
        if let Some(cb) = callback.take() {
            exits.push((cb, pid, rc));
        }
        false
    });
    exits
}

fn log_undelivered(pid: i32, rc: i32) {
    crate::events::log_warning(&format!(
        "Loop closed before the exit of child {pid} (returncode {rc}) could be reported"
    ));
}

/// Queues each exit's callback on `event_loop` (we are on its thread). One ready-queue entry per
/// callback, so a panicking callback goes to the exception handler and the others still run.
fn deliver_local(event_loop: &EventLoop, exits: Vec<Exit>) {
    for (cb, pid, rc) in exits {
        if event_loop.call_soon(move || cb(pid, rc)).is_err() {
            log_undelivered(pid, rc);
        }
    }
}

/// Queues each exit's callback on the loop behind `handle`, from any thread.
fn deliver_threadsafe(handle: &LoopHandle, exits: Vec<Exit>) {
    for (cb, pid, rc) in exits {
        if handle.call_soon_threadsafe(move || cb(pid, rc)).is_err() {
            log_undelivered(pid, rc);
        }
    }
}

/// The shared engine of [`SafeChildWatcher`](super::SafeChildWatcher) and
/// [`FastChildWatcher`](super::FastChildWatcher).
pub(super) struct Sigchld {
    pass: Pass,
    guarded: Guarded<State>,
}

impl Sigchld {
    pub(super) fn new(pass: Pass) -> Arc<Self> {
        Arc::new(Sigchld {
            pass,
            guarded: Guarded::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.guarded.lock()
    }

    /// One pass over the exited children, the watcher's way.
    fn pass(&self, state: &mut State) -> Vec<Exit> {
        (self.pass)(state)
    }

    /// The `SIGCHLD` handler body, on the loop thread.
    fn on_sigchld(&self, token: u64, event_loop: &Weak<LoopInner>) {
        let exits = {
            let mut state = self.lock();
            if state.attached.as_ref().map(|a| a.token) != Some(token) {
                return; // A stale handler from an earlier attachment.
            }
            self.pass(&mut state)
        };
        if exits.is_empty() {
            return;
        }
        if let Some(inner) = event_loop.upgrade() {
            deliver_local(&EventLoop::from_inner(inner), exits);
        }
    }

    pub(super) fn add_child_handler(&self, pid: i32, callback: ChildCallback) -> Result<()> {
        self.guarded.check_open()?;
        check_pid(pid)?;
        let (handle, exit) = {
            let mut state = self.lock();
            let Some(attached) = &state.attached else {
                return Err(Error::new(ErrorKind::NoRunningLoop, NO_LOOP));
            };
            if attached.handle.is_closed() {
                return Err(Error::closed());
            }
            let handle = attached.handle.clone();
            // The child may have exited already: still waiting to be reaped, or reaped by an
            // earlier `waitpid(-1)` pass and kept (Fast). Either way it is reported now, once.
            // The pid is polled first: if it is a child of ours now, a kept exit for that pid
            // belonged to an earlier process that had the same pid, and is dropped.
            let rc = match poll_pid(pid) {
                PidState::Running => {
                    state.take_zombie(pid);
                    state.handlers.insert(pid, Some(callback));
                    return Ok(());
                }
                PidState::Exited(rc) => {
                    state.take_zombie(pid);
                    rc
                }
                PidState::Gone => match state.take_zombie(pid) {
                    Some(rc) => rc,
                    None => reaped_elsewhere(pid),
                },
            };
            // An earlier handler for this pid is replaced, i.e. dropped.
            state.handlers.remove(&pid);
            (handle, (callback, pid, rc))
        };
        deliver_threadsafe(&handle, vec![exit]);
        Ok(())
    }

    pub(super) fn remove_child_handler(&self, pid: i32) -> bool {
        let removed = match self.lock().handlers.get_mut(&pid) {
            Some(slot) => slot.take(),
            None => None,
        };
        removed.is_some()
    }

    pub(super) fn attach_loop(self: &Arc<Self>, event_loop: Option<&EventLoop>) -> Result<()> {
        let new = match event_loop {
            Some(lp) => {
                self.guarded.check_open()?;
                lp.check_closed()?;
                // Installed before the old one goes, so a failure leaves the old attachment.
                Some(self.install(lp)?)
            }
            None => None,
        };
        let old = {
            let mut state = self.lock();
            if new.is_none() && state.handlers.values().any(Option::is_some) {
                crate::events::log_warning(
                    "A loop is being detached from a child watcher with pending handlers",
                );
            }
            std::mem::replace(&mut state.attached, new)
        };
        if let Some(old) = old {
            uninstall(&old);
        }
        if let Some(lp) = event_loop {
            // Exits that happened while detached (or before the handler existed) are not lost.
            let exits = {
                let mut state = self.lock();
                self.pass(&mut state)
            };
            deliver_local(lp, exits);
        }
        Ok(())
    }

    /// Installs this watcher's `SIGCHLD` handler on `event_loop` (replacing the loop's earlier
    /// `SIGCHLD` handler, if any).
    fn install(self: &Arc<Self>, event_loop: &EventLoop) -> Result<Attached> {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let me = self.clone();
        let weak = Rc::downgrade(&event_loop.inner);
        event_loop.add_signal_handler(libc::SIGCHLD, move || me.on_sigchld(token, &weak))?;
        INSTALLED.with(|m| {
            let mut m = m.borrow_mut();
            m.retain(|_, (_, w)| w.strong_count() > 0);
            m.insert(event_loop.id(), (token, Rc::downgrade(&event_loop.inner)));
        });
        Ok(Attached {
            handle: event_loop.handle(),
            loop_id: event_loop.id(),
            token,
            thread: std::thread::current().id(),
        })
    }

    pub(super) fn is_active(&self) -> bool {
        !self.guarded.is_closed()
            && self
                .lock()
                .attached
                .as_ref()
                .is_some_and(|a| !a.handle.is_closed())
    }

    pub(super) fn close(&self) {
        self.guarded.set_closed();
        let (handlers, zombies, old) = {
            let mut state = self.lock();
            (
                std::mem::take(&mut state.handlers),
                std::mem::take(&mut state.zombies),
                state.attached.take(),
            )
        };
        // Callbacks' `Drop` runs outside the lock.
        drop((handlers, zombies));
        if let Some(old) = old {
            uninstall(&old);
        }
    }
}

/// Removes the `SIGCHLD` handler of an attachment from its loop, when we are on that loop's
/// thread and the handler is still the one this attachment installed. Elsewhere the handler
/// stays, as a no-op (its token is stale).
fn uninstall(old: &Attached) {
    if old.thread != std::thread::current().id() {
        return;
    }
    let event_loop = INSTALLED.with(|m| {
        let mut m = m.borrow_mut();
        match m.get(&old.loop_id) {
            Some((token, _)) if *token == old.token => {
                m.remove(&old.loop_id).and_then(|(_, w)| w.upgrade())
            }
            _ => None,
        }
    });
    if let Some(inner) = event_loop {
        let event_loop = EventLoop::from_inner(inner);
        if !event_loop.is_closed() {
            let _ = event_loop.remove_signal_handler(libc::SIGCHLD);
        }
    }
}

/// Defines a public watcher type over the shared SIGCHLD engine with the given [`Pass`]: the
/// struct (with the doc comment given), `new`, `Default`, `Debug`, and `ChildWatcher` by
/// delegation. Used by [`SafeChildWatcher`](super::SafeChildWatcher) and
/// [`FastChildWatcher`](super::FastChildWatcher).
macro_rules! sigchld_watcher {
    ($(#[$doc:meta])* $name:ident, $pass:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            inner: std::sync::Arc<$crate::unix::child_watcher::sigchld::Sigchld>,
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                use $crate::unix::child_watcher::ChildWatcher;
                f.debug_struct(stringify!($name))
                    .field("active", &self.is_active())
                    .finish()
            }
        }

        impl $name {
            /// A new, detached watcher.
            pub fn new() -> Self {
                $name {
                    inner: $crate::unix::child_watcher::sigchld::Sigchld::new($pass),
                }
            }
        }

        impl $crate::unix::child_watcher::ChildWatcher for $name {
            fn add_child_handler(
                &self,
                pid: i32,
                callback: $crate::unix::child_watcher::ChildCallback,
            ) -> $crate::error::Result<()> {
                self.inner.add_child_handler(pid, callback)
            }

            fn remove_child_handler(&self, pid: i32) -> bool {
                self.inner.remove_child_handler(pid)
            }

            fn attach_loop(
                &self,
                event_loop: Option<&$crate::runtime::core::EventLoop>,
            ) -> $crate::error::Result<()> {
                self.inner.attach_loop(event_loop)
            }

            fn is_active(&self) -> bool {
                self.inner.is_active()
            }

            fn close(&self) {
                self.inner.close()
            }
        }
    };
}
pub(super) use sigchld_watcher;
