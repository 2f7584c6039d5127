//! UNIX signals on the loop: `add_signal_handler` / `remove_signal_handler`, through one
//! process-wide router.
//!
//! - `router`: one C handler per signal, installed with `sigaction` (saving the disposition
//!   that was there, restored when the last subscriber on any loop goes: R40 as the project
//!   keeps it). A foreign handler found at installation (another library's) is chained to, not
//!   lost; one installed over ours keeps ours and its predecessor alive.
//! - `slots`: each loop that handles signals owns a self-pipe registered with its selector,
//!   and a wake slot that the C handler reads with atomics only: the handler marks the signal
//!   pending in every subscribed slot and writes one byte to that slot's pipe. So several loops,
//!   on any threads, may watch one signal and each gets it (R41); slots never run out.
//! - This module, the loop side: the loop reads its pipe as an ordinary reader callback and
//!   schedules the user callback with `call_soon`, so handlers run on the loop thread through
//!   the ready queue, one iteration after the pipe is read (R39).
//! - `interrupt`: the runner's SIGINT handling (R51).
//!
//! The C handlers are async-signal-safe: atomics, `write(2)`, and errno saved and restored.

mod interrupt;
mod router;
mod slots;

pub(crate) use interrupt::InterruptGuard;

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::EventLoop;
use router::{subscribe, unsubscribe};
use slots::{WakeSlot, MAX_SIGNAL};

/// Checks that `sig` is a real signal number, as asyncio's `_check_signal` does for both add
/// and remove (R36, R40).
fn check_number(sig: i32) -> Result<()> {
    let valid = (1..32).contains(&sig) || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig);
    if !valid || sig >= MAX_SIGNAL {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid signal number {sig}"),
        ));
    }
    Ok(())
}

/// Checks a signal number the way asyncio does (R36): in range, a real signal, catchable.
fn check_signal(sig: i32) -> Result<()> {
    check_number(sig)?;
    // Uncatchable, or synchronous faults that a loop callback cannot handle (the faulting
    // instruction would run again as soon as the C handler returns).
    if [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGBUS,
    ]
    .contains(&sig)
    {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("sig {sig} cannot be caught"),
        ));
    }
    Ok(())
}

type SignalCallback = Rc<RefCell<Box<dyn FnMut()>>>;

/// A loop's signal state: its self-pipe, its wake slot, and its handlers.
pub(crate) struct LoopSignals {
    slot: &'static WakeSlot,
    read: OwnedFd,
    /// Kept open for the C handler (which writes to its raw fd) until the slot is released.
    _write: OwnedFd,
    handlers: HashMap<i32, SignalCallback>,
}

impl LoopSignals {
    fn new() -> Result<Self> {
        use rustix::pipe::{pipe_with, PipeFlags};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
            .map_err(|e| Error::from(std::io::Error::from(e)))?;
        let slot = slots::claim(write.as_raw_fd());
        Ok(LoopSignals {
            slot,
            read,
            _write: write,
            handlers: HashMap::new(),
        })
    }

    fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Empties the pipe, then takes the signals marked pending for this loop (a signal in
    /// between leaves a byte for the next read, at worst a wake-up with nothing to do).
    fn take_pending(&self) -> Vec<i32> {
        let mut buf = [0u8; 256];
        while let Ok(n) = rustix::io::read(&self.read, &mut buf) {
            if n == 0 {
                break;
            }
        }
        let mut out = Vec::new();
        for (word, mut bits) in self.slot.take_pending().into_iter().enumerate() {
            while bits != 0 {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                out.push((word * 64) as i32 + b as i32);
            }
        }
        out
    }
}

impl Drop for LoopSignals {
    fn drop(&mut self) {
        // Stop the deliveries and free the slot (the pipe is still open: fields drop after
        // this), then give up the subscriptions.
        self.slot.release();
        for sig in self.handlers.keys() {
            unsubscribe(*sig);
        }
    }
}

impl EventLoop {
    /// Runs `callback` on this loop (through the ready queue) each time the process receives
    /// signal `signum`. Replaces an earlier handler for that signal on this loop. Works on any
    /// thread, and several loops may watch the same signal: each gets it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for an invalid number ("invalid signal number N") or a
    /// signal that cannot be caught (SIGKILL, SIGSTOP, and the synchronous faults SIGSEGV,
    /// SIGILL, SIGFPE, SIGBUS: "sig N cannot be caught"); [`ErrorKind::Closed`] on a closed
    /// loop; an I/O error if the loop's self-pipe cannot be made. Any number of loops may
    /// handle signals at once.
    ///
    /// The callback reaches its loop with [`get_running_loop`](crate::get_running_loop): a
    /// clone of the loop moved into it would make a reference cycle (the loop owns its
    /// handlers) that keeps the loop alive until the handler is removed or the loop closed.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let got = Rc::new(Cell::new(false));
    /// let g = got.clone();
    /// event_loop.add_signal_handler(libc::SIGUSR2, move || {
    ///     g.set(true);
    ///     asyncio::get_running_loop().unwrap().stop();
    /// })?;
    /// rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::USR2)
    ///     .unwrap();
    /// event_loop.run_forever()?;
    /// assert!(got.get());
    /// assert!(event_loop.remove_signal_handler(libc::SIGUSR2)?);
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn add_signal_handler<F: FnMut() + 'static>(&self, signum: i32, callback: F) -> Result<()> {
        check_signal(signum)?;
        self.check_closed()?;
        self.ensure_signal_reader()?;
        let callback: SignalCallback = Rc::new(RefCell::new(Box::new(callback)));
        let newly = {
            let mut sigs = self.inner.signals.borrow_mut();
            let Some(state) = sigs.as_mut() else {
                return Err(Error::closed());
            };
            state.handlers.insert(signum, callback).is_none()
        };
        if newly {
            if let Err(e) = subscribe(signum) {
                let mut sigs = self.inner.signals.borrow_mut();
                if let Some(state) = sigs.as_mut() {
                    state.handlers.remove(&signum);
                }
                drop(sigs);
                self.release_signals_if_unused();
                return Err(e);
            }
            if let Some(state) = self.inner.signals.borrow().as_ref() {
                state.slot.subscribe(signum);
            }
        }
        Ok(())
    }

    /// Removes this loop's handler for `signum`; `true` if there was one. When no loop handles
    /// the signal any more, the disposition from before the first `add_signal_handler` is
    /// restored.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for an invalid signal number.
    pub fn remove_signal_handler(&self, signum: i32) -> Result<bool> {
        check_number(signum)?;
        let removed = {
            let mut sigs = self.inner.signals.borrow_mut();
            match sigs.as_mut() {
                Some(state) => {
                    let removed = state.handlers.remove(&signum);
                    if removed.is_some() {
                        state.slot.unsubscribe(signum);
                    }
                    removed
                }
                None => None,
            }
        };
        let Some(callback) = removed else {
            return Ok(false);
        };
        unsubscribe(signum);
        drop(callback);
        self.release_signals_if_unused();
        Ok(true)
    }

    fn ensure_signal_reader(&self) -> Result<()> {
        if self.inner.signals.borrow().is_some() {
            return Ok(());
        }
        let state = LoopSignals::new()?;
        let fd = state.read_fd();
        *self.inner.signals.borrow_mut() = Some(state);
        let weak = Rc::downgrade(&self.inner);
        let added = self.watch_reader(fd, move || {
            if let Some(inner) = weak.upgrade() {
                EventLoop::from_inner(inner).dispatch_signals();
            }
        });
        if let Err(e) = added {
            let state = self.inner.signals.borrow_mut().take();
            drop(state);
            return Err(e);
        }
        Ok(())
    }

    fn dispatch_signals(&self) {
        let (pending, handlers) = {
            let sigs = self.inner.signals.borrow();
            let Some(state) = sigs.as_ref() else { return };
            let pending = state.take_pending();
            let handlers: Vec<_> = pending
                .iter()
                .filter_map(|s| state.handlers.get(s).cloned())
                .collect();
            (pending, handlers)
        };
        let _ = pending;
        for h in handlers {
            let _ = self.call_soon(move || {
                if let Ok(mut f) = h.try_borrow_mut() {
                    f()
                }
            });
        }
    }

    fn release_signals_if_unused(&self) {
        let unused = self
            .inner
            .signals
            .borrow()
            .as_ref()
            .is_some_and(|s| s.handlers.is_empty());
        if unused {
            let state = self.inner.signals.borrow_mut().take();
            if let Some(state) = state {
                self.unwatch_reader(state.read_fd());
                drop(state);
            }
        }
    }

    /// The signals this loop has handlers for.
    pub fn signal_handlers(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .inner
            .signals
            .borrow()
            .as_ref()
            .map(|s| s.handlers.keys().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_are_checked() {
        for bad in [
            0,
            -1,
            32,
            33,
            200,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
        ] {
            assert_eq!(
                check_signal(bad).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
        for ok in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGCHLD,
            libc::SIGRTMIN(),
        ] {
            check_signal(ok).unwrap();
        }
        assert_eq!(
            check_signal(libc::SIGKILL).unwrap_err().to_string(),
            "sig 9 cannot be caught"
        );
    }
}
