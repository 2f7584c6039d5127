//! The closed-loop matrix (spec R17-R18, R34): every way to schedule work on a closed loop is
//! an `ErrorKind::Closed` error with CPython's message "Event loop is closed", never a panic;
//! `remove_reader`/`remove_writer` answer `false`; `stop`, `time`, `is_running`,
//! `create_future` and a second `close` still work.

mod loop_support;

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncio::{
    AbstractEventLoop, Error, ErrorKind, EventLoop, ExceptionContext, ExceptionHandler,
    ThreadPoolExecutor,
};
use loop_support::{virtual_loop, watchdog, DropCounter};

fn assert_closed<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) {
    match r {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Closed, "{what}: {e:?}");
            assert_eq!(e.to_string(), "Event loop is closed", "{what}");
        }
        Ok(v) => panic!("{what} succeeded on a closed loop: {v:?}"),
    }
}

fn closed_loop() -> EventLoop {
    let (lp, _) = virtual_loop();
    lp.close().unwrap();
    lp
}

#[test]
fn scheduling_on_a_closed_loop_is_a_closed_error() {
    watchdog(|| {
        let lp = closed_loop();
        let drops = DropCounter::new();
        let t = drops.token();
        assert_closed("call_soon", lp.call_soon(move || drop(t)));
        let t = drops.token();
        assert_closed(
            "call_soon_threadsafe",
            lp.call_soon_threadsafe(move || drop(t)),
        );
        let t = drops.token();
        assert_closed(
            "handle.call_soon_threadsafe",
            lp.handle().call_soon_threadsafe(move || drop(t)),
        );
        let t = drops.token();
        assert_closed("call_later", lp.call_later(1.0, move || drop(t)));
        assert_closed(
            "call_later(Duration)",
            lp.call_later(Duration::from_secs(1), || ()),
        );
        assert_closed("call_at", lp.call_at(1.0, || ()));
        assert_closed(
            "call_at(Instant)",
            lp.call_at(Instant::now() + Duration::from_secs(1), || ()),
        );
        let t = drops.token();
        assert_closed(
            "create_task",
            lp.create_task(async move { drop(t) }).map(|_| ()),
        );
        // Every rejected closure and future was dropped, none was run or kept.
        assert_eq!(drops.dropped(), 5);
        assert_eq!(lp.timer_heap_len(), 0);
    });
}

#[test]
fn running_a_closed_loop_is_a_closed_error() {
    watchdog(|| {
        let lp = closed_loop();
        assert_closed("run_forever", lp.run_forever());
        let polled = Rc::new(Cell::new(false));
        let p = polled.clone();
        assert_closed(
            "run_until_complete",
            lp.run_until_complete(async move { p.set(true) }),
        );
        let p = polled.clone();
        assert_closed("block_on", lp.block_on(async move { p.set(true) }));
        assert!(!polled.get());
        assert!(!lp.is_running());
        // A pre-stopped closed loop is still closed.
        lp.stop();
        assert_closed("run_forever after stop", lp.run_forever());
    });
}

#[test]
fn offloading_to_a_closed_loop_is_a_closed_error() {
    watchdog(|| {
        let lp = closed_loop();
        assert_closed(
            "run_in_executor(default)",
            lp.run_in_executor(None, || 1).map(|_| ()),
        );
        let pool: Arc<dyn asyncio::Executor> = Arc::new(ThreadPoolExecutor::new());
        assert_closed(
            "run_in_executor(explicit)",
            lp.run_in_executor(Some(pool.clone()), || 1).map(|_| ()),
        );
        pool.shutdown(true);
        assert_closed(
            "run_coroutine_threadsafe",
            lp.handle()
                .run_coroutine_threadsafe(async { 1 })
                .map(|_| ()),
        );
    });
}

#[test]
fn fd_watching_on_a_closed_loop() {
    // R18/R34: add_* is an error, remove_* is false (test_remove_fds_after_closing).
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (a, b) = UnixStream::pair().unwrap();
        let drops = DropCounter::new();
        let t = drops.token();
        lp.add_reader(a.as_raw_fd(), move || {
            let _t = &t;
        })
        .unwrap();
        let t = drops.token();
        lp.add_writer(b.as_raw_fd(), move || {
            let _t = &t;
        })
        .unwrap();
        lp.close().unwrap();
        // close() released the watchers.
        assert_eq!(drops.dropped(), 2);
        assert!(!lp.remove_reader(a.as_raw_fd()).unwrap());
        assert!(!lp.remove_writer(b.as_raw_fd()).unwrap());
        assert!(!lp.remove_reader(b.as_raw_fd()).unwrap());
        assert_closed("add_reader", lp.add_reader(a.as_raw_fd(), || ()));
        assert_closed("add_writer", lp.add_writer(b.as_raw_fd(), || ()));
        // The fds are free for another loop.
        let (lp2, _) = virtual_loop();
        lp2.add_reader(a.as_raw_fd(), || ()).unwrap();
        assert!(lp2.remove_reader(a.as_raw_fd()).unwrap());
        lp2.close().unwrap();
    });
}

#[test]
fn add_signal_handler_on_a_closed_loop_is_a_closed_error() {
    watchdog(|| {
        let lp = closed_loop();
        assert_closed(
            "add_signal_handler",
            lp.add_signal_handler(libc::SIGUSR1, || ()),
        );
        // Argument validation comes first, as in CPython (add_signal_handler(0, cb)).
        let e = lp.add_signal_handler(0, || ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    });
}

#[test]
fn argument_errors_come_before_the_closed_check() {
    watchdog(|| {
        let lp = closed_loop();
        let e = lp.call_later(f64::NAN, || ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = lp.call_at(f64::NAN, || ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = lp.add_reader(-1, || ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    });
}

#[test]
fn what_still_works_on_a_closed_loop() {
    watchdog(|| {
        let (lp, clock) = virtual_loop();
        clock.advance(12.5);
        lp.close().unwrap();
        assert!(lp.is_closed());
        assert!(lp.handle().is_closed());
        assert!(!lp.is_running());
        assert!(!lp.handle().is_running());
        lp.stop();
        lp.handle().stop();
        assert_eq!(lp.time(), 12.5);
        lp.close().unwrap();
        lp.close().unwrap();
        lp.set_debug(true);
        assert!(lp.get_debug());
        // create_future works; set_result too, as long as there is no callback to schedule.
        let f = lp.create_future::<u8>();
        assert!(!f.done());
        f.set_result(3).unwrap();
        assert_eq!(f.result().unwrap(), 3);
        let g = lp.create_future::<u8>();
        g.add_done_callback(|_| ()).unwrap();
        assert_closed("set_result with a done callback", g.set_result(4));
        assert_eq!(g.result().unwrap(), 4);
        // The exception handler machinery works.
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        let handler: ExceptionHandler = Rc::new(move |_, _| s.set(s.get() + 1));
        lp.set_exception_handler(Some(handler));
        assert!(lp.get_exception_handler().is_some());
        lp.call_exception_handler(&ExceptionContext::new("after close"));
        assert_eq!(seen.get(), 1);
        assert!(lp.all_tasks().is_empty());
        assert!(lp.current_task().is_none());
    });
}

#[test]
fn the_object_safe_interface_reports_closed_too() {
    watchdog(|| {
        let lp = closed_loop();
        let dyn_lp: &dyn AbstractEventLoop = &lp;
        assert!(dyn_lp.is_closed());
        assert_closed("dyn call_soon", dyn_lp.call_soon(Box::new(|| ())));
        assert_closed("dyn call_later", dyn_lp.call_later(1.0, Box::new(|| ())));
        assert_closed("dyn call_at", dyn_lp.call_at(1.0, Box::new(|| ())));
        assert_closed(
            "dyn call_soon_threadsafe",
            dyn_lp.call_soon_threadsafe(Box::new(|| ())),
        );
        assert_closed(
            "dyn create_task",
            dyn_lp.create_task(Box::pin(async {})).map(|_| ()),
        );
        assert_closed("dyn run_forever", dyn_lp.run_forever());
        assert_closed(
            "dyn run_until_complete",
            dyn_lp.run_until_complete(Box::pin(async {})),
        );
        dyn_lp.stop();
        dyn_lp.close().unwrap();
    });
}

#[test]
fn threadsafe_calls_from_other_threads_after_close_are_closed_errors() {
    watchdog(|| {
        let lp = closed_loop();
        let handle = lp.handle();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = handle.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let e = h.call_soon_threadsafe(|| ()).unwrap_err();
                        assert_eq!(e.kind(), ErrorKind::Closed);
                        h.stop();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn closing_after_runs_and_stops() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        assert_eq!(lp.run_until_complete(async { 1 }).unwrap(), 1);
        lp.stop();
        lp.close().unwrap();
        assert_closed("run_until_complete", lp.run_until_complete(async { 2 }));
        // A clone of the loop sees the same closed loop.
        let clone = lp.clone();
        assert!(clone.is_closed());
        assert_closed("clone.call_soon", clone.call_soon(|| ()));
    });
}
