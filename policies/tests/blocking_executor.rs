//! `BlockingExecutor`: jobs run on the `blocking` pool, `shutdown(true)` waits for the jobs it
//! submitted (and not for the job that calls it), panics are contained, and after shutdown
//! `submit` fails with CPython's message.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use asyncio::{ErrorKind, EventLoop, Executor};
use asyncio_policies::{BlockingExecutor, BoundedExecutor, ExecutorPolicy};
use support::watchdog;

#[test]
fn jobs_run_off_the_calling_thread() {
    watchdog(|| {
        let ex = BlockingExecutor::new();
        let (tx, rx) = mpsc::channel();
        let me = std::thread::current().id();
        ex.submit(Box::new(move || {
            tx.send(std::thread::current().id()).unwrap()
        }))
        .unwrap();
        let ran_on = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_ne!(ran_on, me);
        ex.shutdown(true);
    });
}

#[test]
fn shutdown_wait_waits_for_submitted_jobs() {
    watchdog(|| {
        let ex = BlockingExecutor::new();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..8 {
            let d = done.clone();
            ex.submit(Box::new(move || {
                std::thread::sleep(Duration::from_millis(20));
                d.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        ex.shutdown(true);
        assert_eq!(done.load(Ordering::SeqCst), 8);
        assert_eq!(ex.in_flight(), 0);
        assert!(ex.is_shutdown());
        let err = ex.submit(Box::new(|| ())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
        assert_eq!(
            err.to_string(),
            "cannot schedule new futures after shutdown"
        );
        ex.shutdown(true); // again: harmless
    });
}

#[test]
fn shutdown_without_wait_returns_at_once() {
    watchdog(|| {
        let ex = BlockingExecutor::new();
        let (release, wait) = mpsc::channel::<()>();
        ex.submit(Box::new(move || wait.recv().unwrap())).unwrap();
        ex.shutdown(false);
        assert!(ex.is_shutdown());
        assert_eq!(ex.in_flight(), 1);
        release.send(()).unwrap();
        ex.shutdown(true);
        assert_eq!(ex.in_flight(), 0);
    });
}

#[test]
fn shutdown_from_inside_a_job_does_not_wait_for_itself() {
    watchdog(|| {
        let ex = Arc::new(BlockingExecutor::new());
        let (tx, rx) = mpsc::channel();
        let inner = ex.clone();
        ex.submit(Box::new(move || {
            inner.shutdown(true);
            tx.send(inner.is_shutdown()).unwrap();
        }))
        .unwrap();
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    });
}

#[test]
fn a_panicking_job_does_not_stop_the_executor() {
    watchdog(|| {
        let ex = BlockingExecutor::new();
        ex.submit(Box::new(|| panic!("boom in a job"))).unwrap();
        let (tx, rx) = mpsc::channel();
        ex.submit(Box::new(move || tx.send(1).unwrap())).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
        ex.shutdown(true);
        assert_eq!(ex.in_flight(), 0);
    });
}

#[test]
fn run_in_executor_on_the_blocking_pool() {
    watchdog(|| {
        let ex: Arc<dyn Executor> = Arc::new(BlockingExecutor::new());
        let lp = EventLoop::new().unwrap();
        let l = lp.clone();
        let e = ex.clone();
        let results = lp
            .run_until_complete(async move {
                let futs: Vec<_> = (0..16u64)
                    .map(|i| l.run_in_executor(Some(e.clone()), move || i * i).unwrap())
                    .collect();
                let mut out = Vec::new();
                for f in futs {
                    out.push(f.await.unwrap());
                }
                let panicked = l
                    .run_in_executor::<_, ()>(Some(e), || panic!("nope"))
                    .unwrap()
                    .await
                    .unwrap_err();
                (out, panicked.kind())
            })
            .unwrap();
        assert_eq!(results.0, (0..16u64).map(|i| i * i).collect::<Vec<_>>());
        assert_eq!(results.1, ErrorKind::Panicked);
        lp.close().unwrap();
        ex.shutdown(true);
    });
}

#[test]
fn bounded_over_blocking_behind_a_policy() {
    watchdog(|| {
        let bounded = Arc::new(BoundedExecutor::new(Arc::new(BlockingExecutor::new()), 2).unwrap());
        let policy = ExecutorPolicy::new(bounded.clone());
        let lp = asyncio::EventLoopPolicy::new_event_loop(&policy).unwrap();
        let l = lp.clone();
        let refused = lp
            .run_until_complete(async move {
                let (tx, rx) = mpsc::channel::<()>();
                let rx = Arc::new(std::sync::Mutex::new(rx));
                let held: Vec<_> = (0..2)
                    .map(|_| {
                        let rx = rx.clone();
                        l.run_in_executor(None, move || rx.lock().unwrap().recv().unwrap())
                            .unwrap()
                    })
                    .collect();
                let refused = l.run_in_executor(None, || 0).map(|_| ()).unwrap_err();
                tx.send(()).unwrap();
                tx.send(()).unwrap();
                for h in held {
                    h.await.unwrap();
                }
                refused
            })
            .unwrap();
        assert!(BoundedExecutor::is_full_error(&refused));
        lp.close().unwrap();
        assert!(
            !bounded.is_shutdown(),
            "loops never shut a shared executor down"
        );
        bounded.shutdown(true);
    });
}
