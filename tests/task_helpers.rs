//! The coroutine helpers: `sleep`, `wait_for`/`timeout`, `gather`, `shield`, `wait`,
//! `current_task` and `all_tasks`, all on a virtual clock.

mod support_tasks;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{
    all_tasks, current_task, gather, get_running_loop, shield, sleep, timeout, wait, wait_for,
    ErrorKind, EventLoop, ReturnWhen,
};
use support_tasks::{drop_flag, run_one_iteration, virtual_loop, watchdog, Log};

// ---------------------------------------------------------------------------------------------
// sleep

#[test]
fn sleep_advances_virtual_time() {
    let _w = watchdog("sleep_virtual");
    let (event_loop, clock) = virtual_loop();
    let t = event_loop
        .run_until_complete(async {
            sleep(1.5).await.unwrap();
            sleep(Duration::from_millis(500)).await.unwrap();
            sleep(3600.0f32).await.unwrap();
            get_running_loop().unwrap().time()
        })
        .unwrap();
    assert_eq!(t, 3602.0);
    assert_eq!(clock.now(), 3602.0);
    event_loop.close().unwrap();
}

#[test]
fn concurrent_sleeps_wake_in_deadline_order() {
    let _w = watchdog("sleep_order");
    let (event_loop, _clock) = virtual_loop();
    let log = Log::new();
    let lp = event_loop.clone();
    let l = log.clone();
    event_loop
        .run_until_complete(async move {
            let mut tasks = Vec::new();
            for d in [3.0, 1.0, 2.0, 1.0] {
                let l = l.clone();
                tasks.push(
                    lp.create_task(async move {
                        sleep(d).await.unwrap();
                        l.push(format!("{d}"));
                    })
                    .unwrap(),
                );
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
        .unwrap();
    assert_eq!(log.take(), ["1", "1", "2", "3"]);
    event_loop.close().unwrap();
}

#[test]
fn sleep_zero_yields_exactly_once() {
    let _w = watchdog("sleep0");
    // cb1 is ready before the task yields; the task resumes before cb2, which cb1 scheduled:
    // one trip through the ready queue, no more and no less.
    for delay in [0.0, -1.0] {
        let event_loop = EventLoop::new().unwrap();
        let log = Log::new();
        let (l, lp) = (log.clone(), event_loop.clone());
        let task = event_loop
            .create_task(async move {
                let (l1, lp1) = (l.clone(), lp.clone());
                lp.call_soon(move || {
                    l1.push("cb1");
                    let l2 = l1.clone();
                    lp1.call_soon(move || l2.push("cb2")).unwrap();
                })
                .unwrap();
                l.push("before");
                sleep(delay).await.unwrap();
                l.push("after");
            })
            .unwrap();
        event_loop.run_until_complete(task).unwrap().unwrap();
        run_one_iteration(&event_loop);
        assert_eq!(
            log.take(),
            ["before", "cb1", "after", "cb2"],
            "delay {delay}"
        );
        event_loop.close().unwrap();
    }
}

#[test]
fn sleep_zero_does_not_touch_the_clock() {
    let _w = watchdog("sleep0_clock");
    let (event_loop, clock) = virtual_loop();
    event_loop
        .run_until_complete(async {
            for _ in 0..100 {
                sleep(0.0).await.unwrap();
            }
        })
        .unwrap();
    assert_eq!(clock.now(), 0.0);
    assert_eq!(event_loop.timer_heap_len(), 0);
    event_loop.close().unwrap();
}

#[test]
fn sleep_nan_is_invalid_argument() {
    let _w = watchdog("sleep_nan");
    let (event_loop, _clock) = virtual_loop();
    let err = event_loop
        .run_until_complete(sleep(f64::NAN))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // Also outside a loop: the argument is checked first.
    let err = futures::executor::block_on(sleep(f64::NAN)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    event_loop.close().unwrap();
}

#[test]
fn sleep_outside_a_loop_is_no_running_loop() {
    let _w = watchdog("sleep_outside");
    for d in [0.0, 1.0] {
        let err = futures::executor::block_on(sleep(d)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoRunningLoop, "sleep({d})");
    }
    // Creating the future is fine; only polling needs the loop.
    let s = sleep(1.0);
    let (event_loop, clock) = virtual_loop();
    event_loop.run_until_complete(s).unwrap().unwrap();
    assert_eq!(clock.now(), 1.0);
    event_loop.close().unwrap();
}

#[test]
fn dropping_a_sleep_cancels_its_timer() {
    let _w = watchdog("sleep_drop");
    let (event_loop, clock) = virtual_loop();
    let r = event_loop
        .run_until_complete(async {
            let mut s = Box::pin(sleep(100.0));
            // One poll arms the timer.
            std::future::poll_fn(|cx| {
                assert!(s.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            let lp = get_running_loop().unwrap();
            assert_eq!(lp.timer_heap_len() - lp.cancelled_timer_count(), 1);
            drop(s);
            assert_eq!(lp.timer_heap_len() - lp.cancelled_timer_count(), 0);
            sleep(1.0).await
        })
        .unwrap();
    r.unwrap();
    assert_eq!(clock.now(), 1.0);
    event_loop.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// wait_for / timeout

#[test]
fn timeout_expires_and_drops_the_inner_future() {
    let _w = watchdog("timeout_expires");
    let (event_loop, clock) = virtual_loop();
    let (dropped, guard) = drop_flag();
    let d = dropped.clone();
    let reached = Rc::new(Cell::new(false));
    let r = reached.clone();
    let err = event_loop
        .run_until_complete(async move {
            let out = wait_for(
                async move {
                    let _finally = guard;
                    sleep(10.0).await.unwrap();
                    r.set(true);
                },
                2.5,
            )
            .await;
            assert!(
                d.get(),
                "the inner future is dropped when the timeout fires"
            );
            out.unwrap_err()
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(dropped.get());
    assert!(!reached.get());
    assert_eq!(clock.now(), 2.5);
    // The inner sleep's timer is gone with it: nothing moves the clock to 10.
    event_loop.run_until_complete(sleep(0.0)).unwrap().unwrap();
    assert_eq!(
        event_loop.timer_heap_len() - event_loop.cancelled_timer_count(),
        0
    );
    event_loop.close().unwrap();
}

#[test]
fn timeout_success_returns_the_output_and_cancels_the_timer() {
    let _w = watchdog("timeout_ok");
    let (event_loop, clock) = virtual_loop();
    let out = event_loop
        .run_until_complete(async {
            let v = timeout(Duration::from_secs(100), async {
                sleep(1.0).await.unwrap();
                "in time"
            })
            .await;
            let lp = get_running_loop().unwrap();
            (v, lp.timer_heap_len() - lp.cancelled_timer_count())
        })
        .unwrap();
    assert_eq!(out.0.unwrap(), "in time");
    assert_eq!(out.1, 0, "the timeout's timer must be cancelled");
    assert_eq!(clock.now(), 1.0);
    event_loop.close().unwrap();
}

#[test]
fn zero_or_negative_timeout_gives_the_future_one_poll() {
    let _w = watchdog("timeout_zero");
    let (event_loop, clock) = virtual_loop();
    for d in [0.0, -5.0] {
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        let (ready, pending) = event_loop
            .run_until_complete(async move {
                let ready = wait_for(async { 42 }, d).await;
                // sleep(0) needs two polls: it times out after the first.
                let pending = wait_for(
                    async move {
                        p.set(p.get() + 1);
                        sleep(0.0).await.unwrap();
                        p.set(p.get() + 1);
                    },
                    d,
                )
                .await;
                (ready, pending)
            })
            .unwrap();
        assert_eq!(ready.unwrap(), 42);
        assert_eq!(pending.unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(polls.get(), 1);
    }
    assert_eq!(clock.now(), 0.0);
    event_loop.close().unwrap();
}

#[test]
fn infinite_timeout_never_fires() {
    let _w = watchdog("timeout_inf");
    let (event_loop, clock) = virtual_loop();
    let out = event_loop
        .run_until_complete(async {
            timeout(f64::INFINITY, async {
                sleep(1e6).await.unwrap();
                1
            })
            .await
        })
        .unwrap();
    assert_eq!(out.unwrap(), 1);
    assert_eq!(clock.now(), 1e6);

    // And an infinite sleep under a finite timeout just times out.
    let err = event_loop
        .run_until_complete(timeout(3.0, sleep(f64::INFINITY)))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(clock.now(), 1e6 + 3.0);
    event_loop.close().unwrap();
}

#[test]
fn timeout_nan_is_invalid_argument() {
    let _w = watchdog("timeout_nan");
    let (event_loop, _clock) = virtual_loop();
    let polled = Rc::new(Cell::new(false));
    let p = polled.clone();
    let err = event_loop
        .run_until_complete(timeout(f64::NAN, async move { p.set(true) }))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(!polled.get());
    event_loop.close().unwrap();
}

#[test]
fn timeout_outside_a_loop_is_no_running_loop() {
    let _w = watchdog("timeout_outside");
    let err = futures::executor::block_on(timeout(1.0, std::future::pending::<()>())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRunningLoop);
}

#[test]
fn nested_timeouts_the_inner_one_fires_first() {
    let _w = watchdog("timeout_nested");
    let (event_loop, clock) = virtual_loop();
    let out = event_loop
        .run_until_complete(timeout(10.0, timeout(1.0, sleep(5.0))))
        .unwrap();
    assert_eq!(out.unwrap().unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(clock.now(), 1.0);
    let out = event_loop
        .run_until_complete(timeout(1.0, timeout(10.0, sleep(5.0))))
        .unwrap();
    assert_eq!(out.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(clock.now(), 2.0);
    event_loop.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// gather

#[test]
fn gather_returns_results_in_argument_order() {
    let _w = watchdog("gather_order");
    let (event_loop, clock) = virtual_loop();
    let log = Log::new();
    let l = log.clone();
    let out = event_loop
        .run_until_complete(async move {
            gather([5.0, 1.0, 3.0, 0.0].into_iter().enumerate().map(|(i, d)| {
                let l = l.clone();
                async move {
                    sleep(d).await.unwrap();
                    l.push(format!("{i}"));
                    i * 10
                }
            }))
            .await
        })
        .unwrap()
        .unwrap();
    assert_eq!(out, [0, 10, 20, 30]);
    assert_eq!(log.take(), ["3", "1", "2", "0"], "completion order differs");
    assert_eq!(clock.now(), 5.0);
    event_loop.close().unwrap();
}

#[test]
fn gather_of_nothing_is_an_empty_vec() {
    let _w = watchdog("gather_empty");
    let (event_loop, _clock) = virtual_loop();
    let out = event_loop
        .run_until_complete(async { gather(Vec::<std::future::Ready<u8>>::new()).await })
        .unwrap()
        .unwrap();
    assert!(out.is_empty());
    event_loop.close().unwrap();
}

#[test]
fn gather_fails_fast_and_leaves_the_others_running() {
    let _w = watchdog("gather_fail_fast");
    let (event_loop, clock) = virtual_loop();
    let finished = Rc::new(Cell::new(0));
    let f = finished.clone();
    let err = event_loop
        .run_until_complete(async move {
            let futs: Vec<std::pin::Pin<Box<dyn Future<Output = u32>>>> = vec![
                Box::pin({
                    let f = f.clone();
                    async move {
                        sleep(10.0).await.unwrap();
                        f.set(f.get() + 1);
                        1
                    }
                }),
                Box::pin(async {
                    sleep(2.0).await.unwrap();
                    std::panic::resume_unwind(Box::new("gather boom"))
                }),
                Box::pin({
                    let f = f.clone();
                    async move {
                        sleep(20.0).await.unwrap();
                        f.set(f.get() + 1);
                        3
                    }
                }),
            ];
            gather(futs).await.unwrap_err()
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.message(), "gather boom");
    assert_eq!(
        clock.now(),
        2.0,
        "gather must fail as soon as one child fails"
    );
    assert_eq!(finished.get(), 0);
    // The other children were not cancelled (asyncio's gather without return_exceptions).
    assert_eq!(event_loop.all_tasks().len(), 2);
    event_loop.run_until_complete(sleep(30.0)).unwrap().unwrap();
    assert_eq!(finished.get(), 2);
    event_loop.close().unwrap();
}

#[test]
fn gather_propagates_a_cancelled_child() {
    let _w = watchdog("gather_cancelled");
    let (event_loop, _clock) = virtual_loop();
    let err = event_loop
        .run_until_complete(async {
            gather([0u8, 1].map(|i| async move {
                if i == 1 {
                    current_task().unwrap().unwrap().cancel();
                }
                sleep(1.0).await.unwrap();
                i
            }))
            .await
            .unwrap_err()
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    event_loop.close().unwrap();
}

/// Three children: one finishes at t=1, two sleep until t=100 and record whether they ran on.
fn gather_children(finished: &Rc<Cell<u32>>) -> Vec<std::pin::Pin<Box<dyn Future<Output = u32>>>> {
    [1.0, 100.0, 100.0]
        .into_iter()
        .map(|d| {
            let f = finished.clone();
            Box::pin(async move {
                sleep(d).await.unwrap();
                f.set(f.get() + 1);
                d as u32
            }) as std::pin::Pin<Box<dyn Future<Output = u32>>>
        })
        .collect()
}

#[test]
fn gather_under_a_timeout_cancels_the_unfinished_children() {
    let _w = watchdog("gather_timeout");
    let (event_loop, clock) = virtual_loop();
    let finished = Rc::new(Cell::new(0));
    let children = gather_children(&finished);
    let err = event_loop
        .run_until_complete(async move { wait_for(gather(children), 5.0).await.unwrap_err() })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(clock.now(), 5.0);
    assert_eq!(finished.get(), 1);
    // The two sleepers were cancelled: they end at their next step, and nothing moves the
    // clock to 100.
    event_loop.run_until_complete(sleep(0.0)).unwrap().unwrap();
    assert!(event_loop.all_tasks().is_empty());
    event_loop.run_until_complete(sleep(0.0)).unwrap().unwrap();
    assert_eq!(finished.get(), 1);
    assert_eq!(clock.now(), 5.0);
    event_loop.close().unwrap();
}

#[test]
fn cancelling_the_task_awaiting_gather_cancels_the_children() {
    let _w = watchdog("gather_outer_cancel");
    let (event_loop, _clock) = virtual_loop();
    let finished = Rc::new(Cell::new(0));
    let children = gather_children(&finished);
    let outer = event_loop
        .create_task(async move { gather(children).await })
        .unwrap();
    run_one_iteration(&event_loop);
    assert_eq!(event_loop.all_tasks().len(), 4);
    outer.cancel();
    let r = event_loop.run_until_complete(outer).unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    event_loop
        .run_until_complete(sleep(200.0))
        .unwrap()
        .unwrap();
    assert_eq!(
        finished.get(),
        0,
        "no child ran on after the outer task was cancelled"
    );
    assert!(event_loop.all_tasks().is_empty());
    event_loop.close().unwrap();
}

/// A task sleeping 100 s, a reference to it, and a flag set when its future is dropped.
fn sleeper_with_finally(
    event_loop: &EventLoop,
) -> (asyncio::Task<u32>, asyncio::TaskRef, Rc<Cell<bool>>) {
    let (dropped, guard) = drop_flag();
    let task = event_loop
        .create_task(async move {
            let _finally = guard;
            sleep(100.0).await.unwrap();
            7
        })
        .unwrap();
    let probe = task.as_task_ref();
    (task, probe, dropped)
}

#[test]
fn wait_for_a_cancel_on_drop_task_cancels_it_on_timeout() {
    let _w = watchdog("wait_for_cancel_on_drop");
    let (event_loop, clock) = virtual_loop();
    let (task, probe, dropped) = sleeper_with_finally(&event_loop);
    let wrapped = task.cancel_on_drop();
    assert_eq!(wrapped.task().get_name(), probe.get_name());
    drop(wrapped);
    // Dropped unfinished: the task is cancelled, and its future goes at the next step.
    assert!(!dropped.get());
    event_loop.run_until_complete(sleep(0.0)).unwrap().unwrap();
    assert!(probe.cancelled());
    assert!(dropped.get());

    let (task, probe, dropped) = sleeper_with_finally(&event_loop);
    let err = event_loop
        .run_until_complete(wait_for(task.cancel_on_drop(), 2.0))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    event_loop.run_until_complete(sleep(0.0)).unwrap().unwrap();
    assert!(probe.cancelled());
    assert!(
        dropped.get(),
        "the task's future was dropped (its `finally` ran)"
    );
    assert_eq!(clock.now(), 2.0);
    event_loop.close().unwrap();
}

#[test]
fn a_plain_task_under_wait_for_is_detached_and_runs_on() {
    let _w = watchdog("wait_for_plain_task");
    let (event_loop, _clock) = virtual_loop();
    let task = event_loop
        .create_task(async {
            sleep(100.0).await.unwrap();
            7
        })
        .unwrap();
    let probe = task.as_task_ref();
    let err = event_loop
        .run_until_complete(wait_for(task, 2.0))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    event_loop
        .run_until_complete(sleep(200.0))
        .unwrap()
        .unwrap();
    assert!(probe.done() && !probe.cancelled());
    event_loop.close().unwrap();
}

#[test]
fn cancel_on_drop_passes_the_output_through_and_into_inner_detaches() {
    let _w = watchdog("cancel_on_drop_output");
    let (event_loop, _clock) = virtual_loop();
    let task = event_loop.create_task(async { 5 }).unwrap();
    let out = event_loop
        .run_until_complete(wait_for(task.cancel_on_drop(), 1.0))
        .unwrap()
        .unwrap();
    assert_eq!(out.unwrap(), 5);

    let task = event_loop
        .create_task(async {
            sleep(3.0).await.unwrap();
            6
        })
        .unwrap();
    let probe = task.as_task_ref();
    drop(task.cancel_on_drop().into_inner());
    event_loop.run_until_complete(sleep(5.0)).unwrap().unwrap();
    assert!(probe.done() && !probe.cancelled());
    event_loop.close().unwrap();
}

#[test]
fn gather_outside_a_loop_is_no_running_loop() {
    let _w = watchdog("gather_outside");
    let g = gather([async { 1 }]);
    assert_eq!(
        futures::executor::block_on(g).unwrap_err().kind(),
        ErrorKind::NoRunningLoop
    );
}

// ---------------------------------------------------------------------------------------------
// shield

#[test]
fn shield_keeps_the_work_running_when_the_outer_times_out() {
    let _w = watchdog("shield_timeout");
    let (event_loop, clock) = virtual_loop();
    let (dropped, guard) = drop_flag();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let err = event_loop
        .run_until_complete(async move {
            // shield() schedules its task at once, so it is called inside the running loop.
            timeout(
                1.0,
                shield(async move {
                    let _g = guard;
                    sleep(5.0).await.unwrap();
                    d.set(true);
                    "shielded"
                }),
            )
            .await
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(clock.now(), 1.0);
    assert!(!dropped.get(), "the shielded work must not be dropped");
    assert_eq!(event_loop.all_tasks().len(), 1);
    event_loop.run_until_complete(sleep(10.0)).unwrap().unwrap();
    assert!(done.get());
    assert!(dropped.get());
    event_loop.close().unwrap();
}

#[test]
fn shield_keeps_the_work_running_when_the_outer_task_is_cancelled() {
    let _w = watchdog("shield_cancel");
    let (event_loop, _clock) = virtual_loop();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let outer = event_loop
        .create_task(async move {
            shield(async move {
                sleep(5.0).await.unwrap();
                d.set(true);
            })
            .await
        })
        .unwrap();
    run_one_iteration(&event_loop);
    outer.cancel();
    let r = event_loop.run_until_complete(outer).unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    assert!(!done.get());
    event_loop.run_until_complete(sleep(10.0)).unwrap().unwrap();
    assert!(done.get());
    event_loop.close().unwrap();
}

#[test]
fn shield_passes_the_output_and_errors_through() {
    let _w = watchdog("shield_output");
    let (event_loop, _clock) = virtual_loop();
    let ok = event_loop
        .run_until_complete(async { shield(async { 9 }).await })
        .unwrap();
    assert_eq!(ok.unwrap(), 9);
    let err = event_loop
        .run_until_complete(async {
            shield(async { std::panic::resume_unwind(Box::new("shield boom")) }).await
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.message(), "shield boom");
    assert_eq!(
        futures::executor::block_on(shield(async {}))
            .unwrap_err()
            .kind(),
        ErrorKind::NoRunningLoop
    );
    event_loop.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// wait

/// Tasks sleeping `delays` seconds; a negative delay panics after `-delay` seconds.
fn sleepers(event_loop: &EventLoop, delays: &[f64]) -> Vec<asyncio::Task<f64>> {
    delays
        .iter()
        .map(|&d| {
            event_loop
                .create_task(async move {
                    sleep(d.abs()).await.unwrap();
                    if d < 0.0 {
                        std::panic::resume_unwind(Box::new("wait boom"));
                    }
                    d
                })
                .unwrap()
        })
        .collect()
}

fn outputs(tasks: Vec<asyncio::Task<f64>>) -> Vec<Result<f64, ErrorKind>> {
    tasks
        .into_iter()
        .map(|t| t.take_result().map_err(|e| e.kind()))
        .collect()
}

#[test]
fn wait_first_completed() {
    let _w = watchdog("wait_first_completed");
    let (event_loop, clock) = virtual_loop();
    let tasks = sleepers(&event_loop, &[3.0, 1.0, 2.0]);
    let (done, pending) = event_loop
        .run_until_complete(wait(tasks, ReturnWhen::FirstCompleted, None))
        .unwrap()
        .unwrap();
    assert_eq!(clock.now(), 1.0);
    assert_eq!(outputs(done), [Ok(1.0)]);
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|t| !t.done()));
    // wait cancels nothing: the rest finish.
    let (done, pending) = event_loop
        .run_until_complete(wait(pending, ReturnWhen::AllCompleted, None))
        .unwrap()
        .unwrap();
    assert!(pending.is_empty());
    assert_eq!(outputs(done), [Ok(3.0), Ok(2.0)]);
    event_loop.close().unwrap();
}

#[test]
fn wait_first_exception() {
    let _w = watchdog("wait_first_exception");
    let (event_loop, clock) = virtual_loop();
    let tasks = sleepers(&event_loop, &[1.0, 5.0, -2.0, 3.0]);
    let (done, pending) = event_loop
        .run_until_complete(wait(tasks, ReturnWhen::FirstException, None))
        .unwrap()
        .unwrap();
    assert_eq!(clock.now(), 2.0);
    assert_eq!(outputs(done), [Ok(1.0), Err(ErrorKind::Panicked)]);
    assert_eq!(pending.len(), 2);

    // Without any failure it waits for all.
    let tasks = sleepers(&event_loop, &[1.0, 2.0]);
    let (done, pending) = event_loop
        .run_until_complete(wait(tasks, ReturnWhen::FirstException, None))
        .unwrap()
        .unwrap();
    assert_eq!(done.len(), 2);
    assert!(pending.is_empty());
    assert_eq!(clock.now(), 4.0);
    drop(pending);
    event_loop.close().unwrap();
}

#[test]
fn wait_first_exception_ignores_cancellation() {
    let _w = watchdog("wait_first_exception_cancel");
    let (event_loop, clock) = virtual_loop();
    let tasks = sleepers(&event_loop, &[10.0, 2.0]);
    let r = tasks[0].as_task_ref();
    event_loop
        .call_later(1.0, move || {
            r.cancel();
        })
        .unwrap();
    let (done, pending) = event_loop
        .run_until_complete(wait(tasks, ReturnWhen::FirstException, None))
        .unwrap()
        .unwrap();
    assert_eq!(clock.now(), 2.0);
    assert_eq!(outputs(done), [Err(ErrorKind::Cancelled), Ok(2.0)]);
    assert!(pending.is_empty());
    event_loop.close().unwrap();
}

#[test]
fn wait_all_completed_with_a_timeout() {
    let _w = watchdog("wait_timeout");
    let (event_loop, clock) = virtual_loop();
    let tasks = sleepers(&event_loop, &[1.0, 2.0, 3.0]);
    let (done, pending) = event_loop
        .run_until_complete(wait(tasks, ReturnWhen::AllCompleted, Some(2.5)))
        .unwrap()
        .unwrap();
    assert_eq!(clock.now(), 2.5);
    assert_eq!(outputs(done), [Ok(1.0), Ok(2.0)]);
    assert_eq!(pending.len(), 1);
    // The timeout cancelled nothing.
    let (done, _) = event_loop
        .run_until_complete(wait(pending, ReturnWhen::AllCompleted, Some(100.0)))
        .unwrap()
        .unwrap();
    assert_eq!(outputs(done), [Ok(3.0)]);
    assert_eq!(clock.now(), 3.0);
    event_loop.close().unwrap();
}

#[test]
fn wait_all_completed_without_timeout() {
    let _w = watchdog("wait_all");
    let (event_loop, clock) = virtual_loop();
    let tasks = sleepers(&event_loop, &[2.0, -1.0, 3.0]);
    let (done, pending) = event_loop
        .run_until_complete(wait(tasks, ReturnWhen::AllCompleted, None))
        .unwrap()
        .unwrap();
    assert_eq!(clock.now(), 3.0);
    assert!(pending.is_empty());
    assert_eq!(outputs(done), [Ok(2.0), Err(ErrorKind::Panicked), Ok(3.0)]);
    event_loop.close().unwrap();
}

#[test]
fn wait_rejects_an_empty_list_and_a_nan_timeout() {
    let _w = watchdog("wait_invalid");
    let (event_loop, _clock) = virtual_loop();
    let err = event_loop
        .run_until_complete(wait(
            Vec::<asyncio::Task<()>>::new(),
            ReturnWhen::AllCompleted,
            None,
        ))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.to_string(), "Set of Tasks/Futures is empty.");

    let tasks = sleepers(&event_loop, &[1.0]);
    let err = event_loop
        .run_until_complete(wait(tasks, ReturnWhen::AllCompleted, Some(f64::NAN)))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    event_loop.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// current_task / all_tasks

#[test]
fn current_task_inside_and_outside_tasks() {
    let _w = watchdog("current_task");
    // Outside any loop.
    assert_eq!(current_task().unwrap_err().kind(), ErrorKind::NoRunningLoop);
    let event_loop = EventLoop::new().unwrap();
    assert!(event_loop.current_task().is_none());

    // In a plain callback of a running loop: no task.
    let in_callback = Rc::new(Cell::new(None));
    let c = in_callback.clone();
    event_loop
        .call_soon(move || c.set(Some(current_task().unwrap().is_none())))
        .unwrap();

    // In a task: that task, also from a task it awaits.
    let lp = event_loop.clone();
    let main = event_loop
        .create_task(async move {
            let me = current_task().unwrap().unwrap();
            let child = lp
                .create_task(async { current_task().unwrap().unwrap() })
                .unwrap();
            let child_ref = child.as_task_ref();
            let seen_by_child = child.await.unwrap();
            assert!(seen_by_child.ptr_eq(&child_ref));
            assert!(!seen_by_child.ptr_eq(&me));
            // Back in the outer task after the await.
            assert!(current_task().unwrap().unwrap().ptr_eq(&me));
            me
        })
        .unwrap();
    let main_ref = main.as_task_ref();
    let me = event_loop.run_until_complete(main).unwrap().unwrap();
    assert!(me.ptr_eq(&main_ref));
    assert_eq!(in_callback.get(), Some(true));
    assert!(event_loop.current_task().is_none());
    event_loop.close().unwrap();
}

#[test]
fn all_tasks_lists_the_unfinished_tasks() {
    let _w = watchdog("all_tasks");
    assert_eq!(all_tasks().unwrap_err().kind(), ErrorKind::NoRunningLoop);
    let (event_loop, _clock) = virtual_loop();
    let early = event_loop.create_task(sleep(1.0)).unwrap();
    assert_eq!(event_loop.all_tasks().len(), 1);
    assert!(event_loop.all_tasks()[0].ptr_eq(&early.as_task_ref()));

    let lp = event_loop.clone();
    event_loop
        .run_until_complete(async move {
            let me = current_task().unwrap().unwrap();
            let late = lp.create_task(sleep(2.0)).unwrap();
            let all = all_tasks().unwrap();
            assert_eq!(all.len(), 3);
            for t in [&me, &early.as_task_ref(), &late.as_task_ref()] {
                assert!(all.iter().any(|x| x.ptr_eq(t)));
            }
            early.await.unwrap().unwrap();
            let all = all_tasks().unwrap();
            assert_eq!(all.len(), 2);
            assert!(!all.iter().any(|t| t.done()));
            late.await.unwrap().unwrap();
            let all = all_tasks().unwrap();
            assert_eq!(all.len(), 1);
            assert!(all[0].ptr_eq(&me));
        })
        .unwrap();
    assert!(event_loop.all_tasks().is_empty());
    event_loop.close().unwrap();
}
