//! A `log` logger for tests: every record goes to a buffer of the thread that logged it, so
//! that tests running in parallel do not see each other's lines. Included with `#[path]`.

use std::cell::RefCell;
use std::sync::Once;

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

/// Installs the capturing logger (once per test binary) at the most verbose level.
pub fn install_capturing_logger() {
    INSTALL.call_once(|| {
        log::set_logger(&LOGGER).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Takes the records logged by this thread so far: (level, target, message).
pub fn take_logs() -> Vec<(log::Level, String, String)> {
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// Takes the records this thread logged so far and keeps the slow-callback warnings ("Executing
/// <what> took <secs> seconds" at WARN on the target `asyncio`): their messages.
pub fn slow_lines() -> Vec<String> {
    take_logs()
        .into_iter()
        .filter(|(level, target, msg)| {
            *level == log::Level::Warn && target == "asyncio" && msg.starts_with("Executing ")
        })
        .map(|(_, _, msg)| msg)
        .collect()
}
