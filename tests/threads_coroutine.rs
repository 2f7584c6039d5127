//! Crossing threads: `EventLoop::spawn_thread`, `LoopHandle::run_coroutine_threadsafe` and the
//! `ConcurrentFuture` it returns (blocking `result`, awaiting on another executor, cancelling
//! from another thread, panics, the loop's own thread, closed loops).

mod support_tasks;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use asyncio::{current_task, get_running_loop, sleep, ErrorKind, EventLoop, LoopHandle};
use support_tasks::{send_drop_flag, watchdog, BOUND};

/// A `Send` stand-in for `sleep(0)`: yields to the loop once. (Futures handed to
/// `run_coroutine_threadsafe` must be `Send`, and the loop's own futures such as `Sleep` are
/// not, so they cannot be held across an `.await` there.)
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Stops the loop behind `handle` and joins its thread, which must end cleanly.
fn stop_and_join(handle: &LoopHandle, thread: std::thread::JoinHandle<asyncio::Result<()>>) {
    handle.stop();
    thread.join().expect("the loop thread panicked").unwrap();
    assert!(handle.is_closed());
    assert!(!handle.is_running());
}

#[test]
fn result_blocks_until_the_coroutine_is_done() {
    let _w = watchdog("result");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let h = handle.clone();
    let cf = handle
        .run_coroutine_threadsafe(async move {
            // It runs as a task of that loop, on that loop's thread.
            assert!(h.is_handle_of(&get_running_loop().unwrap()));
            assert!(current_task().unwrap().is_some());
            yield_now().await;
            (std::thread::current().name().map(str::to_owned), 6 * 7)
        })
        .unwrap();
    let (name, v) = cf.result(None).unwrap();
    assert_eq!(v, 42);
    assert_eq!(name.as_deref(), Some("asyncio-loop"));
    assert!(handle.is_running());
    stop_and_join(&handle, thread);
}

#[test]
fn result_with_a_timeout_times_out() {
    let _w = watchdog("timeout");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let cf = handle
        .run_coroutine_threadsafe(std::future::pending::<u8>())
        .unwrap();
    assert!(!cf.done());
    let err = cf.result(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    let cf = handle
        .run_coroutine_threadsafe(std::future::pending::<u8>())
        .unwrap();
    let err = cf.result(Some(Duration::from_millis(1))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    stop_and_join(&handle, thread);
}

#[test]
fn a_concurrent_future_can_be_awaited_on_other_executors() {
    let _w = watchdog("await_elsewhere");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();

    let cf = handle
        .run_coroutine_threadsafe(async {
            yield_now().await;
            "futures"
        })
        .unwrap();
    assert_eq!(futures::executor::block_on(cf).unwrap(), "futures");

    let cf = handle.run_coroutine_threadsafe(async { "tokio" }).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(cf).unwrap(), "tokio");

    // From another asyncio loop, too (it is not blocked: it awaits).
    let other = EventLoop::new().unwrap();
    let cf = handle
        .run_coroutine_threadsafe(async { "asyncio" })
        .unwrap();
    assert_eq!(other.run_until_complete(cf).unwrap().unwrap(), "asyncio");
    other.close().unwrap();

    stop_and_join(&handle, thread);
}

#[test]
fn cancel_from_another_thread_drops_the_coroutine() {
    let _w = watchdog("cancel");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let (dropped, drop_rx, guard) = send_drop_flag();
    let (started_tx, started_rx) = mpsc::channel();
    let reached = Arc::new(AtomicBool::new(false));
    let r = reached.clone();
    let cf = handle
        .run_coroutine_threadsafe(async move {
            let _finally = guard;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
            r.store(true, Ordering::SeqCst);
        })
        .unwrap();
    started_rx.recv_timeout(BOUND).unwrap();
    assert!(!dropped.load(Ordering::SeqCst));
    assert!(cf.cancel());
    drop_rx
        .recv_timeout(BOUND)
        .expect("the coroutine's Drop must run after cancel()");
    let err = cf.result(None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert!(!reached.load(Ordering::SeqCst));
    stop_and_join(&handle, thread);
}

#[test]
fn cancel_is_complete_when_result_returns() {
    let _w = watchdog("cancel_then_result");
    // Whoever sees the Cancelled result may rely on the coroutine's `finally` having run.
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    for _ in 0..50 {
        let (dropped, _drop_rx, guard) = send_drop_flag();
        let (started_tx, started_rx) = mpsc::channel();
        let cf = handle
            .run_coroutine_threadsafe(async move {
                let _finally = guard;
                started_tx.send(()).unwrap();
                std::future::pending::<()>().await;
            })
            .unwrap();
        started_rx.recv_timeout(BOUND).unwrap();
        assert!(cf.cancel());
        assert_eq!(cf.result(None).unwrap_err().kind(), ErrorKind::Cancelled);
        assert!(dropped.load(Ordering::SeqCst));
    }
    stop_and_join(&handle, thread);
}

#[test]
fn cancel_before_the_coroutine_starts() {
    let _w = watchdog("cancel_early");
    // The loop is not running yet, so the coroutine cannot have started.
    let event_loop = EventLoop::new().unwrap();
    let handle = event_loop.handle();
    let polled = Arc::new(AtomicBool::new(false));
    let p = polled.clone();
    let (dropped, _rx, guard) = send_drop_flag();
    let cf = handle
        .run_coroutine_threadsafe(async move {
            let _g = guard;
            p.store(true, Ordering::SeqCst);
        })
        .unwrap();
    assert!(cf.cancel());
    event_loop.run_until_complete(sleep(0.0)).unwrap().unwrap();
    assert!(cf.done());
    assert!(!cf.cancel(), "cancel on a done future returns false");
    assert_eq!(cf.result(None).unwrap_err().kind(), ErrorKind::Cancelled);
    assert!(!polled.load(Ordering::SeqCst));
    assert!(dropped.load(Ordering::SeqCst));
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_coroutine_gives_panicked() {
    let _w = watchdog("panic");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let cf = handle
        .run_coroutine_threadsafe(async {
            yield_now().await;
            if true {
                panic!("coroutine boom");
            }
            1
        })
        .unwrap();
    let err = cf.result(None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.message(), "coroutine boom");
    // The loop is still alive and serving.
    let cf = handle.run_coroutine_threadsafe(async { 2 }).unwrap();
    assert_eq!(cf.result(None).unwrap(), 2);
    stop_and_join(&handle, thread);
}

#[test]
fn blocking_on_the_loops_own_thread_is_wrong_thread() {
    let _w = watchdog("wrong_thread");
    // On a loop running on this thread.
    let event_loop = EventLoop::new().unwrap();
    let handle = event_loop.handle();
    let err = event_loop
        .run_until_complete(async move {
            let cf = handle.run_coroutine_threadsafe(async { 1 }).unwrap();
            cf.result(None).unwrap_err()
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::WrongThread);
    event_loop.close().unwrap();

    // Inside a coroutine of a spawned loop, blocking on that same loop.
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let h = handle.clone();
    let kind = handle
        .run_coroutine_threadsafe(async move {
            let cf = h.run_coroutine_threadsafe(async { 1 }).unwrap();
            cf.result(Some(BOUND)).unwrap_err().kind()
        })
        .unwrap()
        .result(None)
        .unwrap();
    assert_eq!(kind, ErrorKind::WrongThread);
    stop_and_join(&handle, thread);
}

#[test]
fn blocking_on_another_loop_from_a_loop_thread_is_allowed() {
    let _w = watchdog("other_loop");
    let (a, ta) = EventLoop::spawn_thread().unwrap();
    let (b, tb) = EventLoop::spawn_thread().unwrap();
    let b2 = b.clone();
    let v = a
        .run_coroutine_threadsafe(async move {
            b2.run_coroutine_threadsafe(async { 5 })
                .unwrap()
                .result(Some(BOUND))
                .unwrap()
        })
        .unwrap()
        .result(None)
        .unwrap();
    assert_eq!(v, 5);
    stop_and_join(&a, ta);
    stop_and_join(&b, tb);
}

#[test]
fn submitting_to_a_closed_loop_is_closed() {
    let _w = watchdog("closed");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    stop_and_join(&handle, thread);
    let err = handle.run_coroutine_threadsafe(async { 1 }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(err.to_string(), "Event loop is closed");
    assert_eq!(
        handle.call_soon_threadsafe(|| ()).unwrap_err().kind(),
        ErrorKind::Closed
    );
    handle.stop(); // harmless
}

#[test]
fn a_coroutine_pending_when_the_loop_closes_ends_closed() {
    let _w = watchdog("pending_at_close");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let (dropped, _rx, guard) = send_drop_flag();
    let (started_tx, started_rx) = mpsc::channel();
    let cf = handle
        .run_coroutine_threadsafe(async move {
            let _g = guard;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
    started_rx.recv_timeout(BOUND).unwrap();
    stop_and_join(&handle, thread);
    assert!(dropped.load(Ordering::SeqCst));
    let err = cf.result(Some(BOUND)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[test]
fn a_coroutine_the_loop_never_ran_ends_closed() {
    let _w = watchdog("never_ran");
    // Submitted, but the loop closes before it runs the submission: the result must still
    // resolve (to Closed) rather than leave `result(None)` blocked forever.
    let event_loop = EventLoop::new().unwrap();
    let handle = event_loop.handle();
    let (dropped, _rx, guard) = send_drop_flag();
    let cf = handle
        .run_coroutine_threadsafe(async move {
            let _g = guard;
            1
        })
        .unwrap();
    event_loop.close().unwrap();
    assert!(dropped.load(Ordering::SeqCst));
    let err = cf
        .result(Some(Duration::from_secs(5)))
        .expect_err("the loop closed before running the coroutine");
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[test]
fn many_threads_submit_concurrently() {
    let _w = watchdog("many");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..8u64)
        .map(|t| {
            let (h, ran) = (handle.clone(), ran.clone());
            std::thread::spawn(move || {
                let futs: Vec<_> = (0..50u64)
                    .map(|i| {
                        let ran = ran.clone();
                        h.run_coroutine_threadsafe(async move {
                            yield_now().await;
                            ran.fetch_add(1, Ordering::SeqCst);
                            t * 1000 + i
                        })
                        .unwrap()
                    })
                    .collect();
                futs.into_iter()
                    .map(|f| f.result(None).unwrap())
                    .sum::<u64>()
            })
        })
        .collect();
    let total: u64 = submitters.into_iter().map(|s| s.join().unwrap()).sum();
    let expected: u64 = (0..8u64)
        .flat_map(|t| (0..50u64).map(move |i| t * 1000 + i))
        .sum();
    assert_eq!(total, expected);
    assert_eq!(ran.load(Ordering::SeqCst), 400);
    stop_and_join(&handle, thread);
}

#[test]
fn spawn_thread_with_a_custom_loop() {
    let _w = watchdog("custom_loop");
    let (handle, thread) = EventLoop::spawn_thread_with(|| {
        EventLoop::builder()
            .clock(Rc::new(asyncio::VirtualClock::new()))
            .debug(true)
            .build()
    })
    .unwrap();
    let (t, debug) = handle
        .run_coroutine_threadsafe(async {
            // The loop's own futures are not `Send`: run them in a task created on the loop
            // thread and wait for a `Send` channel instead.
            let (tx, rx) = futures::channel::oneshot::channel();
            {
                let lp = get_running_loop().unwrap();
                drop(
                    lp.create_task(async move {
                        sleep(3600.0).await.unwrap();
                        let lp = get_running_loop().unwrap();
                        let _ = tx.send((lp.time(), lp.get_debug()));
                    })
                    .unwrap(),
                );
            }
            rx.await.unwrap()
        })
        .unwrap()
        .result(None)
        .unwrap();
    assert_eq!(t, 3600.0);
    assert!(debug);
    stop_and_join(&handle, thread);
}

#[test]
fn spawn_thread_with_a_failing_factory() {
    let _w = watchdog("failing_factory");
    let err = EventLoop::spawn_thread_with(|| {
        Err(asyncio::Error::new(ErrorKind::NotSupported, "no loop here"))
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    assert_eq!(err.to_string(), "no loop here");
}

#[test]
fn call_soon_threadsafe_reaches_a_spawned_loop() {
    let _w = watchdog("call_soon_threadsafe");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let (tx, rx) = mpsc::channel();
    handle
        .call_soon_threadsafe(move || {
            let name = std::thread::current().name().map(str::to_owned);
            tx.send(name).unwrap();
        })
        .unwrap();
    assert_eq!(
        rx.recv_timeout(BOUND).unwrap().as_deref(),
        Some("asyncio-loop")
    );
    stop_and_join(&handle, thread);
}

#[test]
fn a_concurrent_future_stays_done_after_it_was_awaited() {
    let _w = watchdog("done_after_await");
    let (handle, thread) = EventLoop::spawn_thread().unwrap();
    let mut cf = handle.run_coroutine_threadsafe(async { 9 }).unwrap();
    assert_eq!(futures::executor::block_on(&mut cf).unwrap(), 9);
    assert!(
        cf.done(),
        "a finished future must stay done once its result was taken"
    );
    assert!(!cf.cancel(), "cancel on a finished future returns false");
    // The value is gone; asking again is an error, not a hang.
    let err = cf.result(Some(BOUND)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    stop_and_join(&handle, thread);
}
