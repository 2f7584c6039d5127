//! Debug mode (spec R27): with debug on, callbacks and task steps that take at least
//! `slow_callback_duration` are logged as "Executing <what> took <secs> seconds" at WARN on the
//! `log` target `asyncio`. This binary installs a capturing logger; a zero threshold makes every
//! callback "slow", so no test has to sleep.

mod loop_support;

use std::time::Duration;

use asyncio::EventLoop;
use loop_support::{
    install_capturing_logger, slow_lines, take_logs, virtual_loop, watchdog, yield_now,
};

fn check_format(line: &str) {
    let rest = line.strip_prefix("Executing ").unwrap();
    let (_, secs) = rest.rsplit_once(" took ").unwrap();
    let number = secs.strip_suffix(" seconds").unwrap();
    let (_, decimals) = number.split_once('.').unwrap();
    assert_eq!(decimals.len(), 3, "{line}");
    assert!(number.parse::<f64>().unwrap() >= 0.0);
}

#[test]
fn debug_mode_logs_slow_callbacks_and_task_steps() {
    install_capturing_logger();
    watchdog(|| {
        take_logs();
        let (lp, _) = virtual_loop();
        lp.set_debug(true);
        lp.set_slow_callback_duration(Duration::ZERO);
        assert!(lp.get_debug());
        assert_eq!(lp.slow_callback_duration(), Duration::ZERO);
        fn marker_callback() {}
        lp.call_soon(marker_callback).unwrap();
        lp.call_later(1.0, || ()).unwrap();
        lp.call_soon_threadsafe(|| ()).unwrap();
        let task = lp
            .create_task(async {
                yield_now().await;
            })
            .unwrap();
        task.set_name("slow-task");
        lp.run_until_complete(async {
            asyncio::sleep(2.0).await.unwrap();
        })
        .unwrap();
        let lines = slow_lines();
        for line in &lines {
            check_format(line);
        }
        assert!(
            lines.iter().any(|l| l.contains("marker_callback")),
            "{lines:#?}"
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("Executing slow-task took"))
                .count(),
            2,
            "{lines:#?}"
        );
        // Callback, timer, threadsafe callback, two steps of each task, done callbacks.
        assert!(lines.len() >= 7, "{lines:#?}");
        lp.close().unwrap();
    });
}

#[test]
fn without_debug_mode_nothing_is_logged() {
    install_capturing_logger();
    watchdog(|| {
        take_logs();
        let lp = EventLoop::builder()
            .clock(std::rc::Rc::new(asyncio::VirtualClock::new()))
            .debug(false)
            .slow_callback_duration(Duration::ZERO)
            .build()
            .unwrap();
        assert!(!lp.get_debug());
        lp.call_soon(|| ()).unwrap();
        lp.run_until_complete(async { yield_now().await }).unwrap();
        assert!(slow_lines().is_empty());
        // Turned on while idle, it applies from the next callback on.
        lp.set_debug(true);
        lp.call_soon(|| ()).unwrap();
        lp.run_until_complete(async {}).unwrap();
        assert!(!slow_lines().is_empty());
        lp.set_debug(false);
        lp.call_soon(|| ()).unwrap();
        lp.run_until_complete(async {}).unwrap();
        assert!(slow_lines().is_empty());
        lp.close().unwrap();
    });
}

#[test]
fn fast_callbacks_under_the_threshold_are_not_logged() {
    install_capturing_logger();
    watchdog(|| {
        take_logs();
        let lp = EventLoop::builder()
            .clock(std::rc::Rc::new(asyncio::VirtualClock::new()))
            .debug(true)
            .slow_callback_duration(Duration::from_secs(3600))
            .build()
            .unwrap();
        assert!(lp.get_debug());
        assert_eq!(lp.slow_callback_duration(), Duration::from_secs(3600));
        for _ in 0..10 {
            lp.call_soon(|| ()).unwrap();
        }
        lp.run_until_complete(async { yield_now().await }).unwrap();
        assert!(slow_lines().is_empty());
        lp.close().unwrap();
    });
}

#[test]
fn the_default_threshold_is_a_tenth_of_a_second() {
    watchdog(|| {
        let lp = EventLoop::builder().debug(true).build().unwrap();
        assert_eq!(lp.slow_callback_duration(), Duration::from_millis(100));
        lp.close().unwrap();
    });
}
