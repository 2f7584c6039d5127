//! `LoopFuture`: asyncio's `Future` (rules R9 and R18): results set once, done callbacks that
//! are always scheduled through `call_soon` and never run synchronously, cancellation, errors,
//! and futures whose loop is closed.

mod support_tasks;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{Error, ErrorKind, EventLoop};
use support_tasks::{run_one_iteration, virtual_loop, watchdog, Log};

#[test]
fn set_result_schedules_callbacks_in_registration_order_never_synchronously() {
    let _w = watchdog("r9_order");
    // CPython EXP:e12: ['after set_result', 'after add', 'cb1', 'cb2-added-after-done'].
    let event_loop = EventLoop::new().unwrap();
    let fut = event_loop.create_future::<i32>();
    let log = Log::new();
    let l = log.clone();
    fut.add_done_callback(move |f| l.push(format!("cb1 {:?}", f.result())))
        .unwrap();
    let l = log.clone();
    fut.add_done_callback(move |_| l.push("cb1b")).unwrap();
    fut.set_result(7).unwrap();
    log.push("after set_result");
    let l = log.clone();
    fut.add_done_callback(move |_| l.push("cb2-added-after-done"))
        .unwrap();
    log.push("after add");
    assert_eq!(log.get(), ["after set_result", "after add"]);

    run_one_iteration(&event_loop);
    assert_eq!(
        log.take(),
        [
            "after set_result",
            "after add",
            "cb1 Ok(7)",
            "cb1b",
            "cb2-added-after-done"
        ]
    );
    event_loop.close().unwrap();
}

#[test]
fn done_callbacks_queue_behind_callbacks_already_ready() {
    let _w = watchdog("r9_fifo");
    let event_loop = EventLoop::new().unwrap();
    let fut = event_loop.create_future::<()>();
    let log = Log::new();
    let l = log.clone();
    fut.add_done_callback(move |_| l.push("done-cb")).unwrap();
    let (l, f, lp) = (log.clone(), fut.clone(), event_loop.clone());
    event_loop
        .call_soon(move || {
            let l2 = l.clone();
            // Scheduled before the result is set: runs before the done callback.
            lp.call_soon(move || l2.push("soon")).unwrap();
            f.set_result(()).unwrap();
            l.push("set");
        })
        .unwrap();
    run_one_iteration(&event_loop);
    assert_eq!(log.get(), ["set"]);
    run_one_iteration(&event_loop);
    assert_eq!(log.take(), ["set", "soon", "done-cb"]);
    event_loop.close().unwrap();
}

#[test]
fn set_result_twice_is_invalid_state() {
    let _w = watchdog("set_twice");
    let event_loop = EventLoop::new().unwrap();
    let fut = event_loop.create_future::<i32>();
    assert!(!fut.done());
    fut.set_result(1).unwrap();
    assert!(fut.done());
    assert_eq!(
        fut.set_result(2).unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    assert_eq!(
        fut.set_exception(Error::from_kind(ErrorKind::Io))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidState
    );
    // The first result stays.
    assert_eq!(fut.result().unwrap(), 1);
    assert!(!fut.cancel());
    assert!(!fut.cancelled());
    assert_eq!(fut.result().unwrap(), 1);
    event_loop.close().unwrap();
}

#[test]
fn result_and_exception_before_done_are_invalid_state() {
    let _w = watchdog("result_early");
    let event_loop = EventLoop::new().unwrap();
    let fut = event_loop.create_future::<String>();
    let err = fut.result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), "Result is not set.");
    let err = fut.exception().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), "Exception is not set.");
    event_loop.close().unwrap();
}

#[test]
fn exception_reports_the_stored_error() {
    let _w = watchdog("exception");
    let event_loop = EventLoop::new().unwrap();
    let ok = event_loop.create_future::<i32>();
    ok.set_result(3).unwrap();
    assert!(ok.exception().unwrap().is_none());

    let failed = event_loop.create_future::<i32>();
    failed
        .set_exception(Error::new(ErrorKind::InvalidArgument, "bad"))
        .unwrap();
    assert!(failed.done());
    assert!(!failed.cancelled());
    let e = failed.exception().unwrap().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.to_string(), "bad");
    // Readable many times: the error is cloned, not taken.
    assert_eq!(
        failed.result().unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        failed.result().unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );

    // Awaited, the error comes out of the future.
    let f = failed.clone();
    let r = event_loop.run_until_complete(f).unwrap();
    assert_eq!(r.unwrap_err().to_string(), "bad");
    event_loop.close().unwrap();
}

#[test]
fn cancel_marks_cancelled_and_schedules_callbacks() {
    let _w = watchdog("cancel");
    let event_loop = EventLoop::new().unwrap();
    let fut = event_loop.create_future::<i32>();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    fut.add_done_callback(move |f| s.set(Some(f.cancelled())))
        .unwrap();
    assert!(fut.cancel());
    assert!(fut.done());
    assert!(fut.cancelled());
    assert_eq!(seen.get(), None, "callback ran synchronously");
    assert!(!fut.cancel(), "cancel on a done future must return false");
    assert_eq!(fut.result().unwrap_err().kind(), ErrorKind::Cancelled);
    assert!(fut.exception().unwrap().unwrap().is_cancelled());
    assert_eq!(
        fut.set_result(1).unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    run_one_iteration(&event_loop);
    assert_eq!(seen.get(), Some(true));
    event_loop.close().unwrap();
}

#[test]
fn awaiting_a_future_gets_the_result_set_later() {
    let _w = watchdog("await");
    let (event_loop, clock) = virtual_loop();
    let fut = event_loop.create_future::<&'static str>();
    let setter = fut.clone();
    event_loop
        .call_later(5.0, move || setter.set_result("hello").unwrap())
        .unwrap();
    // Two awaiters: both are woken.
    let (a, b) = (fut.clone(), fut.clone());
    let lp = event_loop.clone();
    let out = event_loop
        .run_until_complete(async move {
            let other = lp.create_task(b).unwrap();
            let x = a.await.unwrap();
            let y = other.await.unwrap().unwrap();
            (x, y)
        })
        .unwrap();
    assert_eq!(out, ("hello", "hello"));
    assert_eq!(clock.now(), 5.0);
    // A done future is ready at once.
    assert_eq!(
        event_loop.run_until_complete(fut).unwrap().unwrap(),
        "hello"
    );
    event_loop.close().unwrap();
}

#[test]
fn awaiting_a_cancelled_future_gives_cancelled() {
    let _w = watchdog("await_cancelled");
    let event_loop = EventLoop::new().unwrap();
    let fut = event_loop.create_future::<i32>();
    let c = fut.clone();
    event_loop.call_soon(move || assert!(c.cancel())).unwrap();
    let r = event_loop.run_until_complete(fut).unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    event_loop.close().unwrap();
}

#[test]
fn futures_of_a_closed_loop() {
    let _w = watchdog("closed");
    let event_loop = EventLoop::new().unwrap();
    let with_cb = event_loop.create_future::<i32>();
    with_cb.add_done_callback(|_| unreachable!()).unwrap();
    let without_cb = event_loop.create_future::<i32>();
    event_loop.close().unwrap();

    // create_future still works on a closed loop (R18).
    let fresh = event_loop.create_future::<i32>();
    assert!(fresh.get_loop().unwrap().ptr_eq(&event_loop));

    // Setting the result of a future with callbacks needs the loop: Closed, but the result is
    // still set.
    assert_eq!(with_cb.set_result(1).unwrap_err().kind(), ErrorKind::Closed);
    assert!(with_cb.done());
    assert_eq!(with_cb.result().unwrap(), 1);

    // Without callbacks nothing has to be scheduled: fine.
    without_cb.set_result(2).unwrap();
    assert_eq!(without_cb.result().unwrap(), 2);

    // A callback added to a done future must be scheduled: Closed.
    let err = without_cb.add_done_callback(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(err.to_string(), "Event loop is closed");

    // Cancelling works; its callbacks cannot be scheduled and are dropped quietly.
    fresh.add_done_callback(|_| unreachable!()).unwrap();
    assert!(fresh.cancel());
    assert!(fresh.cancelled());
}

#[test]
fn futures_outliving_their_loop() {
    let _w = watchdog("outlive");
    let fut = {
        let event_loop = EventLoop::new().unwrap();
        let f = event_loop.create_future::<u8>();
        event_loop.close().unwrap();
        f
    };
    assert!(fut.get_loop().is_none());
    fut.add_done_callback(|_| ()).unwrap();
    assert_eq!(fut.set_result(1).unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(fut.result().unwrap(), 1);
}

#[test]
fn debug_shows_the_state() {
    let _w = watchdog("debug");
    let event_loop = EventLoop::new().unwrap();
    let fut = event_loop.create_future::<()>();
    assert!(format!("{fut:?}").contains("pending"));
    fut.set_result(()).unwrap();
    assert!(format!("{fut:?}").contains("finished"));
    let c = event_loop.create_future::<()>();
    c.cancel();
    assert!(format!("{c:?}").contains("cancelled"));
    event_loop.close().unwrap();
}

#[test]
fn awaiting_tasks_and_done_callbacks_resume_in_registration_order() {
    let _w = watchdog("waiter_order");
    // In asyncio a task's wake-up is itself a done callback, so a callback added before the
    // task started waiting runs first, and one added after runs after the task resumes.
    let event_loop = EventLoop::new().unwrap();
    let fut = event_loop.create_future::<i32>();
    let log = Log::new();
    let l = log.clone();
    fut.add_done_callback(move |_| l.push("cb-before")).unwrap();
    let (l, f) = (log.clone(), fut.clone());
    let waiter = event_loop
        .create_task(async move {
            let v = f.await.unwrap();
            l.push(format!("task resumed {v}"));
        })
        .unwrap();
    run_one_iteration(&event_loop); // the task starts and waits
    let l = log.clone();
    fut.add_done_callback(move |_| l.push("cb-after")).unwrap();
    fut.set_result(5).unwrap();
    event_loop.run_until_complete(waiter).unwrap().unwrap();
    assert_eq!(log.take(), ["cb-before", "task resumed 5", "cb-after"]);
    event_loop.close().unwrap();
}

#[test]
fn a_future_or_task_of_another_loop_is_refused_not_awaited_for_ever() {
    // asyncio: run_until_complete(fut of another loop) raises "The future belongs to a different
    // loop ..."; a task awaiting one fails too. The other loop is not running, so waiting could
    // only hang.
    let _w = watchdog("foreign_loop");
    let (lp, _) = virtual_loop();
    let (other, _) = virtual_loop();
    let foreign = other.create_future::<i32>();
    let err = lp.run_until_complete(foreign.clone()).unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("different loop"), "{err}");
    // Even when it is done.
    foreign.set_result(1).unwrap();
    let err = lp.run_until_complete(foreign.clone()).unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let task = other.create_task(async { 5 }).unwrap();
    let err = lp.run_until_complete(task).unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // Inside a task of `lp`, awaiting the other loop's task fails the same way.
    let task = other.create_task(async { 6 }).unwrap();
    let inner = lp
        .run_until_complete(async move {
            let out = task.await;
            asyncio::sleep(0.0).await.unwrap();
            out
        })
        .unwrap();
    assert_eq!(inner.unwrap_err().kind(), ErrorKind::InvalidArgument);
    // On its own loop, the same objects are fine.
    assert_eq!(other.run_until_complete(foreign).unwrap().unwrap(), 1);
    let task = other.create_task(async { 7 }).unwrap();
    assert_eq!(other.run_until_complete(task).unwrap().unwrap(), 7);
    // block_on is refused the same way.
    let task = other.create_task(async { 8 }).unwrap();
    let err = lp.block_on(task).unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}
