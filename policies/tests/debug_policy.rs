//! `DebugEventLoopPolicy`: debug mode and the slow-callback threshold on every loop it makes,
//! slow callbacks logged, the base's executor kept, and `asyncio::run` going through it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use asyncio::{DefaultEventLoopPolicy, EventLoopPolicy};
use asyncio_policies::DebugEventLoopPolicy;
use support::{
    global_policy_lock, install_capturing_logger, named_pool, slow_lines, take_logs, watchdog,
    worker_name,
};

#[test]
fn every_new_loop_is_a_debug_loop_with_the_threshold() {
    watchdog(|| {
        let policy = DebugEventLoopPolicy::new().slow_callback_duration(Duration::from_millis(7));
        assert_eq!(
            policy.get_slow_callback_duration(),
            Duration::from_millis(7)
        );
        for _ in 0..3 {
            let lp = policy.new_event_loop().unwrap();
            assert!(lp.get_debug());
            assert_eq!(lp.slow_callback_duration(), Duration::from_millis(7));
            lp.close().unwrap();
        }
    });
}

#[test]
fn the_default_threshold_is_asyncios_100_ms() {
    let policy = DebugEventLoopPolicy::default();
    assert_eq!(
        policy.get_slow_callback_duration(),
        Duration::from_millis(100)
    );
    assert_eq!(
        DebugEventLoopPolicy::DEFAULT_SLOW_CALLBACK_DURATION,
        Duration::from_millis(100)
    );
    let lp = policy.new_event_loop().unwrap();
    assert_eq!(lp.slow_callback_duration(), Duration::from_millis(100));
    lp.close().unwrap();
}

#[test]
fn slow_callbacks_are_logged_and_fast_ones_are_not() {
    watchdog(|| {
        install_capturing_logger();
        let policy = DebugEventLoopPolicy::new().slow_callback_duration(Duration::from_millis(5));
        let lp = policy.new_event_loop().unwrap();
        take_logs();
        let stop = lp.clone();
        lp.call_soon(move || {
            std::thread::sleep(Duration::from_millis(30));
            stop.stop();
        })
        .unwrap();
        lp.run_forever().unwrap();
        let lines = slow_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(" took "), "{}", lines[0]);
        assert!(lines[0].ends_with(" seconds"), "{}", lines[0]);

        // Under the threshold: silent.
        lp.set_slow_callback_duration(Duration::from_secs(60));
        let stop = lp.clone();
        lp.call_soon(move || stop.stop()).unwrap();
        lp.run_forever().unwrap();
        assert!(slow_lines().is_empty());
        lp.close().unwrap();
    });
}

#[test]
fn slow_task_steps_are_logged_too() {
    watchdog(|| {
        install_capturing_logger();
        let policy = DebugEventLoopPolicy::new().slow_callback_duration(Duration::from_millis(5));
        let lp = policy.new_event_loop().unwrap();
        take_logs();
        lp.run_until_complete(async {
            std::thread::sleep(Duration::from_millis(30));
        })
        .unwrap();
        assert!(!slow_lines().is_empty());
        lp.close().unwrap();
    });
}

#[test]
fn a_plain_default_loop_logs_nothing() {
    watchdog(|| {
        install_capturing_logger();
        let lp = DefaultEventLoopPolicy::new().new_event_loop().unwrap();
        lp.set_debug(false);
        take_logs();
        lp.run_until_complete(async {
            std::thread::sleep(Duration::from_millis(120));
        })
        .unwrap();
        assert!(slow_lines().is_empty());
        lp.close().unwrap();
    });
}

#[test]
fn the_bases_shared_executor_is_kept() {
    watchdog(|| {
        let pool = named_pool("debug-pool", 1);
        let policy =
            DebugEventLoopPolicy::with_base(DefaultEventLoopPolicy::with_executor(pool.clone()));
        assert!(policy.default_executor().is_some());
        let lp = policy.new_event_loop().unwrap();
        assert!(lp.get_debug());
        assert_eq!(worker_name(&lp).as_deref(), Some("debug-pool_0"));
        lp.close().unwrap();
        assert!(!asyncio::Executor::is_shutdown(&*pool));
        asyncio::Executor::shutdown(&*pool, true);
    });
}

#[test]
fn asyncio_run_and_runner_use_the_installed_policy() {
    watchdog(|| {
        let _g = global_policy_lock();
        asyncio::set_event_loop_policy(Some(Arc::new(
            DebugEventLoopPolicy::new().slow_callback_duration(Duration::from_millis(3)),
        )));
        let (debug, threshold) = asyncio::run(async {
            let lp = asyncio::get_running_loop().unwrap();
            (lp.get_debug(), lp.slow_callback_duration())
        })
        .unwrap();
        assert!(debug);
        assert_eq!(threshold, Duration::from_millis(3));

        let mut runner = asyncio::Runner::new();
        assert!(runner.get_loop().unwrap().get_debug());
        runner.close().unwrap();
        asyncio::set_event_loop_policy(None);
    });
}

#[test]
fn a_set_loop_is_returned_as_is() {
    // Only new loops are touched: a loop set by the user keeps its own settings.
    let policy = DebugEventLoopPolicy::new();
    let mine = asyncio::EventLoop::builder().debug(false).build().unwrap();
    policy.set_event_loop(Some(mine.clone())).unwrap();
    let got = policy.get_event_loop().unwrap();
    assert!(got.ptr_eq(&mine));
    assert!(!got.get_debug());
    policy.set_event_loop(None).unwrap();
    mine.close().unwrap();
}
