//! Helpers shared by the `asyncio-policies` integration tests: a watchdog, the lock that
//! serialises tests touching the process-wide policy slot, and a thread-local capturing logger.
#![allow(dead_code)]

use std::cell::RefCell;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

/// The hard bound of every test.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `body` on its own thread and fails if it does not finish within [`WATCHDOG`]; a panic
/// in `body` is re-raised with its payload.
pub fn watchdog<F: FnOnce() + Send + 'static>(body: F) {
    let name = std::thread::current()
        .name()
        .unwrap_or("policy-test")
        .to_owned();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .expect("spawn the test thread");
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => thread.join().expect("test thread"),
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the test thread ended without reporting"),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("watchdog: `{name}` did not finish within {WATCHDOG:?} (hang)")
        }
    }
}

static GLOBAL_POLICY: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary that install a process-wide policy; the slot is reset to
/// a fresh default before the guard is handed out.
pub fn global_policy_lock() -> MutexGuard<'static, ()> {
    let guard = GLOBAL_POLICY.lock().unwrap_or_else(|p| p.into_inner());
    asyncio::set_event_loop_policy(None);
    guard
}

thread_local! {
    static CAPTURED: RefCell<Vec<(log::Level, String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Records every log record in a buffer of the thread that logged it.
struct ThreadLocalLogger;

impl log::Log for ThreadLocalLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = (
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        );
        let _ = CAPTURED.try_with(|c| c.borrow_mut().push(line));
    }
    fn flush(&self) {}
}

static LOGGER: ThreadLocalLogger = ThreadLocalLogger;
static INSTALL: Once = Once::new();

/// Installs the capturing logger (once per test binary).
pub fn install_capturing_logger() {
    INSTALL.call_once(|| {
        log::set_logger(&LOGGER).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Takes the records this thread logged so far: (level, target, message).
pub fn take_logs() -> Vec<(log::Level, String, String)> {
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}
