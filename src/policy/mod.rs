//! Event loop policies: the process-wide object that decides which loop belongs to which thread,
//! which child watcher the loops use, and which executor they offload to.
//!
//! The module functions mirror asyncio's: [`get_event_loop`], [`set_event_loop`],
//! [`new_event_loop`], [`get_event_loop_policy`], [`set_event_loop_policy`],
//! [`get_child_watcher`], [`set_child_watcher`].
//!
//! Customise subclass-style: wrap a [`DefaultEventLoopPolicy`] in your own type, implement
//! [`PolicyWrapper`] and override only what changes; everything else falls through to the
//! default, including the default's own internal calls (a policy that overrides only
//! `new_event_loop` gets its loops from the default `get_event_loop`).
//!
//! ```
//! use asyncio::policy::{set_event_loop_policy, DefaultEventLoopPolicy, PolicyWrapper};
//! use asyncio::{EventLoop, Result};
//! use std::sync::Arc;
//!
//! struct MyEventLoopPolicy {
//!     base: DefaultEventLoopPolicy,
//! }
//!
//! impl PolicyWrapper for MyEventLoopPolicy {
//!     fn base(&self) -> &DefaultEventLoopPolicy {
//!         &self.base
//!     }
//!     fn new_event_loop(&self) -> Result<EventLoop> {
//!         EventLoop::builder().debug(true).build()
//!     }
//! }
//!
//! set_event_loop_policy(Some(Arc::new(MyEventLoopPolicy { base: DefaultEventLoopPolicy::new() })));
//! let lp = asyncio::policy::new_event_loop()?;
//! assert!(lp.get_debug());
//! set_event_loop_policy(None);
//! # Ok::<(), asyncio::Error>(())
//! ```

mod default;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

pub use default::{DefaultEventLoopPolicy, PolicyWrapper};

use crate::error::Result;
use crate::executor::Executor;
use crate::runtime::core::EventLoop;
use crate::runtime::running::try_running_loop;
use crate::unix::child_watcher::ChildWatcher;

/// A policy: manages one event loop per context (for the default policy, per thread).
///
/// Policies are `Send + Sync` (one object serves the whole process) while the loops they hand
/// out are `!Send`: the default keeps each thread's loop in thread-local storage.
pub trait EventLoopPolicy: Send + Sync + 'static {
    /// The loop of the current context. Never "none": a missing loop is an error.
    ///
    /// # Errors
    /// [`ErrorKind::NoCurrentLoop`](crate::ErrorKind::NoCurrentLoop) when the context has no
    /// loop and the policy does not create one.
    fn get_event_loop(&self) -> Result<EventLoop>;

    /// Sets (or with `None` clears) the loop of the current context.
    ///
    /// # Errors
    /// Policy-specific; the default only fails if attaching the child watcher fails.
    fn set_event_loop(&self, event_loop: Option<EventLoop>) -> Result<()>;

    /// Creates a new loop following the policy's rules; it is not made current.
    ///
    /// # Errors
    /// Loop creation errors ([`ErrorKind::Io`](crate::ErrorKind::Io)).
    fn new_event_loop(&self) -> Result<EventLoop>;

    /// The process's child watcher (created on first use by the default policy).
    ///
    /// # Errors
    /// Policy-specific.
    fn get_child_watcher(&self) -> Result<Arc<dyn ChildWatcher>>;

    /// Replaces the child watcher (closing the previous one); `None` clears it, and the next
    /// `get_child_watcher` creates the default again.
    ///
    /// # Errors
    /// Policy-specific.
    fn set_child_watcher(&self, watcher: Option<Arc<dyn ChildWatcher>>) -> Result<()>;

    /// The executor that the policy's new loops use by default for `run_in_executor(None, ..)`;
    /// `None` (the default) lets each loop create its own thread pool lazily.
    fn default_executor(&self) -> Option<Arc<dyn Executor>> {
        None
    }
}

static POLICY: RwLock<Option<Arc<dyn EventLoopPolicy>>> = RwLock::new(None);
/// Bumped on every `set_event_loop_policy`; threads cache the policy under the epoch they saw.
static EPOCH: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Weak, so that a replaced policy is not kept alive by threads that used it once.
    static CACHED: RefCell<Option<(u64, Weak<dyn EventLoopPolicy>)>> = const { RefCell::new(None) };
}

fn load_policy() -> Arc<dyn EventLoopPolicy> {
    if let Some(p) = POLICY.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        return p.clone();
    }
    let mut slot = POLICY.write().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert_with(|| Arc::new(DefaultEventLoopPolicy::new()))
        .clone()
}

/// Runs `f` with the process-wide policy, using this thread's cached reference while no
/// `set_event_loop_policy` happened since (no lock; one weak-reference upgrade).
fn with_policy<R>(f: impl FnOnce(&dyn EventLoopPolicy) -> R) -> R {
    let epoch = EPOCH.load(Ordering::Acquire);
    let cached = CACHED.try_with(|c| {
        let c = c.try_borrow().ok()?;
        match &*c {
            Some((e, p)) if *e == epoch => p.upgrade(),
            _ => None,
        }
    });
    let policy = match cached {
        Ok(Some(p)) => p,
        _ => {
            let p = load_policy();
            let _ = CACHED.try_with(|c| {
                if let Ok(mut c) = c.try_borrow_mut() {
                    *c = Some((epoch, Arc::downgrade(&p)));
                }
            });
            p
        }
    };
    f(&*policy)
}

/// The process-wide policy, creating a [`DefaultEventLoopPolicy`] on first use.
pub fn get_event_loop_policy() -> Arc<dyn EventLoopPolicy> {
    load_policy()
}

/// Replaces the process-wide policy; `None` restores a fresh default policy (loops set on the
/// old policy are forgotten).
pub fn set_event_loop_policy(policy: Option<Arc<dyn EventLoopPolicy>>) {
    let old = {
        let mut slot = POLICY.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *slot, policy);
        EPOCH.fetch_add(1, Ordering::AcqRel);
        old
    };
    // This thread's cached copy goes now; other threads drop theirs on their next call.
    let cached = CACHED.try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take()));
    drop(cached);
    // Dropped outside the lock: a policy's Drop may do anything.
    drop(old);
}

/// The running loop when called from a callback or task; otherwise the policy's loop for this
/// thread (asyncio's `get_event_loop()`; the policy is not consulted when a loop is running).
///
/// # Errors
/// The policy's error: with the default policy, [`ErrorKind::NoCurrentLoop`](crate::ErrorKind::NoCurrentLoop)
/// ("There is no current event loop in thread ...") off the main thread when no loop was set,
/// and on any thread after `set_event_loop(None)`.
pub fn get_event_loop() -> Result<EventLoop> {
    if let Some(running) = try_running_loop() {
        return Ok(running);
    }
    with_policy(|p| p.get_event_loop())
}

/// `get_event_loop_policy().set_event_loop(event_loop)`.
///
/// # Errors
/// The policy's error.
pub fn set_event_loop(event_loop: Option<EventLoop>) -> Result<()> {
    with_policy(|p| p.set_event_loop(event_loop))
}

/// `get_event_loop_policy().new_event_loop()`.
///
/// # Errors
/// The policy's error.
pub fn new_event_loop() -> Result<EventLoop> {
    with_policy(|p| p.new_event_loop())
}

/// `get_event_loop_policy().get_child_watcher()`.
///
/// # Errors
/// The policy's error.
pub fn get_child_watcher() -> Result<Arc<dyn ChildWatcher>> {
    with_policy(|p| p.get_child_watcher())
}

/// `get_event_loop_policy().set_child_watcher(watcher)`.
///
/// # Errors
/// The policy's error.
pub fn set_child_watcher(watcher: Option<Arc<dyn ChildWatcher>>) -> Result<()> {
    with_policy(|p| p.set_child_watcher(watcher))
}
