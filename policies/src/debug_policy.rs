//! [`DebugEventLoopPolicy`]: every loop it creates runs in debug mode with a chosen
//! slow-callback threshold.

use std::fmt;
use std::time::Duration;

use asyncio::{DefaultEventLoopPolicy, EventLoop, PolicyWrapper, Result};

/// A policy whose loops all run in debug mode (asyncio's `PYTHONASYNCIODEBUG=1`, scoped to one
/// policy instead of the whole process).
///
/// Every loop made by [`new_event_loop`](asyncio::EventLoopPolicy::new_event_loop), including
/// the one that the default `get_event_loop` creates implicitly on the main thread and the ones
/// [`asyncio::run`] and [`asyncio::Runner`] make through the policy, has
/// [`get_debug`](EventLoop::get_debug) on and a
/// [`slow_callback_duration`](EventLoop::slow_callback_duration) of this policy's choosing
/// (100 ms unless set otherwise, as asyncio). In debug mode the loop logs every callback or task
/// step that takes longer than that, as a warning on the `asyncio` log target:
/// `Executing <name> took 0.250 seconds`.
///
/// Built subclass-style: it overrides only `new_event_loop`, calling the default's
/// (`super().new_event_loop()`) and switching debug mode on in the loop it returns, so the
/// base's executor choice ([`DefaultEventLoopPolicy::with_executor`], see
/// [`with_base`](DebugEventLoopPolicy::with_base)) is kept.
///
/// ```
/// use asyncio::EventLoopPolicy;
/// use asyncio_policies::DebugEventLoopPolicy;
/// use std::time::Duration;
///
/// let policy = DebugEventLoopPolicy::new().slow_callback_duration(Duration::from_millis(20));
/// let event_loop = policy.new_event_loop()?;
/// assert!(event_loop.get_debug());
/// assert_eq!(event_loop.slow_callback_duration(), Duration::from_millis(20));
/// event_loop.close()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
///
/// Installed process-wide, it makes every loop a debug loop:
///
/// ```
/// use asyncio_policies::DebugEventLoopPolicy;
/// use std::sync::Arc;
///
/// asyncio::set_event_loop_policy(Some(Arc::new(DebugEventLoopPolicy::new())));
/// let debug = asyncio::run(async { asyncio::get_running_loop().unwrap().get_debug() })?;
/// assert!(debug);
/// asyncio::set_event_loop_policy(None);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct DebugEventLoopPolicy {
    base: DefaultEventLoopPolicy,
    slow_callback_duration: Duration,
}

impl DebugEventLoopPolicy {
    /// asyncio's default slow-callback threshold: 100 ms.
    pub const DEFAULT_SLOW_CALLBACK_DURATION: Duration = Duration::from_millis(100);

    /// A debug policy over a fresh [`DefaultEventLoopPolicy`], with the default threshold.
    pub fn new() -> Self {
        Self::with_base(DefaultEventLoopPolicy::new())
    }

    /// A debug policy over `base`: for example
    /// `DefaultEventLoopPolicy::with_executor(pool)`, so that debug loops also share an
    /// executor.
    pub fn with_base(base: DefaultEventLoopPolicy) -> Self {
        DebugEventLoopPolicy {
            base,
            slow_callback_duration: Self::DEFAULT_SLOW_CALLBACK_DURATION,
        }
    }

    /// Sets the threshold above which the policy's loops log a callback as slow.
    #[must_use]
    pub fn slow_callback_duration(mut self, threshold: Duration) -> Self {
        self.slow_callback_duration = threshold;
        self
    }

    /// The threshold given to every new loop.
    pub fn get_slow_callback_duration(&self) -> Duration {
        self.slow_callback_duration
    }
}

impl Default for DebugEventLoopPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DebugEventLoopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DebugEventLoopPolicy")
            .field("base", &self.base)
            .field("slow_callback_duration", &self.slow_callback_duration)
            .finish()
    }
}

impl PolicyWrapper for DebugEventLoopPolicy {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }

    fn new_event_loop(&self) -> Result<EventLoop> {
        // super().new_event_loop(), then switch debug mode on.
        let event_loop = self.base.new_event_loop_with(self)?;
        event_loop.set_debug(true);
        event_loop.set_slow_callback_duration(self.slow_callback_duration);
        Ok(event_loop)
    }
}
