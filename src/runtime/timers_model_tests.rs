//! The timer heap driven through a [`VirtualClock`] loop by random arm / cancel / advance /
//! iterate sequences, against a model that is a plain list sorted on demand. After every step:
//! `when()` is exactly the deadline asked for; an iteration fires exactly the live timers whose
//! deadline has come, in (deadline, scheduling) order, at the loop time (never before their
//! deadline); the virtual clock jumps exactly to the first live deadline; and the heap holds
//! exactly the live timers (a cancelled one leaves at once), however many were cancelled.
//! Callback timers and sleeps (whose slot holds the sleeping task's waker) share one order: a
//! sleep is woken when its turn in the ready queue comes, and its future is ready from then on.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::handles::TimerHandle;
use crate::runtime::clock::VirtualClock;
use crate::runtime::core::EventLoop;
use crate::runtime::running::RunGuard;
use crate::task::Sleep;

/// A deterministic xorshift64* generator.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What fired, in order: (timer id, loop time; `None` for a sleep's wake-up, which runs at the
/// iteration's loop time, as the callbacks beside it record).
type Fired = Arc<Mutex<Vec<(usize, Option<f64>)>>>;

/// One armed timer as the model sees it.
struct Armed {
    when: f64,
    timer: Timer,
}

enum Timer {
    Callback(TimerHandle),
    /// Dropped once cancelled (dropping disarms it) or fired and seen ready.
    Sleep(Option<Pin<Box<Sleep>>>),
}

/// A sleep's waker: logs the sleep's id.
struct LogWake {
    id: usize,
    fired: Fired,
}

impl Wake for LogWake {
    fn wake(self: Arc<Self>) {
        self.fired.lock().unwrap().push((self.id, None));
    }
}

struct Harness {
    lp: EventLoop,
    clock: VirtualClock,
    fired: Fired,
    /// Every timer armed so far, by id.
    armed: Vec<Armed>,
    /// The ids of those neither cancelled nor fired.
    live: HashSet<usize>,
}

impl Harness {
    fn new() -> Harness {
        let clock = VirtualClock::new();
        let lp = EventLoop::builder()
            .clock(Rc::new(clock.clone()))
            .build()
            .unwrap();
        Harness {
            lp,
            clock,
            fired: Fired::default(),
            armed: Vec::new(),
            live: HashSet::new(),
        }
    }

    /// Polls `sleep` as the loop's task would, with a waker that logs `id`.
    fn poll_sleep(&self, id: usize, sleep: &mut Pin<Box<Sleep>>) -> Poll<crate::Result<()>> {
        let waker = Waker::from(Arc::new(LogWake {
            id,
            fired: self.fired.clone(),
        }));
        let _guard = RunGuard::enter(&self.lp).unwrap();
        sleep.as_mut().poll(&mut Context::from_waker(&waker))
    }

    /// Arms a sleep of `delay` (> 0) from now, polled once as its task would.
    fn arm_sleep(&mut self, delay: f64) {
        assert!(delay > 0.0, "a zero delay yields, it arms no timer");
        let id = self.armed.len();
        let when = self.lp.time() + delay;
        let mut sleep = Box::pin(crate::sleep(delay));
        assert!(self.poll_sleep(id, &mut sleep).is_pending());
        self.armed.push(Armed {
            when,
            timer: Timer::Sleep(Some(sleep)),
        });
        self.live.insert(id);
    }

    /// Polls a live sleep again with a new waker (it must stay pending, and the new waker is
    /// the one its timer wakes).
    fn repoll(&mut self, id: usize) {
        if !self.live.contains(&id) {
            return;
        }
        if let Timer::Sleep(slot) = &mut self.armed[id].timer {
            let mut sleep = slot.take().expect("a live sleep");
            assert!(
                self.poll_sleep(id, &mut sleep).is_pending(),
                "sleep {id} ready early"
            );
            self.armed[id].timer = Timer::Sleep(Some(sleep));
        }
    }

    /// Arms a timer `delay` from now (`call_later`) or at `now + delay` (`call_at`).
    fn arm(&mut self, delay: f64, at: bool) {
        let id = self.armed.len();
        let (lp, fired) = (self.lp.clone(), self.fired.clone());
        let cb = move || fired.lock().unwrap().push((id, Some(lp.time())));
        let when = self.lp.time() + delay;
        let handle = if at {
            self.lp.call_at(when, cb).unwrap()
        } else {
            self.lp.call_later(delay, cb).unwrap()
        };
        assert_eq!(
            handle.when().to_bits(),
            when.to_bits(),
            "when() of timer {id}"
        );
        self.armed.push(Armed {
            when,
            timer: Timer::Callback(handle),
        });
        self.live.insert(id);
    }

    fn cancel(&mut self, id: usize) {
        match &mut self.armed[id].timer {
            Timer::Callback(handle) => handle.cancel(),
            Timer::Sleep(sleep) => drop(sleep.take()),
        }
        self.live.remove(&id);
    }

    /// Live timers in firing order: (deadline, scheduling order).
    fn live_sorted(&self) -> Vec<(f64, usize)> {
        let mut v: Vec<(f64, usize)> = self
            .live
            .iter()
            .map(|&id| (self.armed[id].when, id))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        v
    }

    /// Runs one iteration and checks what fired and where the clock went.
    fn iterate(&mut self) {
        let before = self.clock.now();
        let live = self.live_sorted();
        let first = live.first().map(|l| l.0);
        // With nothing finite to wait for, an idle iteration would wait for I/O without limit:
        // make it a non-waiting one (as `stop()` does).
        let waits = first.is_some_and(|w| w < f64::INFINITY);
        if !waits {
            self.lp.inner.stopping.set(true);
        }
        {
            let _guard = RunGuard::enter(&self.lp).unwrap();
            self.lp.run_once(false).unwrap();
        }
        self.lp.inner.stopping.set(false);
        let now = self.clock.now();
        let expected_now = match first {
            Some(w) if waits && w > before => w,
            _ => before,
        };
        assert_eq!(
            now, expected_now,
            "the clock jumps to the first live deadline"
        );
        let due: Vec<(usize, f64)> = live
            .iter()
            .take_while(|l| l.0 <= now)
            .map(|l| (l.1, now))
            .collect();
        let got: Vec<(usize, f64)> = std::mem::take(&mut *self.fired.lock().unwrap())
            .into_iter()
            .map(|(id, t)| (id, t.unwrap_or(now)))
            .collect();
        assert_eq!(got, due, "fired at {now}");
        for (id, t) in &got {
            assert!(*t >= self.armed[*id].when, "timer {id} fired early");
            self.live.remove(id);
            // A fired sleep is ready from now on; dropped then (its slot is let go).
            if let Timer::Sleep(slot) = &mut self.armed[*id].timer {
                let mut sleep = slot.take().expect("a fired sleep was live");
                assert!(
                    matches!(self.poll_sleep(*id, &mut sleep), Poll::Ready(Ok(()))),
                    "sleep {id} fired but not ready"
                );
            }
        }
    }

    /// The heap's bookkeeping: exactly the live timers, none cancelled, order and slot table
    /// consistent.
    fn check_bookkeeping(&self) {
        let timers = self.lp.inner.timers.borrow();
        assert_eq!(timers.len(), self.live.len());
        assert_eq!(timers.cancelled_count(), 0);
        timers.check();
    }
}

/// Deadlines on a coarse grid (many ties), past ones, and the infinities.
fn random_delay(g: &mut Gen) -> f64 {
    match g.below(20) {
        0 => f64::INFINITY,
        1 => f64::NEG_INFINITY,
        2 => -(g.below(8) as f64),
        _ => g.below(24) as f64 * 0.25,
    }
}

#[test]
fn random_arm_cancel_advance_sequences_match_a_sorted_model() {
    for seed in 1..=8u64 {
        let mut g = Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut h = Harness::new();
        for _ in 0..1_000 {
            match g.below(10) {
                0..=3 => {
                    let d = random_delay(&mut g);
                    if d > 0.0 && g.below(2) == 0 {
                        h.arm_sleep(d);
                    } else {
                        h.arm(d, g.below(2) == 0);
                    }
                }
                4 if !h.armed.is_empty() => {
                    let k = g.below(h.armed.len() as u64) as usize;
                    h.repoll(k);
                }
                4..=6 if !h.armed.is_empty() => {
                    // Any timer: live, fired or cancelled already (then a no-op).
                    let k = g.below(h.armed.len() as u64) as usize;
                    h.cancel(k);
                }
                7 => {
                    // Bursts: many armed, most of them cancelled, as timeouts that never trigger.
                    let first = h.armed.len();
                    let n = g.below(300) as usize;
                    for _ in 0..n {
                        let d = random_delay(&mut g);
                        if d > 0.0 && g.below(3) == 0 {
                            h.arm_sleep(d);
                        } else {
                            h.arm(d, false);
                        }
                    }
                    for k in first..first + n {
                        if g.below(10) < 8 {
                            h.cancel(k);
                        }
                    }
                }
                8 => {
                    h.clock.advance(g.below(8) as f64 * 0.25);
                    h.iterate();
                }
                _ => h.iterate(),
            }
            h.check_bookkeeping();
        }
        h.lp.close().unwrap();
    }
}

#[test]
fn a_million_arm_and_cancel_keep_the_heap_bounded() {
    let mut h = Harness::new();
    for d in [1.0, 2.0, 3.0] {
        h.arm(d, false);
    }
    for i in 0..1_000_000u32 {
        let t = h.lp.call_later(10.0, || ()).unwrap();
        assert_eq!(h.lp.timer_heap_len(), 4);
        t.cancel();
        let len = h.lp.timer_heap_len();
        assert_eq!(len, 3, "{len} entries after {i} arm+cancel");
        if i % 100_000 == 0 {
            h.check_bookkeeping();
        }
    }
    h.check_bookkeeping();
    // The slot table did not grow either: one slot serves every armed-and-cancelled timer.
    assert_eq!(h.lp.inner.timers.borrow().slot_count(), 4);
    // The live timers fire in order.
    h.iterate();
    assert_eq!(h.lp.timer_heap_len(), 2);
    assert_eq!(h.lp.cancelled_timer_count(), 0);
    h.iterate();
    h.iterate();
    assert_eq!(h.lp.timer_heap_len(), 0);
    assert_eq!(h.clock.now(), 3.0);
    h.lp.close().unwrap();
}

/// Sleeps armed and dropped (a timeout around work that finishes first), fired and seen: the
/// slot table stays as small as the most sleeps armed at once.
#[test]
fn a_million_sleeps_armed_and_dropped_keep_the_heap_bounded() {
    let mut h = Harness::new();
    h.arm_sleep(1.0);
    for i in 0..1_000_000usize {
        let mut sleep = Box::pin(crate::sleep(10.0));
        assert!(h.poll_sleep(usize::MAX, &mut sleep).is_pending());
        assert_eq!(h.lp.timer_heap_len(), 2);
        drop(sleep);
        assert_eq!(h.lp.timer_heap_len(), 1, "after {i} sleeps");
    }
    assert_eq!(h.lp.inner.timers.borrow().slot_count(), 2);
    h.cancel(0);
    // A sleep dropped after it came due but before its wake-up ran (by a callback queued
    // ahead of it in the same iteration) is not woken, and its queued wake-up frees its slot.
    for round in 0..1_000usize {
        let mut sleep = Box::pin(crate::sleep(0.5));
        assert!(h.poll_sleep(usize::MAX, &mut sleep).is_pending());
        let holder = Rc::new(RefCell::new(Some(sleep)));
        let dropper = holder.clone();
        h.lp.call_soon(move || drop(dropper.borrow_mut().take()))
            .unwrap();
        h.clock.advance(0.5);
        {
            let _guard = RunGuard::enter(&h.lp).unwrap();
            h.lp.run_once(false).unwrap();
        }
        assert!(holder.borrow().is_none());
        assert!(
            h.fired.lock().unwrap().is_empty(),
            "round {round}: woken after its drop"
        );
        // At most the high-water mark (the table renumbers from 0 once every slot is free).
        assert!(
            h.lp.inner.timers.borrow().slot_count() <= 2,
            "round {round}"
        );
    }
    h.check_bookkeeping();
    h.lp.close().unwrap();
}

/// Thousands of timers due in one iteration: the heap takes them in one pass (partition, sort)
/// after its first pops, and the order must be the same as popping one by one.
#[test]
fn large_due_batches_keep_the_order() {
    for seed in 1..=3u64 {
        let mut g = Gen(seed.wrapping_mul(0xd1b5_4a32_d192_ed03));
        let mut h = Harness::new();
        for _ in 0..12 {
            let first = h.armed.len();
            let n = 500 + g.below(4_000) as usize;
            for _ in 0..n {
                let d = random_delay(&mut g);
                if d > 0.0 && g.below(3) == 0 {
                    h.arm_sleep(d);
                } else {
                    h.arm(d, g.below(2) == 0);
                }
            }
            for k in first..first + n {
                if g.below(10) < 3 {
                    h.cancel(k);
                }
            }
            h.check_bookkeeping();
            h.clock.advance(g.below(32) as f64 * 0.25);
            h.iterate();
            h.check_bookkeeping();
        }
        h.lp.close().unwrap();
    }
}
