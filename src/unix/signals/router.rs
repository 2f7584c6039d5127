//! The process-wide side: one C handler per signal, installed with `sigaction`, and the
//! disposition it replaced.
//!
//! - The handler runs with every signal blocked (a full `sa_mask`), so it never nests inside
//!   itself on Rust's small alternate signal stack, and it keeps its frame small (no
//!   allocation, no formatting): it marks the wake slots, then chains to the predecessor.
//! - The predecessor to chain to is one atomic pointer per signal to an immutable, leaked
//!   record (handler address and calling convention), so a signal never sees half of a change.
//! - When the last subscriber goes and our handler is still on top, the saved disposition is
//!   put back (R40 as the project keeps it). When another library has installed its handler over
//!   ours (and chains to ours), the entry and its predecessor are kept, dormant: removing ours
//!   would break their chain, and installing ours again over theirs would make the two call each
//!   other for ever. A later subscription then only counts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

use super::interrupt;
use super::slots::{notify_all, MAX_SIGNAL};
use crate::error::{Error, ErrorKind, Result};

/// A handler we chain to: its address and whether it takes `SA_SIGINFO` arguments.
#[derive(PartialEq, Eq)]
struct Predecessor {
    handler: libc::sighandler_t,
    siginfo: bool,
}

#[allow(clippy::declare_interior_mutable_const)]
const NO_PREDECESSOR: AtomicPtr<Predecessor> = AtomicPtr::new(std::ptr::null_mut());
/// Per signal: the handler to chain to, or null (the predecessor was SIG_DFL or SIG_IGN).
static PREDECESSOR: [AtomicPtr<Predecessor>; MAX_SIGNAL as usize] =
    [NO_PREDECESSOR; MAX_SIGNAL as usize];

struct Installed {
    /// Loops' subscriptions; 0 for a dormant entry (another library's handler is on top).
    subscribers: usize,
    /// What `sigaction` gave back when ours was installed.
    previous: libc::sigaction,
}

struct Router {
    installed: BTreeMap<i32, Installed>,
    /// Every predecessor record ever made (leaked; reused, so they stay few).
    records: Vec<&'static Predecessor>,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, flags and a signal mask); its
// pointer-sized fields are never dereferenced by us, only handed back to the kernel.
unsafe impl Send for Router {}

static ROUTER: Mutex<Router> = Mutex::new(Router {
    installed: BTreeMap::new(),
    records: Vec::new(),
});

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

/// Saves errno, runs `f`, and restores errno: what every C signal handler must do.
pub(super) fn preserving_errno(f: impl FnOnce()) {
    let errno = errno_location();
    // SAFETY: `errno` points at this thread's errno, valid for the thread's lifetime.
    let saved = unsafe { *errno };
    f();
    // SAFETY: as above.
    unsafe { *errno = saved };
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    preserving_errno(|| {
        if !(1..MAX_SIGNAL).contains(&sig) {
            return;
        }
        notify_all(sig);
        let prev = PREDECESSOR[sig as usize].load(Ordering::SeqCst);
        // SAFETY: null or a leaked, never-modified record (see `record`).
        let Some(prev) = (unsafe { prev.as_ref() }) else {
            return;
        };
        if prev.siginfo {
            // SAFETY: `handler` is the `sa_sigaction` of a foreign handler that was installed
            // with SA_SIGINFO (never SIG_DFL/SIG_IGN, which get no record), so it has this
            // signature; we pass through the kernel's own arguments.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev.handler) };
            f(sig, info, ctx);
        } else {
            // SAFETY: as above, for a handler installed without SA_SIGINFO.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev.handler) };
            f(sig);
        }
    });
}

fn ours() -> libc::sighandler_t {
    on_signal as *const () as libc::sighandler_t
}

/// A zeroed `sigaction`: handler SIG_DFL, empty mask, no flags.
pub(super) fn default_action() -> libc::sigaction {
    // SAFETY: all-zero is a valid `sigaction` value.
    unsafe { std::mem::zeroed() }
}

/// The current disposition of `sig`.
pub(super) fn current(sig: i32) -> Result<libc::sigaction> {
    let mut cur = default_action();
    // SAFETY: with a null `act`, `sigaction` only writes the current disposition into `cur`.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut cur) } != 0 {
        return Err(caught_error(sig));
    }
    Ok(cur)
}

fn caught_error(sig: i32) -> Error {
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) {
        return Error::new(
            ErrorKind::InvalidArgument,
            format!("sig {sig} cannot be caught"),
        );
    }
    e.into()
}

impl Router {
    /// The record to chain to for disposition `act`, or null for none.
    fn record(&mut self, act: &libc::sigaction) -> *mut Predecessor {
        let handler = act.sa_sigaction;
        if handler == libc::SIG_DFL
            || handler == libc::SIG_IGN
            || handler == ours()
            || interrupt::is_handler(handler)
        {
            return std::ptr::null_mut();
        }
        let wanted = Predecessor {
            handler,
            siginfo: act.sa_flags & libc::SA_SIGINFO != 0,
        };
        let rec = match self.records.iter().find(|r| ***r == wanted) {
            Some(r) => *r,
            None => {
                let r: &'static Predecessor = Box::leak(Box::new(wanted));
                self.records.push(r);
                r
            }
        };
        rec as *const Predecessor as *mut Predecessor
    }

    /// Installs our handler for `sig`, chaining to what is there.
    fn install(&mut self, sig: i32) -> Result<()> {
        let before = current(sig)?;
        // Chain from the first signal on: set the predecessor before ours is in place.
        let rec = self.record(&before);
        PREDECESSOR[sig as usize].store(rec, Ordering::SeqCst);
        let mut new = default_action();
        new.sa_sigaction = ours();
        new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        let mut old = default_action();
        // SAFETY: `sigfillset` initialises the mask we own; `sigaction` reads `new` and writes
        // `old`, both valid for the call. `on_signal` is async-signal-safe (see its comments).
        let rc = unsafe {
            libc::sigfillset(&mut new.sa_mask);
            libc::sigaction(sig, &new, &mut old)
        };
        if rc != 0 {
            PREDECESSOR[sig as usize].store(std::ptr::null_mut(), Ordering::SeqCst);
            return Err(caught_error(sig));
        }
        // Changed between the two calls by someone outside this lock: chain to that instead.
        let rec = self.record(&old);
        PREDECESSOR[sig as usize].store(rec, Ordering::SeqCst);
        if interrupt::is_handler(old.sa_sigaction) {
            // The runner's SIGINT handler is replaced, as a new `signal.signal` replaces it
            // in asyncio (R51): not chained to, and the default comes back after us.
            old = default_action();
        }
        self.installed.insert(
            sig,
            Installed {
                subscribers: 1,
                previous: old,
            },
        );
        Ok(())
    }
}

/// A loop subscribes to `sig`: the first subscription installs our handler.
pub(super) fn subscribe(sig: i32) -> Result<()> {
    let mut router = ROUTER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(inst) = router.installed.get_mut(&sig) {
        if inst.subscribers == 0 {
            // Dormant: someone else's handler went on top of ours. If the disposition has been
            // reset since, nothing calls ours any more: install afresh.
            let cur = current(sig)?.sa_sigaction;
            if cur == libc::SIG_DFL || cur == libc::SIG_IGN {
                router.installed.remove(&sig);
                return router.install(sig);
            }
        }
        inst.subscribers += 1;
        return Ok(());
    }
    router.install(sig)
}

/// A loop unsubscribes from `sig`: after the last one, the saved disposition comes back if ours
/// is still on top; otherwise the entry stays, dormant (see the module comment).
pub(super) fn unsubscribe(sig: i32) {
    let mut router = ROUTER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(inst) = router.installed.get_mut(&sig) else {
        return;
    };
    inst.subscribers = inst.subscribers.saturating_sub(1);
    if inst.subscribers > 0 {
        return;
    }
    let on_top = current(sig).is_ok_and(|cur| cur.sa_sigaction == ours());
    if !on_top {
        return;
    }
    if let Some(inst) = router.installed.remove(&sig) {
        // SAFETY: `inst.previous` is a disposition the kernel gave us for this signal (or the
        // default one).
        unsafe { libc::sigaction(sig, &inst.previous, std::ptr::null_mut()) };
        PREDECESSOR[sig as usize].store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}
