//! Structured concurrency: `TaskGroup`/`task_group` (ports of CPython's test_taskgroups),
//! `gather!` over different types, `gather_tasks` cancelling the tasks themselves in one
//! iteration, `return_exceptions`, `as_completed` order and timeout, and `to_thread`.

mod locks_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use asyncio::{
    as_completed, as_completed_tasks, gather, gather_tasks, sleep, task_group, to_thread, wait_for,
    Error, ErrorKind, ExceptionGroup, TaskGroup,
};
use locks_support::{run, run_one_iteration, spawn, virtual_loop, watchdog, yield_now, Log};

fn my_err(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

fn group_messages(e: &Error) -> Vec<String> {
    assert_eq!(e.kind(), ErrorKind::ExceptionGroup, "{e:?}");
    ExceptionGroup::of(e)
        .unwrap()
        .errors()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// TaskGroup

/// test_taskgroup_01: the group waits for every child.
#[test]
fn taskgroup_waits_for_every_child() {
    run("tg_01", |_| async {
        let (t1, t2) = task_group(|tg| async move {
            let t1 = tg.create_task(async {
                sleep(0.1).await?;
                Ok(42)
            })?;
            let t2 = tg.create_task(async {
                sleep(0.2).await?;
                Ok(11)
            })?;
            Ok((t1, t2))
        })
        .await
        .unwrap();
        assert_eq!(t1.result().unwrap().unwrap(), 42);
        assert_eq!(t2.result().unwrap().unwrap(), 11);
    });
}

/// test_taskgroup_03 / test_cancel_children_on_child_error: a failure cancels the siblings
/// and the body; the error is collected. The body is cancelled (dropped) in the iteration
/// where the failure lands, as asyncio cancels the parent task, not once the group returns.
#[test]
fn taskgroup_first_failure_cancels_the_rest() {
    run("tg_failure", |_| async {
        let log = Log::new();
        let sibling = Rc::new(RefCell::new(None));
        let (l, sib) = (log.clone(), sibling.clone());
        let err = task_group(|tg| async move {
            let _finally = LogOnDrop(l.clone(), "body");
            let l2 = l.clone();
            let long = tg.create_task(async move {
                let _finally = LogOnDrop(l2, "sibling");
                sleep(3600.0).await?;
                Ok(())
            })?;
            let l3 = l.clone();
            long.add_done_callback(move |_| l3.push("sibling done callback"))?;
            *sib.borrow_mut() = Some(long.as_task_ref());
            tg.create_task(async {
                sleep(0.1).await?;
                Err::<(), _>(my_err("boom"))
            })?;
            sleep(3600.0).await?;
            l.push("body ran on");
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(group_messages(&err), ["boom"]);
        assert_eq!(
            err.to_string(),
            "unhandled errors in a TaskGroup (1 sub-exception)"
        );
        assert_eq!(log.get(), ["sibling", "body", "sibling done callback"]);
        assert!(sibling.borrow().as_ref().unwrap().cancelled());
    });
}

struct LogOnDrop(Log, &'static str);

impl Drop for LogOnDrop {
    fn drop(&mut self) {
        self.0.push(self.1);
    }
}

/// test_taskgroup_07-ish: failures that happen before the cancellation lands are all kept, a
/// panic included.
#[test]
fn taskgroup_collects_every_error() {
    run("tg_errors", |_| async {
        let err = task_group(|tg| async move {
            tg.create_task(async { Err::<(), _>(my_err("a")) })?;
            tg.create_task(async {
                if true {
                    panic!("b");
                }
                Ok(())
            })?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(group_messages(&err), ["a", "b"]);
        let kinds: Vec<_> = ExceptionGroup::of(&err)
            .unwrap()
            .errors()
            .iter()
            .map(Error::kind)
            .collect();
        assert_eq!(kinds, [ErrorKind::InvalidArgument, ErrorKind::Panicked]);
    });
}

/// The body's own error is a failure too: the children are cancelled.
#[test]
fn taskgroup_body_error_cancels_children() {
    run("tg_body_error", |_| async {
        let child = Rc::new(RefCell::new(None));
        let c = child.clone();
        let err = task_group(|tg| async move {
            let t = tg.create_task(async {
                sleep(3600.0).await?;
                Ok(())
            })?;
            *c.borrow_mut() = Some(t.as_task_ref());
            yield_now().await;
            Err::<(), _>(my_err("body"))
        })
        .await
        .unwrap_err();
        assert_eq!(group_messages(&err), ["body"]);
        assert!(child.borrow().as_ref().unwrap().cancelled());
    });
}

/// test_taskgroup_13-ish: nested groups: the inner group's errors reach the outer one.
#[test]
fn taskgroup_nested_groups_propagate() {
    run("tg_nested", |_| async {
        let err = task_group(|outer| async move {
            outer.create_task(task_group(|inner| async move {
                inner.create_task(async { Err::<(), _>(my_err("deep")) })?;
                Ok(())
            }))?;
            Ok(())
        })
        .await
        .unwrap_err();
        let outer = ExceptionGroup::of(&err).unwrap();
        assert_eq!(outer.errors().len(), 1);
        assert_eq!(group_messages(&outer.errors()[0]), ["deep"]);
    });
}

/// test_cancellation: cancelling the task that runs the group cancels the children.
#[test]
fn taskgroup_parent_cancel_cancels_children() {
    run("tg_parent_cancel", |_| async {
        let children = Rc::new(RefCell::new(Vec::new()));
        let c = children.clone();
        let parent = spawn(task_group(move |tg| async move {
            for _ in 0..3 {
                let t = tg.create_task(async {
                    sleep(3600.0).await?;
                    Ok(())
                })?;
                c.borrow_mut().push(t.as_task_ref());
            }
            sleep(3600.0).await?;
            Ok(())
        }));
        sleep(0.1).await.unwrap();
        parent.cancel();
        assert!(parent.await.unwrap_err().is_cancelled());
        yield_now().await;
        assert_eq!(children.borrow().len(), 3);
        assert!(children.borrow().iter().all(|t| t.cancelled()));
    });
}

/// test_taskgroup_no_create_task_after_failure and test_taskgroup_finished.
#[test]
fn taskgroup_refuses_tasks_after_failure_and_after_the_end() {
    run("tg_refuses", |_| async {
        let tg = TaskGroup::new().unwrap();
        tg.create_task(async { Err::<(), _>(my_err("x")) }).unwrap();
        yield_now().await; // the child fails
        yield_now().await; // its done callback aborts the group
        let e = tg.create_task(async { Ok(()) }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidState);
        assert_eq!(e.to_string(), "TaskGroup is shutting down");
        let keep = tg.clone();
        assert_eq!(group_messages(&tg.join().await.unwrap_err()), ["x"]);
        let e = keep.create_task(async { Ok(()) }).unwrap_err();
        assert_eq!(e.to_string(), "TaskGroup is finished");
    });
}

/// A failing child ends with its own error, not as cancelled by its own abort.
#[test]
fn taskgroup_failing_child_keeps_its_outcome() {
    run("tg_child_outcome", |_| async {
        let tg = TaskGroup::new().unwrap();
        let t = tg
            .create_task(async { Err::<(), _>(my_err("mine")) })
            .unwrap();
        assert!(tg.join().await.is_err());
        assert_eq!(t.await.unwrap().unwrap_err().to_string(), "mine");
    });
}

// ---------------------------------------------------------------------------------------------
// gather

/// The idiom: `wait_for(gather(tasks), t)` must cancel the tasks themselves, and they
/// must report cancelled after one more iteration, not two.
#[test]
fn gather_tasks_under_timeout_cancels_the_tasks_in_one_iteration() {
    let _w = watchdog("gather_tasks_timeout");
    let (event_loop, _clock) = virtual_loop();
    let tasks: Vec<_> = (0..3)
        .map(|_| event_loop.create_task(sleep(3600.0)).unwrap())
        .collect();
    let probes: Vec<_> = tasks.iter().map(|t| t.as_task_ref()).collect();
    let r = event_loop
        .run_until_complete(wait_for(gather_tasks(tasks), 1.0))
        .unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
    run_one_iteration(&event_loop);
    assert!(probes.iter().all(|t| t.cancelled()));
    event_loop.close().unwrap();
}

#[test]
fn gather_macro_mixes_output_types() {
    run("gather_macro", |_| async {
        let (a, b, c) = asyncio::gather!(async { 1u8 }, async { "two" }, async {
            sleep(0.1).await.unwrap();
            vec![3]
        })
        .await
        .unwrap();
        assert_eq!((a, b, c), (1, "two", vec![3]));
        let e = asyncio::gather!(async { 1 }, async {
            if true {
                panic!("bad");
            }
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panicked);
    });
}

#[test]
fn gather_macro_dropped_cancels_children() {
    run("gather_macro_drop", |_| async {
        let finished = Rc::new(Cell::new(false));
        let f = finished.clone();
        let r = wait_for(
            asyncio::gather!(sleep(3600.0), async move {
                sleep(3600.0).await.unwrap();
                f.set(true);
            }),
            1.0,
        )
        .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
        yield_now().await;
        assert!(
            asyncio::all_tasks().unwrap().len() == 1,
            "only this task is left"
        );
        assert!(!finished.get());
    });
}

#[test]
fn gather_return_exceptions_keeps_every_outcome() {
    run("gather_return_exceptions", |_| async {
        let t = spawn(sleep(3600.0));
        let probe = t.as_task_ref();
        let (a, b) = (spawn(async { 1 }), spawn(async { 2 }));
        probe.cancel();
        let out = gather_tasks([a, b]).return_exceptions().await.unwrap();
        assert_eq!(
            out.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [1, 2]
        );
        let out = gather_tasks([t, spawn(async { Ok(()) })])
            .return_exceptions()
            .await
            .unwrap();
        assert!(out[0].as_ref().unwrap_err().is_cancelled());
        assert!(out[1].is_ok());
        let out = gather((0..3).map(|i| async move {
            if i == 1 {
                panic!("one");
            }
            i
        }))
        .return_exceptions()
        .await
        .unwrap();
        assert_eq!(*out[0].as_ref().unwrap(), 0);
        assert_eq!(out[1].as_ref().unwrap_err().kind(), ErrorKind::Panicked);
        assert_eq!(*out[2].as_ref().unwrap(), 2);
    });
}

// ---------------------------------------------------------------------------------------------
// as_completed

#[test]
fn as_completed_yields_in_completion_order() {
    run("as_completed_order", |_| async {
        let mut it = as_completed(
            [0.3, 0.1, 0.2].map(|d| async move {
                sleep(d).await.unwrap();
                d
            }),
            None::<f64>,
        );
        let mut order = Vec::new();
        while let Some(r) = it.next().await {
            order.push(r.unwrap());
        }
        assert_eq!(order, [0.1, 0.2, 0.3]);
    });
}

#[test]
fn as_completed_timeout_ends_the_stream_and_leaves_the_rest_running() {
    run("as_completed_timeout", |_| async {
        let tasks = [0.1, 5.0].map(|d| spawn(async move { sleep(d).await.map(|()| d) }));
        let mut it = as_completed_tasks(tasks, Some(1.0));
        assert_eq!(it.next().await.unwrap().unwrap().unwrap(), 0.1);
        assert_eq!(
            it.next().await.unwrap().unwrap_err().kind(),
            ErrorKind::Timeout
        );
        assert!(it.next().await.is_none());
        let rest = it.into_remaining();
        assert_eq!(rest.len(), 1);
        let last = rest.into_iter().next().unwrap();
        assert_eq!(last.await.unwrap().unwrap(), 5.0);
    });
}

#[test]
fn to_thread_runs_off_the_loop() {
    let _w = watchdog("to_thread");
    let event_loop = asyncio::EventLoop::new().unwrap();
    let main = std::thread::current().id();
    let other = event_loop
        .run_until_complete(to_thread(move || std::thread::current().id() != main))
        .unwrap()
        .unwrap();
    assert!(other);
    event_loop.close().unwrap();
}
