//! Issue 9: what every time value means, for every public function that takes a time or a delay
//! (the table in the docs of `IntoDelay`), checked over arbitrary values: NaN (with payloads),
//! `±inf`, `±0`, subnormals, `±1e308`, `±f64::MAX`, random bit patterns and moderate numbers for
//! `f64`/`f32`; zero, `MAX` and random values for `Duration`; instants around now.
//!
//! Each value drives `call_later`, `call_at` (inherent and through `AbstractEventLoop`), `sleep`,
//! `timeout` and `wait_for` on a fresh `VirtualClock` loop that also holds three sentinel timers.
//! The selector never blocks: a request to wait without limit while a timer is pending is counted
//! as a freeze. Checked for every value: nothing panics; NaN is `InvalidArgument` and schedules
//! nothing; the loop never freezes; the sentinels and the timer under test fire in deadline order
//! (FIFO among equal deadlines), each at `max(when, start)` and never before; `when()` is exactly
//! the table's deadline; `+inf` and overflowing deadlines never fire, not even with the clock at
//! `f64::MAX`. Then the functions that take a `Duration` on real threads: `slow_callback_duration`,
//! `shutdown_default_executor`, `ConcurrentFuture::result` and the pool's idle timeout.
//!
//! The values come from a small deterministic generator (xorshift64*), so a failure replays.

mod loop_support;

use std::cell::RefCell;
use std::fmt::Debug;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncio::{
    AbstractEventLoop, ErrorKind, EventLoop, Executor, IntoDelay, Result, ThreadPoolExecutor,
    TimerHandle,
};
use loop_support::NonBlockingSelector;
use loop_support::{install_capturing_logger, take_logs, virtual_loop, watchdog};

/// A deterministic xorshift64* generator.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The named edge cases, then random bit patterns, then moderate values around the sentinels.
fn f64_values() -> Vec<f64> {
    let mut v = vec![
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
        f64::from_bits(0xfff8_dead_beef_0001), // negative NaN with a payload
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1), // the smallest subnormal
        -f64::from_bits(1),
        f64::from_bits(0x000f_ffff_ffff_ffff), // the largest subnormal
        f64::EPSILON,
        1e-9,
        -1e-9,
        0.5,
        1.0,
        2.0,
        3.0,
        4.0,
        -1.0,
        1e6,
        1.8e19,
        1e300,
        -1e300,
        1e308,
        -1e308,
        f64::MAX,
        f64::MIN,
    ];
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..400 {
        v.push(f64::from_bits(g.next()));
    }
    for _ in 0..400 {
        // -8.000 ..= 8.000 in steps of 1/1000, often equal to a sentinel's deadline.
        v.push((g.next() % 16_001) as f64 / 1000.0 - 8.0);
    }
    for k in -4..=12 {
        v.push(f64::from(k) * 0.5);
    }
    v
}

fn f32_values() -> Vec<f32> {
    let mut v = vec![
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        f32::from_bits(1),
        f32::MAX,
        f32::MIN,
        1.5,
        -2.5,
    ];
    let mut g = Gen(0x0123_4567_89ab_cdef);
    for _ in 0..100 {
        v.push(f32::from_bits(g.next() as u32));
    }
    v
}

fn durations() -> Vec<Duration> {
    let mut v = vec![
        Duration::ZERO,
        Duration::MAX,
        Duration::from_nanos(1),
        Duration::from_secs(1),
        Duration::from_millis(2500),
        Duration::from_secs(4),
        Duration::from_secs(1 << 53),
        Duration::from_secs(u64::MAX),
        Duration::new(u64::MAX, 999_999_998),
    ];
    let mut g = Gen(0xfeed_f00d_cafe_beef);
    for _ in 0..150 {
        let secs = g.next() >> (g.next() % 64);
        v.push(Duration::new(secs, (g.next() % 1_000_000_000) as u32));
        v.push(Duration::from_nanos(g.next() % 6_000_000_000));
    }
    v
}

/// Loop start times: zero, a fraction, and large enough that tiny delays round away.
const STARTS: [f64; 3] = [0.0, 1.5, 1e6];

/// The deadline `delay` after `start`, as the table defines it; `None` for NaN.
fn deadline(start: f64, delay: f64) -> Option<f64> {
    (!delay.is_nan()).then_some(start + delay)
}

/// When a timer with deadline `when` fires on a loop started at `start`: never for `+inf`.
fn fire_time(start: f64, when: f64) -> Option<f64> {
    (when != f64::INFINITY).then(|| when.max(start))
}

/// A log of what fired (or finished): (label, loop time).
type Log = Rc<RefCell<Vec<(String, f64)>>>;

/// A virtual-clock loop at `start` holding three sentinels at `start + 1, 2, 3`.
struct Probe {
    lp: EventLoop,
    freezes: Arc<std::sync::atomic::AtomicUsize>,
    log: Log,
    start: f64,
    /// (label, deadline, sequence) of every timer expected to fire, sentinels included.
    expected: Vec<(String, f64, usize)>,
    case: String,
}

impl Probe {
    fn new(start: f64, case: String) -> Probe {
        let (lp, clock, freezes) = NonBlockingSelector::virtual_loop(10_000);
        clock.advance(start);
        assert_eq!(lp.time(), start);
        let mut probe = Probe {
            lp,
            freezes,
            log: Log::default(),
            start,
            expected: Vec::new(),
            case,
        };
        for k in 1..=3 {
            let when = start + f64::from(k);
            let cb = probe.recorder(format!("s{k}"));
            let t = probe.lp.call_later(f64::from(k), cb).unwrap();
            assert_eq!(t.when(), when);
            probe.expect(format!("s{k}"), when);
        }
        probe
    }

    /// A callback that logs `label` with the loop time.
    fn recorder(&self, label: String) -> impl FnOnce() + 'static {
        let (lp, log) = (self.lp.clone(), self.log.clone());
        move || log.borrow_mut().push((label, lp.time()))
    }

    /// Expects `label` to fire (or, for a task, to finish) at `fire_time(start, when)`, after
    /// what was expected before it at an equal deadline.
    fn expect(&mut self, label: String, when: f64) {
        let seq = self.expected.len();
        self.expected.push((label, when, seq));
    }

    /// Runs until loop time `until` (a stop timer scheduled now); the loop must never have
    /// asked to wait without limit.
    fn run_until(&self, until: f64) {
        let lp = self.lp.clone();
        self.lp.call_at(until, move || lp.stop()).unwrap();
        self.lp.run_forever().unwrap();
        assert_eq!(
            self.freezes.load(Ordering::SeqCst),
            0,
            "{}: the loop waited forever with a timer pending",
            self.case
        );
    }

    /// Runs past the sentinels, then until `last` (or, if nothing more is due, with the clock at
    /// `f64::MAX`), and checks what fired: in (deadline, sequence) order, each at its time.
    fn run_and_check(mut self, last: Option<f64>) -> EventLoop {
        let start = self.start;
        self.run_until(start + 4.0);
        self.run_until(last.map_or(f64::MAX, |t| t.max(start + 4.0)));
        // One more iteration without moving time: a task woken by the last timer takes its step.
        self.lp.stop();
        self.lp.run_forever().unwrap();
        self.expected
            .sort_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)));
        let want: Vec<(String, f64)> = self
            .expected
            .iter()
            .filter_map(|(l, w, _)| fire_time(start, *w).map(|t| (l.clone(), t)))
            .collect();
        assert_eq!(*self.log.borrow(), want, "{}", self.case);
        self.lp
    }
}

/// One way of scheduling a timer under test.
type Schedule<'a> = &'a dyn Fn(&EventLoop, Box<dyn FnOnce()>) -> Result<TimerHandle>;

/// Schedules a timer with `schedule` and checks it against `want` (the table's deadline, or
/// `None` for `InvalidArgument`).
fn check_timer(start: f64, case: String, want: Option<f64>, schedule: Schedule<'_>) {
    let mut probe = Probe::new(start, case.clone());
    let cb = probe.recorder("x".into());
    let r = schedule(&probe.lp, Box::new(cb));
    let last = match (want, r) {
        (None, Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{case}");
            assert_eq!(
                probe.lp.timer_heap_len(),
                3,
                "{case}: NaN scheduled something"
            );
            Some(start)
        }
        (Some(when), Ok(t)) => {
            assert_eq!(
                t.when().to_bits(),
                when.to_bits(),
                "{case}: when() = {}, the table says {when}",
                t.when()
            );
            probe.expect("x".into(), when);
            fire_time(start, when)
        }
        (want, r) => panic!("{case}: expected {want:?}, got {r:?}"),
    };
    let lp = probe.run_and_check(last);
    if last.is_none() {
        // Never fired, even with the clock at f64::MAX; still there until cancelled.
        assert_eq!(lp.time(), f64::MAX, "{case}");
        assert_eq!(lp.timer_heap_len(), 1, "{case}");
    } else {
        assert_eq!(lp.timer_heap_len(), 0, "{case}");
    }
    lp.close().unwrap();
}

/// What a helper future under test should end with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    Timeout,
    Invalid,
}

fn outcome<T>(r: &Result<T>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) if e.kind() == ErrorKind::Timeout => Outcome::Timeout,
        Err(e) if e.kind() == ErrorKind::InvalidArgument => Outcome::Invalid,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// Runs `fut` as a task on a probe loop; it must end with `want` at `fire_time(start, when)`
/// (`when`: `None` for an immediate end at `start`, `Some(+inf)` for never).
fn check_task<F>(start: f64, case: String, fut: F, want: Outcome, when: Option<f64>)
where
    F: Future<Output = Outcome> + 'static,
{
    let mut probe = Probe::new(start, case.clone());
    let done = probe.recorder("x".into());
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    let task = probe
        .lp
        .create_task(async move {
            let o = fut.await;
            *g.borrow_mut() = Some(o);
            done();
        })
        .unwrap();
    let when = when.unwrap_or(f64::NEG_INFINITY);
    probe.expect("x".into(), when);
    let last = fire_time(start, when);
    let lp = probe.run_and_check(last);
    match last {
        Some(_) => assert_eq!(*got.borrow(), Some(want), "{case}"),
        None => {
            assert_eq!(*got.borrow(), None, "{case}: finished but should never");
            assert!(!task.done(), "{case}");
            task.cancel();
            lp.stop();
            lp.run_forever().unwrap();
            assert!(task.cancelled(), "{case}");
        }
    }
    lp.close().unwrap();
}

/// Drives every delay-taking function with `d` (whose value in seconds is `secs`).
fn check_delay<D: IntoDelay + Copy + Debug + 'static>(d: D, secs: f64, start: f64) {
    let case = |f: &str| format!("{f}({d:?}) at {start}");
    let want = deadline(start, secs);
    check_timer(start, case("call_later"), want, &|lp, cb| {
        lp.call_later(d, cb)
    });

    // `sleep`: immediate for NaN (an error) and for `d <= 0` (one yield); else at the deadline.
    let (want_sleep, when) = match want {
        None => (Outcome::Invalid, None),
        Some(_) if secs <= 0.0 => (Outcome::Ok, None),
        Some(w) => (Outcome::Ok, Some(w)),
    };
    check_task(
        start,
        case("sleep"),
        async move { outcome(&asyncio::sleep(d).await) },
        want_sleep,
        when,
    );

    // `timeout`/`wait_for` on a future that never finishes: `Timeout` when `sleep` ends.
    let want_limit = if want_sleep == Outcome::Ok {
        Outcome::Timeout
    } else {
        want_sleep
    };
    check_task(
        start,
        case("timeout"),
        async move { outcome(&asyncio::timeout(d, std::future::pending::<()>()).await) },
        want_limit,
        when,
    );
    check_task(
        start,
        case("wait_for"),
        async move { outcome(&asyncio::wait_for(std::future::pending::<()>(), d).await) },
        want_limit,
        when,
    );
    // ... and on a future that is ready at once: its output, unless the delay is NaN.
    let want_ready = if want.is_none() {
        Outcome::Invalid
    } else {
        Outcome::Ok
    };
    check_task(
        start,
        case("timeout(ready)"),
        async move { outcome(&asyncio::timeout(d, async { 7 }).await) },
        want_ready,
        None,
    );
}

#[test]
fn f64_delays_and_deadlines_follow_the_table() {
    watchdog(|| {
        for (i, &v) in f64_values().iter().enumerate() {
            let start = STARTS[i % STARTS.len()];
            check_delay(v, v, start);
            let case = |f: &str| format!("{f}({v:?}) at {start}");
            let want = (!v.is_nan()).then_some(v);
            check_timer(start, case("call_at"), want, &|lp, cb| lp.call_at(v, cb));
            check_timer(
                start,
                case("dyn call_later"),
                deadline(start, v),
                &|lp, cb| AbstractEventLoop::call_later(lp, v, cb),
            );
            check_timer(start, case("dyn call_at"), want, &|lp, cb| {
                AbstractEventLoop::call_at(lp, v, cb)
            });
        }
    });
}

#[test]
fn f32_delays_follow_the_table() {
    watchdog(|| {
        for (i, &v) in f32_values().iter().enumerate() {
            check_delay(v, f64::from(v), STARTS[i % STARTS.len()]);
        }
    });
}

#[test]
fn durations_follow_the_table() {
    watchdog(|| {
        for (i, &d) in durations().iter().enumerate() {
            let secs = d.as_secs_f64();
            assert_eq!(d.into_delay().unwrap(), secs);
            check_delay(d, secs, STARTS[i % STARTS.len()]);
        }
    });
}

#[test]
fn instants_follow_the_table() {
    watchdog(|| {
        let mut offsets: Vec<Duration> = durations();
        offsets.truncate(60);
        for (i, &off) in offsets.iter().enumerate() {
            let start = STARTS[i % STARTS.len()];
            let now = Instant::now();
            for (sign, instant) in [(1.0, now.checked_add(off)), (-1.0, now.checked_sub(off))] {
                let Some(instant) = instant else { continue };
                let case = format!("call_at(now {sign:+} {off:?}) at {start}");
                let mut probe = Probe::new(start, case.clone());
                let cb = probe.recorder("x".into());
                let t = probe.lp.call_at(instant, cb).unwrap();
                let when = t.when();
                assert!(!when.is_nan(), "{case}");
                if off <= Duration::from_secs(1_000_000) {
                    // Real time passes between `now` and the conversion, so not exact.
                    let model = start + sign * off.as_secs_f64();
                    assert!((when - model).abs() < 1.0, "{case}: when() = {when}");
                }
                probe.expect("x".into(), when);
                let lp = probe.run_and_check(fire_time(start, when));
                lp.close().unwrap();
            }
        }
    });
}

#[test]
fn any_slow_callback_duration_is_accepted() {
    watchdog(|| {
        install_capturing_logger();
        for d in durations().into_iter().take(40) {
            let lp = EventLoop::builder()
                .slow_callback_duration(d)
                .debug(true)
                .build()
                .unwrap();
            assert_eq!(lp.slow_callback_duration(), d);
            lp.set_slow_callback_duration(d);
            assert_eq!(lp.slow_callback_duration(), d);
            lp.call_soon(|| ()).unwrap();
            lp.run_until_complete(async {}).unwrap();
            lp.close().unwrap();
        }
        // `ZERO` reports every callback, `MAX` none.
        let slow = |d: Duration| {
            let lp = EventLoop::builder().debug(true).build().unwrap();
            lp.set_slow_callback_duration(d);
            take_logs();
            lp.call_soon(|| ()).unwrap();
            lp.stop();
            lp.run_forever().unwrap();
            lp.close().unwrap();
            loop_support::slow_lines().len()
        };
        assert_eq!(slow(Duration::ZERO), 1);
        assert_eq!(slow(Duration::MAX), 0);
    });
}

/// The few durations worth a real thread each: the edges and a handful of random ones.
fn thread_durations() -> Vec<Duration> {
    let mut v = durations();
    v.truncate(14);
    v
}

#[test]
fn shutdown_default_executor_takes_any_timeout() {
    watchdog(|| {
        for d in thread_durations() {
            let (lp, _) = virtual_loop();
            let l = lp.clone();
            let r = lp
                .run_until_complete(async move {
                    l.run_in_executor(None, || 1).unwrap().await.unwrap();
                    l.shutdown_default_executor(Some(d)).await
                })
                .unwrap();
            // On a virtual clock the limit may pass before the helper thread reports.
            assert!(
                matches!(outcome(&r), Outcome::Ok | Outcome::Timeout),
                "{d:?}: {r:?}"
            );
            lp.close().unwrap();
        }
    });
}

#[test]
fn concurrent_future_result_takes_any_timeout() {
    watchdog(|| {
        let (handle, thread) = EventLoop::spawn_thread().unwrap();
        for d in thread_durations() {
            let cf = handle.run_coroutine_threadsafe(async { 7u8 }).unwrap();
            let r = cf.result(Some(d));
            if d >= Duration::from_secs(4) {
                assert_eq!(r.unwrap(), 7, "{d:?}");
            } else {
                assert!(
                    matches!(outcome(&r), Outcome::Ok | Outcome::Timeout),
                    "{d:?}: {r:?}"
                );
            }
        }
        handle.stop();
        thread.join().unwrap().unwrap();
    });
}

#[test]
fn a_pool_takes_any_idle_timeout() {
    watchdog(|| {
        for d in thread_durations() {
            let pool = ThreadPoolExecutor::builder()
                .idle_timeout(d)
                .build()
                .unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            pool.submit(Box::new(move || tx.send(1).unwrap())).unwrap();
            assert_eq!(rx.recv().unwrap(), 1);
            pool.shutdown(true);
        }
    });
}
