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

/// The default clock: the system's monotonic clock (`std::time::Instant`'s), as seconds since
/// the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
    /// The same clock read just after `origin` (so never before it), as seconds and
    /// nanoseconds: [`now`](Clock::now) subtracts it from one raw read, without `Instant`'s
    /// checked arithmetic (a fifth of a `call_later`).
    #[cfg(target_os = "linux")]
    origin_raw: (i64, i64),
}

impl MonotonicClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        let origin = Instant::now();
        MonotonicClock {
            origin,
            #[cfg(target_os = "linux")]
            origin_raw: raw_monotonic(),
        }
    }
}

/// `CLOCK_MONOTONIC`, the clock behind `Instant` on Linux, as (seconds, nanoseconds).
#[cfg(target_os = "linux")]
#[inline]
fn raw_monotonic() -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes only the `timespec` it is given, which lives on this
    // stack frame; `CLOCK_MONOTONIC` exists on every Linux, so it cannot fail (the test
    // `raw_reads_match_instant` checks it against `Instant`).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // `time_t` and `c_long` are 32 bits on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    (ts.tv_sec as i64, ts.tv_nsec as i64)
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    /// Seconds since the clock was made (to within a rounding step of `Duration::as_secs_f64`;
    /// never decreasing). Timers given as
    /// an `Instant` are placed against `origin` (a few nanoseconds before the raw origin this
    /// reads against), so they fire at or after their instant, never before.
    #[inline]
    fn now(&self) -> f64 {
        #[cfg(target_os = "linux")]
        {
            let (secs, nanos) = raw_monotonic();
            let (mut secs, mut nanos) = (secs - self.origin_raw.0, nanos - self.origin_raw.1);
            if nanos < 0 {
                secs -= 1;
                nanos += 1_000_000_000;
            }
            // A multiplication, not `as_secs_f64`'s division (which the sum waited for): the
            // same value to within a rounding step, and still never decreasing.
            secs as f64 + nanos as f64 * 1e-9
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.origin.elapsed().as_secs_f64()
        }
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

    /// Moves the clock forward by `secs` (negative or NaN values are ignored). The time stays
    /// finite: a move past `f64::MAX` (such as `advance(f64::INFINITY)`) stops at `f64::MAX`.
    pub fn advance(&self, secs: f64) {
        if secs > 0.0 {
            self.now.set((self.now.get() + secs).min(f64::MAX));
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
            self.now.set(when.min(f64::MAX));
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
/// # What every time value means
///
/// One contract for every public function that takes a time. `now` is the loop's
/// [`time`](crate::EventLoop::time); a deadline is `now + delay` computed in `f64`, so a sum
/// past `f64::MAX` is `+inf`. Nothing panics on any value.
///
/// | value (delay `d`, or deadline `w` for `call_at`) | `call_later(d)` / `call_at(w)`: `when()` and firing | `sleep(d)` | `timeout(d, f)` / `wait_for(f, d)` |
/// | --- | --- | --- | --- |
/// | NaN (any sign or payload) | [`ErrorKind::InvalidArgument`]; nothing is scheduled | awaits to `InvalidArgument` | `InvalidArgument`; `f` is not polled |
/// | `+inf` | `when() == +inf`: never fires (stays in the heap until cancelled) | never completes | no time limit |
/// | finite, `now + d` overflows | `when() == +inf`: never fires | never completes | no time limit in effect |
/// | finite, `now + d > now` | `when() == now + d` (`w`): fires once the loop time reaches it (a [`VirtualClock`] jumps there, however far) | completes at `now + d` | [`ErrorKind::Timeout`] at `now + d` unless `f` finished |
/// | `±0`, a subnormal, or any `d` with `now + d == now` | `when() == now + d`: due now, runs in the next iteration | yields once (asyncio's `sleep(0)`) for `d <= 0`; otherwise completes at `now + d` | `d <= 0`: `f` gets exactly one poll, then `Timeout`; otherwise as above |
/// | finite `< 0`, down to `-f64::MAX` | `when() == now + d` (`w`), in the past: due now, still ordered by deadline | yields once | one poll of `f`, then `Timeout` |
/// | `-inf` | `when() == -inf`: due now, before every finite deadline (the loop does not wait) | yields once | one poll of `f`, then `Timeout` |
/// | [`Duration::ZERO`] | as `0.0` | as `0.0` | as `0.0` |
/// | any [`Duration`] up to [`Duration::MAX`] | as its [`as_secs_f64`](Duration::as_secs_f64) (finite: at most about `1.8e19` s) | as that | as that |
/// | an [`Instant`] (`call_at` only) | `when()` is the instant on the loop's clock ([`Clock::instant_to_time`]); a clock that maps it to NaN gives `InvalidArgument` | — | — |
///
/// The other functions that take a time follow the same rules:
/// [`shutdown_default_executor(Some(d))`](crate::EventLoop::shutdown_default_executor) waits
/// like `timeout(d, ..)`; [`ConcurrentFuture::result(Some(d))`](crate::ConcurrentFuture::result)
/// blocks at most `d`, and a `d` too large for an [`Instant`] (such as `Duration::MAX`) means no
/// limit; a [`ThreadPoolExecutor`](crate::ThreadPoolExecutor)'s idle timeout likewise;
/// [`set_slow_callback_duration(d)`](crate::EventLoop::set_slow_callback_duration) takes any
/// `Duration` (`ZERO` logs every callback in debug mode, `MAX` none); a Happy Eyeballs delay is
/// a delay as above, NaN an error when connecting, negative values `0`.
pub trait IntoDelay {
    /// The delay in seconds: the value itself for `f64`, widened for `f32`,
    /// [`as_secs_f64`](Duration::as_secs_f64) for a `Duration`. See the table above.
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
///
/// What each value means is in the table at [`IntoDelay`]: NaN is an error, `+inf` never,
/// `-inf` and every past time "now" (ordered by deadline).
pub trait IntoDeadline {
    /// The deadline in the scale of `clock`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for NaN (for an `Instant`: if `clock` maps it to NaN).
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
        let when = clock.instant_to_time(self);
        if when.is_nan() {
            Err(Error::new(
                ErrorKind::InvalidArgument,
                "the clock maps this Instant to NaN",
            ))
        } else {
            Ok(when)
        }
    }
}

/// The deadline `delay` seconds after `now` (the table at [`IntoDelay`]): an `f64` sum, so an
/// overflow is `+inf` (never) and `-inf` stays `-inf` (now). NaN only comes from a clock whose
/// time is not finite; it is an error rather than a timer that could never be ordered.
pub(crate) fn deadline_after(now: f64, delay: f64) -> Result<f64> {
    let when = now + delay;
    if when.is_nan() {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("no deadline {delay} seconds after the clock's time {now}"),
        ))
    } else {
        Ok(when)
    }
}

/// The instant `timeout` from now, for blocking waits on real threads; `None` (no limit) when
/// `timeout` reaches past what an [`Instant`] can hold (such as [`Duration::MAX`]).
pub(crate) fn instant_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
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
        assert_eq!(secs_to_timeout(f64::NEG_INFINITY), Duration::ZERO);
        // Deadlines: an overflow is never, `-inf` stays now; NaN only from a broken clock.
        assert_eq!(deadline_after(1.0, f64::MAX).unwrap(), f64::MAX);
        assert_eq!(deadline_after(f64::MAX, f64::MAX).unwrap(), f64::INFINITY);
        assert_eq!(
            deadline_after(5.0, f64::NEG_INFINITY).unwrap(),
            f64::NEG_INFINITY
        );
        let e = deadline_after(f64::INFINITY, f64::NEG_INFINITY).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(instant_after(Duration::MAX).is_none());
        assert!(instant_after(Duration::from_secs(1)).is_some());
    }

    /// A clock whose time is NaN: what a broken custom clock could return.
    struct NanClock;
    impl Clock for NanClock {
        fn now(&self) -> f64 {
            f64::NAN
        }
    }

    #[test]
    fn an_instant_a_clock_maps_to_nan_is_an_invalid_argument() {
        let e = Instant::now().into_deadline(&NanClock).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let when = Instant::now().into_deadline(&VirtualClock::new()).unwrap();
        assert!(when.abs() < 1.0);
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
        // The time stays finite.
        c.set_frozen(false);
        c.advance(f64::INFINITY);
        assert_eq!(c.now(), f64::MAX);
        let c = VirtualClock::new();
        assert!(c.advance_to(f64::INFINITY));
        assert_eq!(c.now(), f64::MAX);
    }

    #[test]
    fn raw_reads_match_instant() {
        // The raw read and `Instant` are one clock: the loop's time never runs ahead of the
        // origin `Instant`'s elapsed time, and lags it by no more than the reads between.
        let c = MonotonicClock::new();
        for _ in 0..1000 {
            let before = c.origin.elapsed().as_secs_f64();
            let t = c.now();
            let after = c.origin.elapsed().as_secs_f64();
            assert!(t <= after, "{t} > {after}");
            assert!(t >= before - 0.05, "{t} far behind {before}");
        }
        // Never backwards.
        let mut last = c.now();
        for _ in 0..10_000 {
            let t = c.now();
            assert!(t >= last);
            last = t;
        }
    }

    #[test]
    fn an_instant_deadline_is_not_due_before_its_instant() {
        let c = MonotonicClock::new();
        for _ in 0..1000 {
            let at = Instant::now() + Duration::from_micros(3);
            let when = c.instant_to_time(at);
            // The loop runs a timer once `when <= now() + resolution()`.
            if when <= c.now() + c.resolution() {
                assert!(Instant::now() >= at, "due before its instant");
            }
        }
    }

    #[test]
    fn instants_map_onto_the_monotonic_scale() {
        let c = MonotonicClock::new();
        let t = c.instant_to_time(Instant::now() + Duration::from_secs(10));
        assert!((10.0..11.0).contains(&t));
    }
}
