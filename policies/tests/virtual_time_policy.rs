//! `VirtualTimePolicy`: each loop on its own virtual clock, found with `clock_of`, exact times,
//! frozen clocks, the base's executor kept, and `asyncio::run` going through it.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncio::{DefaultEventLoopPolicy, EventLoop, EventLoopPolicy};
use asyncio_policies::VirtualTimePolicy;
use support::{global_policy_lock, named_pool, watchdog};

#[test]
fn sleeps_take_no_wall_time_and_report_exact_times() {
    watchdog(|| {
        let policy = VirtualTimePolicy::new();
        let (lp, clock) = policy.new_event_loop_with_clock().unwrap();
        let wall = Instant::now();
        let times = lp
            .run_until_complete(async {
                let lp = asyncio::get_running_loop().unwrap();
                let mut seen = Vec::new();
                for secs in [1.0, 60.0, 3600.0] {
                    asyncio::sleep(secs).await.unwrap();
                    seen.push(lp.time());
                }
                seen
            })
            .unwrap();
        assert_eq!(times, [1.0, 61.0, 3661.0]);
        assert_eq!(clock.now(), 3661.0);
        assert!(wall.elapsed() < Duration::from_secs(5));
        lp.close().unwrap();
    });
}

#[test]
fn every_loop_has_its_own_clock() {
    watchdog(|| {
        let policy = VirtualTimePolicy::new();
        let a = policy.new_event_loop().unwrap();
        let b = policy.new_event_loop().unwrap();
        let (ca, cb) = (policy.clock_of(&a).unwrap(), policy.clock_of(&b).unwrap());
        a.run_until_complete(asyncio::sleep(10.0)).unwrap().unwrap();
        assert_eq!((ca.now(), cb.now()), (10.0, 0.0));
        assert_eq!((a.time(), b.time()), (10.0, 0.0));
        cb.advance(2.5);
        assert_eq!(b.time(), 2.5);
        a.close().unwrap();
        b.close().unwrap();
    });
}

#[test]
fn clock_of_knows_only_its_own_loops() {
    let policy = VirtualTimePolicy::new();
    let other_policy = VirtualTimePolicy::new();
    let mine = policy.new_event_loop().unwrap();
    let theirs = other_policy.new_event_loop().unwrap();
    let plain = EventLoop::new().unwrap();
    assert!(policy.clock_of(&mine).is_some());
    assert!(policy.clock_of(&theirs).is_none());
    assert!(policy.clock_of(&plain).is_none());
    assert!(other_policy.clock_of(&theirs).is_some());
    for lp in [mine, theirs, plain] {
        lp.close().unwrap();
    }
}

#[test]
fn the_clock_stays_reachable_while_the_loop_lives() {
    let policy = VirtualTimePolicy::new();
    let lp = policy.new_event_loop().unwrap();
    let clone = lp.clone();
    lp.close().unwrap();
    // A closed loop still has its time (as asyncio's `time()` on a closed loop).
    let clock = policy.clock_of(&clone).unwrap();
    clock.advance(4.0);
    assert_eq!(clone.time(), 4.0);
}

#[test]
fn frozen_clocks_move_only_when_the_test_says() {
    watchdog(|| {
        let policy = VirtualTimePolicy::new().frozen(true);
        let (lp, clock) = policy.new_event_loop_with_clock().unwrap();
        let fired = Rc::new(RefCell::new(Vec::new()));
        for secs in [5.0, 10.0] {
            let f = fired.clone();
            lp.call_later(secs, move || f.borrow_mut().push(secs))
                .unwrap();
        }
        let step = || {
            lp.stop();
            lp.run_forever().unwrap();
        };
        step();
        assert!(fired.borrow().is_empty());
        assert_eq!(clock.now(), 0.0);
        clock.advance(5.0);
        step();
        assert_eq!(*fired.borrow(), [5.0]);
        clock.advance(5.0);
        step();
        assert_eq!(*fired.borrow(), [5.0, 10.0]);
        lp.close().unwrap();
    });
}

#[test]
fn loops_on_several_threads_do_not_share_time() {
    let policy = Arc::new(VirtualTimePolicy::new());
    let threads: Vec<_> = (1..=4)
        .map(|n| {
            let p = policy.clone();
            std::thread::spawn(move || {
                let lp = p.new_event_loop().unwrap();
                p.set_event_loop(Some(lp.clone())).unwrap();
                let secs = f64::from(n) * 100.0;
                lp.run_until_complete(asyncio::sleep(secs))
                    .unwrap()
                    .unwrap();
                let now = p.clock_of(&p.get_event_loop().unwrap()).unwrap().now();
                p.set_event_loop(None).unwrap();
                lp.close().unwrap();
                (secs, now)
            })
        })
        .collect();
    for t in threads {
        let (secs, now) = t.join().unwrap();
        assert_eq!(secs, now);
    }
}

#[test]
fn the_bases_shared_executor_is_kept() {
    watchdog(|| {
        let pool = named_pool("vt-pool", 1);
        let policy =
            VirtualTimePolicy::with_base(DefaultEventLoopPolicy::with_executor(pool.clone()));
        let (lp, clock) = policy.new_event_loop_with_clock().unwrap();
        let l = lp.clone();
        let name = lp
            .run_until_complete(async move {
                asyncio::sleep(30.0).await.unwrap();
                l.run_in_executor(None, || std::thread::current().name().map(str::to_owned))
                    .unwrap()
                    .await
            })
            .unwrap()
            .unwrap();
        assert_eq!(name.as_deref(), Some("vt-pool_0"));
        assert_eq!(clock.now(), 30.0);
        lp.close().unwrap();
        assert!(!asyncio::Executor::is_shutdown(&*pool));
        asyncio::Executor::shutdown(&*pool, true);
    });
}

#[test]
fn asyncio_run_uses_virtual_time_when_installed() {
    watchdog(|| {
        let _g = global_policy_lock();
        asyncio::set_event_loop_policy(Some(Arc::new(VirtualTimePolicy::new())));
        let wall = Instant::now();
        let t = asyncio::run(async {
            asyncio::sleep(86_400.0).await.unwrap(); // a day
            asyncio::get_running_loop().unwrap().time()
        })
        .unwrap();
        assert_eq!(t, 86_400.0);
        assert!(wall.elapsed() < Duration::from_secs(5));
        asyncio::set_event_loop_policy(None);
    });
}

#[test]
fn timeouts_are_exact() {
    watchdog(|| {
        let policy = VirtualTimePolicy::new();
        let (lp, clock) = policy.new_event_loop_with_clock().unwrap();
        let err = lp
            .run_until_complete(asyncio::timeout(2.0, asyncio::sleep(10.0)))
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), asyncio::ErrorKind::Timeout);
        assert_eq!(clock.now(), 2.0);
        lp.close().unwrap();
    });
}
