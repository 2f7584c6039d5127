//! Loom models of the pool's worker accounting and shutdown: the real [`ThreadPoolExecutor`]
//! on loom's `Mutex`, `Condvar` and threads (see `sync.rs`). Run them with `.ci/loom`.
//!
//! Each model is small (at most four threads) and explored with a preemption bound, so a run
//! takes seconds. A finite idle timeout is up after one wait that no wake-up ended, so
//! `Duration::from_millis(1)` makes every idle wait race its own timeout.

use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};

use super::sync::{thread, Arc, Condvar, Mutex};
use super::ThreadPoolExecutor;
use crate::executor::{Executor, Job};

/// Explores `body` with at most `PREEMPTIONS` preemptions per execution.
fn model(body: impl Fn() + Sync + Send + 'static) {
    const PREEMPTIONS: usize = 3;
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(PREEMPTIONS);
    builder.check(body);
}

fn pool(max_workers: usize, idle_timeout: Duration) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(max_workers)
        .idle_timeout(idle_timeout)
        .build()
        .unwrap()
}

/// A job that counts itself in `ran`.
fn counting(ran: &Arc<AtomicUsize>) -> Job {
    let ran = Arc::clone(ran);
    Box::new(move || {
        ran.fetch_add(1, Ordering::SeqCst);
    })
}

/// A two-party rendezvous (loom has no `Barrier`).
struct Rendezvous {
    arrived: Mutex<usize>,
    cond: Condvar,
}

impl Rendezvous {
    fn new() -> Arc<Self> {
        Arc::new(Rendezvous {
            arrived: Mutex::new(0),
            cond: Condvar::new(),
        })
    }

    fn wait(&self) {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.cond.notify_all();
        while *arrived < 2 {
            arrived = self.cond.wait(arrived).unwrap();
        }
    }
}

/// The race fixed in 835133d: the only worker of a one-worker pool times out while a job is
/// submitted. Whichever way it goes, the job runs (by the old worker or a new one).
#[test]
fn a_submit_racing_an_idle_exit_still_runs() {
    model(|| {
        let pool = pool(1, Duration::from_millis(1));
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting(&ran)).unwrap();
        pool.submit(counting(&ran)).unwrap();
        pool.shutdown(true);
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert_eq!(pool.thread_count(), 0);
    });
}

/// A submit from another thread races `shutdown(true)`: it is refused, or its job has run by
/// the time `shutdown(true)` returns.
#[test]
fn shutdown_racing_a_submit_runs_every_accepted_job() {
    model(|| {
        let pool = Arc::new(pool(2, Duration::MAX));
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting(&ran)).unwrap();
        let submitter = {
            let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
            thread::spawn(move || pool.submit(counting(&ran)).is_ok())
        };
        pool.shutdown(true);
        let ran_at_return = ran.load(Ordering::SeqCst);
        let accepted = submitter.join().unwrap();
        assert_eq!(ran_at_return, 1 + usize::from(accepted));
        assert_eq!(pool.thread_count(), 0);
    });
}

/// Two jobs, on two workers, each call `shutdown(true)`: neither waits for the other (that was
/// a deadlock), and both return.
#[test]
fn two_workers_calling_shutdown_wait_both_return() {
    model(|| {
        let pool = Arc::new(pool(2, Duration::MAX));
        let both_running = Rendezvous::new();
        let returned = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let (p, both_running) = (Arc::clone(&pool), Arc::clone(&both_running));
            let returned = Arc::clone(&returned);
            pool.submit(Box::new(move || {
                // The first job blocks its worker here, so the second gets a worker of its own.
                both_running.wait();
                p.shutdown(true);
                returned.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        pool.shutdown(true);
        assert_eq!(returned.load(Ordering::SeqCst), 2);
        assert_eq!(pool.thread_count(), 0);
    });
}
