//! Helpers shared by the `policy_*` integration tests: the lock that serialises tests touching
//! the process-wide policy slot, a watchdog, a mock child watcher, a policy whose
//! `get_event_loop` always fails, and counting `PolicyWrapper`s.
#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use asyncio::{
    ChildCallback, ChildWatcher, DefaultEventLoopPolicy, Error, ErrorKind, EventLoop,
    EventLoopPolicy, PolicyWrapper, Result,
};

#[path = "../common/watchdog.rs"]
mod common_watchdog;
#[path = "../common/policy_lock.rs"]
mod policy_lock;
#[path = "../common/pool.rs"]
mod pool;
#[allow(unused_imports)]
pub use common_watchdog::{watchdog, WATCHDOG};
#[allow(unused_imports)]
pub use policy_lock::global_policy_lock;
#[allow(unused_imports)]
pub use pool::{named_pool, worker_name};

/// A flag that turns true when `lp` is dropped: a callback queued on the loop holds a guard
/// that sets it when the callback is dropped with the loop.
pub fn released_flag(lp: &EventLoop) -> Rc<Cell<bool>> {
    struct SetOnDrop(Rc<Cell<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let released = Rc::new(Cell::new(false));
    let guard = SetOnDrop(released.clone());
    lp.call_soon(move || drop(guard)).unwrap();
    released
}

/// A child watcher that only counts: `close` calls and the loops it was attached to
/// (`Some(id)` / `None`).
#[derive(Default)]
pub struct MockWatcher {
    pub closes: AtomicUsize,
    pub attached: Mutex<Vec<Option<u64>>>,
    closed: AtomicBool,
}

impl MockWatcher {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn closes(&self) -> usize {
        self.closes.load(Ordering::SeqCst)
    }
    pub fn attached(&self) -> Vec<Option<u64>> {
        self.attached.lock().unwrap().clone()
    }
}

impl ChildWatcher for MockWatcher {
    fn add_child_handler(&self, _pid: i32, _callback: ChildCallback) -> Result<()> {
        Ok(())
    }
    fn remove_child_handler(&self, _pid: i32) -> bool {
        false
    }
    fn attach_loop(&self, event_loop: Option<&EventLoop>) -> Result<()> {
        self.attached
            .lock()
            .unwrap()
            .push(event_loop.map(EventLoop::id));
        Ok(())
    }
    fn is_active(&self) -> bool {
        !self.closed.load(Ordering::SeqCst)
    }
    fn close(&self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// A policy whose `get_event_loop` always fails (CPython's
/// `test_get_event_loop_returns_running_loop` uses one): whoever returns a loop did not ask it.
pub struct FailingPolicy {
    pub asked: AtomicUsize,
}

impl FailingPolicy {
    pub fn new() -> Arc<Self> {
        Arc::new(FailingPolicy {
            asked: AtomicUsize::new(0),
        })
    }
}

impl EventLoopPolicy for FailingPolicy {
    fn get_event_loop(&self) -> Result<EventLoop> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Err(Error::new(
            ErrorKind::NotSupported,
            "FailingPolicy.get_event_loop",
        ))
    }
    fn set_event_loop(&self, _event_loop: Option<EventLoop>) -> Result<()> {
        Ok(())
    }
    fn new_event_loop(&self) -> Result<EventLoop> {
        EventLoop::new()
    }
    fn get_child_watcher(&self) -> Result<Arc<dyn ChildWatcher>> {
        Err(Error::from_kind(ErrorKind::NotSupported))
    }
    fn set_child_watcher(&self, _watcher: Option<Arc<dyn ChildWatcher>>) -> Result<()> {
        Err(Error::from_kind(ErrorKind::NotSupported))
    }
}

/// Overrides only `new_event_loop`, counting the calls and calling `super()`.
#[derive(Default)]
pub struct CountingNew {
    pub base: DefaultEventLoopPolicy,
    pub created: AtomicUsize,
}

impl CountingNew {
    pub fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }
}

impl PolicyWrapper for CountingNew {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }
    fn new_event_loop(&self) -> Result<EventLoop> {
        self.created.fetch_add(1, Ordering::SeqCst);
        self.base.new_event_loop_with(self)
    }
}

/// Overrides only `set_event_loop`, recording what it was given and calling `super()`.
#[derive(Default)]
pub struct CountingSet {
    pub base: DefaultEventLoopPolicy,
    pub sets: Mutex<Vec<Option<u64>>>,
}

impl CountingSet {
    pub fn sets(&self) -> Vec<Option<u64>> {
        self.sets.lock().unwrap().clone()
    }
}

impl PolicyWrapper for CountingSet {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }
    fn set_event_loop(&self, event_loop: Option<EventLoop>) -> Result<()> {
        self.sets
            .lock()
            .unwrap()
            .push(event_loop.as_ref().map(EventLoop::id));
        self.base.set_event_loop_with(self, event_loop)
    }
}

/// Overrides only `get_event_loop`, counting the calls and calling `super()`.
#[derive(Default)]
pub struct CountingGet {
    pub base: DefaultEventLoopPolicy,
    pub gets: AtomicUsize,
}

impl CountingGet {
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
}

impl PolicyWrapper for CountingGet {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }
    fn get_event_loop(&self) -> Result<EventLoop> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.base.get_event_loop_with(self)
    }
}
