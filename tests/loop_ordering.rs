//! The loop's ordering contract (spec R1-R3, R10): FIFO callbacks, one ready-queue snapshot per
//! iteration, due timers queued behind ready callbacks, and task steps interleaved FIFO with
//! plain callbacks.

mod loop_support;

use std::sync::{Arc, Mutex};

use asyncio::EventLoop;
use loop_support::{strs, virtual_loop, watchdog, yield_now, Recorder};

#[test]
fn call_soon_is_fifo() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        for i in 0..100 {
            lp.call_soon(rec.cb(i.to_string())).unwrap();
        }
        lp.call_soon({
            let lp = lp.clone();
            move || lp.stop()
        })
        .unwrap();
        lp.run_forever().unwrap();
        let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(rec.get(), expected);
        lp.close().unwrap();
    });
}

#[test]
fn call_soon_threadsafe_from_the_loop_thread_shares_the_fifo() {
    // R1: test_call_soon_threadsafe_same_thread.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let log = Arc::new(Mutex::new(Vec::new()));
        let push = |what: &'static str| {
            let log = log.clone();
            move || log.lock().unwrap().push(what)
        };
        lp.call_soon(push("soon-1")).unwrap();
        lp.call_soon_threadsafe(push("ts-1")).unwrap();
        lp.call_soon(push("soon-2")).unwrap();
        lp.call_soon_threadsafe(push("ts-2")).unwrap();
        lp.call_soon(push("soon-3")).unwrap();
        let lp2 = lp.clone();
        lp.call_soon(move || lp2.stop()).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["soon-1", "ts-1", "soon-2", "ts-2", "soon-3"]
        );
        lp.close().unwrap();
    });
}

#[test]
fn loop_handle_call_soon_threadsafe_on_the_loop_thread_shares_the_fifo() {
    // R1 through the thread-safe handle: called from a callback on the loop's own thread, it
    // joins the same FIFO queue as call_soon instead of the cross-thread inbox.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l, lp2, handle) = (log.clone(), lp.clone(), lp.handle());
        lp.call_soon(move || {
            let push = |what: &'static str| {
                let l = l.clone();
                move || l.lock().unwrap().push(what)
            };
            handle.call_soon_threadsafe(push("ts-1")).unwrap();
            lp2.call_soon(push("soon-1")).unwrap();
            handle.call_soon_threadsafe(push("ts-2")).unwrap();
            lp2.call_soon(push("soon-2")).unwrap();
            let lp3 = lp2.clone();
            lp2.call_soon(move || lp3.stop()).unwrap();
        })
        .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(*log.lock().unwrap(), ["ts-1", "soon-1", "ts-2", "soon-2"]);
        lp.close().unwrap();
    });
}

#[test]
fn each_iteration_runs_a_snapshot_of_the_ready_queue() {
    // R2 (EXP:e1): call_soon(a); call_soon(stop); call_soon(b); call_soon(c -> c2).
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_soon(rec.cb("a")).unwrap();
        let l = lp.clone();
        lp.call_soon(move || l.stop()).unwrap();
        lp.call_soon(rec.cb("b")).unwrap();
        let (l, r) = (lp.clone(), rec.clone());
        lp.call_soon(move || {
            r.push("c");
            l.call_soon(r.cb("c2")).unwrap();
        })
        .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.take(), strs(&["a", "b", "c"]));
        // c2 runs only on the next run.
        let l = lp.clone();
        lp.call_soon(move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.take(), strs(&["c2"]));
        lp.close().unwrap();
    });
}

#[test]
fn work_scheduled_by_a_callback_runs_in_the_next_iteration() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        fn chain(lp: &EventLoop, rec: &Recorder, n: u32) {
            let (l, r) = (lp.clone(), rec.clone());
            lp.call_soon(move || {
                r.push(format!("chain{n}@{}", l.iteration_count()));
                if n < 3 {
                    chain(&l, &r, n + 1);
                } else {
                    l.stop();
                }
            })
            .unwrap();
        }
        let start = lp.iteration_count();
        chain(&lp, &rec, 0);
        let r = rec.clone();
        let l = lp.clone();
        lp.call_soon(move || r.push(format!("other@{}", l.iteration_count())))
            .unwrap();
        lp.run_forever().unwrap();
        let i = |k: u64| start + 1 + k;
        assert_eq!(
            rec.get(),
            vec![
                format!("chain0@{}", i(0)),
                format!("other@{}", i(0)),
                format!("chain1@{}", i(1)),
                format!("chain2@{}", i(2)),
                format!("chain3@{}", i(3)),
            ]
        );
        assert_eq!(lp.iteration_count(), start + 4);
        lp.close().unwrap();
    });
}

#[test]
fn due_timers_queue_behind_ready_callbacks() {
    // R3: call_later(0, A); call_soon(B) runs B, A.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_later(0.0, rec.cb("A")).unwrap();
        lp.call_soon(rec.cb("B")).unwrap();
        let r = rec.clone();
        let l = lp.clone();
        lp.call_later(0.0, move || {
            r.push("C");
            l.stop();
        })
        .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["B", "A", "C"]));
        lp.close().unwrap();
    });
}

#[test]
fn due_timers_in_deadline_order_behind_call_soon() {
    // EXP:e1 "2 order": ['soon', 'later-2', 'later-1', 'later0'].
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_later(0.0, rec.cb("later0")).unwrap();
        lp.call_later(-1.0, rec.cb("later-1")).unwrap();
        lp.call_later(-2.0, rec.cb("later-2")).unwrap();
        lp.call_soon(rec.cb("soon")).unwrap();
        lp.run_until_complete(async {}).unwrap();
        assert_eq!(rec.get(), strs(&["soon", "later-2", "later-1", "later0"]));
        lp.close().unwrap();
    });
}

#[test]
fn a_timer_scheduled_by_a_callback_waits_for_the_next_iteration() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let (l, r) = (lp.clone(), rec.clone());
        lp.call_soon(move || {
            r.push(format!("soon@{}", l.iteration_count()));
            let (l2, r2) = (l.clone(), r.clone());
            l.call_later(0.0, move || {
                r2.push(format!("timer@{}", l2.iteration_count()));
                l2.stop();
            })
            .unwrap();
            let (l3, r3) = (l.clone(), r.clone());
            l.call_soon(move || r3.push(format!("soon2@{}", l3.iteration_count())))
                .unwrap();
        })
        .unwrap();
        let s = lp.iteration_count();
        lp.run_forever().unwrap();
        // The zero-delay timer is due in iteration 2, where it queues behind soon2.
        assert_eq!(
            rec.get(),
            vec![
                format!("soon@{}", s + 1),
                format!("soon2@{}", s + 2),
                format!("timer@{}", s + 2),
            ]
        );
        lp.close().unwrap();
    });
}

#[test]
fn tasks_interleave_fifo_with_callbacks() {
    // R10 (EXP:e12): create_task(A); call_soon(cs); create_task(B)
    //   => A-start, cs, B-start, A-resume, B-resume.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let r = rec.clone();
        let a = lp
            .create_task(async move {
                r.push("A-start");
                yield_now().await;
                r.push("A-resume");
            })
            .unwrap();
        lp.call_soon(rec.cb("cs")).unwrap();
        let r = rec.clone();
        let b = lp
            .create_task(async move {
                r.push("B-start");
                yield_now().await;
                r.push("B-resume");
            })
            .unwrap();
        lp.run_until_complete(async move {
            a.await.unwrap();
            b.await.unwrap();
        })
        .unwrap();
        assert_eq!(
            rec.get(),
            strs(&["A-start", "cs", "B-start", "A-resume", "B-resume"])
        );
        lp.close().unwrap();
    });
}

#[test]
fn sleep_zero_yields_to_every_ready_callback() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let r = rec.clone();
        let l = lp.clone();
        lp.run_until_complete(async move {
            l.call_soon(r.cb("cb1")).unwrap();
            l.call_soon(r.cb("cb2")).unwrap();
            r.push("before");
            asyncio::sleep(0.0).await.unwrap();
            r.push("after");
        })
        .unwrap();
        assert_eq!(rec.get(), strs(&["before", "cb1", "cb2", "after"]));
        lp.close().unwrap();
    });
}

#[test]
fn a_task_woken_by_a_callback_runs_after_that_batch() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let fut = lp.create_future::<u32>();
        let r = rec.clone();
        let waiter = fut.clone();
        let t = lp
            .create_task(async move {
                r.push("wait");
                let v = waiter.await.unwrap();
                r.push(format!("got{v}"));
            })
            .unwrap();
        let (r, f) = (rec.clone(), fut.clone());
        lp.call_soon(move || {
            r.push("set");
            f.set_result(7).unwrap();
        })
        .unwrap();
        lp.call_soon(rec.cb("same-batch")).unwrap();
        lp.run_until_complete(t).unwrap().unwrap();
        assert_eq!(rec.get(), strs(&["wait", "set", "same-batch", "got7"]));
        lp.close().unwrap();
    });
}

#[test]
fn a_task_woken_while_its_loop_is_stopped_keeps_its_fifo_place() {
    // asyncio's set_result schedules the task's wake-up with call_soon even between runs, so
    // it runs before callbacks queued after it.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let fut = lp.create_future::<u32>();
        let (f, r) = (fut.clone(), rec.clone());
        let t = lp
            .create_task(async move {
                f.await.unwrap();
                r.push("task");
            })
            .unwrap();
        lp.run_until_complete(asyncio::sleep(0.0)).unwrap().unwrap();
        lp.call_soon(rec.cb("before")).unwrap();
        fut.set_result(1).unwrap();
        lp.call_soon(rec.cb("after")).unwrap();
        lp.run_until_complete(t).unwrap().unwrap();
        assert_eq!(rec.get(), strs(&["before", "task", "after"]));
        lp.close().unwrap();
    });
}

#[test]
fn a_task_woken_from_another_loop_on_the_same_thread_keeps_its_fifo_place() {
    watchdog(|| {
        let (a, _) = virtual_loop();
        let (b, _) = virtual_loop();
        let rec = Recorder::new();
        let fut = a.create_future::<u32>();
        let (f, r) = (fut.clone(), rec.clone());
        let t = a
            .create_task(async move {
                f.await.unwrap();
                r.push("task-on-a");
            })
            .unwrap();
        a.run_until_complete(asyncio::sleep(0.0)).unwrap().unwrap();
        let (f, r, la) = (fut.clone(), rec.clone(), a.clone());
        b.run_until_complete(async move {
            la.call_soon(r.cb("a-before")).unwrap();
            f.set_result(2).unwrap();
            la.call_soon(r.cb("a-after")).unwrap();
        })
        .unwrap();
        assert!(rec.get().is_empty());
        a.run_until_complete(t).unwrap().unwrap();
        assert_eq!(rec.get(), strs(&["a-before", "task-on-a", "a-after"]));
        a.close().unwrap();
        b.close().unwrap();
    });
}
