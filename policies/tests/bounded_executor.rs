//! `BoundedExecutor`: admits at most `capacity` queued-or-running jobs, refuses the rest at
//! once with a recognisable error, frees slots on completion, panic and unrun drops, and never
//! exceeds its capacity under concurrent submitters.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use asyncio::executor::Job;
use asyncio::{Error, ErrorKind, EventLoop, Executor, Result, ThreadPoolExecutor};
use asyncio_policies::{BoundedExecutor, ExecutorFull};
use support::watchdog;

fn pool(workers: usize) -> Arc<ThreadPoolExecutor> {
    Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(workers)
            .build()
            .unwrap(),
    )
}

/// Waits (bounded) until `cond` holds.
fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("condition not reached in 2 s");
}

#[test]
fn zero_capacity_is_an_invalid_argument() {
    let err = BoundedExecutor::new(pool(1), 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn queued_and_running_jobs_both_count() {
    watchdog(|| {
        let inner = pool(1);
        let bounded = BoundedExecutor::new(inner.clone(), 2).unwrap();
        assert_eq!(bounded.capacity(), 2);
        let (release, wait) = mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        for _ in 0..2 {
            let w = wait.clone();
            // One runs, one waits in the pool's queue.
            bounded
                .submit(Box::new(move || w.lock().unwrap().recv().unwrap()))
                .unwrap();
        }
        assert_eq!(bounded.in_flight(), 2);
        let err = bounded.submit(Box::new(|| ())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert!(BoundedExecutor::is_full_error(&err));
        assert_eq!(
            err.to_string(),
            "executor is at capacity (2 jobs queued or running)"
        );
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(
            source
                .downcast_ref::<ExecutorFull>()
                .map(ExecutorFull::capacity),
            Some(2)
        );
        assert_eq!(bounded.rejected_count(), 1);

        // One finishes: one slot is free again.
        release.send(()).unwrap();
        eventually(|| bounded.in_flight() == 1);
        let (tx, rx) = mpsc::channel();
        bounded
            .submit(Box::new(move || tx.send(7).unwrap()))
            .unwrap();
        release.send(()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        eventually(|| bounded.in_flight() == 0);
        bounded.shutdown(true);
        assert!(inner.is_shutdown());
    });
}

#[test]
fn other_errors_are_not_full_errors() {
    assert!(!BoundedExecutor::is_full_error(&Error::from_kind(
        ErrorKind::InvalidState
    )));
    assert!(!BoundedExecutor::is_full_error(&Error::closed()));
}

#[test]
fn a_panicking_job_frees_its_slot() {
    watchdog(|| {
        let bounded = BoundedExecutor::new(pool(1), 1).unwrap();
        bounded.submit(Box::new(|| panic!("job panics"))).unwrap();
        eventually(|| bounded.in_flight() == 0);
        let (tx, rx) = mpsc::channel();
        bounded
            .submit(Box::new(move || tx.send(()).unwrap()))
            .unwrap();
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        bounded.shutdown(true);
    });
}

/// An executor that refuses every job, dropping it (as the trait requires after shutdown).
struct Refusing;

impl Executor for Refusing {
    fn submit(&self, job: Job) -> Result<()> {
        drop(job);
        Err(Error::new(
            ErrorKind::ExecutorShutdown,
            "cannot schedule new futures after shutdown",
        ))
    }
    fn shutdown(&self, _wait: bool) {}
    fn is_shutdown(&self) -> bool {
        true
    }
}

#[test]
fn a_job_the_inner_executor_refuses_frees_its_slot() {
    let bounded = BoundedExecutor::new(Arc::new(Refusing), 1).unwrap();
    for _ in 0..3 {
        let err = bounded.submit(Box::new(|| ())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
        assert!(!BoundedExecutor::is_full_error(&err));
        assert_eq!(bounded.in_flight(), 0);
    }
    assert!(bounded.is_shutdown());
}

#[test]
fn after_shutdown_submit_is_the_inner_executors_error() {
    let bounded = BoundedExecutor::new(pool(1), 4).unwrap();
    bounded.shutdown(true);
    assert!(bounded.is_shutdown());
    let err = bounded.submit(Box::new(|| ())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
    assert_eq!(bounded.in_flight(), 0);
}

#[test]
fn concurrent_submitters_never_exceed_the_capacity() {
    watchdog(|| {
        const CAP: usize = 3;
        let bounded = Arc::new(BoundedExecutor::new(pool(8), CAP).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(4));
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let (b, r, p, a, d, s) = (
                    bounded.clone(),
                    running.clone(),
                    peak.clone(),
                    accepted.clone(),
                    done.clone(),
                    start.clone(),
                );
                std::thread::spawn(move || {
                    s.wait();
                    for _ in 0..200 {
                        let (r, p, d) = (r.clone(), p.clone(), d.clone());
                        let job = Box::new(move || {
                            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                            p.fetch_max(now, Ordering::SeqCst);
                            std::thread::yield_now();
                            r.fetch_sub(1, Ordering::SeqCst);
                            d.fetch_add(1, Ordering::SeqCst);
                        });
                        match b.submit(job) {
                            Ok(()) => {
                                a.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => assert!(BoundedExecutor::is_full_error(&e)),
                        }
                        assert!(b.in_flight() <= CAP);
                    }
                })
            })
            .collect();
        for s in submitters {
            s.join().unwrap();
        }
        eventually(|| done.load(Ordering::SeqCst) == accepted.load(Ordering::SeqCst));
        assert!(peak.load(Ordering::SeqCst) <= CAP);
        assert!(accepted.load(Ordering::SeqCst) >= 1);
        assert_eq!(
            accepted.load(Ordering::SeqCst) as u64 + bounded.rejected_count(),
            800
        );
        bounded.shutdown(true);
        assert_eq!(bounded.in_flight(), 0);
    });
}

#[test]
fn run_in_executor_reports_a_full_executor_at_once() {
    watchdog(|| {
        let bounded: Arc<BoundedExecutor> = Arc::new(BoundedExecutor::new(pool(1), 1).unwrap());
        let ex: Arc<dyn Executor> = bounded.clone();
        let lp = EventLoop::new().unwrap();
        let l = lp.clone();
        let b = bounded.clone();
        let (first, second) = lp
            .run_until_complete(async move {
                let (tx, rx) = mpsc::channel::<()>();
                let busy = l
                    .run_in_executor(Some(ex.clone()), move || rx.recv().unwrap())
                    .unwrap();
                let refused = l
                    .run_in_executor(Some(ex.clone()), || ())
                    .map(|_| ())
                    .unwrap_err();
                tx.send(()).unwrap();
                busy.await.unwrap();
                // The slot is freed when the job returns, a moment after it sent its result.
                while b.in_flight() > 0 {
                    asyncio::sleep(0.001).await.unwrap();
                }
                let again = l.run_in_executor(Some(ex), || 3).unwrap().await.unwrap();
                (refused, again)
            })
            .unwrap();
        assert!(BoundedExecutor::is_full_error(&first));
        assert_eq!(second, 3);
        lp.close().unwrap();
        bounded.shutdown(true);
    });
}
