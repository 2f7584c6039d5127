//! [`DefaultEventLoopPolicy`] and [`PolicyWrapper`], the subclass-style way to customise it.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::error::{Error, ErrorKind, Result};
use crate::executor::Executor;
use crate::policy::EventLoopPolicy;
use crate::runtime::core::{EventLoop, EventLoopBuilder};
use crate::unix::child_watcher::{default_watcher, ChildWatcher};
use crate::unix::{fork_generation, is_main_thread, thread_display_name};

static NEXT_POLICY_ID: AtomicU64 = AtomicU64::new(1);

/// One thread's state under one policy.
struct Slot {
    event_loop: Option<EventLoop>,
    set_called: bool,
    generation: u64,
    /// The policy's liveness token: dead once the policy is dropped, which may happen on another
    /// thread, where this thread's slot cannot be reached.
    owner: Weak<()>,
}

thread_local! {
    /// Per thread: (policy id, that policy's state for this thread). Keyed by policy so that a
    /// `Send + Sync` policy can hand out `!Send` loops, and so that a replaced policy's loops are
    /// not seen by its successor. A thread rarely sees more than one or two policies, so a
    /// vector beats a hash map here.
    static SLOTS: RefCell<Vec<(u64, Slot)>> = const { RefCell::new(Vec::new()) };
}

/// The default policy: one loop per thread.
///
/// - On the main thread, `get_event_loop` creates a loop (through the outermost policy's
///   `new_event_loop`) and sets it (through its `set_event_loop`) when none was ever set there.
/// - After `set_event_loop(None)` it never creates one implicitly on that thread.
/// - On other threads, without a loop set, it is [`ErrorKind::NoCurrentLoop`]: "There is no
///   current event loop in thread 'NAME'."
/// - In a `fork()`ed child, the parent's per-thread loops are forgotten (fresh state).
/// - The child watcher is created on first use: pidfd where the kernel allows it, else threaded.
/// - New loops use [`EventLoopPolicy::default_executor`] when it returns an executor (shared by
///   the loops, which then do not shut it down on close); by default each loop makes its own.
///
/// ```
/// use asyncio::policy::{DefaultEventLoopPolicy, EventLoopPolicy};
///
/// let policy = DefaultEventLoopPolicy::new();
/// let lp = policy.new_event_loop()?;
/// policy.set_event_loop(Some(lp.clone()))?;
/// assert!(policy.get_event_loop()?.ptr_eq(&lp));
/// policy.set_event_loop(None)?;
/// assert!(policy.get_event_loop().is_err());
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct DefaultEventLoopPolicy {
    id: u64,
    /// Slots hold a `Weak` of it, so that every thread can tell that the policy is gone.
    alive: Arc<()>,
    watcher: Mutex<Option<Arc<dyn ChildWatcher>>>,
    executor: Option<Arc<dyn Executor>>,
}

impl Default for DefaultEventLoopPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DefaultEventLoopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultEventLoopPolicy")
            .field("id", &self.id)
            .finish()
    }
}

impl DefaultEventLoopPolicy {
    /// A fresh default policy.
    pub fn new() -> Self {
        DefaultEventLoopPolicy {
            id: NEXT_POLICY_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            watcher: Mutex::new(None),
            executor: None,
        }
    }

    /// A default policy whose loops all share `executor` as their default executor.
    pub fn with_executor(executor: Arc<dyn Executor>) -> Self {
        let mut policy = Self::new();
        policy.executor = Some(executor);
        policy
    }

    fn with_slot<R>(&self, f: impl FnOnce(&mut Slot) -> R) -> R {
        let generation = fork_generation();
        let (result, released) = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            // Loops this thread must let go of: those of policies dropped on other threads
            // (their `Drop` cannot reach this thread's slots) and, in a forked child, the
            // parent's. Dropped after the borrow ends: a loop's `Drop` may run user code.
            let mut released = Vec::new();
            if slots.iter().any(|(_, s)| s.owner.strong_count() == 0) {
                slots.retain_mut(|(_, s)| {
                    let alive = s.owner.strong_count() > 0;
                    if !alive {
                        released.push(s.event_loop.take());
                    }
                    alive
                });
            }
            let index = match slots.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    slots.push((
                        self.id,
                        Slot {
                            event_loop: None,
                            set_called: false,
                            generation,
                            owner: Arc::downgrade(&self.alive),
                        },
                    ));
                    slots.len() - 1
                }
            };
            let slot = &mut slots[index].1;
            if slot.generation != generation {
                // We are a forked child: the parent's loop is not ours.
                released.push(slot.event_loop.take());
                slot.set_called = false;
                slot.generation = generation;
            }
            (f(slot), released)
        });
        drop(released);
        result
    }

    /// The default `get_event_loop`, with `this` as the policy whose `new_event_loop` and
    /// `set_event_loop` it calls (pass the outermost policy: open recursion, as with a Python
    /// `super()` call).
    ///
    /// # Errors
    /// [`ErrorKind::NoCurrentLoop`] when there is no loop and none may be created.
    pub fn get_event_loop_with(&self, this: &dyn EventLoopPolicy) -> Result<EventLoop> {
        let (current, set_called) = self.with_slot(|s| (s.event_loop.clone(), s.set_called));
        if let Some(lp) = current {
            return Ok(lp);
        }
        if !set_called && is_main_thread() {
            let lp = this.new_event_loop()?;
            this.set_event_loop(Some(lp.clone()))?;
            return Ok(lp);
        }
        Err(Error::new(
            ErrorKind::NoCurrentLoop,
            format!(
                "There is no current event loop in thread '{}'.",
                thread_display_name()
            ),
        ))
    }

    /// The default `set_event_loop`: records the loop for this thread, marks the thread as set
    /// (so `None` disables implicit creation), and on the main thread attaches an existing child
    /// watcher to the loop.
    ///
    /// # Errors
    /// The watcher's `attach_loop` error.
    pub fn set_event_loop_with(
        &self,
        _this: &dyn EventLoopPolicy,
        event_loop: Option<EventLoop>,
    ) -> Result<()> {
        let attach = event_loop.clone();
        let old = self.with_slot(|s| {
            s.set_called = true;
            std::mem::replace(&mut s.event_loop, event_loop)
        });
        drop(old);
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(w) = watcher {
            if is_main_thread() {
                w.attach_loop(attach.as_ref())?;
            }
        }
        Ok(())
    }

    /// The default `new_event_loop`: a loop with the default selector and clock, using
    /// `this.default_executor()` when it gives one.
    ///
    /// # Errors
    /// Loop creation errors.
    pub fn new_event_loop_with(&self, this: &dyn EventLoopPolicy) -> Result<EventLoop> {
        self.loop_builder_with(this).build()
    }

    /// The builder the default `new_event_loop` uses: default selector and clock, and
    /// `this.default_executor()` as a shared executor when it gives one. A wrapper that needs a
    /// different clock or selector can start from it rather than repeat it.
    pub fn loop_builder_with(&self, this: &dyn EventLoopPolicy) -> EventLoopBuilder {
        let mut builder = EventLoop::builder();
        if let Some(ex) = this.default_executor() {
            builder = builder.shared_executor(ex);
        }
        builder
    }

    /// The default `get_child_watcher`: creates the default watcher on first use and, on the main
    /// thread, attaches it to this thread's current loop.
    ///
    /// # Errors
    /// The watcher's `attach_loop` error.
    pub fn get_child_watcher_with(
        &self,
        _this: &dyn EventLoopPolicy,
    ) -> Result<Arc<dyn ChildWatcher>> {
        let (watcher, created) = {
            let mut slot = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
            match &*slot {
                Some(w) => (w.clone(), false),
                None => {
                    let w = default_watcher();
                    *slot = Some(w.clone());
                    (w, true)
                }
            }
        };
        if created && is_main_thread() {
            if let Some(lp) = self.with_slot(|s| s.event_loop.clone()) {
                watcher.attach_loop(Some(&lp))?;
            }
        }
        Ok(watcher)
    }

    /// The default `set_child_watcher`: replaces the watcher, closing the previous one, and on
    /// the main thread attaches the new one to this thread's current loop.
    ///
    /// # Errors
    /// The new watcher's `attach_loop` error.
    pub fn set_child_watcher_with(
        &self,
        _this: &dyn EventLoopPolicy,
        watcher: Option<Arc<dyn ChildWatcher>>,
    ) -> Result<()> {
        let old = std::mem::replace(
            &mut *self.watcher.lock().unwrap_or_else(|p| p.into_inner()),
            watcher.clone(),
        );
        if let Some(old) = old {
            let same = watcher.as_ref().is_some_and(|w| Arc::ptr_eq(w, &old));
            if !same {
                old.close();
            }
        }
        if let Some(w) = watcher {
            if is_main_thread() {
                if let Some(lp) = self.with_slot(|s| s.event_loop.clone()) {
                    w.attach_loop(Some(&lp))?;
                }
            }
        }
        Ok(())
    }

    /// The executor given to [`with_executor`](DefaultEventLoopPolicy::with_executor), if any.
    pub fn default_executor_base(&self) -> Option<Arc<dyn Executor>> {
        self.executor.clone()
    }
}

impl Drop for DefaultEventLoopPolicy {
    fn drop(&mut self) {
        // Forget this thread's state under this policy now.
        // Other threads release theirs on their next use of a default policy (see `with_slot`).
        let id = self.id;
        let mine = SLOTS.try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            let i = s.iter().position(|(i, _)| *i == id)?;
            Some(s.swap_remove(i))
        });
        // Dropped after the borrow ends: the loop's `Drop` may run user code.
        drop(mine);
    }
}

impl EventLoopPolicy for DefaultEventLoopPolicy {
    fn get_event_loop(&self) -> Result<EventLoop> {
        self.get_event_loop_with(self)
    }
    fn set_event_loop(&self, event_loop: Option<EventLoop>) -> Result<()> {
        self.set_event_loop_with(self, event_loop)
    }
    fn new_event_loop(&self) -> Result<EventLoop> {
        self.new_event_loop_with(self)
    }
    fn get_child_watcher(&self) -> Result<Arc<dyn ChildWatcher>> {
        self.get_child_watcher_with(self)
    }
    fn set_child_watcher(&self, watcher: Option<Arc<dyn ChildWatcher>>) -> Result<()> {
        self.set_child_watcher_with(self, watcher)
    }
    fn default_executor(&self) -> Option<Arc<dyn Executor>> {
        self.default_executor_base()
    }
}

/// Subclass-style customisation of [`DefaultEventLoopPolicy`].
///
/// Implement [`base`](PolicyWrapper::base) and override only the methods that change; every
/// type implementing `PolicyWrapper` is an [`EventLoopPolicy`]. The defaults pass `self` (the
/// outermost policy) to the base, so the base's internal calls reach your overrides: override
/// `new_event_loop` alone and the default `get_event_loop` creates its loops with it. To call
/// "`super()`" from an override, call the base's `*_with(self)` method.
///
/// ```
/// use asyncio::policy::{DefaultEventLoopPolicy, EventLoopPolicy, PolicyWrapper};
/// use asyncio::{EventLoop, Result};
/// use std::sync::Arc;
///
/// struct MyEventLoopPolicy {
///     base: DefaultEventLoopPolicy,
/// }
///
/// impl PolicyWrapper for MyEventLoopPolicy {
///     fn base(&self) -> &DefaultEventLoopPolicy {
///         &self.base
///     }
///     fn get_event_loop(&self) -> Result<EventLoop> {
///         let event_loop = self.base.get_event_loop_with(self)?; // super().get_event_loop()
///         // Do something with the loop ...
///         Ok(event_loop)
///     }
/// }
///
/// // Used as a policy object (as `set_event_loop_policy` takes it), calls are unambiguous.
/// let policy: Arc<dyn EventLoopPolicy> =
///     Arc::new(MyEventLoopPolicy { base: DefaultEventLoopPolicy::new() });
/// let lp = policy.new_event_loop()?;
/// policy.set_event_loop(Some(lp.clone()))?;
/// assert!(policy.get_event_loop()?.ptr_eq(&lp));
/// # Ok::<(), asyncio::Error>(())
/// ```
pub trait PolicyWrapper: Send + Sync + 'static {
    /// The wrapped default policy.
    fn base(&self) -> &DefaultEventLoopPolicy;

    /// See [`EventLoopPolicy::get_event_loop`].
    ///
    /// # Errors
    /// As the base.
    fn get_event_loop(&self) -> Result<EventLoop>
    where
        Self: Sized,
    {
        self.base().get_event_loop_with(self)
    }

    /// See [`EventLoopPolicy::set_event_loop`].
    ///
    /// # Errors
    /// As the base.
    fn set_event_loop(&self, event_loop: Option<EventLoop>) -> Result<()>
    where
        Self: Sized,
    {
        self.base().set_event_loop_with(self, event_loop)
    }

    /// See [`EventLoopPolicy::new_event_loop`].
    ///
    /// # Errors
    /// As the base.
    fn new_event_loop(&self) -> Result<EventLoop>
    where
        Self: Sized,
    {
        self.base().new_event_loop_with(self)
    }

    /// See [`EventLoopPolicy::get_child_watcher`].
    ///
    /// # Errors
    /// As the base.
    fn get_child_watcher(&self) -> Result<Arc<dyn ChildWatcher>>
    where
        Self: Sized,
    {
        self.base().get_child_watcher_with(self)
    }

    /// See [`EventLoopPolicy::set_child_watcher`].
    ///
    /// # Errors
    /// As the base.
    fn set_child_watcher(&self, watcher: Option<Arc<dyn ChildWatcher>>) -> Result<()>
    where
        Self: Sized,
    {
        self.base().set_child_watcher_with(self, watcher)
    }

    /// See [`EventLoopPolicy::default_executor`].
    fn default_executor(&self) -> Option<Arc<dyn Executor>> {
        self.base().default_executor_base()
    }
}

impl<T: PolicyWrapper> EventLoopPolicy for T {
    fn get_event_loop(&self) -> Result<EventLoop> {
        PolicyWrapper::get_event_loop(self)
    }
    fn set_event_loop(&self, event_loop: Option<EventLoop>) -> Result<()> {
        PolicyWrapper::set_event_loop(self, event_loop)
    }
    fn new_event_loop(&self) -> Result<EventLoop> {
        PolicyWrapper::new_event_loop(self)
    }
    fn get_child_watcher(&self) -> Result<Arc<dyn ChildWatcher>> {
        PolicyWrapper::get_child_watcher(self)
    }
    fn set_child_watcher(&self, watcher: Option<Arc<dyn ChildWatcher>>) -> Result<()> {
        PolicyWrapper::set_child_watcher(self, watcher)
    }
    fn default_executor(&self) -> Option<Arc<dyn Executor>> {
        PolicyWrapper::default_executor(self)
    }
}
