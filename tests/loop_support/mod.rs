//! Helpers shared by the `loop_*` integration tests: a watchdog, a virtual-clock loop, a call
//! recorder, drop counters, a counting selector, a thread-local capturing logger and `yield_now`.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use asyncio::{
    EventLoop, Interest, LoopHandle, PollingSelector, ReadyEvent, Selector, SelectorWaker,
    VirtualClock,
};

#[path = "../common/capture_log.rs"]
mod capture_log;
#[path = "../common/watchdog.rs"]
mod common_watchdog;
#[allow(unused_imports)]
pub use capture_log::{install_capturing_logger, slow_lines, take_logs};
#[allow(unused_imports)]
pub use common_watchdog::{watchdog, WATCHDOG};

/// A loop on a fresh [`VirtualClock`] (time starts at 0 and jumps to the next timer when idle).
pub fn virtual_loop() -> (EventLoop, VirtualClock) {
    let clock = VirtualClock::new();
    let event_loop = EventLoop::builder()
        .clock(Rc::new(clock.clone()))
        .debug(false)
        .build()
        .expect("build a loop");
    (event_loop, clock)
}

/// Waits (bounded by the test's watchdog) until the loop behind `handle` is running.
pub fn wait_running(handle: &LoopHandle) {
    while !handle.is_running() {
        std::thread::yield_now();
    }
}

/// Runs `lp` until it stops while `other` runs on another thread with the loop's handle (it is
/// what stops or wakes the loop); then joins that thread (its panic fails the test) and returns
/// what it returned.
pub fn run_while<T: Send + 'static>(
    lp: &EventLoop,
    other: impl FnOnce(LoopHandle) -> T + Send + 'static,
) -> T {
    let handle = lp.handle();
    let thread = std::thread::spawn(move || other(handle));
    lp.run_forever().unwrap();
    thread.join().unwrap()
}

/// Runs one iteration of `lp`: `stop`, then `run_forever`.
pub fn run_once(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

/// A shared list of what ran, in order.
#[derive(Clone, Default)]
pub struct Recorder(Rc<RefCell<Vec<String>>>);

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `what`.
    pub fn push(&self, what: impl Into<String>) {
        self.0.borrow_mut().push(what.into());
    }

    /// A closure that appends `what` when called.
    pub fn cb(&self, what: impl Into<String>) -> impl FnOnce() + 'static {
        let me = self.clone();
        let what = what.into();
        move || me.push(what)
    }

    /// Everything recorded so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }

    /// A copy of everything recorded so far.
    pub fn get(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// `["a", "b"]` as owned strings, for comparisons with [`Recorder::get`].
pub fn strs(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Counts drops of its tokens (thread-safe).
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that increments the counter when dropped.
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    /// How many tokens were dropped.
    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Increments its [`DropCounter`] on drop.
pub struct DropToken(Arc<AtomicUsize>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// What a [`CountingSelector`] saw.
#[derive(Default)]
pub struct SelectStats {
    /// Number of `select` calls.
    pub selects: AtomicUsize,
    /// The timeout of every `select` call, in order.
    pub timeouts: Mutex<Vec<Option<Duration>>>,
}

impl SelectStats {
    /// Number of `select` calls so far.
    pub fn count(&self) -> usize {
        self.selects.load(Ordering::SeqCst)
    }

    /// The timeouts passed so far.
    pub fn timeouts(&self) -> Vec<Option<Duration>> {
        self.timeouts.lock().unwrap().clone()
    }
}

/// A [`PollingSelector`] that counts its `select` calls.
pub struct CountingSelector {
    inner: PollingSelector,
    stats: Arc<SelectStats>,
}

impl CountingSelector {
    /// A counting selector and its statistics.
    pub fn boxed() -> (Box<dyn Selector>, Arc<SelectStats>) {
        let stats = Arc::new(SelectStats::default());
        let sel = CountingSelector {
            inner: PollingSelector::new().expect("poller"),
            stats: stats.clone(),
        };
        (Box::new(sel), stats)
    }

    /// A loop (on the real clock) with a counting selector, and the selector's statistics.
    pub fn event_loop() -> (EventLoop, Arc<SelectStats>) {
        let (sel, stats) = Self::boxed();
        let lp = EventLoop::builder().selector(sel).build().unwrap();
        (lp, stats)
    }
}

impl Selector for CountingSelector {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.inner.register(fd, interest)
    }
    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.inner.modify(fd, interest)
    }
    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.inner.deregister(fd)
    }
    fn select(
        &mut self,
        events: &mut Vec<ReadyEvent>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.stats.selects.fetch_add(1, Ordering::SeqCst);
        self.stats.timeouts.lock().unwrap().push(timeout);
        self.inner.select(events, timeout)
    }
    fn waker(&self) -> Arc<dyn SelectorWaker> {
        self.inner.waker()
    }
}

/// A selector that never blocks: each `select` polls without waiting, and a request to wait
/// without limit (`None`) is counted as a *freeze* instead of hanging the test. On a
/// [`VirtualClock`] loop with no fds and no other threads, such a request while a finite timer
/// is pending means the loop would have waited forever. More than `max_selects` calls panic
/// (a spinning loop fails the test instead of running on).
pub struct NonBlockingSelector {
    inner: PollingSelector,
    freezes: Arc<AtomicUsize>,
    selects: usize,
    max_selects: usize,
}

impl NonBlockingSelector {
    /// A virtual-clock loop on a non-blocking selector, its clock, and its freeze counter.
    pub fn virtual_loop(max_selects: usize) -> (EventLoop, VirtualClock, Arc<AtomicUsize>) {
        let freezes = Arc::new(AtomicUsize::new(0));
        let sel = NonBlockingSelector {
            inner: PollingSelector::new().expect("poller"),
            freezes: freezes.clone(),
            selects: 0,
            max_selects,
        };
        let clock = VirtualClock::new();
        let event_loop = EventLoop::builder()
            .clock(Rc::new(clock.clone()))
            .selector(Box::new(sel))
            .debug(false)
            .build()
            .expect("build a loop");
        (event_loop, clock, freezes)
    }
}

impl Selector for NonBlockingSelector {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.inner.register(fd, interest)
    }
    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.inner.modify(fd, interest)
    }
    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.inner.deregister(fd)
    }
    fn select(
        &mut self,
        events: &mut Vec<ReadyEvent>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.selects += 1;
        assert!(
            self.selects <= self.max_selects,
            "the loop spun through {} polls",
            self.max_selects
        );
        if timeout.is_none() {
            self.freezes.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.select(events, Some(Duration::ZERO))
    }
    fn waker(&self) -> Arc<dyn SelectorWaker> {
        self.inner.waker()
    }
}

/// Yields once: wakes itself and returns `Pending` the first time (one loop iteration).
pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// The future of [`yield_now`].
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A future that never completes (and holds a drop token).
pub struct Never(pub Option<DropToken>);

impl Future for Never {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}
