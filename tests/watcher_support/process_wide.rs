//! For tests of process-wide state (signal dispositions, `SIGCHLD`, child processes): a
//! watchdog that also runs the tests of one binary one at a time, and `raise`. Shared by the
//! `watcher_*`, `signals_*` and `interop_smol` tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[path = "../common/watchdog.rs"]
mod common_watchdog;

/// The hard bound of every test.
pub const WATCHDOG: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::new(());
/// Set when a test hung: its thread still runs, holding children and signal handlers, so later
/// tests in this process would only fail confusingly. They fail at once instead.
static HUNG: AtomicBool = AtomicBool::new(false);

/// Runs `body` on its own thread (never the main thread), one test at a time in this process,
/// and fails if it does not finish within [`WATCHDOG`]. A panic in `body` is re-raised here.
pub fn watchdog<F: FnOnce() + Send + 'static>(body: F) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    assert!(
        !HUNG.load(Ordering::SeqCst),
        "not run: an earlier test in this binary hung and still holds process-wide state"
    );
    common_watchdog::watchdog_within(WATCHDOG, || HUNG.store(true, Ordering::SeqCst), body)
}

/// Raises `sig` on this thread: its C handler has run when this returns (unlike `kill`, whose
/// signal another thread may take later).
pub fn raise(sig: i32) {
    // SAFETY: `raise` has no memory-safety preconditions; callers have a handler installed for
    // `sig`, so the process is not terminated.
    let rc = unsafe { libc::raise(sig) };
    assert_eq!(rc, 0);
}
