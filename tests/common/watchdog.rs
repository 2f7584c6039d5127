//! The hard bound shared by the integration tests' support modules: run the test body on its
//! own thread and fail if it hangs. Included with `#[path]` (it is not a test binary).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// The hard bound of every test.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `body` on its own thread and fails the test if it does not finish within [`WATCHDOG`].
/// A panic in `body` is re-raised here with its original payload.
pub fn watchdog<F: FnOnce() + Send + 'static>(body: F) {
    watchdog_within(WATCHDOG, || {}, body)
}

/// [`watchdog`] with the bound `bound`; `on_hang` runs before the test fails for a hang.
pub fn watchdog_within<F: FnOnce() + Send + 'static>(
    bound: Duration,
    on_hang: impl FnOnce(),
    body: F,
) {
    let name = std::thread::current().name().unwrap_or("test").to_owned();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .expect("spawn the test thread");
    match rx.recv_timeout(bound) {
        Ok(()) => thread.join().expect("test thread"),
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the test thread ended without reporting"),
        },
        Err(RecvTimeoutError::Timeout) => {
            on_hang();
            panic!("watchdog: `{name}` did not finish within {bound:?} (hang)")
        }
    }
}
