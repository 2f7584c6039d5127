//! Cancelling callbacks and timers (spec R7): before their batch, during it (a callback cancels
//! a later one of the same batch), after they ran (a no-op that still makes `cancelled()` true),
//! from another thread; and the timer heap's lazy cancellation and compaction.

mod loop_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use asyncio::{EventLoop, Handle, TimerHandle};
use loop_support::{strs, virtual_loop, watchdog, DropCounter, Recorder};

fn stop_soon(lp: &EventLoop) {
    let l = lp.clone();
    lp.call_soon(move || l.stop()).unwrap();
}

#[test]
fn a_handle_cancelled_before_its_batch_never_runs_and_drops_its_closure() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let r = rec.clone();
        let h = lp
            .call_soon(move || {
                let _t = &token;
                r.push("cancelled-one")
            })
            .unwrap();
        lp.call_soon(rec.cb("other")).unwrap();
        assert!(!h.cancelled());
        h.cancel();
        assert!(h.cancelled());
        // The closure (and what it owns) is dropped at once.
        assert_eq!(drops.dropped(), 1);
        h.cancel();
        assert!(h.cancelled());
        stop_soon(&lp);
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["other"]));
        lp.close().unwrap();
    });
}

#[test]
fn a_timer_cancelled_before_it_is_due_never_runs() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let t = lp.call_later(1.0, rec.cb("cancelled")).unwrap();
        lp.call_later(2.0, rec.cb("live")).unwrap();
        t.cancel();
        assert!(t.cancelled());
        // The cancelled timer leaves the heap at once.
        assert_eq!(lp.timer_heap_len(), 1);
        assert_eq!(lp.cancelled_timer_count(), 0);
        // Cancelling twice changes nothing.
        t.cancel();
        assert_eq!(lp.timer_heap_len(), 1);
        let l = lp.clone();
        let r = rec.clone();
        lp.call_later(3.0, move || {
            r.push(format!("stop@{}", l.time()));
            l.stop()
        })
        .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["live", "stop@3"]));
        assert_eq!(lp.timer_heap_len(), 0);
        assert_eq!(lp.cancelled_timer_count(), 0);
        lp.close().unwrap();
    });
}

#[test]
fn a_cancelled_head_timer_does_not_hold_the_loop() {
    // The virtual clock jumps straight past a cancelled timer to the first live one.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let t = lp.call_later(1.0, rec.cb("dead")).unwrap();
        t.cancel();
        let (l, r) = (lp.clone(), rec.clone());
        lp.call_later(5.0, move || {
            r.push(format!("live@{}", l.time()));
            l.stop();
        })
        .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["live@5"]));
        lp.close().unwrap();
    });
}

#[test]
fn a_callback_cancels_a_later_one_of_the_same_batch() {
    // R7 (EXP:e9): a cancels b, b would cancel a: only a runs.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let slot_a: Rc<RefCell<Option<Handle>>> = Rc::default();
        let slot_b: Rc<RefCell<Option<Handle>>> = Rc::default();
        let (r, sb) = (rec.clone(), slot_b.clone());
        let a = lp
            .call_soon(move || {
                r.push("a");
                sb.borrow().as_ref().unwrap().cancel();
            })
            .unwrap();
        let (r, sa) = (rec.clone(), slot_a.clone());
        let b = lp
            .call_soon(move || {
                r.push("b");
                sa.borrow().as_ref().unwrap().cancel();
            })
            .unwrap();
        *slot_a.borrow_mut() = Some(a.clone());
        *slot_b.borrow_mut() = Some(b.clone());
        lp.call_soon(rec.cb("c")).unwrap();
        stop_soon(&lp);
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["a", "c"]));
        assert!(b.cancelled());
        assert!(!a.cancelled());
        slot_a.borrow_mut().take();
        slot_b.borrow_mut().take();
        lp.close().unwrap();
    });
}

#[test]
fn a_due_timer_cancelled_earlier_in_its_batch_is_skipped() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let victim: Rc<RefCell<Option<TimerHandle>>> = Rc::default();
        let victim2: Rc<RefCell<Option<TimerHandle>>> = Rc::default();
        // A ready callback cancels a timer that is already due in the same iteration.
        let (r, v) = (rec.clone(), victim.clone());
        lp.call_soon(move || {
            r.push("soon");
            v.borrow().as_ref().unwrap().cancel();
        })
        .unwrap();
        *victim.borrow_mut() = Some(lp.call_later(0.0, rec.cb("timer-victim")).unwrap());
        // A timer cancels another timer due at the same time, later in the batch.
        let (r, v) = (rec.clone(), victim2.clone());
        lp.call_at(0.0, move || {
            r.push("timer-a");
            v.borrow().as_ref().unwrap().cancel();
        })
        .unwrap();
        *victim2.borrow_mut() = Some(lp.call_at(0.0, rec.cb("timer-b")).unwrap());
        lp.call_at(0.0, rec.cb("timer-c")).unwrap();
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["soon", "timer-a", "timer-c"]));
        // Both were out of the heap when cancelled: no stale cancelled count.
        assert_eq!(lp.timer_heap_len(), 0);
        assert_eq!(lp.cancelled_timer_count(), 0);
        assert!(victim.borrow().as_ref().unwrap().cancelled());
        assert!(victim2.borrow().as_ref().unwrap().cancelled());
        lp.close().unwrap();
    });
}

#[test]
fn cancelling_after_the_callback_ran_is_a_no_op() {
    // R7 (EXP:e1 "4"): before False False, after True True, counter unchanged.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        let h = lp.call_soon(move || c.set(c.get() + 1)).unwrap();
        let c = count.clone();
        let t = lp.call_later(0.0, move || c.set(c.get() + 1)).unwrap();
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(count.get(), 2);
        assert!(!h.cancelled());
        assert!(!t.cancelled());
        h.cancel();
        t.cancel();
        assert!(h.cancelled());
        assert!(t.cancelled());
        assert_eq!(count.get(), 2);
        assert_eq!(lp.timer_heap_len(), 0);
        assert_eq!(lp.cancelled_timer_count(), 0);
        lp.run_until_complete(async {}).unwrap();
        assert_eq!(count.get(), 2);
        lp.close().unwrap();
    });
}

#[test]
fn a_callback_may_cancel_its_own_handle_while_running() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let me: Rc<RefCell<Option<TimerHandle>>> = Rc::default();
        let ran = Rc::new(Cell::new(false));
        let (m, r) = (me.clone(), ran.clone());
        let t = lp
            .call_later(0.0, move || {
                r.set(true);
                m.borrow().as_ref().unwrap().cancel();
            })
            .unwrap();
        *me.borrow_mut() = Some(t.clone());
        lp.run_until_complete(async {}).unwrap();
        assert!(ran.get());
        assert!(t.cancelled());
        assert_eq!(lp.cancelled_timer_count(), 0);
        me.borrow_mut().take();
        lp.close().unwrap();
    });
}

#[test]
fn a_threadsafe_handle_can_be_cancelled_from_another_thread() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let drops = DropCounter::new();
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, token) = (ran.clone(), drops.token());
        let h = lp
            .handle()
            .call_soon_threadsafe(move || {
                let _t = &token;
                r.store(true, std::sync::atomic::Ordering::SeqCst);
            })
            .unwrap();
        let h2 = h.clone();
        std::thread::spawn(move || h2.cancel()).join().unwrap();
        assert!(h.cancelled());
        assert_eq!(drops.dropped(), 1);
        lp.run_until_complete(async {}).unwrap();
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        lp.close().unwrap();
    });
}

/// Sent from another thread in one batch, the second callback is in the loop's ready queue
/// (still in its inbox slot) when the first cancels it: it does not run, its closure is dropped
/// by the cancel, and a handle kept after the loop is done with the slot still reads cancelled.
#[test]
fn a_threadsafe_callback_cancelled_by_an_earlier_one_of_its_batch_does_not_run() {
    watchdog(|| {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let (lp, _) = virtual_loop();
        let drops = DropCounter::new();
        let ran = Arc::new(AtomicBool::new(false));
        let victim: Arc<Mutex<Option<asyncio::ThreadsafeHandle>>> = Arc::default();
        let kept = {
            let (handle, ran, victim, token) =
                (lp.handle(), ran.clone(), victim.clone(), drops.token());
            std::thread::spawn(move || {
                let v = victim.clone();
                handle
                    .call_soon_threadsafe(move || v.lock().unwrap().as_ref().unwrap().cancel())
                    .unwrap();
                let second = handle
                    .call_soon_threadsafe(move || {
                        let _t = &token;
                        ran.store(true, Ordering::SeqCst);
                    })
                    .unwrap();
                *victim.lock().unwrap() = Some(second.clone());
                second
            })
            .join()
            .unwrap()
        };
        assert!(!kept.cancelled());
        assert_eq!(drops.dropped(), 0);
        lp.run_until_complete(async {}).unwrap();
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(drops.dropped(), 1);
        assert!(kept.cancelled());
        drop(victim.lock().unwrap().take());
        lp.close().unwrap();
        assert!(kept.cancelled());
        assert!(format!("{kept:?}").contains("cancelled: true"));
    });
}

#[test]
fn a_cancelled_timer_leaves_the_heap_at_once() {
    // asyncio drops cancelled timers lazily (at the head, or in a compaction once over half of
    // over 100 are cancelled); this loop removes each one when it is cancelled. What runs, and
    // in which order, is the same.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let timers: Vec<_> = (0..50)
            .map(|i| lp.call_at(1.0 + i as f64, rec.cb(format!("t{i}"))).unwrap())
            .collect();
        for (k, t) in timers[..10].iter().enumerate() {
            t.cancel();
            assert_eq!(lp.timer_heap_len(), 50 - k - 1);
        }
        assert_eq!(lp.cancelled_timer_count(), 0);
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(lp.timer_heap_len(), 40);
        assert_eq!(rec.len(), 0);
        // Timers in the middle of the heap leave as well, and never run.
        for t in &timers[20..30] {
            t.cancel();
        }
        assert_eq!(lp.timer_heap_len(), 30);
        let l = lp.clone();
        lp.call_at(100.0, move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        let expected: Vec<String> = (10..20).chain(30..50).map(|i| format!("t{i}")).collect();
        assert_eq!(rec.get(), expected);
        assert_eq!(lp.timer_heap_len(), 0);
        assert_eq!(lp.cancelled_timer_count(), 0);
        lp.close().unwrap();
    });
}

#[test]
fn cancelling_half_of_a_large_heap_leaves_exactly_the_live_timers() {
    // Where asyncio compacts (over 100 scheduled, over half cancelled), the heap here holds
    // only live timers all along; cancelling again, or cancelling a timer whose slot a new
    // timer now uses, removes nothing else.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let timers: Vec<_> = (0..200)
            .map(|i| lp.call_at(1.0 + i as f64, rec.cb(format!("t{i}"))).unwrap())
            .collect();
        for t in timers.iter().skip(1).step_by(2) {
            t.cancel();
        }
        assert_eq!(lp.timer_heap_len(), 100);
        timers[0].cancel();
        assert_eq!(lp.timer_heap_len(), 99);
        let newcomer = lp.call_at(500.5, rec.cb("new")).unwrap();
        timers[1].cancel();
        timers[0].cancel();
        assert_eq!(lp.timer_heap_len(), 100);
        timers[2].cancel();
        assert_eq!(lp.timer_heap_len(), 99);
        assert_eq!(lp.cancelled_timer_count(), 0);
        let l = lp.clone();
        lp.call_at(1000.0, move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        let mut expected: Vec<String> = (4..200).step_by(2).map(|i| format!("t{i}")).collect();
        expected.push("new".to_string());
        assert_eq!(rec.get(), expected);
        assert!(!newcomer.cancelled());
        assert_eq!(lp.timer_heap_len(), 0);
        lp.close().unwrap();
    });
}

#[test]
fn the_iteration_after_over_half_of_over_100_were_cancelled_leaves_none() {
    // Issue 9: 120 timers, 70 cancelled: none may be left after the next iteration (here: none
    // is left at all).
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let timers: Vec<_> = (0..120)
            .map(|i| lp.call_at(1.0 + i as f64, || ()).unwrap())
            .collect();
        for t in &timers[50..] {
            t.cancel();
        }
        assert_eq!(lp.timer_heap_len(), 50);
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(lp.timer_heap_len(), 50);
        assert_eq!(lp.cancelled_timer_count(), 0);
        lp.close().unwrap();
    });
}

#[test]
fn small_heaps_hold_no_cancelled_timer_either() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let timers: Vec<_> = (0..100)
            .map(|i| lp.call_at(1.0 + i as f64, || ()).unwrap())
            .collect();
        for t in &timers[1..] {
            t.cancel();
        }
        assert_eq!(lp.timer_heap_len(), 1);
        lp.run_until_complete(asyncio::sleep(1.5)).unwrap().unwrap();
        assert_eq!(lp.timer_heap_len(), 0);
        assert_eq!(lp.cancelled_timer_count(), 0);
        lp.close().unwrap();
    });
}

#[test]
fn cancelling_a_timer_of_a_dropped_or_closed_loop_is_harmless() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let t1 = lp.call_later(1.0, || ()).unwrap();
        let h1 = lp.call_soon(|| ()).unwrap();
        lp.close().unwrap();
        t1.cancel();
        h1.cancel();
        assert!(t1.cancelled() && h1.cancelled());
        let (lp, _) = virtual_loop();
        let t2 = lp.call_later(1.0, || ()).unwrap();
        drop(lp);
        t2.cancel();
        assert!(t2.cancelled());
    });
}
