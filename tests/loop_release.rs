//! Releasing a loop that was never closed (issue 9, defect 4): a loop whose own callbacks, timers,
//! tasks or signal handlers hold a clone of it is a reference cycle that dropping the last
//! outside handle cannot break. Such a loop is closed when its thread ends (asyncio's `__del__`
//! closes an unclosed loop), so its resources, signal slots among them, come back; and the
//! library itself keeps no strong clone in a loop's queues.

mod loop_support;

use std::future::pending;
use std::thread;

use asyncio::{ErrorKind, EventLoop};
use loop_support::{watchdog, DropCounter, DropToken, Never};

/// A loop tangled in every kind of cycle through its own queues, each holding `token`s.
fn cyclic_loop(drops: &DropCounter) -> EventLoop {
    let lp = EventLoop::new().unwrap();
    let (l, t) = (lp.clone(), drops.token());
    lp.call_soon(move || {
        let _t = &t;
        l.stop();
    })
    .unwrap();
    let (l, t) = (lp.clone(), drops.token());
    lp.call_later(3600.0, move || {
        let _t = &t;
        l.stop();
    })
    .unwrap();
    let (l, t) = (lp.clone(), drops.token());
    lp.create_task(async move {
        let _t = t;
        let _l = l;
        pending::<()>().await
    })
    .unwrap();
    let (l, t) = (lp.clone(), drops.token());
    // The pattern of the `add_signal_handler` example before it changed.
    lp.add_signal_handler(libc::SIGUSR2, move || {
        let _t = &t;
        l.stop();
    })
    .unwrap();
    lp
}

#[test]
fn a_loop_in_a_cycle_with_its_own_callbacks_is_released_when_its_thread_ends() {
    watchdog(|| {
        let drops = DropCounter::new();
        let d = drops.token();
        let counter = DropCounter::new();
        let c = counter.clone();
        thread::spawn(move || {
            let _d = d;
            let lp = cyclic_loop(&c);
            drop(lp);
        })
        .join()
        .unwrap();
        assert_eq!(drops.dropped(), 1);
        assert_eq!(
            counter.dropped(),
            4,
            "the loop's queues were never released"
        );
    });
}

#[test]
fn signal_slots_do_not_run_out_when_loops_are_dropped_without_close() {
    // 64 was the old slot count: each leaked loop kept its slot for ever.
    watchdog(|| {
        for _ in 0..100 {
            thread::spawn(|| {
                let drops = DropCounter::new();
                let lp = cyclic_loop(&drops);
                drop(lp);
            })
            .join()
            .unwrap();
        }
        let lp = EventLoop::new().unwrap();
        lp.add_signal_handler(libc::SIGUSR2, || {}).unwrap();
        assert!(lp.remove_signal_handler(libc::SIGUSR2).unwrap());
        lp.close().unwrap();
    });
}

#[test]
fn a_run_stopped_before_its_future_completed_leaves_no_cycle() {
    // run_until_complete's done callback stays with the pending task; it must not hold the loop.
    watchdog(|| {
        let drops = DropCounter::new();
        let lp = EventLoop::new().unwrap();
        lp.stop();
        let token: DropToken = drops.token();
        let err = lp
            .run_until_complete(async move {
                let _t = token;
                Never(None).await
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StoppedBeforeComplete);
        let weak = lp.downgrade();
        drop(lp);
        assert!(weak.upgrade().is_none(), "something still holds the loop");
        assert_eq!(drops.dropped(), 1);
    });
}

#[test]
fn a_weak_loop_in_a_callback_does_not_keep_the_loop_alive() {
    watchdog(|| {
        let drops = DropCounter::new();
        let lp = EventLoop::new().unwrap();
        let (weak, t) = (lp.downgrade(), drops.token());
        lp.call_later(3600.0, move || {
            let _t = &t;
            if let Some(l) = weak.upgrade() {
                l.stop();
            }
        })
        .unwrap();
        let weak = lp.downgrade();
        drop(lp);
        assert!(weak.upgrade().is_none());
        assert_eq!(drops.dropped(), 1);
    });
}
