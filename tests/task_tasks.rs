//! `Task<T>` and `TaskRef`: FIFO stepping with callbacks (R10), names and ids, detaching on
//! drop, panics, results, and done callbacks that are scheduled rather than called (R9).

mod support_tasks;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{get_running_loop, sleep, ErrorKind, EventLoop, TaskRef};
use support_tasks::{collect_exceptions, run_one_iteration, virtual_loop, watchdog, Log};

#[test]
fn tasks_interleave_fifo_with_callbacks() {
    let _w = watchdog("r10");
    // CPython EXP:e12: create_task(A); call_soon(cs); create_task(B)
    //   => A-start, cs, B-start, A-resume, B-resume.
    let event_loop = EventLoop::new().unwrap();
    let log = Log::new();
    let step = |name: &'static str, log: Log| async move {
        log.push(format!("{name}-start"));
        sleep(0.0).await.unwrap();
        log.push(format!("{name}-resume"));
    };
    let a = event_loop.create_task(step("A", log.clone())).unwrap();
    let l = log.clone();
    event_loop.call_soon(move || l.push("cs")).unwrap();
    let b = event_loop.create_task(step("B", log.clone())).unwrap();
    assert!(log.get().is_empty(), "create_task must not run the task");
    event_loop
        .run_until_complete(async move {
            a.await.unwrap();
            b.await.unwrap();
        })
        .unwrap();
    assert_eq!(
        log.take(),
        ["A-start", "cs", "B-start", "A-resume", "B-resume"]
    );
    event_loop.close().unwrap();
}

#[test]
fn first_step_runs_on_the_next_iteration() {
    let _w = watchdog("first_step");
    let event_loop = EventLoop::new().unwrap();
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let task = event_loop.create_task(async move { s.set(true) }).unwrap();
    assert!(!started.get());
    assert!(!task.done());
    run_one_iteration(&event_loop);
    assert!(started.get());
    assert!(task.done());
    assert!(!task.cancelled());
    event_loop.close().unwrap();
}

#[test]
fn default_names_ids_and_set_name() {
    let _w = watchdog("names");
    let event_loop = EventLoop::new().unwrap();
    let t1 = event_loop.create_task(async {}).unwrap();
    let t2 = event_loop.create_task(async {}).unwrap();
    assert_ne!(t1.id(), t2.id());
    assert!(t2.id() > t1.id());
    assert_eq!(t1.get_name(), format!("Task-{}", t1.id()));
    assert_eq!(t2.get_name(), format!("Task-{}", t2.id()));
    t1.set_name("worker");
    assert_eq!(t1.get_name(), "worker");
    let r = t1.as_task_ref();
    assert_eq!(r.get_name(), "worker");
    assert_eq!(r.id(), t1.id());
    r.set_name(String::from("renamed"));
    assert_eq!(t1.get_name(), "renamed");
    assert!(r.ptr_eq(&t1.as_task_ref()));
    assert!(!r.ptr_eq(&t2.as_task_ref()));
    assert!(r.get_loop().unwrap().ptr_eq(&event_loop));
    assert!(format!("{t1:?}").contains("renamed"));
    assert!(format!("{r:?}").contains("renamed"));

    // The name is visible from inside the task through current_task().
    let t3 = event_loop
        .create_task(async { asyncio::current_task().unwrap().unwrap().get_name() })
        .unwrap();
    t3.set_name("inside");
    let name = event_loop.run_until_complete(t3).unwrap().unwrap();
    assert_eq!(name, "inside");
    event_loop.close().unwrap();
}

#[test]
fn ids_are_unique_within_a_loop() {
    let _w = watchdog("ids");
    let event_loop = EventLoop::new().unwrap();
    let mut ids: Vec<u64> = (0..100)
        .map(|_| event_loop.create_task(async {}).unwrap().id())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100);
    event_loop.close().unwrap();
}

#[test]
fn dropping_the_handle_detaches_the_task() {
    let _w = watchdog("detach");
    let (event_loop, clock) = virtual_loop();
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    drop(
        event_loop
            .create_task(async move {
                sleep(1.0).await.unwrap();
                f.set(true);
            })
            .unwrap(),
    );
    assert_eq!(event_loop.all_tasks().len(), 1);
    event_loop.run_until_complete(sleep(2.0)).unwrap().unwrap();
    assert!(
        finished.get(),
        "a detached task must still run to completion"
    );
    assert_eq!(clock.now(), 2.0);
    assert!(event_loop.all_tasks().is_empty());
    event_loop.close().unwrap();
}

#[test]
fn awaiting_a_task_gives_its_output() {
    let _w = watchdog("output");
    let (event_loop, _clock) = virtual_loop();
    let lp = event_loop.clone();
    let out = event_loop
        .run_until_complete(async move {
            let t = lp
                .create_task(async {
                    sleep(3.0).await.unwrap();
                    String::from("done")
                })
                .unwrap();
            t.await
        })
        .unwrap();
    assert_eq!(out.unwrap(), "done");
    event_loop.close().unwrap();
}

#[test]
fn result_and_take_result() {
    let _w = watchdog("results");
    let event_loop = EventLoop::new().unwrap();
    let t = event_loop.create_task(async { vec![1, 2, 3] }).unwrap();
    let err = t.result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), "Result is not set.");
    assert_eq!(t.take_result().unwrap_err().kind(), ErrorKind::InvalidState);
    assert!(t.exception().is_none());
    run_one_iteration(&event_loop);
    assert!(t.done());
    assert_eq!(t.result().unwrap(), [1, 2, 3]);
    assert_eq!(t.result().unwrap(), [1, 2, 3]);
    assert!(t.exception().is_none());
    assert_eq!(t.take_result().unwrap(), [1, 2, 3]);
    assert_eq!(t.take_result().unwrap_err().kind(), ErrorKind::InvalidState);
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_task_gives_panicked_with_the_message() {
    let _w = watchdog("panic");
    let event_loop = EventLoop::new().unwrap();
    let seen = collect_exceptions(&event_loop);
    let lp = event_loop.clone();
    let r = event_loop
        .run_until_complete(async move {
            let t = lp
                .create_task(async {
                    sleep(0.0).await.unwrap();
                    if true {
                        panic!("task boom {}", 42);
                    }
                    5
                })
                .unwrap();
            t.await
        })
        .unwrap();
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.to_string(), "task boom 42");
    // The loop survived, and an awaited panic is not reported as "never retrieved".
    event_loop.run_until_complete(sleep(0.0)).unwrap().unwrap();
    assert!(seen.borrow().is_empty(), "{:?}", seen.borrow());
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_main_future_fails_run_until_complete() {
    let _w = watchdog("panic_main");
    let event_loop = EventLoop::new().unwrap();
    let r: asyncio::Result<()> =
        event_loop.run_until_complete(async { std::panic::panic_any(String::from("main boom")) });
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.message(), "main boom");
    assert_eq!(event_loop.run_until_complete(async { 1 }).unwrap(), 1);
    event_loop.close().unwrap();
}

#[test]
fn exception_of_a_panicked_task() {
    let _w = watchdog("exception");
    let event_loop = EventLoop::new().unwrap();
    let seen = collect_exceptions(&event_loop);
    let t = event_loop
        .create_task(async { std::panic::resume_unwind(Box::new("quiet boom")) })
        .unwrap();
    run_one_iteration(&event_loop);
    assert!(t.done());
    assert!(!t.cancelled());
    let e = t.exception().unwrap();
    assert_eq!(e.kind(), ErrorKind::Panicked);
    assert_eq!(e.message(), "quiet boom");
    assert_eq!(t.take_result().unwrap_err().kind(), ErrorKind::Panicked);
    drop(t);
    run_one_iteration(&event_loop);
    assert!(seen.borrow().is_empty(), "the exception was retrieved");
    event_loop.close().unwrap();
}

#[test]
fn an_unretrieved_panic_goes_to_the_exception_handler() {
    let _w = watchdog("unretrieved");
    let event_loop = EventLoop::new().unwrap();
    let seen = collect_exceptions(&event_loop);

    // Detached before it fails.
    drop(
        event_loop
            .create_task(async { std::panic::resume_unwind(Box::new("detached boom")) })
            .unwrap(),
    );
    // Fails while the handle is alive; the handle is dropped unread.
    let held = event_loop
        .create_task(async { std::panic::resume_unwind(Box::new("held boom")) })
        .unwrap();
    run_one_iteration(&event_loop);
    assert_eq!(seen.borrow().len(), 1);
    drop(held);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    for (ctx, msg) in seen.iter().zip(["detached boom", "held boom"]) {
        assert_eq!(ctx.message, "Task exception was never retrieved");
        assert_eq!(ctx.exception.as_ref().unwrap().message(), msg);
        assert!(ctx.task.is_some());
    }
    drop(seen);
    event_loop.close().unwrap();
}

#[test]
fn done_callbacks_are_scheduled_not_called() {
    let _w = watchdog("done_cb");
    let event_loop = EventLoop::new().unwrap();
    let log = Log::new();
    let (l, lp) = (log.clone(), event_loop.clone());
    let t = event_loop
        .create_task(async move {
            sleep(0.0).await.unwrap();
            let l2 = l.clone();
            // Queued during the last step: it must run before the done callbacks.
            lp.call_soon(move || l2.push("soon")).unwrap();
            l.push("task-end");
            11
        })
        .unwrap();
    for i in 1..=2 {
        let l = log.clone();
        t.add_done_callback(move |r: &TaskRef| {
            l.push(format!(
                "done-cb{i} done={} cancelled={}",
                r.done(),
                r.cancelled()
            ))
        })
        .unwrap();
    }
    run_one_iteration(&event_loop);
    assert!(log.get().is_empty());
    run_one_iteration(&event_loop);
    assert_eq!(log.get(), ["task-end"], "done callbacks ran synchronously");
    run_one_iteration(&event_loop);
    assert_eq!(
        log.take(),
        [
            "task-end",
            "soon",
            "done-cb1 done=true cancelled=false",
            "done-cb2 done=true cancelled=false"
        ]
    );

    // Added after the task is done: still scheduled, not called.
    let l = log.clone();
    t.add_done_callback(move |_| l.push("late")).unwrap();
    assert!(log.get().is_empty());
    run_one_iteration(&event_loop);
    assert_eq!(log.take(), ["late"]);

    // Through a TaskRef too.
    let l = log.clone();
    t.as_task_ref()
        .add_done_callback(move |_| l.push("late-ref"))
        .unwrap();
    assert!(log.get().is_empty());
    run_one_iteration(&event_loop);
    assert_eq!(log.take(), ["late-ref"]);
    assert_eq!(t.take_result().unwrap(), 11);

    // A done task on a closed loop cannot schedule anything.
    event_loop.close().unwrap();
    let err = t.add_done_callback(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[test]
fn tasks_can_create_and_await_tasks() {
    let _w = watchdog("nested");
    let (event_loop, clock) = virtual_loop();
    let out = event_loop
        .run_until_complete(async {
            let lp = get_running_loop().unwrap();
            let mut handles = Vec::new();
            for i in 0..10u32 {
                let lp2 = lp.clone();
                handles.push(
                    lp.create_task(async move {
                        let inner = lp2
                            .create_task(async move {
                                sleep(f64::from(10 - i)).await.unwrap();
                                i
                            })
                            .unwrap();
                        inner.await.unwrap() * 2
                    })
                    .unwrap(),
                );
            }
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.unwrap());
            }
            out
        })
        .unwrap();
    assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>());
    assert_eq!(clock.now(), 10.0);
    event_loop.close().unwrap();
}

#[test]
fn create_task_on_a_closed_loop_is_closed() {
    let _w = watchdog("closed");
    let event_loop = EventLoop::new().unwrap();
    event_loop.close().unwrap();
    let err = event_loop.create_task(async {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(err.to_string(), "Event loop is closed");
}

#[test]
fn futures_need_not_be_send() {
    let _w = watchdog("not_send");
    let event_loop = EventLoop::new().unwrap();
    let shared = Rc::new(Cell::new(1));
    let s = shared.clone();
    let t = event_loop
        .create_task(async move {
            s.set(s.get() + 1);
            s
        })
        .unwrap();
    let back = event_loop.run_until_complete(t).unwrap().unwrap();
    assert_eq!(back.get(), 2);
    assert_eq!(shared.get(), 2);
    event_loop.close().unwrap();
}

#[test]
fn pending_tasks_are_dropped_when_the_loop_closes() {
    let _w = watchdog("close_pending");
    // R19: the future is dropped ("finally" runs) and the handler hears about it.
    let event_loop = EventLoop::new().unwrap();
    let seen = collect_exceptions(&event_loop);
    let (dropped, guard) = support_tasks::drop_flag();
    let t = event_loop
        .create_task(async move {
            let _g = guard;
            std::future::pending::<()>().await
        })
        .unwrap();
    run_one_iteration(&event_loop);
    assert!(!dropped.get());
    event_loop.close().unwrap();
    assert!(dropped.get());
    drop(t);
    assert_eq!(
        seen.borrow()[0].message,
        "Task was destroyed but it is pending!"
    );
}
