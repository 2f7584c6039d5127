//! Timers (spec R3-R6): `call_later`/`call_at` with `f64` seconds, `Duration` and `Instant`;
//! deadline order with FIFO among equal deadlines; zero, negative, NaN, infinite and huge delays.
//! Every test runs on a `VirtualClock`, so nothing sleeps and no duration is asserted.

mod loop_support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use asyncio::{ErrorKind, EventLoop};
use loop_support::{strs, virtual_loop, watchdog, NonBlockingSelector, Recorder};

/// Schedules `stop` at loop time `when`.
fn stop_at(lp: &EventLoop, when: f64) {
    let l = lp.clone();
    lp.call_at(when, move || l.stop()).unwrap();
}

/// A callback that records `name@time`.
fn at(lp: &EventLoop, rec: &Recorder, name: &str) -> impl FnOnce() + 'static {
    let (l, r, n) = (lp.clone(), rec.clone(), name.to_owned());
    move || r.push(format!("{n}@{}", l.time()))
}

#[test]
fn timers_fire_in_deadline_order_at_their_time() {
    watchdog(|| {
        let (lp, clock) = virtual_loop();
        let rec = Recorder::new();
        lp.call_later(3.0, at(&lp, &rec, "c")).unwrap();
        lp.call_later(1.0, at(&lp, &rec, "a")).unwrap();
        lp.call_later(2.0, at(&lp, &rec, "b")).unwrap();
        stop_at(&lp, 10.0);
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["a@1", "b@2", "c@3"]));
        assert_eq!(lp.time(), 10.0);
        assert_eq!(clock.now(), 10.0);
        assert_eq!(lp.timer_heap_len(), 0);
        lp.close().unwrap();
    });
}

#[test]
fn equal_deadlines_run_in_scheduling_order() {
    // R5: CPython leaves this undefined; this crate promises FIFO (spec section 5).
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        for i in 0..20 {
            lp.call_at(5.0, rec.cb(i.to_string())).unwrap();
        }
        // Interleave another deadline and equal deadlines scheduled through call_later.
        lp.call_at(4.0, rec.cb("early")).unwrap();
        for i in 20..25 {
            lp.call_later(5.0, rec.cb(i.to_string())).unwrap();
        }
        stop_at(&lp, 6.0);
        lp.run_forever().unwrap();
        let mut expected = vec!["early".to_owned()];
        expected.extend((0..25).map(|i| i.to_string()));
        assert_eq!(rec.get(), expected);
        lp.close().unwrap();
    });
}

#[test]
fn negative_delays_are_ordered_by_deadline() {
    // R4: test_call_later_negative_delays: call_later(-1, a); call_later(-2, b) => b, a.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_later(-1.0, rec.cb("a")).unwrap();
        lp.call_later(-2.0, rec.cb("b")).unwrap();
        lp.call_later(Duration::ZERO, rec.cb("zero")).unwrap();
        lp.call_later(-0.5, rec.cb("c")).unwrap();
        lp.run_until_complete(async {}).unwrap();
        assert_eq!(rec.get(), strs(&["b", "a", "c", "zero"]));
        // Nothing had to wait: virtual time did not move.
        assert_eq!(lp.time(), 0.0);
        lp.close().unwrap();
    });
}

#[test]
fn zero_delay_fires_in_the_next_iteration_without_moving_time() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_later(0.0, at(&lp, &rec, "zero")).unwrap();
        let t = lp.call_at(lp.time(), at(&lp, &rec, "now")).unwrap();
        assert_eq!(t.when(), 0.0);
        let before = lp.iteration_count();
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(lp.iteration_count(), before + 1);
        assert_eq!(rec.get(), strs(&["zero@0", "now@0"]));
        lp.close().unwrap();
    });
}

#[test]
fn nan_is_an_invalid_argument_and_schedules_nothing() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let e = lp.call_later(f64::NAN, || unreachable!()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = lp.call_later(f32::NAN, || unreachable!()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = lp.call_at(f64::NAN, || unreachable!()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(lp.timer_heap_len(), 0);
        // The loop is unaffected.
        lp.run_until_complete(async {}).unwrap();
        // A NaN sleep is an error too, not a panic.
        let e = lp
            .run_until_complete(asyncio::sleep(f64::NAN))
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        lp.close().unwrap();
    });
}

#[test]
fn positive_infinity_never_fires() {
    watchdog(|| {
        let (lp, clock) = virtual_loop();
        let fired = Rc::new(Cell::new(0));
        let f = fired.clone();
        let t1 = lp
            .call_later(f64::INFINITY, move || f.set(f.get() + 1))
            .unwrap();
        let f = fired.clone();
        let t2 = lp
            .call_at(f64::INFINITY, move || f.set(f.get() + 1))
            .unwrap();
        assert_eq!(t1.when(), f64::INFINITY);
        assert_eq!(t2.when(), f64::INFINITY);
        let rec = Recorder::new();
        lp.call_later(1e9, at(&lp, &rec, "far")).unwrap();
        stop_at(&lp, 2e9);
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["far@1000000000"]));
        assert_eq!(fired.get(), 0);
        assert_eq!(clock.now(), 2e9);
        assert_eq!(lp.timer_heap_len(), 2);
        // Still there, still not firing, across more runs.
        lp.run_until_complete(asyncio::sleep(5.0)).unwrap().unwrap();
        assert_eq!(fired.get(), 0);
        t1.cancel();
        t2.cancel();
        assert!(t1.cancelled() && t2.cancelled());
        lp.close().unwrap();
    });
}

#[test]
fn negative_infinity_fires_first_and_at_once() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_later(-1.0, rec.cb("minus-one")).unwrap();
        let t = lp
            .call_later(f64::NEG_INFINITY, rec.cb("later-ninf"))
            .unwrap();
        assert_eq!(t.when(), f64::NEG_INFINITY);
        lp.call_at(f64::NEG_INFINITY, rec.cb("at-ninf")).unwrap();
        lp.call_soon(rec.cb("soon")).unwrap();
        lp.run_until_complete(async {}).unwrap();
        assert_eq!(
            rec.get(),
            strs(&["soon", "later-ninf", "at-ninf", "minus-one"])
        );
        assert_eq!(lp.time(), 0.0);
        lp.close().unwrap();
    });
}

#[test]
fn negative_infinity_with_nothing_else_ready_does_not_freeze_the_loop() {
    // Issue 9: a `-inf` deadline at the head of the heap with nothing ready made the loop wait
    // without limit (a non-finite deadline was taken for "no timer"): 0 % CPU, and no other
    // timer fired again. The selector here counts such a wait instead of blocking.
    watchdog(|| {
        let (lp, clock, freezes) = NonBlockingSelector::virtual_loop(1_000);
        clock.advance(5.0);
        let rec = Recorder::new();
        lp.call_later(2.0, at(&lp, &rec, "two")).unwrap();
        let t = lp
            .call_at(f64::NEG_INFINITY, at(&lp, &rec, "at-ninf"))
            .unwrap();
        assert_eq!(t.when(), f64::NEG_INFINITY);
        lp.call_later(f64::NEG_INFINITY, at(&lp, &rec, "later-ninf"))
            .unwrap();
        lp.call_later(-1e300, at(&lp, &rec, "minus-1e300")).unwrap();
        stop_at(&lp, 8.0);
        lp.run_forever().unwrap();
        assert_eq!(freezes.load(Ordering::SeqCst), 0, "the loop waited forever");
        assert_eq!(
            rec.get(),
            strs(&["at-ninf@5", "later-ninf@5", "minus-1e300@5", "two@7"])
        );
        // Again from inside a running loop, with only the `-inf` timer and a later one.
        let l = lp.clone();
        let r = rec.clone();
        lp.call_soon(move || {
            let (l2, r2) = (l.clone(), r.clone());
            l.call_at(f64::NEG_INFINITY, move || {
                r2.push(format!("inner@{}", l2.time()))
            })
            .unwrap();
        })
        .unwrap();
        stop_at(&lp, 9.0);
        lp.run_forever().unwrap();
        assert_eq!(freezes.load(Ordering::SeqCst), 0, "the loop waited forever");
        assert_eq!(rec.get().last().unwrap(), "inner@8");
        assert_eq!(lp.time(), 9.0);
        lp.close().unwrap();
    });
}

#[test]
fn huge_delays_neither_panic_nor_fire_early() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let fired = Rc::new(Cell::new(0));
        let mut timers = Vec::new();
        let f = fired.clone();
        timers.push(
            lp.call_later(Duration::MAX, move || f.set(f.get() + 1))
                .unwrap(),
        );
        let f = fired.clone();
        timers.push(lp.call_later(f64::MAX, move || f.set(f.get() + 1)).unwrap());
        let f = fired.clone();
        timers.push(lp.call_later(1e300, move || f.set(f.get() + 1)).unwrap());
        let f = fired.clone();
        timers.push(lp.call_at(f64::MAX, move || f.set(f.get() + 1)).unwrap());
        let f = fired.clone();
        timers.push(
            lp.call_later(Duration::from_secs(u64::MAX), move || f.set(f.get() + 1))
                .unwrap(),
        );
        for t in &timers {
            assert!(t.when() >= 1e19, "when = {}", t.when());
            assert!(!t.when().is_nan());
        }
        assert_eq!(timers[0].when(), Duration::MAX.as_secs_f64());
        stop_at(&lp, 1.0);
        lp.run_forever().unwrap();
        assert_eq!(fired.get(), 0);
        assert_eq!(lp.time(), 1.0);
        lp.close().unwrap();
    });
}

#[test]
fn huge_finite_deadlines_still_fire_on_a_virtual_clock() {
    // A finite deadline is a deadline: the virtual clock jumps there.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_later(1e300, at(&lp, &rec, "big")).unwrap();
        lp.call_later(Duration::from_secs(1 << 40), at(&lp, &rec, "dur"))
            .unwrap();
        let l = lp.clone();
        lp.call_later(1e301, move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(
            rec.get(),
            vec![
                format!("dur@{}", (1u64 << 40) as f64),
                format!("big@{}", 1e300),
            ]
        );
        lp.close().unwrap();
    });
}

#[test]
fn durations_and_seconds_are_the_same_scale() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let t = lp
            .call_later(Duration::from_millis(1500), at(&lp, &rec, "dur"))
            .unwrap();
        assert_eq!(t.when(), 1.5);
        let t = lp.call_later(1.25f32, at(&lp, &rec, "f32")).unwrap();
        assert_eq!(t.when(), 1.25);
        lp.call_later(1.75, at(&lp, &rec, "f64")).unwrap();
        stop_at(&lp, 2.0);
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["f32@1.25", "dur@1.5", "f64@1.75"]));
        lp.close().unwrap();
    });
}

#[test]
fn call_later_is_relative_to_the_current_loop_time() {
    watchdog(|| {
        let (lp, clock) = virtual_loop();
        clock.advance(100.0);
        let t = lp.call_later(5.0, || ()).unwrap();
        assert_eq!(t.when(), 105.0);
        let rec = Recorder::new();
        let (l, r) = (lp.clone(), rec.clone());
        lp.call_later(1.0, move || {
            r.push(format!("outer@{}", l.time()));
            let (l2, r2) = (l.clone(), r.clone());
            l.call_later(1.0, move || {
                r2.push(format!("inner@{}", l2.time()));
                l2.stop();
            })
            .unwrap();
        })
        .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["outer@101", "inner@102"]));
        lp.close().unwrap();
    });
}

#[test]
fn instants_are_accepted_as_deadlines() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let now = Instant::now();
        let b = lp
            .call_at(now + Duration::from_secs(10), rec.cb("instant+10"))
            .unwrap();
        // The Instant maps onto loop time (about 10; a little less, as real time passed).
        assert!(b.when() > 9.0 && b.when() <= 10.0, "when = {}", b.when());
        lp.call_later(5.0, rec.cb("later5")).unwrap();
        let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let p = lp.call_at(past, rec.cb("past")).unwrap();
        assert!(p.when() <= 0.0);
        let far = lp
            .call_at(
                now + Duration::from_secs(10 * 365 * 24 * 3600),
                rec.cb("ten-years"),
            )
            .unwrap();
        assert!(far.when() > 3e8);
        stop_at(&lp, 100.0);
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["past", "later5", "instant+10"]));
        lp.close().unwrap();
    });
}

#[test]
fn virtual_time_does_not_move_while_callbacks_are_ready() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_later(1.0, at(&lp, &rec, "timer")).unwrap();
        fn chain(lp: &EventLoop, rec: &Recorder, n: u32) {
            let (l, r) = (lp.clone(), rec.clone());
            lp.call_soon(move || {
                r.push(format!("cb{n}@{}", l.time()));
                if n < 3 {
                    chain(&l, &r, n + 1);
                }
            })
            .unwrap();
        }
        chain(&lp, &rec, 0);
        stop_at(&lp, 1.0);
        lp.run_forever().unwrap();
        assert_eq!(
            rec.get(),
            strs(&["cb0@0", "cb1@0", "cb2@0", "cb3@0", "timer@1"])
        );
        lp.close().unwrap();
    });
}

#[test]
fn sleep_on_a_virtual_clock_takes_no_real_time_and_moves_loop_time() {
    watchdog(|| {
        let (lp, clock) = virtual_loop();
        let t = lp
            .run_until_complete(async {
                asyncio::sleep(3600.0).await.unwrap();
                asyncio::sleep(Duration::from_secs(60)).await.unwrap();
                asyncio::get_running_loop().unwrap().time()
            })
            .unwrap();
        assert_eq!(t, 3660.0);
        assert_eq!(clock.now(), 3660.0);
        lp.close().unwrap();
    });
}

#[test]
fn many_timers_fire_in_sorted_order() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let out = Rc::new(std::cell::RefCell::new(Vec::new()));
        // A deterministic shuffle of 0..500 (multiplication by a unit modulo 500).
        for i in 0..500u64 {
            let d = (i * 317) % 500;
            let o = out.clone();
            lp.call_later(d as f64 / 10.0, move || o.borrow_mut().push(d))
                .unwrap();
        }
        assert_eq!(lp.timer_heap_len(), 500);
        stop_at(&lp, 100.0);
        lp.run_forever().unwrap();
        let got = out.borrow().clone();
        assert_eq!(got, (0..500).collect::<Vec<_>>());
        assert_eq!(lp.timer_heap_len(), 0);
        lp.close().unwrap();
    });
}

#[test]
fn a_frozen_virtual_clock_moves_only_when_advanced() {
    watchdog(|| {
        let (lp, clock) = virtual_loop();
        clock.set_frozen(true);
        let rec = Recorder::new();
        for t in [1.0, 2.0, 3.0] {
            lp.call_at(t, at(&lp, &rec, &format!("t{t}"))).unwrap();
        }
        // Nothing due: a pre-stopped iteration runs nothing and time stays put.
        lp.stop();
        lp.run_forever().unwrap();
        assert!(rec.get().is_empty());
        assert_eq!(lp.time(), 0.0);
        clock.advance(2.0);
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(rec.take(), strs(&["t1@2", "t2@2"]));
        clock.advance(0.5);
        lp.stop();
        lp.run_forever().unwrap();
        assert!(rec.get().is_empty());
        clock.set_frozen(false);
        let l = lp.clone();
        lp.call_at(10.0, move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.take(), strs(&["t3@3"]));
        assert_eq!(lp.time(), 10.0);
        lp.close().unwrap();
    });
}
