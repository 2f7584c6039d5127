//! Shared helpers for the task, executor, runner and thread tests: a watchdog that bounds every
//! test, loops on a virtual clock, logs and drop guards.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use asyncio::{EventLoop, VirtualClock};

/// How long any single test may take before the watchdog aborts the test binary.
pub const BOUND: Duration = Duration::from_secs(30);

/// Aborts the process if it is still alive after [`BOUND`]: a hung test fails fast instead of
/// hanging CI. Dropping it (at the end of the test, or while unwinding) disarms it.
pub struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

/// Arms a watchdog for the test `name`.
pub fn watchdog(name: &'static str) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(format!("watchdog-{name}"))
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(BOUND) {
                eprintln!("watchdog: test `{name}` did not finish within {BOUND:?}; aborting");
                std::process::abort();
            }
        })
        .expect("cannot start the watchdog thread");
    Watchdog { _disarm: tx }
}

/// A loop on a [`VirtualClock`]: timers fire without real waiting.
pub fn virtual_loop() -> (EventLoop, VirtualClock) {
    let clock = VirtualClock::new();
    let event_loop = EventLoop::builder()
        .clock(Rc::new(clock.clone()))
        .build()
        .expect("cannot build a loop");
    (event_loop, clock)
}

/// Runs exactly one iteration of a loop that is not running: what is ready now runs; what it
/// schedules waits.
pub fn run_one_iteration(event_loop: &EventLoop) {
    let lp = event_loop.clone();
    event_loop.call_soon(move || lp.stop()).unwrap();
    event_loop.run_forever().unwrap();
}

/// A shared, ordered log of events.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
    pub fn get(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Sets its flag when dropped: the Rust stand-in for a `finally` block.
pub struct DropFlag(pub Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A fresh flag and the guard that sets it.
pub fn drop_flag() -> (Rc<Cell<bool>>, DropFlag) {
    let flag = Rc::new(Cell::new(false));
    (flag.clone(), DropFlag(flag))
}

/// The `Send` version of [`DropFlag`]: sets an atomic flag and sends on a channel when dropped.
pub struct SendDropFlag {
    flag: Arc<AtomicBool>,
    tx: mpsc::Sender<()>,
}

impl Drop for SendDropFlag {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.tx.send(());
    }
}

/// A flag, a receiver that gets a message when the guard is dropped, and the guard.
pub fn send_drop_flag() -> (Arc<AtomicBool>, mpsc::Receiver<()>, SendDropFlag) {
    let flag = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    (flag.clone(), rx, SendDropFlag { flag, tx })
}

/// Collects the messages the loop's exception handler receives.
pub fn collect_exceptions(event_loop: &EventLoop) -> Rc<RefCell<Vec<asyncio::ExceptionContext>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    event_loop.set_exception_handler(Some(Rc::new(move |_, ctx: &asyncio::ExceptionContext| {
        s.borrow_mut().push(ctx.clone())
    })));
    seen
}
