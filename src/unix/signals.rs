//! UNIX signals on the loop: `add_signal_handler` / `remove_signal_handler`, through one
//! process-wide router.
//!
//! - The router installs one C handler per signal with `sigaction`, saving the disposition that
//!   was there; when the last subscriber (on any loop) goes, that disposition is restored (rule
//!   R40, as the project keeps it). A foreign handler found at installation (another library's)
//!   is chained to, not lost.
//! - Each loop that handles signals owns a self-pipe registered with its selector, and a slot in
//!   a fixed table that the C handler reads with atomics only: the handler marks the signal
//!   pending in every subscribed slot and writes one byte to that slot's pipe. So several loops,
//!   on any threads, may watch one signal and each gets it (R41).
//! - The loop reads its pipe as an ordinary reader callback and schedules the user callback with
//!   `call_soon`, so handlers run on the loop thread through the ready queue, one iteration after
//!   the pipe is read (R39).
//!
//! The C handler is async-signal-safe: atomics, `write(2)`, and errno saved and restored.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::EventLoop;

/// Signals are numbered below this (Linux's `_NSIG` is 65; two 64-bit words cover 1..=127).
const MAX_SIGNAL: i32 = 128;
/// How many loops may handle signals at the same time.
const SLOTS: usize = 64;

struct WakeSlot {
    /// The write end of the loop's self-pipe, or -1 when the slot is free.
    fd: AtomicI32,
    subscribed: [AtomicU64; 2],
    pending: [AtomicU64; 2],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: WakeSlot = WakeSlot {
    fd: AtomicI32::new(-1),
    subscribed: [AtomicU64::new(0), AtomicU64::new(0)],
    pending: [AtomicU64::new(0), AtomicU64::new(0)],
};

static WAKE: [WakeSlot; SLOTS] = [EMPTY_SLOT; SLOTS];
/// Handlers currently running, so a slot's pipe is not closed under one.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

#[allow(clippy::declare_interior_mutable_const)]
const NO_PREV: AtomicUsize = AtomicUsize::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NO_FLAG: AtomicBool = AtomicBool::new(false);
/// The previous handler to chain to (0: none, i.e. it was SIG_DFL or SIG_IGN).
static PREV_HANDLER: [AtomicUsize; MAX_SIGNAL as usize] = [NO_PREV; MAX_SIGNAL as usize];
static PREV_SIGINFO: [AtomicBool; MAX_SIGNAL as usize] = [NO_FLAG; MAX_SIGNAL as usize];

struct Installed {
    subscribers: usize,
    previous: libc::sigaction,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, flags and a signal mask); the raw
// pointer-sized fields are never dereferenced by us outside the kernel's own `sigaction` call.
unsafe impl Send for Installed {}

static ROUTER: Mutex<Option<HashMap<i32, Installed>>> = Mutex::new(None);

fn word_bit(sig: i32) -> (usize, u64) {
    let s = sig as usize;
    (s / 64, 1u64 << (s % 64))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: returns the calling thread's errno address; always valid.
    unsafe { libc::__errno_location() }
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: returns the calling thread's errno address; always valid.
    unsafe { libc::__error() }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let errno = errno_location();
    // SAFETY: `errno` points at this thread's errno, valid for the thread's lifetime.
    let saved = unsafe { *errno };
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    if (1..MAX_SIGNAL).contains(&sig) {
        let (word, bit) = word_bit(sig);
        let byte = sig as u8;
        for slot in WAKE.iter() {
            let fd = slot.fd.load(Ordering::SeqCst);
            if fd >= 0 && slot.subscribed[word].load(Ordering::SeqCst) & bit != 0 {
                slot.pending[word].fetch_or(bit, Ordering::SeqCst);
                // SAFETY: `write` is async-signal-safe; `fd` is the open, non-blocking write end
                // of a loop's self-pipe (it is not closed while IN_HANDLER > 0). A full pipe
                // (EAGAIN) is fine: the pending bit is already set and a wake-up is queued.
                unsafe {
                    libc::write(fd, (&byte as *const u8).cast(), 1);
                }
            }
        }
        let prev = PREV_HANDLER[sig as usize].load(Ordering::SeqCst);
        if prev != 0 {
            if PREV_SIGINFO[sig as usize].load(Ordering::SeqCst) {
                // SAFETY: `prev` is the `sa_sigaction` of the foreign handler that was installed
                // with SA_SIGINFO before ours (not SIG_DFL/SIG_IGN, which are stored as 0), so it
                // has this signature; we pass through the kernel's own arguments.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(prev) };
                f(sig, info, ctx);
            } else {
                // SAFETY: as above, for a handler installed without SA_SIGINFO.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
                f(sig);
            }
        }
    }
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { *errno = saved };
}

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

fn subscribe(sig: i32) -> Result<()> {
    let mut router = ROUTER.lock().unwrap_or_else(|p| p.into_inner());
    let map = router.get_or_insert_with(HashMap::new);
    if let Some(inst) = map.get_mut(&sig) {
        inst.subscribers += 1;
        return Ok(());
    }
    // SAFETY: a zeroed `sigaction` is a valid value (handler SIG_DFL, empty mask, no flags).
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = on_signal as *const () as usize;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `sigemptyset` initialises the mask we own; `sigaction` reads `new` and writes
    // `old`, both valid for the call. `on_signal` is async-signal-safe (see its comments).
    let rc = unsafe {
        libc::sigemptyset(&mut new.sa_mask);
        libc::sigaction(sig, &new, &mut old)
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("sig {sig} cannot be caught"),
            ));
        }
        return Err(e.into());
    }
    let prev = old.sa_sigaction;
    let ours = on_signal as *const () as usize;
    let chain = prev != libc::SIG_DFL && prev != libc::SIG_IGN && prev != ours;
    PREV_SIGINFO[sig as usize].store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::SeqCst);
    PREV_HANDLER[sig as usize].store(if chain { prev } else { 0 }, Ordering::SeqCst);
    map.insert(
        sig,
        Installed {
            subscribers: 1,
            previous: old,
        },
    );
    Ok(())
}

fn unsubscribe(sig: i32) {
    let mut router = ROUTER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(map) = router.as_mut() else { return };
    let Some(inst) = map.get_mut(&sig) else {
        return;
    };
    inst.subscribers -= 1;
    if inst.subscribers > 0 {
        return;
    }
    let Some(inst) = map.remove(&sig) else { return };
    // SAFETY: zeroed `sigaction` is valid; `sigaction(sig, NULL, &cur)` only reads the current
    // disposition into `cur`.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    unsafe { libc::sigaction(sig, std::ptr::null(), &mut cur) };
    if cur.sa_sigaction == on_signal as *const () as usize {
        // Still ours on top: put back what was there. (If another library installed its own
        // handler over ours since, leave it: it chains to ours, which now only chains on.)
        // SAFETY: `inst.previous` is the disposition the kernel gave us for this signal.
        unsafe { libc::sigaction(sig, &inst.previous, std::ptr::null_mut()) };
        PREV_HANDLER[sig as usize].store(0, Ordering::SeqCst);
    }
}

type SignalCallback = Rc<RefCell<Box<dyn FnMut()>>>;

/// A loop's signal state: its self-pipe, its wake slot, and its handlers.
pub(crate) struct LoopSignals {
    slot: usize,
    read: OwnedFd,
    /// Kept open for the C handler (which writes to its raw fd); closed after `drop` waits.
    _write: OwnedFd,
    handlers: HashMap<i32, SignalCallback>,
}

impl LoopSignals {
    fn new() -> Result<Self> {
        use rustix::pipe::{pipe_with, PipeFlags};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
            .map_err(|e| Error::from(std::io::Error::from(e)))?;
        let fd = write.as_raw_fd();
        let slot = WAKE
            .iter()
            .position(|s| {
                s.fd.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotSupported,
                    format!("at most {SLOTS} event loops can handle signals at once"),
                )
            })?;
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

    /// Empties the pipe and returns the signals marked pending for this loop.
    fn take_pending(&self) -> Vec<i32> {
        let mut buf = [0u8; 256];
        while let Ok(n) = rustix::io::read(&self.read, &mut buf) {
            if n == 0 {
                break;
            }
        }
        let slot = &WAKE[self.slot];
        let mut out = Vec::new();
        for (word, pending) in slot.pending.iter().enumerate() {
            let mut bits = pending.swap(0, Ordering::SeqCst);
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
        let slot = &WAKE[self.slot];
        for w in &slot.subscribed {
            w.store(0, Ordering::SeqCst);
        }
        for sig in self.handlers.keys() {
            unsubscribe(*sig);
        }
        slot.fd.store(-1, Ordering::SeqCst);
        // A handler that loaded our fd before the store may still write to it: wait for running
        // handlers to leave before the pipe closes. They are a few instructions long.
        while IN_HANDLER.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        for w in &slot.pending {
            w.store(0, Ordering::SeqCst);
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
    /// loop; [`ErrorKind::NotSupported`] when 64 loops already handle signals.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let got = Rc::new(Cell::new(false));
    /// let (g, lp) = (got.clone(), event_loop.clone());
    /// event_loop.add_signal_handler(libc::SIGUSR2, move || {
    ///     g.set(true);
    ///     lp.stop();
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
                let (word, bit) = word_bit(signum);
                WAKE[state.slot].subscribed[word].fetch_or(bit, Ordering::SeqCst);
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
                        let (word, bit) = word_bit(signum);
                        WAKE[state.slot].subscribed[word].fetch_and(!bit, Ordering::SeqCst);
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
