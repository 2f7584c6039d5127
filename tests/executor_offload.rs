//! Offloading blocking work (R28-R31): `run_in_executor` with the default pool and explicit or
//! custom executors, panics in jobs, the sticky shutdown flag, cancelling jobs that have not
//! started, `shutdown_default_executor` with a timeout, and `close()` not waiting.

mod support_tasks;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::executor::Job;
use asyncio::{Error, ErrorKind, EventLoop, Executor, ThreadPoolExecutor};
use support_tasks::{virtual_loop, watchdog, BOUND};

/// A job body that reports it started, then blocks until released (bounded).
fn blocker() -> (
    impl FnOnce() -> &'static str + Send + 'static,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let job = move || {
        started_tx.send(()).unwrap();
        release_rx
            .recv_timeout(BOUND)
            .expect("the blocking job was never released");
        "released"
    };
    (job, started_rx, release_tx)
}

fn one_worker_pool() -> Arc<ThreadPoolExecutor> {
    Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap(),
    )
}

#[test]
fn run_in_executor_returns_the_result() {
    let _w = watchdog("result");
    let (event_loop, _clock) = virtual_loop();
    let lp = event_loop.clone();
    let out = event_loop
        .run_until_complete(async move {
            let a = lp
                .run_in_executor(None, || (1..=10u64).product::<u64>())
                .unwrap();
            let b = lp.run_in_executor(None, || String::from("text")).unwrap();
            (a.await.unwrap(), b.await.unwrap())
        })
        .unwrap();
    assert_eq!(out, (3_628_800, String::from("text")));
    event_loop.close().unwrap();
}

#[test]
fn default_pool_threads_are_named_asyncio_n() {
    let _w = watchdog("names");
    let (event_loop, _clock) = virtual_loop();
    let lp = event_loop.clone();
    let name = event_loop
        .run_until_complete(async move {
            lp.run_in_executor(None, || std::thread::current().name().map(str::to_owned))
                .unwrap()
                .await
        })
        .unwrap()
        .unwrap()
        .expect("the worker thread has a name");
    assert!(name.starts_with("asyncio_"), "{name}");
    assert!(name["asyncio_".len()..].parse::<usize>().is_ok(), "{name}");
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_job_gives_panicked_and_the_pool_keeps_working() {
    let _w = watchdog("panic");
    let (event_loop, _clock) = virtual_loop();
    let pool = one_worker_pool();
    event_loop.set_default_executor(pool.clone());
    let lp = event_loop.clone();
    let (err, after, name) = event_loop
        .run_until_complete(async move {
            let err = lp
                .run_in_executor(None, || -> u8 { panic!("job boom {}", 7) })
                .unwrap()
                .await
                .unwrap_err();
            let after = lp.run_in_executor(None, || 5).unwrap().await.unwrap();
            let name = lp
                .run_in_executor(None, || std::thread::current().name().map(str::to_owned))
                .unwrap()
                .await
                .unwrap();
            (err, after, name)
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.message(), "job boom 7");
    assert_eq!(after, 5);
    // Still the one and only worker: the panic did not kill it.
    assert_eq!(name.as_deref(), Some("asyncio_0"));
    assert_eq!(pool.thread_count(), 1);
    event_loop.close().unwrap();
}

#[test]
fn after_shutdown_default_executor_the_default_is_refused_for_good() {
    let _w = watchdog("sticky");
    let (event_loop, _clock) = virtual_loop();
    let lp = event_loop.clone();
    event_loop
        .run_until_complete(async move {
            lp.run_in_executor(None, || ()).unwrap().await.unwrap();
            lp.shutdown_default_executor(None).await.unwrap();
        })
        .unwrap();
    let err = event_loop.run_in_executor(None, || ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
    assert_eq!(err.to_string(), "Executor shutdown has been called");

    // Sticky: a new default executor is accepted but not used (R28, EXP:e7).
    event_loop.set_default_executor(Arc::new(ThreadPoolExecutor::new()));
    let err = event_loop.run_in_executor(None, || ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);

    // An explicit executor still works.
    let pool: Arc<dyn Executor> = one_worker_pool();
    let fut = event_loop
        .run_in_executor(Some(pool.clone()), || 8)
        .unwrap();
    assert_eq!(event_loop.run_until_complete(fut).unwrap().unwrap(), 8);

    // Shutting down again is harmless.
    let lp = event_loop.clone();
    event_loop
        .run_until_complete(async move { lp.shutdown_default_executor(None).await })
        .unwrap()
        .unwrap();
    event_loop.close().unwrap();
    pool.shutdown(true);
}

#[test]
fn shutdown_default_executor_before_any_use_also_sticks() {
    let _w = watchdog("sticky_unused");
    let (event_loop, _clock) = virtual_loop();
    let lp = event_loop.clone();
    event_loop
        .run_until_complete(async move { lp.shutdown_default_executor(None).await })
        .unwrap()
        .unwrap();
    assert_eq!(
        event_loop.run_in_executor(None, || ()).unwrap_err().kind(),
        ErrorKind::ExecutorShutdown
    );
    event_loop.close().unwrap();
}

#[test]
fn shutdown_default_executor_waits_for_running_jobs() {
    let _w = watchdog("shutdown_waits");
    let (event_loop, _clock) = virtual_loop();
    let (job, started, release) = blocker();
    let fut = event_loop.run_in_executor(None, job).unwrap();
    started.recv_timeout(BOUND).unwrap();
    let lp = event_loop.clone();
    let r = event_loop
        .run_until_complete(async move {
            // Released from a callback of the loop: shutdown can only finish after it.
            let done = lp.shutdown_default_executor(None);
            lp.call_soon(move || release.send(()).unwrap()).unwrap();
            let r = done.await;
            (r, fut.await)
        })
        .unwrap();
    r.0.unwrap();
    assert_eq!(r.1.unwrap(), "released");
    event_loop.close().unwrap();
}

#[test]
fn shutdown_default_executor_times_out_while_a_job_blocks() {
    let _w = watchdog("shutdown_timeout");
    let (event_loop, clock) = virtual_loop();
    let (job, started, release) = blocker();
    let fut = event_loop.run_in_executor(None, job).unwrap();
    started.recv_timeout(BOUND).unwrap();
    let lp = event_loop.clone();
    let err = event_loop
        .run_until_complete(async move {
            lp.shutdown_default_executor(Some(Duration::from_secs(5)))
                .await
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(clock.now(), 5.0);
    // The job was not interrupted: released, it finishes and its result arrives.
    release.send(()).unwrap();
    assert_eq!(
        event_loop.run_until_complete(fut).unwrap().unwrap(),
        "released"
    );
    event_loop.close().unwrap();
}

#[test]
fn run_in_executor_on_a_closed_loop_is_closed() {
    let _w = watchdog("closed");
    let event_loop = EventLoop::new().unwrap();
    event_loop.close().unwrap();
    let err = event_loop.run_in_executor(None, || ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    let pool: Arc<dyn Executor> = one_worker_pool();
    let err = event_loop.run_in_executor(Some(pool), || ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[test]
fn an_explicit_executor_that_was_shut_down_refuses_jobs() {
    let _w = watchdog("explicit_shutdown");
    let (event_loop, _clock) = virtual_loop();
    let pool: Arc<dyn Executor> = one_worker_pool();
    pool.shutdown(true);
    let err = event_loop.run_in_executor(Some(pool), || ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
    assert_eq!(
        err.to_string(),
        "cannot schedule new futures after shutdown"
    );
    event_loop.close().unwrap();
}

#[test]
fn close_does_not_wait_for_running_jobs() {
    let _w = watchdog("close_no_wait");
    let event_loop = EventLoop::new().unwrap();
    let (job, started, release) = blocker();
    let (done_tx, done_rx) = mpsc::channel();
    let fut = event_loop
        .run_in_executor(None, move || {
            let r = job();
            done_tx.send(()).unwrap();
            r
        })
        .unwrap();
    started.recv_timeout(BOUND).unwrap();
    // The job is blocked until released below: if close() waited for it, this would hang.
    event_loop.close().unwrap();
    assert!(event_loop.is_closed());
    release.send(()).unwrap();
    done_rx.recv_timeout(BOUND).unwrap();
    drop(fut);
}

/// A custom executor: runs each job on a fresh thread and counts what it is asked to do.
#[derive(Default)]
struct ThreadPerJob {
    submitted: AtomicUsize,
    shutdowns: Mutex<Vec<bool>>,
    shut: AtomicBool,
}

impl Executor for ThreadPerJob {
    fn submit(&self, job: Job) -> asyncio::Result<()> {
        if self.shut.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::ExecutorShutdown, "custom: shut down"));
        }
        self.submitted.fetch_add(1, Ordering::SeqCst);
        std::thread::Builder::new()
            .name("custom-executor".into())
            .spawn(job)?;
        Ok(())
    }
    fn shutdown(&self, wait: bool) {
        self.shut.store(true, Ordering::SeqCst);
        self.shutdowns.lock().unwrap().push(wait);
    }
    fn is_shutdown(&self) -> bool {
        self.shut.load(Ordering::SeqCst)
    }
}

fn thread_name() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

#[test]
fn a_custom_executor_passed_explicitly() {
    let _w = watchdog("custom_explicit");
    let (event_loop, _clock) = virtual_loop();
    let custom = Arc::new(ThreadPerJob::default());
    let executor: Arc<dyn Executor> = custom.clone();
    let lp = event_loop.clone();
    let names = event_loop
        .run_until_complete(async move {
            let a = lp
                .run_in_executor(Some(executor.clone()), thread_name)
                .unwrap();
            let b = lp.run_in_executor(Some(executor), thread_name).unwrap();
            (a.await.unwrap(), b.await.unwrap())
        })
        .unwrap();
    assert_eq!(names.0.as_deref(), Some("custom-executor"));
    assert_eq!(names.1.as_deref(), Some("custom-executor"));
    assert_eq!(custom.submitted.load(Ordering::SeqCst), 2);
    // The loop does not own an explicit executor: close leaves it alone.
    event_loop.close().unwrap();
    assert!(custom.shutdowns.lock().unwrap().is_empty());
}

#[test]
fn a_custom_default_executor_from_the_builder() {
    let _w = watchdog("custom_default");
    let custom = Arc::new(ThreadPerJob::default());
    let event_loop = EventLoop::builder()
        .clock(std::rc::Rc::new(asyncio::VirtualClock::new()))
        .default_executor(custom.clone())
        .build()
        .unwrap();
    let lp = event_loop.clone();
    let name = event_loop
        .run_until_complete(async move { lp.run_in_executor(None, thread_name).unwrap().await })
        .unwrap()
        .unwrap();
    assert_eq!(name.as_deref(), Some("custom-executor"));
    assert_eq!(custom.submitted.load(Ordering::SeqCst), 1);
    // close() shuts the default executor down without waiting.
    event_loop.close().unwrap();
    assert_eq!(*custom.shutdowns.lock().unwrap(), [false]);
}

#[test]
fn shutdown_default_executor_waits_on_a_custom_default() {
    let _w = watchdog("custom_shutdown");
    let custom = Arc::new(ThreadPerJob::default());
    let (event_loop, _clock) = virtual_loop();
    event_loop.set_default_executor(custom.clone());
    let lp = event_loop.clone();
    event_loop
        .run_until_complete(async move { lp.shutdown_default_executor(None).await })
        .unwrap()
        .unwrap();
    assert_eq!(*custom.shutdowns.lock().unwrap(), [true]);
    event_loop.close().unwrap();
    // Already taken out of the loop: close does not shut it down again.
    assert_eq!(*custom.shutdowns.lock().unwrap(), [true]);
}

#[test]
fn dropping_the_future_before_the_job_starts_cancels_the_job() {
    let _w = watchdog("drop_before_start");
    let (event_loop, _clock) = virtual_loop();
    let pool = one_worker_pool();
    let executor: Arc<dyn Executor> = pool.clone();
    let (job, started, release) = blocker();
    let first = event_loop
        .run_in_executor(Some(executor.clone()), job)
        .unwrap();
    started.recv_timeout(BOUND).unwrap();

    // The only worker is busy: this job waits in the queue, and its future is dropped.
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let second = event_loop
        .run_in_executor(Some(executor.clone()), move || {
            r.store(true, Ordering::SeqCst)
        })
        .unwrap();
    drop(second);

    release.send(()).unwrap();
    let third = event_loop
        .run_in_executor(Some(executor.clone()), || "third")
        .unwrap();
    let out = event_loop
        .run_until_complete(async move { (first.await.unwrap(), third.await.unwrap()) })
        .unwrap();
    assert_eq!(out, ("released", "third"));
    // The queue is FIFO, so the second job was dequeued before the third ran.
    assert!(!ran.load(Ordering::SeqCst), "a cancelled job must not run");
    event_loop.close().unwrap();
    pool.shutdown(true);
}

#[test]
fn dropping_the_future_of_a_running_job_lets_it_finish() {
    let _w = watchdog("drop_running");
    // R29: a job that already started runs to the end; only its result is discarded.
    let (event_loop, _clock) = virtual_loop();
    let (job, started, release) = blocker();
    let (done_tx, done_rx) = mpsc::channel();
    let fut = event_loop
        .run_in_executor(None, move || {
            job();
            done_tx.send("finished").unwrap();
        })
        .unwrap();
    started.recv_timeout(BOUND).unwrap();
    drop(fut);
    release.send(()).unwrap();
    assert_eq!(done_rx.recv_timeout(BOUND).unwrap(), "finished");
    event_loop.close().unwrap();
}

#[test]
fn executor_futures_can_be_awaited_off_the_loop() {
    let _w = watchdog("off_loop");
    let (event_loop, _clock) = virtual_loop();
    let fut = event_loop.run_in_executor(None, || 21 * 2).unwrap();
    assert_eq!(futures::executor::block_on(fut).unwrap(), 42);
    event_loop.close().unwrap();
}

#[test]
fn many_jobs_on_the_default_pool() {
    let _w = watchdog("many");
    let (event_loop, _clock) = virtual_loop();
    let lp = event_loop.clone();
    let sum = event_loop
        .run_until_complete(async move {
            let futs: Vec<_> = (0..200u64)
                .map(|i| lp.run_in_executor(None, move || i * i).unwrap())
                .collect();
            let mut sum = 0;
            for f in futs {
                sum += f.await.unwrap();
            }
            sum
        })
        .unwrap();
    assert_eq!(sum, (0..200u64).map(|i| i * i).sum::<u64>());
    event_loop.close().unwrap();
}
