//! An idle loop sleeps in its selector instead of spinning (design section 7), and the poll is
//! skipped when it cannot find anything. A counting `Selector` wrapped around
//! `asyncio::PollingSelector` counts `select` calls and records their timeouts; the assertions
//! are counts and computed timeouts, never measured durations.

mod loop_support;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{EventLoop, VirtualClock};
use loop_support::{run_once, run_while, wait_running, watchdog, CountingSelector, SelectStats};

/// Waits (bounded by the watchdog) until the loop has entered its `n`th `select`.
fn wait_selects(stats: &SelectStats, n: usize) {
    while stats.count() < n {
        std::thread::yield_now();
    }
}

#[test]
fn an_idle_loop_sleeps_in_the_poller() {
    watchdog(|| {
        let (lp, stats) = CountingSelector::event_loop();
        let st = stats.clone();
        run_while(&lp, move |handle| {
            wait_selects(&st, 1);
            std::thread::sleep(Duration::from_millis(50));
            handle
                .call_soon_threadsafe(|| asyncio::get_running_loop().unwrap().stop())
                .unwrap();
        });
        let selects = stats.count();
        assert!(
            (1..=5).contains(&selects),
            "{selects} selects for an idle loop"
        );
        // With nothing scheduled, the loop waits without a timeout.
        assert_eq!(stats.timeouts()[0], None);
        lp.close().unwrap();
    });
}

#[test]
fn an_idle_loop_with_a_far_timer_sleeps_until_the_timer() {
    watchdog(|| {
        let (lp, stats) = CountingSelector::event_loop();
        lp.call_later(3600.0, || panic!("must not fire")).unwrap();
        let st = stats.clone();
        run_while(&lp, move |handle| {
            wait_selects(&st, 1);
            std::thread::sleep(Duration::from_millis(50));
            handle.stop();
        });
        let timeouts = stats.timeouts();
        assert!(timeouts.len() <= 5, "{timeouts:?}");
        // The first wait is for (about) the timer's delay, not a short polling interval.
        let first = timeouts[0].expect("a timeout");
        assert!(first > Duration::from_secs(3500), "{first:?}");
        assert!(first <= Duration::from_secs(3600), "{first:?}");
        lp.close().unwrap();
    });
}

#[test]
fn sleep_timeouts_follow_the_next_timer_and_are_capped_at_a_day() {
    // A frozen virtual clock makes the loop really wait, with a timeout computed from loop time.
    watchdog(|| {
        let clock = VirtualClock::new();
        clock.set_frozen(true);
        let (sel, stats) = CountingSelector::boxed();
        let lp = EventLoop::builder()
            .selector(sel)
            .clock(Rc::new(clock.clone()))
            .build()
            .unwrap();
        let far = lp.call_later(1e9, || ()).unwrap();
        let near = lp.call_later(2.5, || ()).unwrap();
        let cases = [
            (Some(Duration::from_secs_f64(2.5)), true),
            (Some(Duration::from_secs(24 * 3600)), false),
        ];
        for (expected, cancel_near_after) in cases {
            let st = stats.clone();
            let before = stats.count();
            run_while(&lp, move |handle| {
                wait_selects(&st, before + 1);
                handle.stop();
            });
            let timeouts = stats.timeouts();
            assert_eq!(timeouts[before], expected, "{timeouts:?}");
            assert!(timeouts.len() <= before + 3, "{timeouts:?}");
            if cancel_near_after {
                near.cancel();
            }
        }
        far.cancel();
        lp.close().unwrap();
    });
}

#[test]
fn an_infinite_timer_means_waiting_without_a_timeout() {
    watchdog(|| {
        let (lp, stats) = CountingSelector::event_loop();
        lp.call_later(f64::INFINITY, || panic!("never")).unwrap();
        run_while(&lp, |handle| {
            wait_running(&handle);
            handle.stop();
        });
        assert!(stats
            .timeouts()
            .iter()
            .all(|t| t.is_none() || *t == Some(Duration::ZERO)));
        lp.close().unwrap();
    });
}

#[test]
fn without_fds_a_busy_loop_never_polls() {
    // Design section 4 step 3: when the timeout is 0 and no fd is registered, skip the poll.
    watchdog(|| {
        let clock = VirtualClock::new();
        let (sel, stats) = CountingSelector::boxed();
        let lp = EventLoop::builder()
            .selector(sel)
            .clock(Rc::new(clock.clone()))
            .build()
            .unwrap();
        let l = lp.clone();
        lp.run_until_complete(async move {
            for _ in 0..100 {
                asyncio::sleep(0.0).await.unwrap();
            }
            // Timers on a virtual clock: the loop jumps instead of waiting.
            asyncio::sleep(10.0).await.unwrap();
            l.call_soon(|| ()).unwrap();
            l.call_later(1.0, || ()).unwrap();
            asyncio::sleep(5.0).await.unwrap();
        })
        .unwrap();
        assert_eq!(clock.now(), 15.0);
        assert_eq!(stats.count(), 0);
        lp.close().unwrap();
    });
}

#[test]
fn with_an_fd_registered_a_busy_loop_polls_without_waiting() {
    watchdog(|| {
        let (lp, stats) = CountingSelector::event_loop();
        let (a, _b) = UnixStream::pair().unwrap();
        lp.add_reader(a.as_raw_fd(), || panic!("nothing to read"))
            .unwrap();
        let before = lp.iteration_count();
        lp.run_until_complete(async {
            for _ in 0..20 {
                asyncio::sleep(0.0).await.unwrap();
            }
        })
        .unwrap();
        let iterations = (lp.iteration_count() - before) as usize;
        let timeouts = stats.timeouts();
        // One poll per iteration, none of them waiting: there was always work ready.
        assert_eq!(timeouts.len(), iterations);
        assert!(timeouts.iter().all(|t| *t == Some(Duration::ZERO)));
        assert!(lp.remove_reader(a.as_raw_fd()).unwrap());
        lp.close().unwrap();
    });
}

#[test]
fn an_idle_loop_watching_a_quiet_fd_sleeps_until_it_is_readable() {
    watchdog(|| {
        use std::io::{Read, Write};
        let (lp, stats) = CountingSelector::event_loop();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let got = Rc::new(std::cell::RefCell::new(Vec::new()));
        let (l, g) = (lp.clone(), got.clone());
        lp.add_reader(fd, move || {
            let mut buf = [0u8; 16];
            let n = a.read(&mut buf).unwrap();
            g.borrow_mut().extend_from_slice(&buf[..n]);
            l.remove_reader(fd).unwrap();
            l.stop();
        })
        .unwrap();
        let st = stats.clone();
        let _b = run_while(&lp, move |_| {
            wait_selects(&st, 1);
            std::thread::sleep(Duration::from_millis(50));
            b.write_all(b"ping").unwrap();
            b
        });
        assert_eq!(&*got.borrow(), b"ping");
        assert!(stats.count() <= 5, "{:?}", stats.timeouts());
        assert_eq!(stats.timeouts()[0], None);
        lp.close().unwrap();
    });
}

/// A selector whose `select` always fails, counting the attempts.
struct BrokenSelector {
    inner: asyncio::PollingSelector,
    selects: Rc<std::cell::Cell<usize>>,
}

impl asyncio::Selector for BrokenSelector {
    fn register(&mut self, fd: std::os::fd::RawFd, i: asyncio::Interest) -> std::io::Result<()> {
        self.inner.register(fd, i)
    }
    fn modify(&mut self, fd: std::os::fd::RawFd, i: asyncio::Interest) -> std::io::Result<()> {
        self.inner.modify(fd, i)
    }
    fn deregister(&mut self, fd: std::os::fd::RawFd) -> std::io::Result<()> {
        self.inner.deregister(fd)
    }
    fn select(
        &mut self,
        _events: &mut Vec<asyncio::ReadyEvent>,
        _timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        self.selects.set(self.selects.get() + 1);
        Err(std::io::Error::from_raw_os_error(libc::EBADF))
    }
    fn waker(&self) -> std::sync::Arc<dyn asyncio::SelectorWaker> {
        self.inner.waker()
    }
}

#[test]
fn a_failing_selector_ends_the_run_with_its_error_instead_of_spinning() {
    watchdog(|| {
        let selects = Rc::new(std::cell::Cell::new(0));
        let lp = EventLoop::builder()
            .selector(Box::new(BrokenSelector {
                inner: asyncio::PollingSelector::new().unwrap(),
                selects: selects.clone(),
            }))
            .build()
            .unwrap();
        // Nothing ready and no timer: the loop must wait in the selector, which fails.
        let err = lp.run_forever().unwrap_err();
        assert_eq!(err.kind(), asyncio::ErrorKind::Io);
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(selects.get(), 1, "one failed select, then the run ends");
        assert!(!lp.is_running());
        // What was queued stays queued and runs once the loop can run again (no wait needed).
        let ran = Rc::new(std::cell::Cell::new(false));
        let r = ran.clone();
        lp.call_soon(move || r.set(true)).unwrap();
        run_once(&lp);
        assert!(ran.get());
        lp.close().unwrap();
    });
}
