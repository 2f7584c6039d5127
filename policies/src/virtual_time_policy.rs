//! [`VirtualTimePolicy`]: every loop it creates runs on its own [`VirtualClock`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};

use asyncio::{
    DefaultEventLoopPolicy, EventLoop, EventLoopPolicy, PolicyWrapper, Result, VirtualClock,
};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Per thread: (policy id, loop id) -> the loop's clock. `VirtualClock` is `!Send`, and so
    /// are the loops, so a loop and its clock always live on one thread. The loop owns the
    /// clock; the registry only holds a weak reference, so a dropped loop's entry goes dead and
    /// is pruned.
    static CLOCKS: RefCell<HashMap<(u64, u64), Weak<VirtualClock>>> = RefCell::new(HashMap::new());
}

/// A policy whose loops each run on their own [`VirtualClock`]: deterministic time for tests.
///
/// A loop on a virtual clock never sleeps: when it has nothing to do but wait for its next timer
/// it jumps there, so `sleep(3600.0)` returns at once and at exactly `t = 3600.0`. Each loop gets
/// its own clock starting at 0 (or frozen, see [`frozen`](VirtualTimePolicy::frozen)), so loops
/// on different threads do not disturb each other.
///
/// The clock of a loop this policy created is found with
/// [`clock_of`](VirtualTimePolicy::clock_of) (on the loop's thread), or returned with the loop by
/// [`new_event_loop_with_clock`](VirtualTimePolicy::new_event_loop_with_clock). Keep an
/// `Arc<VirtualTimePolicy>` when you install it, since the global slot hands back only a
/// `dyn EventLoopPolicy`.
///
/// Built subclass-style: it overrides only `new_event_loop`, so the default `get_event_loop`
/// (implicit creation on the main thread), [`asyncio::run`] and [`asyncio::Runner`] all get
/// virtual-time loops. The base's shared executor, if any, is kept.
///
/// ```
/// use asyncio_policies::VirtualTimePolicy;
/// use std::sync::Arc;
///
/// let policy = Arc::new(VirtualTimePolicy::new());
/// asyncio::set_event_loop_policy(Some(policy.clone()));
///
/// let event_loop = asyncio::new_event_loop()?;
/// let clock = policy.clock_of(&event_loop).expect("made by this policy");
/// let t = event_loop.run_until_complete(async {
///     asyncio::sleep(3600.0).await?; // an hour, in no time
///     asyncio::get_running_loop().map(|lp| lp.time())
/// })??;
/// assert_eq!(t, 3600.0);
/// assert_eq!(clock.now(), 3600.0);
/// event_loop.close()?;
/// asyncio::set_event_loop_policy(None);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct VirtualTimePolicy {
    base: DefaultEventLoopPolicy,
    id: u64,
    frozen: bool,
}

impl VirtualTimePolicy {
    /// A virtual-time policy over a fresh [`DefaultEventLoopPolicy`]; clocks advance by
    /// themselves when their loop is idle.
    pub fn new() -> Self {
        Self::with_base(DefaultEventLoopPolicy::new())
    }

    /// A virtual-time policy over `base` (for example one made with
    /// [`DefaultEventLoopPolicy::with_executor`]).
    pub fn with_base(base: DefaultEventLoopPolicy) -> Self {
        VirtualTimePolicy {
            base,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            frozen: false,
        }
    }

    /// When `frozen`, new clocks start frozen: only the test moves time, with
    /// [`VirtualClock::advance`] (see [`VirtualClock::set_frozen`]).
    #[must_use]
    pub fn frozen(mut self, frozen: bool) -> Self {
        self.frozen = frozen;
        self
    }

    /// The clock of `event_loop` if this policy created it (on this thread; loops never leave
    /// their thread). The returned value shares time with the loop's clock.
    pub fn clock_of(&self, event_loop: &EventLoop) -> Option<VirtualClock> {
        let key = (self.id, event_loop.id());
        CLOCKS.with(|c| {
            c.borrow()
                .get(&key)
                .and_then(Weak::upgrade)
                .map(|clock| (*clock).clone())
        })
    }

    /// A new loop (through this policy's `new_event_loop`) and its clock.
    ///
    /// # Errors
    /// Loop creation errors.
    pub fn new_event_loop_with_clock(&self) -> Result<(EventLoop, VirtualClock)> {
        let event_loop = EventLoopPolicy::new_event_loop(self)?;
        // Our own `new_event_loop` always registers the clock.
        let clock = self.clock_of(&event_loop).unwrap_or_default();
        Ok((event_loop, clock))
    }

    fn register(&self, event_loop: &EventLoop, clock: &Rc<VirtualClock>) {
        CLOCKS.with(|c| {
            let mut map = c.borrow_mut();
            // Forget the clocks of loops that were dropped.
            map.retain(|_, weak| weak.strong_count() > 0);
            map.insert((self.id, event_loop.id()), Rc::downgrade(clock));
        });
    }
}

impl Default for VirtualTimePolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for VirtualTimePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualTimePolicy")
            .field("base", &self.base)
            .field("id", &self.id)
            .field("frozen", &self.frozen)
            .finish()
    }
}

impl Drop for VirtualTimePolicy {
    fn drop(&mut self) {
        let id = self.id;
        let _ = CLOCKS.try_with(|c| {
            if let Ok(mut map) = c.try_borrow_mut() {
                map.retain(|(policy, _), _| *policy != id);
            }
        });
    }
}

impl PolicyWrapper for VirtualTimePolicy {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }

    fn new_event_loop(&self) -> Result<EventLoop> {
        let clock = Rc::new(VirtualClock::new());
        clock.set_frozen(self.frozen);
        let mut builder = EventLoop::builder().clock(clock.clone());
        // As the default `new_event_loop` does: the (outermost) policy's executor, shared.
        if let Some(executor) = EventLoopPolicy::default_executor(self) {
            builder = builder.shared_executor(executor);
        }
        let event_loop = builder.build()?;
        self.register(&event_loop, &clock);
        Ok(event_loop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered() -> usize {
        CLOCKS.with(|c| c.borrow().len())
    }

    #[test]
    fn dropped_loops_are_pruned_and_a_dropped_policy_forgets_its_loops() {
        let policy = VirtualTimePolicy::new();
        let before = registered();
        let a = EventLoopPolicy::new_event_loop(&policy).unwrap();
        assert_eq!(registered(), before + 1);
        drop(a);
        // The next registration prunes the dead entry.
        let b = EventLoopPolicy::new_event_loop(&policy).unwrap();
        assert_eq!(registered(), before + 1);
        assert!(policy.clock_of(&b).is_some());
        drop(policy);
        assert_eq!(registered(), before);
        drop(b);
    }

    #[test]
    fn frozen_policies_make_frozen_clocks() {
        let policy = VirtualTimePolicy::new().frozen(true);
        let (lp, clock) = policy.new_event_loop_with_clock().unwrap();
        assert!(!asyncio::Clock::advance_to(&clock, 5.0));
        assert_eq!(lp.time(), 0.0);
        lp.close().unwrap();
    }
}
