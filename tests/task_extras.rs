//! Task extras: cancel messages, `cancelling()`/`uncancel()`, `remove_done_callback`, and the
//! task factory (`set_task_factory`/`get_task_factory`).

mod locks_support;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{sleep, ErrorKind, EventLoop, TaskBody};
use locks_support::{run_one_iteration, virtual_loop, watchdog, Log};

#[test]
fn cancel_with_carries_the_message() {
    let _w = watchdog("cancel_with");
    let (event_loop, _c) = virtual_loop();
    let t = event_loop.create_task(sleep(10.0)).unwrap();
    let r = t.as_task_ref();
    assert!(r.cancel_with("first"));
    assert!(t.cancel_with("last one wins"));
    let err = event_loop.run_until_complete(t).unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(err.to_string(), "last one wins");
    assert_eq!(r.exception().unwrap().to_string(), "last one wins");
    assert!(!r.cancel_with("too late"));
    // A plain cancel keeps the kind's text.
    let t = event_loop.create_task(sleep(10.0)).unwrap();
    t.cancel();
    let err = event_loop.run_until_complete(t).unwrap().unwrap_err();
    assert_eq!(err.to_string(), "cancelled");
    event_loop.close().unwrap();
}

#[test]
fn cancelling_counts_requests_and_uncancel_withdraws_them() {
    let _w = watchdog("uncancel");
    let (event_loop, _c) = virtual_loop();
    let t = event_loop.create_task(async { 7 }).unwrap();
    assert_eq!(t.cancelling(), 0);
    assert!(t.cancel());
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 2);
    assert_eq!(t.uncancel(), 1);
    // One request left: the task is still cancelled.
    let r = t.as_task_ref();
    run_one_iteration(&event_loop);
    assert!(r.cancelled());
    assert_eq!(t.uncancel(), 0);
    assert_eq!(t.uncancel(), 0);

    // Every request withdrawn before the step: it runs normally (asyncio 3.13).
    let t = event_loop.create_task(async { 7 }).unwrap();
    t.cancel();
    assert_eq!(t.as_task_ref().uncancel(), 0);
    assert_eq!(event_loop.run_until_complete(t).unwrap().unwrap(), 7);
    event_loop.close().unwrap();
}

#[test]
fn remove_done_callback_removes_only_that_callback() {
    let _w = watchdog("remove_done_callback");
    let (event_loop, _c) = virtual_loop();
    let log = Log::new();
    let t = event_loop.create_task(async {}).unwrap();
    let ids: Vec<_> = (0..3)
        .map(|i| {
            let l = log.clone();
            t.add_done_callback(move |_| l.push(format!("cb{i}")))
                .unwrap()
        })
        .collect();
    assert_eq!(t.remove_done_callback(ids[1]), 1);
    assert_eq!(t.as_task_ref().remove_done_callback(ids[1]), 0);
    let r = t.as_task_ref();
    event_loop.run_until_complete(t).unwrap().unwrap();
    run_one_iteration(&event_loop);
    assert_eq!(log.get(), ["cb0", "cb2"]);
    // Once done, a callback is scheduled at once and can no longer be removed.
    let l = log.clone();
    let id = r.add_done_callback(move |_| l.push("late")).unwrap();
    assert_eq!(r.remove_done_callback(id), 0);
    run_one_iteration(&event_loop);
    assert_eq!(log.get(), ["cb0", "cb2", "late"]);
    event_loop.close().unwrap();
}

#[test]
fn task_factory_wraps_every_task() {
    let _w = watchdog("task_factory");
    let (event_loop, _c) = virtual_loop();
    assert!(event_loop.get_task_factory().is_none());
    let log = Log::new();
    let l = log.clone();
    event_loop.set_task_factory(Some(Rc::new(move |_lp: &EventLoop, body: TaskBody| {
        let l = l.clone();
        l.push("created");
        Box::pin(async move {
            l.push("start");
            body.await;
            l.push("end");
        }) as TaskBody
    })));
    let v = event_loop
        .run_until_complete(async {
            // gather's children go through the factory too.
            asyncio::gather((0..2).map(|i| async move { i * 10 })).await
        })
        .unwrap()
        .unwrap();
    assert_eq!(v, [0, 10]);
    let entries = log.take();
    assert_eq!(entries.iter().filter(|e| *e == "created").count(), 3);
    assert_eq!(entries.iter().filter(|e| *e == "end").count(), 3);

    // A factory that never runs the body: the task fails, nothing hangs.
    event_loop.set_task_factory(Some(Rc::new(|_lp: &EventLoop, _body: TaskBody| {
        Box::pin(async {}) as TaskBody
    })));
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let t = event_loop.create_task(async move { r.set(true) }).unwrap();
    let probe = t.as_task_ref();
    // run_until_complete's own task goes through the factory as well (asyncio's
    // ensure_future does), so it fails the same way.
    let err = event_loop.run_until_complete(t).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    run_one_iteration(&event_loop);
    assert_eq!(probe.exception().unwrap().kind(), ErrorKind::Panicked);
    assert!(!ran.get());

    event_loop.set_task_factory(None);
    let t = event_loop.create_task(async { 1 }).unwrap();
    assert_eq!(event_loop.run_until_complete(t).unwrap().unwrap(), 1);
    event_loop.close().unwrap();
}
