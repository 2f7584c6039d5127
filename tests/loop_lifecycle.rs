//! Running, stopping, re-entering and closing a loop (spec R11-R17, R19): `stop()` finishes the
//! current iteration, a pre-stopped loop runs exactly one iteration, `run_until_complete`
//! stopped early fails and leaves the loop reusable, re-entry is an error (never a deadlock),
//! and `close()` drops what is queued without leaking.

mod loop_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use asyncio::{ErrorKind, EventLoop, ExceptionHandler};
use loop_support::{
    strs, virtual_loop, watchdog, yield_now, CountingSelector, DropCounter, Never, Recorder,
};

#[test]
fn stop_lets_the_current_iteration_finish() {
    // R11: callbacks ready when the iteration started still run; what they schedule waits.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_soon(rec.cb("1")).unwrap();
        let (l, r) = (lp.clone(), rec.clone());
        lp.call_soon(move || {
            r.push("2-stops");
            l.stop();
            l.call_soon(r.cb("scheduled-by-2")).unwrap();
        })
        .unwrap();
        lp.call_soon(rec.cb("3")).unwrap();
        lp.call_later(0.0, rec.cb("due-timer")).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.take(), strs(&["1", "2-stops", "3", "due-timer"]));
        assert!(!lp.is_running());
        // The stop request was consumed: the next run goes on until the next stop.
        let l = lp.clone();
        lp.call_later(1.0, move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.take(), strs(&["scheduled-by-2"]));
        assert_eq!(lp.time(), 1.0);
        lp.close().unwrap();
    });
}

#[test]
fn a_pre_stopped_loop_runs_exactly_one_iteration() {
    // R12 (test_run_forever_pre_stopped; EXP:e2 "9": ran [1, 2], 3 deferred).
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        lp.call_soon(rec.cb("1")).unwrap();
        let (l, r) = (lp.clone(), rec.clone());
        lp.call_soon(move || {
            r.push("2");
            l.call_soon(r.cb("3")).unwrap();
        })
        .unwrap();
        lp.stop();
        lp.stop();
        let before = lp.iteration_count();
        lp.run_forever().unwrap();
        assert_eq!(lp.iteration_count(), before + 1);
        assert_eq!(rec.take(), strs(&["1", "2"]));
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(rec.take(), strs(&["3"]));
        assert_eq!(lp.iteration_count(), before + 2);
        lp.close().unwrap();
    });
}

#[test]
fn a_pre_stopped_idle_loop_does_not_block() {
    // A real clock, a far timer and nothing ready: the pre-stopped iteration polls with a zero
    // timeout instead of sleeping until the timer.
    watchdog(|| {
        let (sel, stats) = CountingSelector::boxed();
        let lp = EventLoop::builder().selector(sel).build().unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
        lp.add_reader(fd, || ()).unwrap();
        lp.call_later(3600.0, || unreachable!()).unwrap();
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(stats.timeouts(), vec![Some(Duration::ZERO)]);
        assert!(lp.remove_reader(fd).unwrap());
        // Without any fd the poll is skipped altogether.
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(stats.count(), 1);
        lp.close().unwrap();
    });
}

#[test]
fn a_pre_stopped_run_until_complete_stops_after_one_iteration() {
    // R12 applied to run_until_complete (which is run_forever in CPython): the task gets one
    // step, then "Event loop stopped before Future completed.".
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let steps = Rc::new(Cell::new(0));
        let s = steps.clone();
        lp.stop();
        let err = lp
            .run_until_complete(async move {
                s.set(1);
                yield_now().await;
                s.set(2);
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StoppedBeforeComplete);
        assert_eq!(steps.get(), 1);
        // The task is still scheduled and finishes on the next run.
        lp.run_until_complete(async {}).unwrap();
        assert_eq!(steps.get(), 2);
        lp.close().unwrap();
    });
}

#[test]
fn run_until_complete_returns_the_output_one_iteration_after_the_task() {
    // The done callback stops the loop, so callbacks the task scheduled just before finishing
    // still run, and what those schedule waits for the next run.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let (l, r) = (lp.clone(), rec.clone());
        let out = lp
            .run_until_complete(async move {
                let (l2, r2) = (l.clone(), r.clone());
                l.call_soon(move || {
                    r2.push("scheduled-by-task");
                    l2.call_soon(r2.cb("second-generation")).unwrap();
                })
                .unwrap();
                r.push("task-done");
                42
            })
            .unwrap();
        assert_eq!(out, 42);
        assert_eq!(rec.take(), strs(&["task-done", "scheduled-by-task"]));
        assert!(!lp.is_running());
        lp.run_until_complete(async {}).unwrap();
        assert_eq!(rec.take(), strs(&["second-generation"]));
        lp.close().unwrap();
    });
}

#[test]
fn run_until_complete_stopped_early_fails_and_the_loop_is_reusable() {
    // R15 (EXP:e2): RuntimeError('Event loop stopped before Future completed.').
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let fut = lp.create_future::<u32>();
        let l = lp.clone();
        lp.call_later(1.0, move || l.stop()).unwrap();
        let waiter = fut.clone();
        let progress = Rc::new(Cell::new(0));
        let p = progress.clone();
        let err = lp
            .run_until_complete(async move {
                p.set(1);
                let v = waiter.await.unwrap();
                p.set(v);
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StoppedBeforeComplete);
        assert_eq!(
            err.to_string(),
            "Event loop stopped before Future completed."
        );
        assert!(!lp.is_running());
        assert!(!lp.is_closed());
        assert_eq!(progress.get(), 1);
        // Reusable: a new run works, and the abandoned task resumes when its future is set.
        let f = fut.clone();
        let v = lp
            .run_until_complete(async move {
                f.set_result(5).unwrap();
                asyncio::sleep(0.0).await.unwrap();
                asyncio::sleep(0.0).await.unwrap();
                "second"
            })
            .unwrap();
        assert_eq!(v, "second");
        assert_eq!(progress.get(), 5);
        lp.close().unwrap();
    });
}

#[test]
fn run_until_complete_reports_a_panicking_future() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let err = lp
            .run_until_complete(async {
                yield_now().await;
                panic!("task boom");
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert_eq!(err.message(), "task boom");
        assert!(!lp.is_running());
        assert_eq!(lp.run_until_complete(async { 3 }).unwrap(), 3);
        lp.close().unwrap();
    });
}

#[test]
fn is_running_and_the_running_loop_follow_the_run() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let handle = lp.handle();
        assert!(!lp.is_running());
        assert!(!handle.is_running());
        assert!(asyncio::try_running_loop().is_none());
        assert_eq!(
            asyncio::get_running_loop().unwrap_err().kind(),
            ErrorKind::NoRunningLoop
        );
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (l, s, h) = (lp.clone(), seen.clone(), handle.clone());
        lp.call_soon(move || {
            let running = asyncio::get_running_loop().unwrap();
            s.borrow_mut().push((
                l.is_running(),
                h.is_running(),
                running.ptr_eq(&l),
                h.is_handle_of(&running),
            ));
            l.stop();
        })
        .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(*seen.borrow(), vec![(true, true, true, true)]);
        assert!(!lp.is_running());
        assert!(!handle.is_running());
        assert!(asyncio::try_running_loop().is_none());
        lp.close().unwrap();
        assert!(handle.is_closed());
    });
}

#[test]
fn running_a_loop_inside_its_own_callback_is_already_running() {
    // R14: RuntimeError('This event loop is already running').
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let errors = Rc::new(RefCell::new(Vec::new()));
        let drops = DropCounter::new();
        let (l, e, token) = (lp.clone(), errors.clone(), drops.token());
        lp.call_soon(move || {
            let err = l.run_forever().unwrap_err();
            e.borrow_mut().push((err.kind(), err.to_string()));
            let polled = Rc::new(Cell::new(false));
            let p = polled.clone();
            let err = l
                .run_until_complete(async move {
                    let _t = token;
                    p.set(true);
                })
                .unwrap_err();
            e.borrow_mut().push((err.kind(), err.to_string()));
            // The inner future was dropped without being polled.
            assert!(!polled.get());
            let err = l.block_on(async {}).unwrap_err();
            e.borrow_mut().push((err.kind(), err.to_string()));
            assert!(l.is_running());
        })
        .unwrap();
        let l = lp.clone();
        lp.call_soon(move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        // From run_forever, run_until_complete and block_on.
        let msg = "This event loop is already running".to_owned();
        assert_eq!(*errors.borrow(), vec![(ErrorKind::AlreadyRunning, msg); 3]);
        assert_eq!(drops.dropped(), 1);
        // The same checks from inside a task.
        let l = lp.clone();
        let kind = lp
            .run_until_complete(async move { l.run_until_complete(async {}).unwrap_err().kind() })
            .unwrap();
        assert_eq!(kind, ErrorKind::AlreadyRunning);
        assert!(!lp.is_running());
        lp.close().unwrap();
    });
}

#[test]
fn running_another_loop_inside_a_running_loop_is_an_error() {
    // R14: RuntimeError('Cannot run the event loop while another loop is running').
    watchdog(|| {
        let (outer, _) = virtual_loop();
        let (inner, _) = virtual_loop();
        let rec = Recorder::new();
        inner.call_soon(rec.cb("inner-callback")).unwrap();
        let errors = Rc::new(RefCell::new(Vec::new()));
        let (o, i, e) = (outer.clone(), inner.clone(), errors.clone());
        outer
            .call_soon(move || {
                let err = i.run_forever().unwrap_err();
                e.borrow_mut().push((err.kind(), err.to_string()));
                let err = i.run_until_complete(async {}).unwrap_err();
                e.borrow_mut().push((err.kind(), err.to_string()));
                let err = i.block_on(async {}).unwrap_err();
                e.borrow_mut().push((err.kind(), err.to_string()));
                assert!(!i.is_running());
                let running = asyncio::get_running_loop().unwrap();
                assert!(running.ptr_eq(&o));
                o.stop();
            })
            .unwrap();
        outer.run_forever().unwrap();
        // From run_forever, run_until_complete and block_on.
        let msg = "Cannot run the event loop while another loop is running".to_owned();
        assert_eq!(
            *errors.borrow(),
            vec![(ErrorKind::AnotherLoopRunning, msg); 3]
        );
        // Neither loop was damaged: the inner one still holds its callback and runs it.
        assert_eq!(rec.len(), 0);
        inner.run_until_complete(async {}).unwrap();
        assert_eq!(rec.take(), strs(&["inner-callback"]));
        assert_eq!(outer.run_until_complete(async { 1 }).unwrap(), 1);
        outer.close().unwrap();
        inner.close().unwrap();
    });
}

#[test]
fn loops_on_different_threads_run_at_the_same_time() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let other = std::thread::spawn(move || {
            let (lp2, _) = virtual_loop();
            let v = lp2
                .run_until_complete(async {
                    asyncio::sleep(10.0).await.unwrap();
                    7
                })
                .unwrap();
            lp2.close().unwrap();
            tx.send(v).unwrap();
        });
        let got = lp
            .run_until_complete(async move {
                // Block this loop's thread until the other loop is done: two loops running.
                rx.recv_timeout(Duration::from_secs(15)).unwrap()
            })
            .unwrap();
        assert_eq!(got, 7);
        other.join().unwrap();
        lp.close().unwrap();
    });
}

#[test]
fn close_refuses_a_running_loop_and_is_idempotent() {
    // R17: RuntimeError('Cannot close a running event loop'); a second close is a no-op.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let result = Rc::new(RefCell::new(None));
        let (l, r) = (lp.clone(), result.clone());
        lp.call_soon(move || {
            *r.borrow_mut() = Some(l.close());
            assert!(!l.is_closed());
            l.stop();
        })
        .unwrap();
        lp.run_forever().unwrap();
        let err = result.borrow_mut().take().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
        assert_eq!(err.to_string(), "Cannot close a running event loop");
        assert!(!lp.is_closed());
        // The loop still works.
        assert_eq!(lp.run_until_complete(async { 9 }).unwrap(), 9);
        lp.close().unwrap();
        assert!(lp.is_closed());
        lp.close().unwrap();
        assert!(lp.is_closed());
    });
}

#[test]
fn close_drops_queued_callbacks_timers_and_remote_calls_without_running_them() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let drops = DropCounter::new();
        let ran = Rc::new(Cell::new(0));
        for _ in 0..3 {
            let (t, r) = (drops.token(), ran.clone());
            lp.call_soon(move || {
                let _t = &t;
                r.set(r.get() + 1);
            })
            .unwrap();
            let (t, r) = (drops.token(), ran.clone());
            lp.call_later(1.0, move || {
                let _t = &t;
                r.set(r.get() + 1);
            })
            .unwrap();
            let t = drops.token();
            lp.handle()
                .call_soon_threadsafe(move || {
                    let _t = &t;
                    panic!("must not run");
                })
                .unwrap();
        }
        assert_eq!(drops.dropped(), 0);
        lp.close().unwrap();
        assert_eq!(drops.dropped(), 9);
        assert_eq!(ran.get(), 0);
        assert_eq!(lp.timer_heap_len(), 0);
    });
}

#[test]
fn closing_with_pending_tasks_drops_their_futures_and_reports_them() {
    // R19: the pending task's future is dropped (its Drop plays `finally`), and the handler
    // hears "Task was destroyed but it is pending!".
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let messages = Rc::new(RefCell::new(Vec::new()));
        let m = messages.clone();
        let handler: ExceptionHandler = Rc::new(move |_, ctx| {
            m.borrow_mut()
                .push((ctx.message.clone(), ctx.task.as_ref().map(|t| t.get_name())))
        });
        lp.set_exception_handler(Some(handler));
        let drops = DropCounter::new();
        // A task that holds a clone of its loop (a cycle that close() must break).
        let (l, t) = (lp.clone(), drops.token());
        let holder = lp
            .create_task(async move {
                let _t = t;
                let _lp = l;
                asyncio::sleep(3600.0).await.unwrap();
            })
            .unwrap();
        holder.set_name("holder");
        // A detached task waiting forever on nothing.
        lp.create_task(Never(Some(drops.token())))
            .unwrap()
            .set_name("never");
        // Both start and suspend.
        lp.stop();
        lp.run_forever().unwrap();
        // A task that never got its first step.
        lp.create_task(Never(Some(drops.token())))
            .unwrap()
            .set_name("unstarted");
        assert_eq!(drops.dropped(), 0);
        lp.close().unwrap();
        assert_eq!(drops.dropped(), 3);
        assert!(holder.done());
        assert!(holder.cancelled());
        let mut got = messages.borrow().clone();
        got.sort();
        assert_eq!(
            got,
            vec![
                (
                    "Task was destroyed but it is pending!".to_owned(),
                    Some("holder".to_owned())
                ),
                (
                    "Task was destroyed but it is pending!".to_owned(),
                    Some("never".to_owned())
                ),
                (
                    "Task was destroyed but it is pending!".to_owned(),
                    Some("unstarted".to_owned())
                ),
            ]
        );
        assert!(lp.all_tasks().is_empty());
        drop(holder);
        drop(lp);
    });
}

#[test]
fn dropping_an_unclosed_loop_releases_everything_it_holds() {
    watchdog(|| {
        let drops = DropCounter::new();
        let (lp, _) = virtual_loop();
        // A started task, suspended on a timer.
        let t = drops.token();
        let task = lp
            .create_task(async move {
                let _t = t;
                asyncio::sleep(100.0).await.unwrap();
            })
            .unwrap();
        lp.stop();
        lp.run_forever().unwrap();
        // Then queued work of every kind.
        lp.create_task(Never(Some(drops.token()))).unwrap();
        let t = drops.token();
        lp.call_soon(move || drop(t)).unwrap();
        let t = drops.token();
        lp.call_later(5.0, move || drop(t)).unwrap();
        let t = drops.token();
        lp.handle().call_soon_threadsafe(move || drop(t)).unwrap();
        assert_eq!(drops.dropped(), 0);
        let handle = lp.handle();
        drop(lp);
        assert_eq!(drops.dropped(), 5);
        assert!(handle.is_closed());
        assert_eq!(
            handle.call_soon_threadsafe(|| ()).unwrap_err().kind(),
            ErrorKind::Closed
        );
        // The task handle outlives its loop harmlessly.
        assert!(task.done());
        drop(task);
    });
}

#[test]
fn drop_code_that_touches_the_closing_loop_gets_errors_not_panics() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let outcomes = Rc::new(RefCell::new(Vec::new()));
        struct OnDrop<F: FnMut()>(F);
        impl<F: FnMut()> Drop for OnDrop<F> {
            fn drop(&mut self) {
                (self.0)()
            }
        }
        let (l, o) = (lp.clone(), outcomes.clone());
        let guard = OnDrop(move || {
            o.borrow_mut().push(format!(
                "soon:{:?} later:{:?} task:{:?} reader:{}",
                l.call_soon(|| ()).map(|_| ()).map_err(|e| e.kind()),
                l.call_later(1.0, || ()).map(|_| ()).map_err(|e| e.kind()),
                l.create_task(async {}).map(|_| ()).map_err(|e| e.kind()),
                l.remove_reader(0).unwrap(),
            ));
        });
        lp.call_soon(move || drop(guard)).unwrap();
        let (l, o) = (lp.clone(), outcomes.clone());
        let guard2 = OnDrop(move || {
            o.borrow_mut().push(format!(
                "tasks:{} close:{:?}",
                l.all_tasks().len(),
                l.close().map_err(|e| e.kind())
            ))
        });
        lp.create_task(async move {
            let _g = guard2;
            Never(None).await;
        })
        .unwrap();
        lp.close().unwrap();
        let got = outcomes.borrow().clone();
        assert_eq!(
            got,
            vec![
                "soon:Err(Closed) later:Err(Closed) task:Err(Closed) reader:false".to_owned(),
                "tasks:0 close:Ok(())".to_owned(),
            ]
        );
    });
}

#[test]
fn a_panicking_drop_does_not_stop_close_from_releasing_the_rest() {
    // CPython ignores exceptions raised while close() drops its queues; here the panic goes to
    // the exception handler and everything else is still released.
    watchdog(|| {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("drop bomb");
            }
        }
        let (lp, _) = virtual_loop();
        let seen = record_exceptions(&lp);
        let drops = DropCounter::new();
        let bomb = Bomb;
        lp.call_soon(move || {
            let _b = &bomb;
        })
        .unwrap();
        let t = drops.token();
        lp.call_soon(move || drop(t)).unwrap();
        let t = drops.token();
        lp.call_later(1.0, move || drop(t)).unwrap();
        let (l, t) = (lp.clone(), drops.token());
        lp.create_task(async move {
            let _t = t;
            let _l = l;
            Never(None).await
        })
        .unwrap();
        lp.close().unwrap();
        assert!(lp.is_closed());
        assert_eq!(drops.dropped(), 3);
        let seen = seen.borrow().clone();
        assert!(
            seen.contains(&(
                "Exception while dropping the pending work of a closed loop".to_owned(),
                Some((ErrorKind::Panicked, "drop bomb".to_owned()))
            )),
            "{seen:?}"
        );
    });
}

#[test]
fn a_task_future_whose_drop_panics_at_close_reaches_the_exception_handler() {
    // Closing drops a pending task's future (its `finally`); a panic there is reported like
    // every other panic, not swallowed.
    watchdog(|| {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("task drop bomb");
            }
        }
        let (lp, _) = virtual_loop();
        let seen = record_exceptions(&lp);
        let task = lp
            .create_task(async move {
                let _bomb = Bomb;
                Never(None).await
            })
            .unwrap();
        // One step, so the future holds the bomb.
        lp.run_until_complete(yield_now()).unwrap();
        lp.close().unwrap();
        assert!(task.cancelled());
        let seen = seen.borrow().clone();
        assert!(
            seen.contains(&(
                "Exception while dropping the pending work of a closed loop".to_owned(),
                Some((ErrorKind::Panicked, "task drop bomb".to_owned()))
            )),
            "{seen:?}"
        );
    });
}

/// What the exception handler saw: `(message, (kind, exception message))` per call.
type Seen = Rc<RefCell<Vec<(String, Option<(ErrorKind, String)>)>>>;

/// Installs an exception handler on `lp` that records every call.
fn record_exceptions(lp: &EventLoop) -> Seen {
    let seen: Seen = Rc::default();
    let s = seen.clone();
    let handler: ExceptionHandler = Rc::new(move |_, ctx| {
        s.borrow_mut().push((
            ctx.message.clone(),
            ctx.exception
                .as_ref()
                .map(|e| (e.kind(), e.message().to_owned())),
        ))
    });
    lp.set_exception_handler(Some(handler));
    seen
}
