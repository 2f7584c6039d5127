//! Loop time: the [`Clock`] trait, the real [`MonotonicClock`] and a [`VirtualClock`] for tests,
//! and the conversions that let `call_later`/`call_at` take `f64` seconds like asyncio or
//! `Duration`/`Instant` like Rust.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// The source of a loop's [`time`](crate::EventLoop::time), in seconds as `f64`.
///
/// The loop asks the clock for the time once per iteration and when it schedules a timer. A clock
/// that returns `true` from [`advance_to`](Clock::advance_to) is *virtual*: when the loop has
/// nothing to do but wait for its next timer, it moves the clock forward instead of sleeping.
pub trait Clock {
    /// The current time in seconds. Must never go backwards.
    fn now(&self) -> f64;

    /// The granularity of [`now`](Clock::now); a timer is due when
    /// `when <= now() + resolution()`.
    fn resolution(&self) -> f64 {
        1e-9
    }

    /// Called when the loop would sleep until `when`. A virtual clock jumps to `when` and returns
    /// `true` (the loop then does not sleep); a real clock returns `false`.
    fn advance_to(&self, when: f64) -> bool {
        let _ = when;
        false
    }

    /// Converts an [`Instant`] into this clock's scale.
    fn instant_to_time(&self, instant: Instant) -> f64 {
        let now = Instant::now();
        if instant >= now {
            self.now() + (instant - now).as_secs_f64()
        } else {
            self.now() - (now - instant).as_secs_f64()
        }
    }
}

/// The default clock: `std::time::Instant`, as seconds since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }
    fn instant_to_time(&self, instant: Instant) -> f64 {
        if instant >= self.origin {
            (instant - self.origin).as_secs_f64()
        } else {
            -(self.origin - instant).as_secs_f64()
        }
    }
}

/// A clock that moves only when told to, or when the loop is idle: deterministic timers for tests.
///
/// When a loop on a virtual clock has no ready callbacks and no I/O, it jumps straight to its next
/// timer instead of sleeping, so an hour of `call_later` runs in microseconds. Clones share one
/// time.
///
/// ```
/// use asyncio::{EventLoop, VirtualClock};
/// use std::rc::Rc;
///
/// let clock = VirtualClock::new();
/// let event_loop = EventLoop::builder().clock(Rc::new(clock.clone())).build().unwrap();
/// let t = event_loop.run_until_complete(async {
///     asyncio::sleep(3600.0).await.unwrap();
///     asyncio::get_running_loop().unwrap().time()
/// }).unwrap();
/// assert_eq!(t, 3600.0);
/// assert_eq!(clock.now(), 3600.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    now: Rc<Cell<f64>>,
    frozen: Rc<Cell<bool>>,
}

impl VirtualClock {
    /// A virtual clock at time 0 that advances when the loop is idle.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current virtual time.
    pub fn now(&self) -> f64 {
        self.now.get()
    }

    /// Moves the clock forward by `secs` (negative or NaN values are ignored).
    pub fn advance(&self, secs: f64) {
        if secs > 0.0 {
            self.now.set(self.now.get() + secs);
        }
    }

    /// When `frozen`, the loop does not advance the clock by itself: only
    /// [`advance`](VirtualClock::advance) does (the loop then really waits for I/O or wake-ups).
    pub fn set_frozen(&self, frozen: bool) {
        self.frozen.set(frozen);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> f64 {
        self.now.get()
    }
    fn resolution(&self) -> f64 {
        0.0
    }
    fn advance_to(&self, when: f64) -> bool {
        if self.frozen.get() {
            return false;
        }
        if when > self.now.get() {
            self.now.set(when);
        }
        true
    }
    fn instant_to_time(&self, instant: Instant) -> f64 {
        let now = Instant::now();
        if instant >= now {
            self.now.get() + (instant - now).as_secs_f64()
        } else {
            self.now.get() - (now - instant).as_secs_f64()
        }
    }
}

/// A delay accepted by `call_later`, `sleep` and the timeout helpers: `f64`/`f32` seconds like
/// asyncio, or a [`Duration`].
///
/// Negative delays mean "now", `+inf` means "never"; NaN is an [`ErrorKind::InvalidArgument`]
/// error. Nothing panics on odd values.
pub trait IntoDelay {
    /// The delay in seconds.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for NaN.
    fn into_delay(self) -> Result<f64>;
}

impl IntoDelay for f64 {
    fn into_delay(self) -> Result<f64> {
        if self.is_nan() {
            Err(Error::new(
                ErrorKind::InvalidArgument,
                "delay must not be NaN",
            ))
        } else {
            Ok(self)
        }
    }
}

impl IntoDelay for f32 {
    fn into_delay(self) -> Result<f64> {
        f64::from(self).into_delay()
    }
}

impl IntoDelay for Duration {
    fn into_delay(self) -> Result<f64> {
        Ok(self.as_secs_f64())
    }
}

/// A point in time accepted by `call_at`: `f64` in the loop's [`time`](crate::EventLoop::time)
/// scale like asyncio, or an [`Instant`].
pub trait IntoDeadline {
    /// The deadline in the scale of `clock`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for NaN.
    fn into_deadline(self, clock: &dyn Clock) -> Result<f64>;
}

impl IntoDeadline for f64 {
    fn into_deadline(self, _clock: &dyn Clock) -> Result<f64> {
        if self.is_nan() {
            Err(Error::new(
                ErrorKind::InvalidArgument,
                "when must not be NaN",
            ))
        } else {
            Ok(self)
        }
    }
}

impl IntoDeadline for Instant {
    fn into_deadline(self, clock: &dyn Clock) -> Result<f64> {
        Ok(clock.instant_to_time(self))
    }
}

/// Converts a non-negative finite number of seconds to a `Duration`, capped at one day (the
/// longest the loop ever sleeps at once, as asyncio's `MAXIMUM_SELECT_TIMEOUT`).
pub(crate) fn secs_to_timeout(secs: f64) -> Duration {
    const MAX: f64 = 24.0 * 3600.0;
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(secs.min(MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_delays_never_panic() {
        assert!(f64::NAN.into_delay().is_err());
        assert_eq!(f64::INFINITY.into_delay().unwrap(), f64::INFINITY);
        assert_eq!((-1.0f64).into_delay().unwrap(), -1.0);
        assert_eq!(Duration::from_millis(1500).into_delay().unwrap(), 1.5);
        assert_eq!(secs_to_timeout(f64::INFINITY), Duration::from_secs(86400));
        assert_eq!(secs_to_timeout(-3.0), Duration::ZERO);
        assert_eq!(secs_to_timeout(f64::NAN), Duration::ZERO);
    }

    #[test]
    fn virtual_clock_advances_only_forward() {
        let c = VirtualClock::new();
        assert!(c.advance_to(5.0));
        assert!(c.advance_to(2.0));
        assert_eq!(c.now(), 5.0);
        c.advance(-1.0);
        c.advance(f64::NAN);
        assert_eq!(c.now(), 5.0);
        c.set_frozen(true);
        assert!(!c.advance_to(9.0));
        assert_eq!(c.now(), 5.0);
    }

    #[test]
    fn instants_map_onto_the_monotonic_scale() {
        let c = MonotonicClock::new();
        let t = c.instant_to_time(Instant::now() + Duration::from_secs(10));
        assert!((10.0..11.0).contains(&t));
    }
}
