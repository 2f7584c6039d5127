//! Stress and capacity tests of the signal router (issue 9), in their own binary because they
//! change process-wide dispositions and flood the process with signals.
//!
//! - Several handled signals are raised at once at one thread (`pthread_kill`), at each loop's
//!   thread (`tgkill`) and at the process (`kill`), from one sender thread per signal, while
//!   loops with handlers are created and dropped alongside. Signals of one number coalesce, so
//!   each sender waits until every watching loop has seen its signal before sending it again:
//!   any lost signal shows up as a round that never completes.
//! - More than 64 loops handle a signal at the same time.
//! - Our handler and another library's (signal-hook-registry, through `async_signal`) chain to
//!   each other without recursing.
//!
//! Each test has a hard bound (the watchdog) and the stress itself runs for a bounded time.

#[path = "watcher_support/process_wide.rs"]
mod process_wide;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use asyncio::{EventLoop, LoopHandle};
use process_wide::{raise, watchdog, WATCHDOG};

/// How long the senders keep sending.
const STRESS_TIME: Duration = Duration::from_millis(2500);
/// How long one round may wait for its deliveries before the signal counts as lost.
const ROUND_LIMIT: Duration = Duration::from_secs(5);
/// Loops that stay up and count deliveries.
const RECEIVERS: usize = 3;
/// Threads that create, signal and drop loops in a cycle.
const CHURNERS: usize = 2;

/// The handled signals of the stress: several of them, so that they arrive at one thread at
/// nearly the same moment.
fn stress_signals() -> Vec<i32> {
    vec![
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGRTMIN(),
        libc::SIGRTMIN() + 1,
        libc::SIGRTMIN() + 2,
    ]
}

/// A loop on its own thread that counts, per signal, the calls of its handlers.
struct Receiver {
    counts: Arc<Vec<AtomicUsize>>,
    pthread: libc::pthread_t,
    tid: libc::pid_t,
    handle: LoopHandle,
    thread: std::thread::JoinHandle<()>,
}

fn start_receiver(signals: &[i32]) -> Receiver {
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new(signals.iter().map(|_| AtomicUsize::new(0)).collect());
    let (tx, rx) = mpsc::channel();
    let (c, sigs) = (counts.clone(), signals.to_vec());
    let thread = std::thread::spawn(move || {
        let event_loop = EventLoop::new().unwrap();
        for (i, &sig) in sigs.iter().enumerate() {
            let c = c.clone();
            event_loop
                .add_signal_handler(sig, move || {
                    c[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        // SAFETY: `pthread_self` and `gettid` have no preconditions.
        let ids = unsafe { (libc::pthread_self(), libc::gettid()) };
        tx.send((ids, event_loop.handle())).unwrap();
        event_loop.run_forever().unwrap();
        event_loop.close().unwrap();
    });
    let ((pthread, tid), handle) = rx.recv_timeout(WATCHDOG).unwrap();
    Receiver {
        counts,
        pthread,
        tid,
        handle,
        thread,
    }
}

/// Sends `sig` once: `round % 3` picks `pthread_kill` at receiver 0's thread (all senders aim
/// there, so different signals meet on one thread), `tgkill` at one receiver's thread, or
/// `kill` at the process.
fn send(sig: i32, round: usize, receivers: &[(libc::pthread_t, libc::pid_t)]) {
    let rc = match round % 3 {
        // SAFETY: receiver threads outlive the senders (they are joined after them), so the
        // `pthread_t` is valid; a handler is installed for `sig`.
        0 => unsafe { libc::pthread_kill(receivers[0].0, sig) },
        1 => {
            let tid = receivers[(round / 3) % receivers.len()].1;
            // SAFETY: a raw `tgkill` syscall at a live thread of this process.
            let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
            rc as i32
        }
        // SAFETY: `kill` at our own process, with a handler installed for `sig`.
        _ => unsafe { libc::kill(libc::getpid(), sig) },
    };
    assert_eq!(rc, 0, "sending signal {sig}");
}

/// Creates a loop with handlers for all `signals`, raises one of them on this thread, runs the
/// loop until its handler ran (or `ROUND_LIMIT` passed), and drops the loop; returns whether
/// the signal arrived.
fn churn_once(signals: &[i32], which: usize) -> bool {
    let event_loop = EventLoop::new().unwrap();
    let got = Rc::new(Cell::new(false));
    for (i, &sig) in signals.iter().enumerate() {
        let g = got.clone();
        event_loop
            .add_signal_handler(sig, move || {
                if i == which {
                    g.set(true);
                    asyncio::get_running_loop().unwrap().stop();
                }
            })
            .unwrap();
    }
    raise(signals[which]);
    let start = Instant::now();
    while !got.get() && start.elapsed() < ROUND_LIMIT {
        event_loop
            .call_later(0.05, || asyncio::get_running_loop().unwrap().stop())
            .unwrap();
        event_loop.run_forever().unwrap();
    }
    // Dropped without close: no callback holds a clone of the loop (they reach it through
    // `get_running_loop`), so the drop releases it, handlers, pipe and slot included, at once.
    got.get()
}

#[test]
fn concurrent_signals_all_arrive_and_nothing_crashes() {
    watchdog(|| {
        let signals = stress_signals();
        let receivers: Vec<Receiver> = (0..RECEIVERS).map(|_| start_receiver(&signals)).collect();
        let targets: Vec<_> = receivers.iter().map(|r| (r.pthread, r.tid)).collect();
        let all_counts: Vec<_> = receivers.iter().map(|r| r.counts.clone()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(signals.len() + CHURNERS));

        let churners: Vec<_> = (0..CHURNERS)
            .map(|k| {
                let (signals, stop, start) = (signals.clone(), stop.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let (mut cycles, mut lost) = (0usize, 0usize);
                    while !stop.load(Ordering::SeqCst) {
                        if !churn_once(&signals, (cycles + k) % signals.len()) {
                            lost += 1;
                        }
                        cycles += 1;
                    }
                    (cycles, lost)
                })
            })
            .collect();

        let senders: Vec<_> = signals
            .iter()
            .enumerate()
            .map(|(i, &sig)| {
                let (targets, counts, stop, start) = (
                    targets.clone(),
                    all_counts.clone(),
                    stop.clone(),
                    start.clone(),
                );
                std::thread::spawn(move || {
                    start.wait();
                    let begin = Instant::now();
                    let mut round = 0;
                    while begin.elapsed() < STRESS_TIME && !stop.load(Ordering::SeqCst) {
                        let before: Vec<usize> =
                            counts.iter().map(|c| c[i].load(Ordering::SeqCst)).collect();
                        send(sig, round, &targets);
                        let sent = Instant::now();
                        while counts
                            .iter()
                            .zip(&before)
                            .any(|(c, &b)| c[i].load(Ordering::SeqCst) == b)
                        {
                            if sent.elapsed() > ROUND_LIMIT {
                                stop.store(true, Ordering::SeqCst);
                                return Err(format!("signal {sig} lost in round {round}"));
                            }
                            std::thread::yield_now();
                        }
                        round += 1;
                    }
                    Ok(round)
                })
            })
            .collect();

        let rounds: Vec<_> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        stop.store(true, Ordering::SeqCst);
        let churned: Vec<_> = churners.into_iter().map(|c| c.join().unwrap()).collect();
        for r in receivers {
            r.handle.stop();
            r.thread.join().unwrap();
        }
        eprintln!("rounds per signal: {rounds:?}; churn (cycles, lost): {churned:?}");
        for r in &rounds {
            assert!(r.is_ok(), "{r:?}");
        }
        for (cycles, lost) in churned {
            assert!(cycles > 0);
            assert_eq!(lost, 0, "a churned loop missed its signal");
        }
    });
}

#[test]
fn more_than_64_loops_handle_signals_at_once() {
    watchdog(|| {
        const LOOPS: usize = 150;
        let got = Rc::new(Cell::new(0));
        let loops: Vec<EventLoop> = (0..LOOPS)
            .map(|_| {
                let event_loop = EventLoop::new().unwrap();
                let g = got.clone();
                event_loop
                    .add_signal_handler(libc::SIGUSR2, move || g.set(g.get() + 1))
                    .unwrap();
                event_loop
            })
            .collect();
        raise(libc::SIGUSR2);
        // The handler marked every loop and wrote to every pipe: one iteration reads the pipe,
        // the next runs the callback.
        for lp in &loops {
            for _ in 0..2 {
                lp.stop();
                lp.run_forever().unwrap();
            }
        }
        assert_eq!(got.get(), LOOPS);
        for lp in &loops {
            lp.close().unwrap();
        }
    });
}

/// A signal that nothing else in this binary handles: signal-hook-registry keeps its handler
/// installed for the rest of the process.
const CHAINED: i32 = libc::SIGURG;

#[test]
fn chaining_with_signal_hook_registry_does_not_recurse() {
    // add (ours installed) -> async_signal installs its handler over ours, with ours as its
    // predecessor -> remove (ours is not on top: nothing restored, but the saved predecessor
    // must be kept) -> add again (must not install ours over theirs with theirs as our
    // predecessor) -> one signal: each handler is called once, and no recursion.
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        let got = Rc::new(Cell::new(0));
        let g = got.clone();
        event_loop
            .add_signal_handler(CHAINED, move || g.set(g.get() + 1))
            .unwrap();
        let mut theirs = async_signal::Signals::new([async_signal::Signal::Urg]).unwrap();
        assert!(event_loop.remove_signal_handler(CHAINED).unwrap());
        let g = got.clone();
        event_loop
            .add_signal_handler(CHAINED, move || g.set(g.get() + 1))
            .unwrap();
        raise(CHAINED);
        // Theirs got it (their stream reads their self-pipe)...
        let theirs_got = futures_lite::future::block_on(futures_lite::StreamExt::next(&mut theirs));
        assert_eq!(theirs_got.unwrap().unwrap(), async_signal::Signal::Urg);
        // ...and ours too, once.
        while got.get() == 0 {
            event_loop.stop();
            event_loop.run_forever().unwrap();
        }
        event_loop.stop();
        event_loop.run_forever().unwrap();
        assert_eq!(got.get(), 1);
        assert!(event_loop.remove_signal_handler(CHAINED).unwrap());
        event_loop.close().unwrap();
    });
}
