//! Task cancellation: `cancel()` drops the future at the task's next step (its `Drop` plays
//! `finally`), returns `false` once the task is done, and awaiting a cancelled task gives
//! `Cancelled`.

mod support_tasks;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{current_task, get_running_loop, sleep, ErrorKind, EventLoop};
use support_tasks::{drop_flag, run_one_iteration, virtual_loop, watchdog, Log};

#[test]
fn cancel_drops_the_future_at_its_next_step() {
    let _w = watchdog("next_step");
    let (event_loop, clock) = virtual_loop();
    let (dropped, guard) = drop_flag();
    let reached = Rc::new(Cell::new(false));
    let r = reached.clone();
    let task = event_loop
        .create_task(async move {
            let _finally = guard;
            sleep(10.0).await.unwrap();
            r.set(true);
        })
        .unwrap();
    run_one_iteration(&event_loop); // the task starts and waits on its timer
    assert!(!dropped.get());

    assert!(task.cancel());
    // Asynchronous, as in asyncio: nothing happens until the task's next step.
    assert!(!dropped.get());
    assert!(!task.done());
    assert!(!task.cancelled());
    assert!(
        task.cancel(),
        "a second request before the step still returns true"
    );

    run_one_iteration(&event_loop);
    assert!(
        dropped.get(),
        "the future's Drop (its `finally`) must have run"
    );
    assert!(task.done());
    assert!(task.cancelled());
    assert!(!reached.get());
    assert!(!task.cancel(), "cancel on a done task returns false");
    assert!(task.exception().unwrap().is_cancelled());
    assert_eq!(task.take_result().unwrap_err().kind(), ErrorKind::Cancelled);

    // The dropped sleep cancelled its timer: the clock does not move to it.
    event_loop.run_until_complete(async {}).unwrap();
    assert_eq!(clock.now(), 0.0);
    event_loop.close().unwrap();
}

#[test]
fn cancel_before_the_first_step_never_polls_the_future() {
    let _w = watchdog("before_start");
    let event_loop = EventLoop::new().unwrap();
    let (dropped, guard) = drop_flag();
    let polled = Rc::new(Cell::new(false));
    let p = polled.clone();
    let task = event_loop
        .create_task(async move {
            let _g = guard;
            p.set(true);
        })
        .unwrap();
    assert!(task.cancel());
    let r = event_loop.run_until_complete(task).unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    assert!(!polled.get());
    assert!(dropped.get());
    event_loop.close().unwrap();
}

#[test]
fn awaiting_a_cancelled_task_gives_cancelled() {
    let _w = watchdog("await_cancelled");
    let (event_loop, _clock) = virtual_loop();
    let lp = event_loop.clone();
    let kind = event_loop
        .run_until_complete(async move {
            let victim = lp
                .create_task(async { sleep(100.0).await.unwrap() })
                .unwrap();
            let r = victim.as_task_ref();
            lp.call_later(1.0, move || assert!(r.cancel())).unwrap();
            let out = victim.await;
            let left = get_running_loop().unwrap().all_tasks();
            assert_eq!(left.len(), 1, "only the main task is left");
            out.unwrap_err().kind()
        })
        .unwrap();
    assert_eq!(kind, ErrorKind::Cancelled);
    assert_eq!(event_loop.time(), 1.0);
    event_loop.close().unwrap();
}

#[test]
fn cancelling_from_a_callback_and_through_a_task_ref() {
    let _w = watchdog("task_ref");
    let event_loop = EventLoop::new().unwrap();
    let task = event_loop
        .create_task(std::future::pending::<()>())
        .unwrap();
    let r = task.as_task_ref();
    run_one_iteration(&event_loop);
    event_loop.call_soon(move || assert!(r.cancel())).unwrap();
    run_one_iteration(&event_loop); // the callback requests it
    assert!(!task.done());
    run_one_iteration(&event_loop); // the task's step honours it
    assert!(task.cancelled());
    assert!(!task.as_task_ref().cancel());
    event_loop.close().unwrap();
}

#[test]
fn a_task_cancelling_itself() {
    let _w = watchdog("self_cancel");
    let event_loop = EventLoop::new().unwrap();
    let log = Log::new();
    let (dropped, guard) = drop_flag();
    let l = log.clone();
    let task = event_loop
        .create_task(async move {
            let _g = guard;
            let me = current_task().unwrap().unwrap();
            l.push("before");
            assert!(me.cancel());
            assert!(!me.done());
            l.push("after cancel");
            sleep(0.0).await.unwrap();
            l.push("unreachable");
        })
        .unwrap();
    let r = event_loop.run_until_complete(task).unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(log.get(), ["before", "after cancel"]);
    assert!(dropped.get());
    event_loop.close().unwrap();
}

#[test]
fn a_task_cancelled_during_its_last_step_ends_cancelled() {
    let _w = watchdog("last_step");
    // As in asyncio: a task that requests its own cancellation and then returns is reported
    // cancelled, not finished.
    let event_loop = EventLoop::new().unwrap();
    let task = event_loop
        .create_task(async {
            current_task().unwrap().unwrap().cancel();
            7
        })
        .unwrap();
    let r = event_loop.run_until_complete(task).unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    event_loop.close().unwrap();
}

#[test]
fn cancel_returns_false_once_done() {
    let _w = watchdog("false_once_done");
    let event_loop = EventLoop::new().unwrap();
    let ok = event_loop.create_task(async { 1 }).unwrap();
    let failed = event_loop
        .create_task(async { std::panic::resume_unwind(Box::new("x")) })
        .unwrap();
    run_one_iteration(&event_loop);
    assert!(!ok.cancel());
    assert!(!ok.cancelled());
    assert_eq!(ok.take_result().unwrap(), 1);
    assert!(!failed.cancel());
    assert!(!failed.cancelled());
    assert_eq!(
        failed.take_result().unwrap_err().kind(),
        ErrorKind::Panicked
    );
    event_loop.close().unwrap();
}

#[test]
fn cancellation_propagates_through_nested_drops() {
    let _w = watchdog("nested");
    // Cancelling an outer task drops the whole future tree it owns, innermost included.
    let (event_loop, _clock) = virtual_loop();
    let log = Log::new();
    struct Named(&'static str, Log);
    impl Drop for Named {
        fn drop(&mut self) {
            self.1.push(format!("drop {}", self.0));
        }
    }
    let l = log.clone();
    let outer = event_loop
        .create_task(async move {
            let _outer = Named("outer", l.clone());
            let inner = async {
                let _inner = Named("inner", l.clone());
                sleep(50.0).await.unwrap();
            };
            inner.await;
        })
        .unwrap();
    run_one_iteration(&event_loop);
    outer.cancel();
    run_one_iteration(&event_loop);
    assert_eq!(log.take(), ["drop inner", "drop outer"]);
    event_loop.close().unwrap();
}

#[test]
fn done_callbacks_of_a_cancelled_task_see_it_cancelled() {
    let _w = watchdog("cancel_cb");
    let event_loop = EventLoop::new().unwrap();
    let task = event_loop
        .create_task(std::future::pending::<()>())
        .unwrap();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    task.add_done_callback(move |t| s.set(Some(t.cancelled())))
        .unwrap();
    task.cancel();
    run_one_iteration(&event_loop);
    assert!(task.cancelled());
    assert_eq!(seen.get(), None, "done callbacks are scheduled, not called");
    run_one_iteration(&event_loop);
    assert_eq!(seen.get(), Some(true));
    event_loop.close().unwrap();
}

#[test]
fn a_panic_in_drop_during_cancellation_is_not_lost() {
    let _w = watchdog("finally_panics");
    // Python: a `finally` that raises while the task is being cancelled ends the task with that
    // exception, not as cancelled. Here the `Drop` plays `finally`.
    let event_loop = EventLoop::new().unwrap();
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            std::panic::resume_unwind(Box::new("finally boom"));
        }
    }
    let task = event_loop
        .create_task(async {
            let _g = PanicOnDrop;
            std::future::pending::<()>().await
        })
        .unwrap();
    run_one_iteration(&event_loop);
    assert!(task.cancel());
    let r = event_loop.run_until_complete(task).unwrap();
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.message(), "finally boom");
    event_loop.close().unwrap();
}

#[test]
fn the_loop_survives_many_cancellations() {
    let _w = watchdog("many");
    let (event_loop, _clock) = virtual_loop();
    let lp = event_loop.clone();
    let n = event_loop
        .run_until_complete(async move {
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    lp.create_task(async move {
                        sleep(f64::from(i)).await.unwrap();
                        i
                    })
                    .unwrap()
                })
                .collect();
            sleep(0.0).await.unwrap();
            for t in tasks.iter().step_by(2) {
                assert!(t.cancel());
            }
            let mut ok = 0;
            for t in tasks {
                match t.await {
                    Ok(i) => {
                        assert_eq!(i % 2, 1);
                        ok += 1;
                    }
                    Err(e) => assert_eq!(e.kind(), ErrorKind::Cancelled),
                }
            }
            ok
        })
        .unwrap();
    assert_eq!(n, 100);
    assert!(event_loop.all_tasks().is_empty());
    event_loop.close().unwrap();
}
