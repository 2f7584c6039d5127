//! Unit tests of the pool (the threaded ones; the loom models are in `loom_tests.rs`).

use super::*;
use crate::error::ErrorKind;
use std::sync::atomic::AtomicUsize;
use std::sync::{mpsc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

/// Generous bound for anything that should happen "soon".
const BOUND: Duration = Duration::from_secs(10);

/// A gate jobs can block on until the test opens it (bounded, so nothing hangs).
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            open: Mutex::new(false),
            cond: Condvar::new(),
        })
    }

    fn wait(&self) {
        let deadline = Instant::now() + BOUND;
        let mut open = self.open.lock().unwrap();
        while !*open {
            let now = Instant::now();
            assert!(now < deadline, "gate never opened");
            open = self.cond.wait_timeout(open, deadline - now).unwrap().0;
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }
}

fn pool(max: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(max)
        .build()
        .unwrap()
}

/// Polls `cond` every few milliseconds for up to 5 s.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `shutdown(true)` on another thread and fails the test if it does not return.
fn shutdown_wait_bounded(pool: &Arc<ThreadPoolExecutor>) {
    let (tx, rx) = mpsc::channel();
    let p = Arc::clone(pool);
    thread::spawn(move || {
        p.shutdown(true);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(BOUND)
        .expect("shutdown(true) did not return");
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("").to_owned()
}

/// The name of the worker thread that runs a job submitted now.
fn next_worker_name(pool: &ThreadPoolExecutor) -> String {
    let (tx, rx) = mpsc::channel();
    pool.submit(Box::new(move || tx.send(thread_name()).unwrap()))
        .unwrap();
    rx.recv_timeout(BOUND).unwrap()
}

#[test]
fn jobs_run_and_results_come_back() {
    let pool = pool(4);
    let (tx, rx) = mpsc::channel();
    for i in 0..50u32 {
        let tx = tx.clone();
        pool.submit(Box::new(move || tx.send(i * 2).unwrap()))
            .unwrap();
    }
    let mut got: Vec<u32> = (0..50).map(|_| rx.recv_timeout(BOUND).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    assert!(pool.thread_count() <= 4);
}

#[test]
fn threads_start_lazily() {
    let pool = pool(4);
    assert_eq!(pool.thread_count(), 0);
    assert_eq!(pool.max_workers(), 4);
    assert_eq!(next_worker_name(&pool), "asyncio_0");
    assert_eq!(pool.thread_count(), 1);
}

#[test]
fn idle_worker_is_reused() {
    let pool = pool(4);
    for _ in 0..20 {
        // Once the worker waits for work, a submit wakes it instead of starting a thread.
        assert!(eventually(|| {
            let state = pool.inner.lock();
            state.num_idle == state.num_threads
        }));
        assert_eq!(next_worker_name(&pool), "asyncio_0");
    }
    assert_eq!(pool.thread_count(), 1);
}

#[test]
fn threads_are_named_prefix_n() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .thread_name_prefix("testpool")
        .build()
        .unwrap();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    for _ in 0..3 {
        let (tx, gate) = (tx.clone(), Arc::clone(&gate));
        pool.submit(Box::new(move || {
            tx.send(thread_name()).unwrap();
            gate.wait();
        }))
        .unwrap();
    }
    let mut names: Vec<String> = (0..3).map(|_| rx.recv_timeout(BOUND).unwrap()).collect();
    gate.open();
    names.sort();
    assert_eq!(names, ["testpool_0", "testpool_1", "testpool_2"]);
    assert_eq!(pool.thread_count(), 3);
}

#[test]
fn max_workers_is_respected() {
    let pool = pool(4);
    let gate = Gate::new();
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for i in 0..100 {
        let (tx, gate) = (tx.clone(), Arc::clone(&gate));
        let (active, peak) = (Arc::clone(&active), Arc::clone(&peak));
        pool.submit(Box::new(move || {
            let now = active.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            gate.wait();
            active.fetch_sub(1, Ordering::SeqCst);
            tx.send(i).unwrap();
        }))
        .unwrap();
    }
    // Every started worker is blocked in a job, so each of the first 4 submits started one.
    assert_eq!(pool.thread_count(), 4);
    gate.open();
    let mut got: Vec<i32> = (0..100).map(|_| rx.recv_timeout(BOUND).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert!(peak.load(Ordering::SeqCst) <= 4);
    assert!(pool.thread_count() <= 4);
}

#[test]
fn panicking_job_leaves_the_pool_usable() {
    let pool = pool(1);
    // `resume_unwind` unwinds without running the panic hook, so the test output stays clean.
    pool.submit(Box::new(|| std::panic::resume_unwind(Box::new("boom"))))
        .unwrap();

    // A payload whose destructor panics too.
    struct Nasty;
    impl Drop for Nasty {
        fn drop(&mut self) {
            std::panic::resume_unwind(Box::new("boom again"));
        }
    }
    pool.submit(Box::new(|| std::panic::resume_unwind(Box::new(Nasty))))
        .unwrap();

    // Same (only) worker: it survived both panics.
    assert_eq!(next_worker_name(&pool), "asyncio_0");
    assert_eq!(pool.thread_count(), 1);
}

#[test]
fn submit_after_shutdown_fails() {
    let pool = pool(2);
    assert!(!pool.is_shutdown());
    pool.shutdown(false);
    assert!(pool.is_shutdown());
    let err = pool.submit(Box::new(|| ())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
    assert_eq!(
        err.to_string(),
        "cannot schedule new futures after shutdown"
    );
    // Idempotent.
    pool.shutdown(false);
    pool.shutdown(true);
    assert_eq!(pool.thread_count(), 0);
}

#[test]
fn rejected_job_is_dropped() {
    let pool = pool(1);
    pool.shutdown(false);
    let token = Arc::new(());
    let held = Arc::clone(&token);
    assert!(pool.submit(Box::new(move || drop(held))).is_err());
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn shutdown_wait_joins_and_queued_jobs_still_run() {
    let pool = Arc::new(pool(1));
    let gate = Gate::new();
    let ran = Arc::new(AtomicUsize::new(0));
    {
        let (gate, ran) = (Arc::clone(&gate), Arc::clone(&ran));
        pool.submit(Box::new(move || {
            gate.wait();
            ran.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    for _ in 0..9 {
        let ran = Arc::clone(&ran);
        pool.submit(Box::new(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    // The single worker is blocked; nine jobs are queued when the pool is shut down.
    pool.shutdown(false);
    assert!(pool.submit(Box::new(|| ())).is_err());
    gate.open();
    shutdown_wait_bounded(&pool);
    assert_eq!(ran.load(Ordering::SeqCst), 10);
    assert_eq!(pool.thread_count(), 0);
}

#[test]
fn concurrent_shutdown_waits_all_return_after_workers_exit() {
    let pool = Arc::new(pool(4));
    let gate = Gate::new();
    for _ in 0..4 {
        let gate = Arc::clone(&gate);
        pool.submit(Box::new(move || gate.wait())).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    for _ in 0..3 {
        let (p, tx) = (Arc::clone(&pool), tx.clone());
        thread::spawn(move || {
            p.shutdown(true);
            tx.send(p.thread_count()).unwrap();
        });
    }
    gate.open();
    for _ in 0..3 {
        assert_eq!(rx.recv_timeout(BOUND).unwrap(), 0);
    }
}

#[test]
fn shutdown_from_inside_a_job_does_not_deadlock() {
    let pool = Arc::new(pool(2));
    let gate = Gate::new();
    {
        // Keeps worker 0 busy until the other job is inside shutdown.
        let gate = Arc::clone(&gate);
        pool.submit(Box::new(move || gate.wait())).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    {
        let p = Arc::clone(&pool);
        pool.submit(Box::new(move || {
            tx.send(None).unwrap();
            p.shutdown(true);
            // Worker 0 was joined; only this thread is left.
            tx.send(Some(p.thread_count())).unwrap();
        }))
        .unwrap();
    }
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), None);
    gate.open();
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), Some(1));
    assert!(pool.is_shutdown());
    shutdown_wait_bounded(&pool);
    assert_eq!(pool.thread_count(), 0);
}

#[test]
fn two_workers_calling_shutdown_wait_from_their_jobs_do_not_deadlock() {
    // Each worker's shutdown(true) used to wait for the other worker to exit: a deadlock.
    let pool = Arc::new(pool(2));
    let both_running = Arc::new(std::sync::Barrier::new(2));
    let (tx, rx) = mpsc::channel();
    for _ in 0..2 {
        let (p, tx, both_running) = (Arc::clone(&pool), tx.clone(), Arc::clone(&both_running));
        pool.submit(Box::new(move || {
            both_running.wait();
            p.shutdown(true);
            tx.send(thread_name()).unwrap();
        }))
        .unwrap();
    }
    let mut names: Vec<String> = (0..2)
        .map(|_| {
            rx.recv_timeout(BOUND)
                .expect("shutdown(true) in two workers deadlocked")
        })
        .collect();
    names.sort();
    assert_eq!(names, ["asyncio_0", "asyncio_1"]);
    shutdown_wait_bounded(&pool);
    assert_eq!(pool.thread_count(), 0);
}

#[test]
fn idle_workers_time_out_and_restart_lazily() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .idle_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    for _ in 0..4 {
        let (tx, gate) = (tx.clone(), Arc::clone(&gate));
        pool.submit(Box::new(move || {
            gate.wait();
            tx.send(()).unwrap();
        }))
        .unwrap();
    }
    assert_eq!(pool.thread_count(), 4);
    gate.open();
    for _ in 0..4 {
        rx.recv_timeout(BOUND).unwrap();
    }
    assert!(eventually(|| pool.thread_count() == 0));

    // A new worker starts when needed, numbered after the earlier ones.
    assert_eq!(next_worker_name(&pool), "asyncio_4");
}

#[test]
fn no_lost_wakeups_under_churn() {
    // A 1 ms idle timeout makes workers exit and restart constantly while four threads
    // submit: every job must still run.
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(3)
            .idle_timeout(Duration::from_millis(1))
            .build()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let submitters: Vec<_> = (0..4)
        .map(|_| {
            let (p, tx) = (Arc::clone(&pool), tx.clone());
            thread::spawn(move || {
                for i in 0..500 {
                    let tx = tx.clone();
                    p.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
                    if i % 50 == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    for _ in 0..2000 {
        rx.recv_timeout(BOUND).expect("a job was lost");
    }
    for s in submitters {
        s.join().unwrap();
    }
    assert!(pool.thread_count() <= 3);
    shutdown_wait_bounded(&pool);
    assert_eq!(pool.thread_count(), 0);
}

#[test]
fn a_submit_racing_the_last_workers_idle_exit_still_runs() {
    // The only worker of a one-worker pool times out and has decided to leave; a job
    // submitted before the thread is gone must get a new worker, not wait for the old one.
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(1)
            .idle_timeout(Duration::from_millis(1))
            .build()
            .unwrap(),
    );
    let (leaving_tx, leaving_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    *pool.inner.idle_exit_hook.lock().unwrap() = Some(Box::new(move || {
        let _ = leaving_tx.send(());
        let _ = go_rx.lock().unwrap().recv_timeout(BOUND);
    }));
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    pool.submit(Box::new(move || tx2.send(1).unwrap())).unwrap();
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), 1);
    // The worker is idle, times out, and stops in the hook, past its decision to exit.
    leaving_rx
        .recv_timeout(BOUND)
        .expect("the worker did not time out");
    pool.submit(Box::new(move || tx.send(2).unwrap())).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(5));
    // Let the leaving worker go; later ones pass the hook at once (disconnected).
    go_tx.send(()).unwrap();
    drop(go_tx);
    assert_eq!(
        got.expect("the job waited for a worker that was leaving"),
        2
    );
    *pool.inner.idle_exit_hook.lock().unwrap() = None;
    shutdown_wait_bounded(&pool);
    assert_eq!(pool.thread_count(), 0);
}

#[test]
fn dropping_the_executor_lets_threads_exit() {
    let pool = pool(3);
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    for _ in 0..3 {
        let (tx, gate) = (tx.clone(), Arc::clone(&gate));
        pool.submit(Box::new(move || {
            gate.wait();
            tx.send(()).unwrap();
        }))
        .unwrap();
    }
    // One queued job too: it still runs after the drop.
    pool.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
    let inner = Arc::clone(&pool.inner);
    drop(pool);
    assert!(inner.lock().shutdown);
    gate.open();
    for _ in 0..4 {
        rx.recv_timeout(BOUND).unwrap();
    }
    assert!(eventually(|| inner.lock().num_threads == 0));
    // Every worker has released its reference to the shared state.
    assert!(eventually(|| Arc::strong_count(&inner) == 1));
}

#[test]
fn idle_threads_exit_on_drop() {
    // Idle workers with a long timeout must not linger after the executor is dropped.
    let pool = pool(2);
    let (tx, rx) = mpsc::channel();
    pool.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
    rx.recv_timeout(BOUND).unwrap();
    let inner = Arc::clone(&pool.inner);
    drop(pool);
    assert!(eventually(|| Arc::strong_count(&inner) == 1));
    assert_eq!(inner.lock().num_threads, 0);
}

#[test]
fn dropping_the_last_handle_inside_a_job_is_fine() {
    let pool = Arc::new(pool(1));
    let inner = Arc::clone(&pool.inner);
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let (p, g) = (Arc::clone(&pool), Arc::clone(&gate));
    pool.submit(Box::new(move || {
        g.wait();
        // The last handle: its Drop (shutdown(false)) runs on the worker itself.
        drop(p);
        tx.send(()).unwrap();
    }))
    .unwrap();
    drop(pool);
    assert!(!inner.lock().shutdown);
    gate.open();
    rx.recv_timeout(BOUND).unwrap();
    assert!(inner.lock().shutdown);
    assert!(eventually(|| Arc::strong_count(&inner) == 1));
    assert_eq!(inner.lock().num_threads, 0);
}

#[test]
fn builder_validates_and_defaults() {
    let err = ThreadPoolExecutor::builder()
        .max_workers(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.to_string(), "max_workers must be greater than 0");

    let n = default_max_workers();
    assert!((5..=32).contains(&n));
    assert_eq!(ThreadPoolExecutor::new().max_workers(), n);
    assert_eq!(ThreadPoolExecutor::default().max_workers(), n);
    assert_eq!(ThreadPoolExecutor::new().thread_count(), 0);
}

#[test]
fn usable_as_shared_trait_object() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<ThreadPoolExecutor>();
    assert_send_sync::<ThreadPoolBuilder>();

    let executor: Arc<dyn Executor> = Arc::new(pool(2));
    let (tx, rx) = mpsc::channel();
    let e2 = Arc::clone(&executor);
    thread::spawn(move || e2.submit(Box::new(move || tx.send(7).unwrap())).unwrap())
        .join()
        .unwrap();
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), 7);
    executor.shutdown(true);
    assert!(executor.is_shutdown());
}
