//! SIGINT while [`Runner::run`](crate::Runner::run) runs (R51): the first one cancels the main
//! task, a second one gets the default behaviour.
//!
//! asyncio installs `Runner._on_sigint` with `signal.signal`, only on the main thread and only
//! when SIGINT's handler is Python's default one. Here the default is `SIG_DFL`, and the handler
//! is a C one of its own (not a loop's `add_signal_handler`, which a user's handler on the same
//! loop would replace and whose removal would remove the user's):
//!
//! - the first SIGINT writes one byte to a self-pipe the loop reads; its reader callback
//!   cancels the main task (and the wake-up of the pipe is asyncio's `call_soon_threadsafe`);
//! - a second SIGINT before the guard is dropped (asyncio raises `KeyboardInterrupt` at once)
//!   restores `SIG_DFL` and raises SIGINT again from the handler, so the process ends as an
//!   uncaught Ctrl-C ends it: this also works when the loop is stuck in a callback;
//! - a loop's own `add_signal_handler(SIGINT)` during the run replaces this handler, as a
//!   `signal.signal` call replaces asyncio's (the router neither chains to it nor restores it);
//! - when the guard is dropped, `SIG_DFL` comes back if this handler is still the installed one.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use super::router::{current, default_action, preserving_errno};
use crate::runtime::core::EventLoop;

/// The write end of the armed guard's pipe, or -1.
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// Handlers between loading [`PIPE`] and finishing their write.
static WRITERS: AtomicUsize = AtomicUsize::new(0);
/// SIGINTs since the guard was armed.
static COUNT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigint(_sig: libc::c_int) {
    preserving_errno(|| {
        WRITERS.fetch_add(1, Ordering::SeqCst);
        let fd = PIPE.load(Ordering::SeqCst);
        if fd < 0 {
            // Not armed: reached only through another library that chains to us; nothing to do.
            WRITERS.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let first = COUNT.fetch_add(1, Ordering::SeqCst) == 0;
        if first {
            let byte = 1u8;
            // SAFETY: `write` is async-signal-safe; `fd` is the open, non-blocking write end of
            // the guard's pipe, not closed while WRITERS counts us.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
        WRITERS.fetch_sub(1, Ordering::SeqCst);
        if !first {
            let dfl = default_action();
            // SAFETY: `sigaction` and `raise` are async-signal-safe. SIGINT is blocked while
            // this handler runs, so the raised one is delivered, with SIG_DFL, when it returns.
            unsafe {
                libc::sigaction(libc::SIGINT, &dfl, std::ptr::null_mut());
                libc::raise(libc::SIGINT);
            }
        }
    });
}

fn handler() -> libc::sighandler_t {
    on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t
}

/// Whether `h` is the runner's SIGINT handler (which the router replaces, never chains to).
pub(super) fn is_handler(h: libc::sighandler_t) -> bool {
    h == handler()
}

/// The runner's SIGINT handler, installed while it lives; see the module comment.
pub(crate) struct InterruptGuard {
    event_loop: EventLoop,
    read: OwnedFd,
    _write: OwnedFd,
}

impl InterruptGuard {
    /// Installs the handler, if this is the main thread and SIGINT has its default disposition;
    /// `on_interrupt` runs on `event_loop` after the first SIGINT. Any failure (no pipe, no
    /// reader, `sigaction` refused) leaves SIGINT as it was and gives `None`, as asyncio
    /// tolerates a `ValueError` from `signal.signal`.
    pub(crate) fn install(
        event_loop: &EventLoop,
        mut on_interrupt: impl FnMut() + 'static,
    ) -> Option<InterruptGuard> {
        if !crate::unix::is_main_thread()
            || current(libc::SIGINT).ok()?.sa_sigaction != libc::SIG_DFL
        {
            return None;
        }
        use rustix::pipe::{pipe_with, PipeFlags};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).ok()?;
        // Only one guard at a time (main thread, no nested runs); refuse rather than share.
        PIPE.compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        COUNT.store(0, Ordering::SeqCst);
        let guard = InterruptGuard {
            event_loop: event_loop.clone(),
            read,
            _write: write,
        };
        let fd = guard.read.as_raw_fd();
        let drained = fd;
        let added = event_loop.watch_reader(fd, move || {
            let mut buf = [0u8; 16];
            // SAFETY: `drained` is the guard's read end, open while the reader is registered
            // (the guard removes the reader before its fds close).
            while unsafe { libc::read(drained, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
            on_interrupt();
        });
        if added.is_err() {
            return None;
        }
        let mut act = default_action();
        act.sa_sigaction = handler();
        act.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
        let mut old = default_action();
        // SAFETY: `sigfillset` initialises our mask; `sigaction` reads `act` and writes `old`.
        // `on_sigint` is async-signal-safe.
        let rc = unsafe {
            libc::sigfillset(&mut act.sa_mask);
            libc::sigaction(libc::SIGINT, &act, &mut old)
        };
        if rc != 0 {
            return None;
        }
        if old.sa_sigaction != libc::SIG_DFL {
            // Changed since the check by someone else: theirs stays.
            // SAFETY: `old` is the disposition the kernel just gave us.
            unsafe { libc::sigaction(libc::SIGINT, &old, std::ptr::null_mut()) };
            return None;
        }
        Some(guard)
    }

    /// Whether a SIGINT arrived since the guard was installed.
    pub(crate) fn interrupted(&self) -> bool {
        COUNT.load(Ordering::SeqCst) > 0
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if current(libc::SIGINT).is_ok_and(|cur| is_handler(cur.sa_sigaction)) {
            let dfl = default_action();
            // SAFETY: restores the default disposition, which is what we replaced.
            unsafe { libc::sigaction(libc::SIGINT, &dfl, std::ptr::null_mut()) };
        }
        PIPE.store(-1, Ordering::SeqCst);
        while WRITERS.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        self.event_loop.unwatch_reader(self.read.as_raw_fd());
    }
}
