//! `asyncio::run` and `Runner` (R48-R50): results, leftover tasks cancelled at shutdown,
//! refusal inside a running loop, loop factories, debug mode, reuse and closing.

mod support_tasks;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{get_running_loop, sleep, ErrorKind, EventLoop, Runner, VirtualClock};
use support_tasks::{collect_exceptions, drop_flag, watchdog};

fn virtual_factory() -> asyncio::Result<EventLoop> {
    EventLoop::builder()
        .clock(Rc::new(VirtualClock::new()))
        .build()
}

#[test]
fn run_returns_the_output() {
    let _w = watchdog("run_output");
    let out = asyncio::run(async {
        sleep(0.0).await.unwrap();
        let lp = get_running_loop().unwrap();
        let t = lp.create_task(async { 20 }).unwrap();
        t.await.unwrap() + 22
    })
    .unwrap();
    assert_eq!(out, 42);
    // Nothing is left running on this thread.
    assert!(asyncio::try_running_loop().is_none());
}

#[test]
fn run_closes_its_loop() {
    let _w = watchdog("run_closes");
    let lp = asyncio::run(async { get_running_loop().unwrap() }).unwrap();
    assert!(lp.is_closed());
    assert!(!lp.is_running());
}

#[test]
fn run_cancels_leftover_tasks_and_runs_their_drop() {
    let _w = watchdog("run_leftovers");
    let (started_dropped, started_guard) = drop_flag();
    let (unstarted_dropped, unstarted_guard) = drop_flag();
    let started_ran_on = Rc::new(Cell::new(false));
    let unstarted_polled = Rc::new(Cell::new(false));
    let (s, u) = (started_ran_on.clone(), unstarted_polled.clone());
    let out = asyncio::run(async move {
        let lp = get_running_loop().unwrap();
        drop(
            lp.create_task(async move {
                let _finally = started_guard;
                s.set(true);
                // Would take a day: it must be cancelled, not waited for.
                sleep(86_400.0).await.unwrap();
                unreachable!();
            })
            .unwrap(),
        );
        sleep(0.0).await.unwrap();
        // Created on the last step: it never gets to run.
        drop(
            lp.create_task(async move {
                let _finally = unstarted_guard;
                u.set(true);
            })
            .unwrap(),
        );
        "main done"
    })
    .unwrap();
    assert_eq!(out, "main done");
    assert!(started_ran_on.get());
    assert!(started_dropped.get(), "a leftover task's Drop must run");
    assert!(unstarted_dropped.get());
}

#[test]
fn run_inside_a_running_loop_is_refused() {
    let _w = watchdog("run_nested");
    let event_loop = EventLoop::new().unwrap();
    let (dropped, guard) = drop_flag();
    let err = event_loop
        .run_until_complete(async move {
            asyncio::run(async move {
                let _g = guard;
                unreachable!("the nested future must not run");
            })
            .unwrap_err()
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::AnotherLoopRunning);
    assert_eq!(
        err.to_string(),
        "asyncio.run() cannot be called from a running event loop"
    );
    assert!(dropped.get());
    // The outer loop is unharmed.
    assert_eq!(event_loop.run_until_complete(async { 3 }).unwrap(), 3);
    event_loop.close().unwrap();
}

#[test]
fn run_reports_a_panicking_main_future() {
    let _w = watchdog("run_panic");
    let err = asyncio::run(async { std::panic::resume_unwind(Box::new("main boom")) }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.message(), "main boom");
    // A fresh run works afterwards.
    assert_eq!(asyncio::run(async { 1 }).unwrap(), 1);
}

#[test]
fn run_waits_for_executor_jobs() {
    let _w = watchdog("run_executor");
    // Runner.close shuts the default executor down and joins it: a job started by the main
    // future finishes before run() returns.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    asyncio::run(async move {
        let lp = get_running_loop().unwrap();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let fut = lp
            .run_in_executor(None, move || {
                started_tx.send(()).unwrap();
                release_rx.recv_timeout(support_tasks::BOUND).unwrap();
                for _ in 0..1000 {
                    std::thread::yield_now();
                }
                f.store(true, Ordering::SeqCst);
            })
            .unwrap();
        // Once started, dropping the future no longer cancels the job (R29).
        started_rx.recv_timeout(support_tasks::BOUND).unwrap();
        drop(fut);
        release_tx.send(()).unwrap();
    })
    .unwrap();
    assert!(finished.load(Ordering::SeqCst));
}

#[test]
fn a_runner_is_reusable_and_keeps_one_loop() {
    let _w = watchdog("runner_reuse");
    let mut runner = Runner::builder().loop_factory(virtual_factory).build();
    let lp = runner.get_loop().unwrap();
    let a = runner
        .run(async {
            sleep(10.0).await.unwrap();
            get_running_loop().unwrap()
        })
        .unwrap();
    let b = runner
        .run(async {
            sleep(5.0).await.unwrap();
            get_running_loop().unwrap()
        })
        .unwrap();
    assert!(a.ptr_eq(&lp));
    assert!(b.ptr_eq(&lp));
    assert_eq!(lp.time(), 15.0);
    assert!(runner.get_loop().unwrap().ptr_eq(&lp));

    // A task left behind by one run keeps going in the next.
    let progressed = Rc::new(Cell::new(0));
    let p = progressed.clone();
    runner
        .run(async move {
            let lp = get_running_loop().unwrap();
            drop(
                lp.create_task(async move {
                    loop {
                        sleep(1.0).await.unwrap();
                        p.set(p.get() + 1);
                    }
                })
                .unwrap(),
            );
        })
        .unwrap();
    runner.run(sleep(3.5)).unwrap().unwrap();
    assert_eq!(progressed.get(), 3);
    runner.close().unwrap();
    assert!(lp.is_closed());
}

#[test]
fn the_loop_factory_is_used_once() {
    let _w = watchdog("runner_factory");
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let made = Rc::new(Cell::new(0u64));
    let m = made.clone();
    let mut runner = Runner::builder()
        .loop_factory(move || {
            c.set(c.get() + 1);
            let lp = virtual_factory()?;
            m.set(lp.id());
            Ok(lp)
        })
        .build();
    assert_eq!(calls.get(), 0, "the loop is created lazily");
    let id = runner
        .run(async { get_running_loop().unwrap().id() })
        .unwrap();
    runner.run(async {}).unwrap();
    assert_eq!(calls.get(), 1);
    assert_eq!(id, made.get());
    runner.close().unwrap();
}

#[test]
fn a_failing_loop_factory_is_reported() {
    let _w = watchdog("runner_factory_err");
    let mut runner = Runner::builder()
        .loop_factory(|| {
            Err(asyncio::Error::new(
                ErrorKind::NotSupported,
                "no loop for you",
            ))
        })
        .build();
    let err = runner.run(async {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    runner.close().unwrap();
}

#[test]
fn debug_is_applied_only_when_given() {
    let _w = watchdog("runner_debug");
    let debug_loop = || {
        EventLoop::builder()
            .clock(Rc::new(VirtualClock::new()))
            .debug(true)
            .build()
    };
    let quiet_loop = || {
        EventLoop::builder()
            .clock(Rc::new(VirtualClock::new()))
            .debug(false)
            .build()
    };

    let mut on = Runner::builder()
        .debug(true)
        .loop_factory(quiet_loop)
        .build();
    assert!(on
        .run(async { get_running_loop().unwrap().get_debug() })
        .unwrap());
    on.close().unwrap();

    let mut off = Runner::builder()
        .debug(false)
        .loop_factory(debug_loop)
        .build();
    assert!(!off
        .run(async { get_running_loop().unwrap().get_debug() })
        .unwrap());
    off.close().unwrap();

    // Not given: the loop keeps its own setting.
    let mut kept = Runner::builder().loop_factory(debug_loop).build();
    assert!(kept.get_loop().unwrap().get_debug());
    kept.close().unwrap();
    let mut kept = Runner::builder().loop_factory(quiet_loop).build();
    assert!(!kept.get_loop().unwrap().get_debug());
    kept.close().unwrap();
}

#[test]
fn a_closed_runner_refuses_and_closes_twice_fine() {
    let _w = watchdog("runner_closed");
    let mut runner = Runner::builder().loop_factory(virtual_factory).build();
    assert_eq!(runner.run(async { 1 }).unwrap(), 1);
    let lp = runner.get_loop().unwrap();
    runner.close().unwrap();
    assert!(lp.is_closed());
    runner.close().unwrap();

    let err = runner.run(async { 2 }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(err.to_string(), "Runner is closed");
    let err = runner.get_loop().unwrap_err();
    assert_eq!(err.to_string(), "Runner is closed");
}

#[test]
fn closing_an_unused_runner_creates_no_loop() {
    let _w = watchdog("runner_unused");
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let mut runner = Runner::builder()
        .loop_factory(move || {
            c.set(c.get() + 1);
            virtual_factory()
        })
        .build();
    runner.close().unwrap();
    runner.close().unwrap();
    assert_eq!(calls.get(), 0);
    assert_eq!(
        runner.run(async {}).unwrap_err().to_string(),
        "Runner is closed"
    );
    // Default construction and dropping without use are fine too.
    drop(Runner::new());
    drop(Runner::default());
}

#[test]
fn runner_close_cancels_leftover_tasks() {
    let _w = watchdog("runner_close_tasks");
    let mut runner = Runner::builder().loop_factory(virtual_factory).build();
    let seen = collect_exceptions(&runner.get_loop().unwrap());
    let (dropped, guard) = drop_flag();
    let task_ref = runner
        .run(async move {
            let lp = get_running_loop().unwrap();
            let t = lp
                .create_task(async move {
                    let _g = guard;
                    std::future::pending::<()>().await
                })
                .unwrap();
            sleep(0.0).await.unwrap();
            t.as_task_ref()
        })
        .unwrap();
    assert!(!task_ref.done());
    runner.close().unwrap();
    assert!(dropped.get());
    assert!(task_ref.cancelled());
    // Cancellation at shutdown is expected: nothing is reported.
    assert!(seen.borrow().is_empty(), "{:?}", seen.borrow());
}

#[test]
fn runner_close_reports_a_task_failing_during_shutdown() {
    let _w = watchdog("runner_close_failing");
    // R50: a task that ends with an error other than cancellation while being shut down is
    // reported as "unhandled exception during asyncio.run() shutdown". Here the task's `Drop`
    // (its `finally`) panics when it is cancelled.
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            std::panic::resume_unwind(Box::new("finally boom"));
        }
    }
    let mut runner = Runner::builder().loop_factory(virtual_factory).build();
    let seen = collect_exceptions(&runner.get_loop().unwrap());
    runner
        .run(async {
            let lp = get_running_loop().unwrap();
            drop(
                lp.create_task(async {
                    let _g = PanicOnDrop;
                    std::future::pending::<()>().await
                })
                .unwrap(),
            );
            sleep(0.0).await.unwrap();
        })
        .unwrap();
    runner.close().unwrap();
    let seen = seen.borrow();
    assert!(
        seen.iter().any(
            |c| c.message == "unhandled exception during asyncio.run() shutdown"
                && c.exception.as_ref().map(|e| e.message()) == Some("finally boom")
        ),
        "{seen:?}"
    );
}

#[test]
fn runner_run_inside_a_running_loop_is_refused() {
    let _w = watchdog("runner_nested");
    let mut outer = Runner::builder().loop_factory(virtual_factory).build();
    let err = outer
        .run(async {
            let mut inner = Runner::builder().loop_factory(virtual_factory).build();
            let err = inner.run(async { 1 }).unwrap_err();
            inner.close().unwrap();
            err
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::AnotherLoopRunning);
    assert_eq!(
        err.to_string(),
        "Runner.run() cannot be called from a running event loop"
    );
    outer.close().unwrap();
}

#[test]
fn runner_run_reports_the_task_error() {
    let _w = watchdog("runner_task_error");
    let mut runner = Runner::builder().loop_factory(virtual_factory).build();
    let err = runner
        .run(async { std::panic::resume_unwind(Box::new("run boom")) })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    let err = runner
        .run(async {
            asyncio::current_task().unwrap().unwrap().cancel();
            sleep(1.0).await.unwrap();
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    // Still usable.
    assert_eq!(runner.run(async { 5 }).unwrap(), 5);
    runner.close().unwrap();
}

#[test]
fn dropping_a_runner_closes_its_loop() {
    let _w = watchdog("runner_drop");
    let (dropped, guard) = drop_flag();
    let lp = {
        let mut runner = Runner::builder().loop_factory(virtual_factory).build();
        runner
            .run(async move {
                let lp = get_running_loop().unwrap();
                drop(
                    lp.create_task(async move {
                        let _g = guard;
                        std::future::pending::<()>().await
                    })
                    .unwrap(),
                );
            })
            .unwrap();
        runner.get_loop().unwrap()
    };
    assert!(lp.is_closed());
    assert!(dropped.get());
}

/// Runs `f` on a fresh thread (not the main thread, where the default policy would create a
/// loop on demand) and propagates its panic.
fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

#[test]
fn a_runner_without_factory_sets_the_policy_loop_and_unsets_it_on_close() {
    let _w = watchdog("runner_policy");
    // R49/R50: no loop_factory => the policy makes the loop and it becomes the current loop,
    // once; close() sets the current loop back to None.
    on_fresh_thread(|| {
        assert_eq!(
            asyncio::get_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );
        let mut runner = Runner::new();
        let lp = runner.get_loop().unwrap();
        assert!(asyncio::get_event_loop().unwrap().ptr_eq(&lp));
        runner.run(async {}).unwrap();
        runner.run(async {}).unwrap();
        assert!(asyncio::get_event_loop().unwrap().ptr_eq(&lp));
        runner.close().unwrap();
        assert!(lp.is_closed());
        assert_eq!(
            asyncio::get_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );

        // asyncio.run() does the same.
        let inside = asyncio::run(async { asyncio::get_event_loop().unwrap() }).unwrap();
        assert!(inside.is_closed());
        assert_eq!(
            asyncio::get_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );
    });
}

#[test]
fn a_runner_with_a_factory_leaves_the_policy_alone() {
    let _w = watchdog("runner_factory_policy");
    on_fresh_thread(|| {
        let mut runner = Runner::builder().loop_factory(virtual_factory).build();
        let lp = runner.get_loop().unwrap();
        assert_eq!(
            asyncio::get_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );
        // A loop set by the user stays set through the runner's life.
        let mine = EventLoop::new().unwrap();
        asyncio::set_event_loop(Some(mine.clone())).unwrap();
        runner.run(async {}).unwrap();
        runner.close().unwrap();
        assert!(lp.is_closed());
        assert!(asyncio::get_event_loop().unwrap().ptr_eq(&mine));
        asyncio::set_event_loop(None).unwrap();
        mine.close().unwrap();
    });
}
