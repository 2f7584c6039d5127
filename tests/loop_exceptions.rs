//! The exception handler (spec R8, R24-R26): a panic in a callback or a detached task reaches
//! the handler and the loop goes on; a panicking custom handler falls back to the default one,
//! which logs on the `log` target `asyncio`. This binary installs a capturing logger.

mod loop_support;

use std::cell::RefCell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use asyncio::{Error, ErrorKind, EventLoop, ExceptionContext, ExceptionHandler};
use loop_support::{
    install_capturing_logger, strs, take_logs, virtual_loop, watchdog, yield_now, Recorder,
};

/// What a handler saw.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    message: String,
    kind: Option<ErrorKind>,
    error: Option<String>,
    has_handle: bool,
    task: Option<String>,
}

/// Installs a handler that records every context.
fn recording_handler(lp: &EventLoop) -> Rc<RefCell<Vec<Seen>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    // The loop's id, not a clone: a clone inside the loop's own handler would be a cycle.
    let me = lp.id();
    let handler: ExceptionHandler = Rc::new(move |l, ctx| {
        assert_eq!(l.id(), me);
        s.borrow_mut().push(Seen {
            message: ctx.message.clone(),
            kind: ctx.exception.as_ref().map(Error::kind),
            error: ctx.exception.as_ref().map(|e| e.message().to_owned()),
            has_handle: ctx.handle.is_some(),
            task: ctx.task.as_ref().map(|t| t.get_name()),
        })
    });
    lp.set_exception_handler(Some(handler));
    seen
}

#[test]
fn a_panicking_callback_reaches_the_handler_and_the_loop_goes_on() {
    // R8 (EXP:e2 "8"): 'Exception in callback ...', and the rest of the batch still runs.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let seen = recording_handler(&lp);
        let rec = Recorder::new();
        lp.call_soon(rec.cb("before")).unwrap();
        lp.call_soon(|| panic!("boom")).unwrap();
        lp.call_soon(rec.cb("after")).unwrap();
        let (l, r) = (lp.clone(), rec.clone());
        lp.call_soon(move || {
            l.call_soon(r.cb("next-iteration")).unwrap();
        })
        .unwrap();
        lp.call_later(1.0, rec.cb("timer")).unwrap();
        let l = lp.clone();
        lp.call_later(2.0, move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(
            rec.get(),
            strs(&["before", "after", "next-iteration", "timer"])
        );
        let seen = seen.borrow().clone();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].message.starts_with("Exception in callback"),
            "{:?}",
            seen[0].message
        );
        assert_eq!(seen[0].kind, Some(ErrorKind::Panicked));
        assert_eq!(seen[0].error.as_deref(), Some("boom"));
        assert!(seen[0].has_handle);
        assert_eq!(seen[0].task, None);
        lp.close().unwrap();
    });
}

#[test]
fn panics_in_every_kind_of_callback_are_caught() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let seen = recording_handler(&lp);
        lp.call_later(0.5, || panic!("timer {}", 1)).unwrap();
        lp.call_at(0.75, || std::panic::panic_any(42u32)).unwrap();
        lp.call_soon_threadsafe(|| panic!("threadsafe")).unwrap();
        let remote = std::thread::spawn({
            let h = lp.handle();
            move || h.call_soon_threadsafe(|| panic!("remote")).unwrap()
        });
        remote.join().unwrap();
        // An fd watcher that panics once, then removes itself.
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"x").unwrap();
        let fd = a.as_raw_fd();
        let calls = Rc::new(std::cell::Cell::new(0));
        let (l, c) = (lp.clone(), calls.clone());
        lp.add_reader(fd, move || {
            c.set(c.get() + 1);
            if c.get() == 1 {
                panic!("reader");
            }
            l.remove_reader(fd).unwrap();
        })
        .unwrap();
        let l = lp.clone();
        lp.call_later(1.0, move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(calls.get(), 2);
        let mut errors: Vec<_> = seen
            .borrow()
            .iter()
            .map(|s| {
                assert!(s.message.starts_with("Exception in callback"));
                assert_eq!(s.kind, Some(ErrorKind::Panicked));
                s.error.clone().unwrap()
            })
            .collect();
        errors.sort();
        assert_eq!(
            errors,
            strs(&["Box<dyn Any>", "reader", "remote", "threadsafe", "timer 1"])
        );
        lp.close().unwrap();
    });
}

#[test]
fn a_panicking_done_callback_is_an_exception_in_callback() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let seen = recording_handler(&lp);
        let l = lp.clone();
        let out = lp
            .run_until_complete(async move {
                let t = l.create_task(async { 5 }).unwrap();
                t.add_done_callback(|_| panic!("done-callback")).unwrap();
                let v = t.await.unwrap();
                yield_now().await;
                v
            })
            .unwrap();
        assert_eq!(out, 5);
        let seen = seen.borrow().clone();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].message.starts_with("Exception in callback"));
        assert_eq!(seen[0].error.as_deref(), Some("done-callback"));
        lp.close().unwrap();
    });
}

#[test]
fn a_detached_task_that_panics_is_reported_as_never_retrieved() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let seen = recording_handler(&lp);
        let rec = Recorder::new();
        // Handle dropped before the task fails.
        let task = lp
            .create_task(async {
                yield_now().await;
                panic!("task boom");
            })
            .unwrap();
        task.set_name("detached");
        drop(task);
        let r = rec.clone();
        lp.run_until_complete(async move {
            asyncio::sleep(1.0).await.unwrap();
            r.push("main-finished");
        })
        .unwrap();
        assert_eq!(rec.get(), strs(&["main-finished"]));
        assert_eq!(
            *seen.borrow(),
            vec![Seen {
                message: "Task exception was never retrieved".into(),
                kind: Some(ErrorKind::Panicked),
                error: Some("task boom".into()),
                has_handle: false,
                task: Some("detached".into()),
            }]
        );
        lp.close().unwrap();
    });
}

#[test]
fn a_failed_task_is_reported_when_its_unread_handle_is_dropped() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let seen = recording_handler(&lp);
        let task = lp.create_task(async { panic!("late") }).unwrap();
        task.set_name("kept");
        lp.run_until_complete(asyncio::sleep(0.0)).unwrap().unwrap();
        assert!(task.done());
        assert!(seen.borrow().is_empty());
        drop(task);
        assert_eq!(seen.borrow().len(), 1);
        assert_eq!(
            seen.borrow()[0].message,
            "Task exception was never retrieved"
        );
        assert_eq!(seen.borrow()[0].task.as_deref(), Some("kept"));
        // Retrieved errors are not reported.
        let t1 = lp.create_task(async { panic!("read-1") }).unwrap();
        let t2 = lp.create_task(async { panic!("read-2") }).unwrap();
        let t3 = lp.create_task(async { panic!("read-3") }).unwrap();
        let t4 = lp.create_task(async { panic!("read-4") }).unwrap();
        let awaited = lp.run_until_complete(t4).unwrap();
        assert_eq!(awaited.unwrap_err().message(), "read-4");
        assert_eq!(t1.exception().unwrap().message(), "read-1");
        assert_eq!(t2.take_result().unwrap_err().kind(), ErrorKind::Panicked);
        assert!(t3.result().is_err());
        drop((t1, t2, t3));
        assert_eq!(seen.borrow().len(), 1);
        lp.close().unwrap();
    });
}

#[test]
fn a_panicking_handler_falls_back_to_the_default_handler() {
    // R25 (test_set_exc_handler_broken): 'Unhandled error in exception handler'.
    install_capturing_logger();
    watchdog(|| {
        take_logs();
        let (lp, _) = virtual_loop();
        let handler: ExceptionHandler =
            Rc::new(|_, ctx| panic!("handler broke on {}", ctx.message));
        lp.set_exception_handler(Some(handler));
        let rec = Recorder::new();
        lp.call_soon(|| panic!("original")).unwrap();
        lp.call_soon(rec.cb("after")).unwrap();
        lp.run_until_complete(async {}).unwrap();
        assert_eq!(rec.get(), strs(&["after"]));
        let logs = take_logs();
        let errors: Vec<_> = logs
            .iter()
            .filter(|(level, target, _)| *level == log::Level::Error && target == "asyncio")
            .map(|(_, _, m)| m.clone())
            .collect();
        assert_eq!(errors.len(), 1, "{logs:?}");
        let text = &errors[0];
        assert!(
            text.starts_with("Unhandled error in exception handler"),
            "{text}"
        );
        assert!(
            text.contains("handler broke on Exception in callback"),
            "{text}"
        );
        // The original context is part of the report.
        assert!(text.contains("context: Exception in callback"), "{text}");
        assert!(text.contains("original"), "{text}");
        // A direct call is protected the same way.
        lp.call_exception_handler(&ExceptionContext::new("direct"));
        let logs = take_logs();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].2.contains("handler broke on direct"));
        lp.close().unwrap();
    });
}

#[test]
fn the_default_handler_logs_the_message_and_sorted_keys() {
    // R26: message, then one `key: value` line per key, sorted.
    install_capturing_logger();
    watchdog(|| {
        take_logs();
        let (lp, _) = virtual_loop();
        assert!(lp.get_exception_handler().is_none());
        lp.call_soon(|| panic!("default-boom")).unwrap();
        lp.run_until_complete(async {}).unwrap();
        let logs = take_logs();
        assert_eq!(logs.len(), 1, "{logs:?}");
        let (level, target, text) = &logs[0];
        assert_eq!(*level, log::Level::Error);
        assert_eq!(target, "asyncio");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Exception in callback"), "{text}");
        let keys: Vec<&str> = lines[1..]
            .iter()
            .filter_map(|l| l.split_once(": ").map(|(k, _)| k))
            .collect();
        assert_eq!(keys, ["exception", "handle"], "{text}");
        assert!(text.contains("default-boom"));

        let ctx = ExceptionContext::new("")
            .with("zeta", "last")
            .with("alpha", "first")
            .with_exception(Error::new(ErrorKind::Io, "disk"));
        lp.default_exception_handler(&ctx);
        let logs = take_logs();
        assert_eq!(logs.len(), 1);
        let lines: Vec<&str> = logs[0].2.lines().collect();
        assert_eq!(lines[0], "Unhandled exception in event loop");
        assert_eq!(lines[1], "alpha: first");
        assert!(lines[2].starts_with("exception: "), "{lines:?}");
        assert_eq!(lines[3], "zeta: last");
        lp.close().unwrap();
    });
}

#[test]
fn setting_no_handler_restores_the_default() {
    install_capturing_logger();
    watchdog(|| {
        take_logs();
        let (lp, _) = virtual_loop();
        let seen = recording_handler(&lp);
        assert!(lp.get_exception_handler().is_some());
        lp.call_exception_handler(&ExceptionContext::new("to-custom"));
        assert_eq!(seen.borrow().len(), 1);
        assert!(take_logs().is_empty());
        lp.set_exception_handler(None);
        assert!(lp.get_exception_handler().is_none());
        lp.call_exception_handler(&ExceptionContext::new("to-default"));
        assert_eq!(seen.borrow().len(), 1);
        let logs = take_logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].2, "to-default");
        lp.close().unwrap();
    });
}

#[test]
fn a_handler_may_use_the_loop_and_replace_itself() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let r = rec.clone();
        let handler: ExceptionHandler = Rc::new(move |l, ctx| {
            r.push(format!(
                "handled:{}",
                ctx.exception.as_ref().unwrap().message()
            ));
            l.call_soon(r.cb("scheduled-by-handler")).unwrap();
            let r2 = r.clone();
            let replacement: ExceptionHandler = Rc::new(move |_, _| r2.push("replacement"));
            l.set_exception_handler(Some(replacement));
        });
        lp.set_exception_handler(Some(handler));
        lp.call_soon(|| panic!("one")).unwrap();
        lp.call_soon(|| panic!("two")).unwrap();
        lp.run_until_complete(asyncio::sleep(0.0)).unwrap().unwrap();
        assert_eq!(
            rec.get(),
            strs(&["handled:one", "replacement", "scheduled-by-handler"])
        );
        lp.close().unwrap();
    });
}

#[test]
fn a_panic_in_a_task_awaited_by_run_until_complete_is_not_reported() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let seen = recording_handler(&lp);
        let e = lp
            .run_until_complete(async { panic!("returned") })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panicked);
        lp.run_until_complete(asyncio::sleep(0.0)).unwrap().unwrap();
        assert!(seen.borrow().is_empty());
        lp.close().unwrap();
    });
}
