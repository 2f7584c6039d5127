//! Crossing threads (spec R13, R21): `call_soon_threadsafe` from many threads loses nothing,
//! races with `close()` without panics or leaks, and wakes a sleeping loop; `LoopHandle::stop`
//! wakes a loop sleeping on a long timer; tasks woken from other threads run on their loop.

mod loop_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::{ErrorKind, EventLoop, LoopHandle};
use loop_support::{run_while, wait_running, watchdog, yield_now, DropCounter};

const THREADS: usize = 8;

/// Stops the loop behind `handle` from this thread once the loop is running.
fn stop_when_running(handle: LoopHandle) {
    wait_running(&handle);
    handle.stop();
}

#[test]
fn call_soon_threadsafe_from_eight_threads_loses_nothing() {
    const PER_THREAD: usize = 2_000;
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        let handle = lp.handle();
        let count = Arc::new(AtomicUsize::new(0));
        // Per producer, the sequence numbers it saw run, to check per-thread FIFO order.
        let last_seen = Arc::new(Mutex::new(vec![None::<usize>; THREADS]));
        let producers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (h, count, last_seen) = (handle.clone(), count.clone(), last_seen.clone());
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let (count, last_seen) = (count.clone(), last_seen.clone());
                        h.call_soon_threadsafe(move || {
                            {
                                let mut seen = last_seen.lock().unwrap();
                                assert!(seen[t].is_none_or(|prev| prev + 1 == i));
                                seen[t] = Some(i);
                            }
                            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                            if n == THREADS * PER_THREAD {
                                asyncio::get_running_loop().unwrap().stop();
                            }
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        lp.run_forever().unwrap();
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), THREADS * PER_THREAD);
        assert!(last_seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| *s == Some(PER_THREAD - 1)));
        lp.close().unwrap();
    });
}

#[test]
fn call_soon_threadsafe_racing_close_is_ok_or_closed_and_leaks_nothing() {
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        let handle = lp.handle();
        let ran = Arc::new(AtomicUsize::new(0));
        let drops = DropCounter::new();
        let after_close = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (h, ran, drops, after_close) = (
                    handle.clone(),
                    ran.clone(),
                    drops.clone(),
                    after_close.clone(),
                );
                std::thread::spawn(move || {
                    let (mut attempts, mut oks, mut post_close) = (0usize, 0usize, 0usize);
                    while post_close < 200 {
                        assert!(attempts < 50_000_000, "the loop never closed");
                        let after = after_close.load(Ordering::SeqCst);
                        let (token, ran) = (drops.token(), ran.clone());
                        attempts += 1;
                        match h.call_soon_threadsafe(move || {
                            let _t = token;
                            ran.fetch_add(1, Ordering::SeqCst);
                        }) {
                            Ok(_) => {
                                assert!(!after, "a call after close() returned was accepted");
                                oks += 1;
                            }
                            Err(e) => {
                                assert_eq!(e.kind(), ErrorKind::Closed);
                                assert_eq!(e.to_string(), "Event loop is closed");
                                if after {
                                    post_close += 1;
                                }
                            }
                        }
                        h.stop();
                        // Keep calling, but leave the loop thread some CPU on small machines.
                        std::thread::yield_now();
                    }
                    (attempts, oks)
                })
            })
            .collect();
        // Run until a good number of remote callbacks went through, with producers still busy.
        // Their stop() requests end each run after an iteration or two: run again.
        let mut runs = 0;
        while ran.load(Ordering::SeqCst) < 1_000 {
            lp.run_forever().unwrap();
            runs += 1;
        }
        assert!(runs >= 1);
        lp.close().unwrap();
        after_close.store(true, Ordering::SeqCst);
        let (mut attempts, mut oks) = (0, 0);
        for p in producers {
            let (a, o) = p.join().unwrap();
            attempts += a;
            oks += o;
        }
        assert!(handle.is_closed());
        let ran_total = ran.load(Ordering::SeqCst);
        assert!(
            ran_total >= 1_000 && ran_total <= oks,
            "{ran_total} / {oks}"
        );
        drop(lp);
        // Every closure was either run or dropped exactly once: nothing leaked in the inbox.
        assert_eq!(drops.dropped(), attempts);
        assert_eq!(
            handle.call_soon_threadsafe(|| ()).unwrap_err().kind(),
            ErrorKind::Closed
        );
    });
}

#[test]
fn a_threadsafe_call_made_during_a_batch_runs_in_the_next_iteration() {
    // R2 for the inbox: what another thread sends while a batch runs joins the next snapshot,
    // behind nothing of the current batch.
    watchdog(|| {
        let (lp, _) = loop_support::virtual_loop();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l, lg) = (lp.clone(), log.clone());
        lp.call_soon(move || {
            lg.lock()
                .unwrap()
                .push(format!("a@{}", l.iteration_count()));
            let (h, lg2) = (l.handle(), lg.clone());
            std::thread::spawn(move || {
                h.call_soon_threadsafe(move || {
                    let it = asyncio::get_running_loop().unwrap().iteration_count();
                    lg2.lock().unwrap().push(format!("remote@{it}"));
                })
                .unwrap();
            })
            .join()
            .unwrap();
        })
        .unwrap();
        let (l, lg) = (lp.clone(), log.clone());
        lp.call_soon(move || {
            lg.lock()
                .unwrap()
                .push(format!("b@{}", l.iteration_count()));
            let l2 = l.clone();
            l.call_soon(move || l2.stop()).unwrap();
        })
        .unwrap();
        let start = lp.iteration_count();
        lp.run_forever().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                format!("a@{}", start + 1),
                format!("b@{}", start + 1),
                format!("remote@{}", start + 2),
            ]
        );
        lp.close().unwrap();
    });
}

#[test]
fn handle_stop_wakes_a_loop_sleeping_on_a_long_timer() {
    // R13: CPython's loop.stop() from another thread sleeps through; LoopHandle::stop wakes.
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        let fired = std::rc::Rc::new(std::cell::Cell::new(false));
        let f = fired.clone();
        lp.call_later(3600.0, move || f.set(true)).unwrap();
        run_while(&lp, stop_when_running);
        assert!(!fired.get());
        assert_eq!(lp.timer_heap_len(), 1);
        assert!(!lp.is_running());
        lp.close().unwrap();
    });
}

#[test]
fn handle_stop_wakes_a_loop_sleeping_with_nothing_scheduled() {
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        run_while(&lp, stop_when_running);
        lp.close().unwrap();
    });
}

#[test]
fn call_soon_threadsafe_wakes_a_loop_sleeping_on_a_long_timer() {
    // R21 (EXP:e2 "12"): a loop blocked on a long timer wakes for a threadsafe callback.
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        lp.call_later(3600.0, || panic!("must not fire")).unwrap();
        run_while(&lp, |handle| {
            wait_running(&handle);
            handle
                .call_soon_threadsafe(|| asyncio::get_running_loop().unwrap().stop())
                .unwrap();
        });
        lp.close().unwrap();
    });
}

#[test]
fn a_handle_stop_before_the_run_makes_it_a_pre_stopped_run() {
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        let count = std::rc::Rc::new(std::cell::Cell::new(0));
        let (l, c) = (lp.clone(), count.clone());
        lp.call_soon(move || {
            c.set(c.get() + 1);
            let c2 = c.clone();
            l.call_soon(move || c2.set(c2.get() + 10)).unwrap();
        })
        .unwrap();
        let handle = lp.handle();
        std::thread::spawn(move || handle.stop()).join().unwrap();
        let before = lp.iteration_count();
        lp.run_forever().unwrap();
        assert_eq!(lp.iteration_count(), before + 1);
        assert_eq!(count.get(), 1);
        lp.close().unwrap();
    });
}

#[test]
fn a_task_woken_from_another_thread_resumes_on_its_loop() {
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let handle = lp.handle();
        let sender = std::thread::spawn(move || {
            wait_running(&handle);
            tx.send(41).unwrap();
        });
        let loop_thread = std::thread::current().id();
        let (v, thread) = lp
            .run_until_complete(async move {
                let v = rx.await.unwrap();
                (v + 1, std::thread::current().id())
            })
            .unwrap();
        sender.join().unwrap();
        assert_eq!(v, 42);
        assert_eq!(thread, loop_thread);
        lp.close().unwrap();
    });
}

#[test]
fn run_coroutine_threadsafe_runs_on_the_loop_and_returns_to_the_caller() {
    watchdog(|| {
        let (handle, thread) = EventLoop::spawn_thread().unwrap();
        let loop_thread = thread.thread().id();
        let fut = handle
            .run_coroutine_threadsafe(async {
                yield_now().await;
                std::thread::current().id()
            })
            .unwrap();
        assert_eq!(
            fut.result(Some(Duration::from_secs(15))).unwrap(),
            loop_thread
        );
        // Blocking on the loop's own thread would deadlock: an error instead.
        let h = handle.clone();
        let kind = handle
            .run_coroutine_threadsafe(async move {
                let inner = h.run_coroutine_threadsafe(async { 1 }).unwrap();
                inner
                    .result(Some(Duration::from_secs(1)))
                    .unwrap_err()
                    .kind()
            })
            .unwrap()
            .result(Some(Duration::from_secs(15)))
            .unwrap();
        assert_eq!(kind, ErrorKind::WrongThread);
        handle.stop();
        thread.join().unwrap().unwrap();
        assert!(handle.is_closed());
        assert_eq!(
            handle
                .run_coroutine_threadsafe(async {})
                .map(|_| ())
                .unwrap_err()
                .kind(),
            ErrorKind::Closed
        );
    });
}

#[test]
fn thread_safe_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<LoopHandle>();
    assert_send_sync::<asyncio::ThreadsafeHandle>();
    assert_send_sync::<asyncio::Error>();
}

#[test]
fn block_on_a_future_woken_from_another_thread_while_the_loop_sleeps() {
    // The `block_on` waker goes through the inbox, so the loop's last look before blocking in the
    // selector sees it: 200 hand-offs, each woken from another thread while the loop is idle
    // (no fds, no timers), must all complete (a lost wake-up would hang until the watchdog).
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        for _ in 0..200 {
            let (tx, rx) = futures::channel::oneshot::channel::<u32>();
            let t = std::thread::spawn(move || {
                std::thread::yield_now();
                tx.send(7).unwrap();
            });
            assert_eq!(event_loop.block_on(rx).unwrap().unwrap(), 7);
            t.join().unwrap();
        }
        event_loop.close().unwrap();
    });
}
