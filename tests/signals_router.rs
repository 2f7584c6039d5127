//! The process-wide signal router behind `add_signal_handler` / `remove_signal_handler`
//! (asyncio-semantics R36-R42, with the project's choices: several loops each get a signal, the
//! previous disposition comes back, any thread may add handlers).
//!
//! Signal dispositions are process-wide, so these tests run one at a time in their own binary.
//! Signals are raised with `raise(3)`, which runs the C handler on the calling thread before it
//! returns, so nothing here waits for a signal "to arrive".

#[path = "common/dispositions.rs"]
mod dispositions;
#[path = "watcher_support/process_wide.rs"]
mod process_wide;

use dispositions::{disposition, set_disposition};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use asyncio::{ErrorKind, EventLoop};
use process_wide::{raise, watchdog, WATCHDOG};

static CUSTOM_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Another library's handler: one atomic increment (async-signal-safe).
extern "C" fn custom_handler(_sig: libc::c_int) {
    CUSTOM_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// Runs exactly one iteration of `event_loop`.
fn one_iteration(event_loop: &EventLoop) {
    event_loop.stop();
    event_loop.run_forever().unwrap();
}

/// Runs `event_loop` until `done()`, turning it one blocking run at a time; `done` must become
/// true through a callback that also stops the loop.
fn run_until(event_loop: &EventLoop, done: impl Fn() -> bool) {
    while !done() {
        event_loop.run_forever().unwrap();
    }
}

#[test]
fn handler_runs_one_iteration_after_the_pipe_is_read() {
    // R39: kill self; call_soon(stop); run_forever => not yet run; the next run runs it.
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        let ran = Rc::new(Cell::new(0));
        let on = Rc::new(Cell::new(None));
        let (r, o) = (ran.clone(), on.clone());
        event_loop
            .add_signal_handler(libc::SIGUSR1, move || {
                r.set(r.get() + 1);
                o.set(Some(std::thread::current().id()));
            })
            .unwrap();
        raise(libc::SIGUSR1);
        one_iteration(&event_loop);
        assert_eq!(ran.get(), 0, "ran in the iteration that read the pipe");
        one_iteration(&event_loop);
        assert_eq!(ran.get(), 1);
        assert_eq!(on.get(), Some(std::thread::current().id()));
        assert!(event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
        event_loop.close().unwrap();
    });
}

#[test]
fn two_loops_on_two_threads_both_get_the_signal() {
    // R41, as the project keeps it: every loop watching a signal gets it.
    watchdog(|| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (got_tx, got_rx) = mpsc::channel();
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (ready_tx, got_tx) = (ready_tx.clone(), got_tx.clone());
                std::thread::spawn(move || {
                    let event_loop = EventLoop::new().unwrap();
                    let lp = event_loop.clone();
                    event_loop
                        .add_signal_handler(libc::SIGUSR1, move || {
                            got_tx.send((i, std::thread::current().id())).unwrap();
                            lp.stop();
                        })
                        .unwrap();
                    ready_tx.send(()).unwrap();
                    event_loop.run_forever().unwrap();
                    event_loop.close().unwrap();
                    std::thread::current().id()
                })
            })
            .collect();
        for _ in 0..2 {
            ready_rx.recv_timeout(WATCHDOG).unwrap();
        }
        // One process-directed signal, handled on whichever thread the kernel picks.
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::USR1)
            .unwrap();
        let mut got: Vec<_> = (0..2)
            .map(|_| got_rx.recv_timeout(WATCHDOG).unwrap())
            .collect();
        got.sort_by_key(|g| g.0);
        let ids: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(got[0], (0, ids[0]));
        assert_eq!(got[1], (1, ids[1]));
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
    });
}

#[test]
fn removing_the_last_handler_restores_a_custom_disposition() {
    // R40 as the project keeps it (CPython restores SIG_DFL and loses the custom handler).
    watchdog(|| {
        let custom = custom_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        set_disposition(libc::SIGUSR2, custom);
        let event_loop = EventLoop::new().unwrap();
        let ran = Rc::new(Cell::new(0));
        let (r, lp) = (ran.clone(), event_loop.clone());
        event_loop
            .add_signal_handler(libc::SIGUSR2, move || {
                r.set(r.get() + 1);
                lp.stop();
            })
            .unwrap();
        assert_ne!(disposition(libc::SIGUSR2), custom);
        let before = CUSTOM_CALLS.load(Ordering::SeqCst);
        raise(libc::SIGUSR2);
        // The foreign handler is chained to, not lost, while ours is installed.
        assert_eq!(CUSTOM_CALLS.load(Ordering::SeqCst), before + 1);
        run_until(&event_loop, || ran.get() == 1);
        assert!(event_loop.remove_signal_handler(libc::SIGUSR2).unwrap());
        assert_eq!(disposition(libc::SIGUSR2), custom);
        raise(libc::SIGUSR2);
        assert_eq!(CUSTOM_CALLS.load(Ordering::SeqCst), before + 2);
        one_iteration(&event_loop);
        one_iteration(&event_loop);
        assert_eq!(ran.get(), 1);
        event_loop.close().unwrap();
        set_disposition(libc::SIGUSR2, libc::SIG_DFL);
    });
}

#[test]
fn removing_the_last_handler_restores_default_and_ignore() {
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        event_loop.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
        assert_ne!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        assert!(event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);

        set_disposition(libc::SIGUSR2, libc::SIG_IGN);
        event_loop.add_signal_handler(libc::SIGUSR2, || {}).unwrap();
        assert_ne!(disposition(libc::SIGUSR2), libc::SIG_IGN);
        assert!(event_loop.remove_signal_handler(libc::SIGUSR2).unwrap());
        assert_eq!(disposition(libc::SIGUSR2), libc::SIG_IGN);
        set_disposition(libc::SIGUSR2, libc::SIG_DFL);
        event_loop.close().unwrap();
    });
}

#[test]
fn the_disposition_stays_until_the_last_loop_removes_its_handler() {
    watchdog(|| {
        let a = EventLoop::new().unwrap();
        let b = EventLoop::new().unwrap();
        let got = Rc::new(RefCell::new(Vec::new()));
        let (ga, gb) = (got.clone(), got.clone());
        a.add_signal_handler(libc::SIGUSR1, move || ga.borrow_mut().push("a"))
            .unwrap();
        b.add_signal_handler(libc::SIGUSR1, move || gb.borrow_mut().push("b"))
            .unwrap();
        assert!(a.remove_signal_handler(libc::SIGUSR1).unwrap());
        assert_ne!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        raise(libc::SIGUSR1);
        for lp in [&a, &b] {
            one_iteration(lp);
            one_iteration(lp);
        }
        assert_eq!(*got.borrow(), ["b"]);
        assert!(b.remove_signal_handler(libc::SIGUSR1).unwrap());
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        a.close().unwrap();
        b.close().unwrap();
    });
}

#[test]
fn invalid_signal_numbers_are_invalid_argument() {
    // R36 (add) and R40 (remove): errors with asyncio's messages, never a panic.
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        for bad in [0, -1, 32, 33, 65, 128, 1000, i32::MAX, i32::MIN] {
            let err = event_loop.add_signal_handler(bad, || {}).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "add {bad}");
            assert_eq!(err.to_string(), format!("invalid signal number {bad}"));
            let err = event_loop.remove_signal_handler(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "remove {bad}");
        }
        for (sig, n) in [(libc::SIGKILL, 9), (libc::SIGSTOP, 19)] {
            let err = event_loop.add_signal_handler(sig, || {}).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert_eq!(err.to_string(), format!("sig {n} cannot be caught"));
            // Never registered, so nothing to remove (R40: False).
            assert!(!event_loop.remove_signal_handler(sig).unwrap());
        }
        assert!(event_loop.signal_handlers().is_empty());
        // SIGRTMIN is a real, catchable signal.
        event_loop
            .add_signal_handler(libc::SIGRTMIN(), || {})
            .unwrap();
        assert!(event_loop.remove_signal_handler(libc::SIGRTMIN()).unwrap());
        event_loop.close().unwrap();
    });
}

#[test]
fn adding_on_a_closed_loop_is_closed() {
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        event_loop.close().unwrap();
        let err = event_loop
            .add_signal_handler(libc::SIGUSR1, || {})
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        assert_eq!(err.to_string(), "Event loop is closed");
        // The number is checked first (asyncio's order).
        let err = event_loop.add_signal_handler(0, || {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(!event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
    });
}

#[test]
fn a_second_handler_replaces_the_first_and_remove_is_true_once() {
    // R38 and R40.
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        let got = Rc::new(RefCell::new(Vec::new()));
        let (g1, g2) = (got.clone(), got.clone());
        let lp = event_loop.clone();
        event_loop
            .add_signal_handler(libc::SIGUSR1, move || g1.borrow_mut().push("first"))
            .unwrap();
        event_loop
            .add_signal_handler(libc::SIGUSR1, move || {
                g2.borrow_mut().push("second");
                lp.stop();
            })
            .unwrap();
        assert_eq!(event_loop.signal_handlers(), [libc::SIGUSR1]);
        raise(libc::SIGUSR1);
        raise(libc::SIGUSR1);
        run_until(&event_loop, || !got.borrow().is_empty());
        one_iteration(&event_loop);
        // Two raises before the pipe was read coalesce into one call, of the second handler.
        assert_eq!(*got.borrow(), ["second"]);
        assert!(event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
        assert!(!event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
        assert!(!event_loop.remove_signal_handler(libc::SIGUSR2).unwrap());
        // One subscription only, despite the replacement: the disposition is back.
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        event_loop.close().unwrap();
    });
}

#[test]
fn handlers_run_on_the_loop_thread_whichever_thread_takes_the_signal() {
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        let on = Arc::new(Mutex::new(None));
        let (o, lp) = (on.clone(), event_loop.clone());
        event_loop
            .add_signal_handler(libc::SIGUSR2, move || {
                *o.lock().unwrap() = Some(std::thread::current().id());
                lp.stop();
            })
            .unwrap();
        // The C handler runs on another thread.
        std::thread::spawn(|| raise(libc::SIGUSR2)).join().unwrap();
        run_until(&event_loop, || on.lock().unwrap().is_some());
        assert_eq!(*on.lock().unwrap(), Some(std::thread::current().id()));
        event_loop.close().unwrap();
        assert_eq!(disposition(libc::SIGUSR2), libc::SIG_DFL);
    });
}

#[test]
fn closing_or_dropping_a_loop_removes_its_handlers() {
    // R42: close() removes every handler and restores the dispositions.
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        event_loop.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
        event_loop.add_signal_handler(libc::SIGUSR2, || {}).unwrap();
        assert_eq!(event_loop.signal_handlers(), [libc::SIGUSR1, libc::SIGUSR2]);
        event_loop.close().unwrap();
        assert!(event_loop.signal_handlers().is_empty());
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        assert_eq!(disposition(libc::SIGUSR2), libc::SIG_DFL);

        let dropped = EventLoop::new().unwrap();
        dropped.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
        assert_ne!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        drop(dropped);
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
    });
}

#[test]
fn our_handler_blocks_every_signal_while_it_runs() {
    // Issue 9: with an empty `sa_mask`, different signals arriving at once nested the handler
    // inside itself on the small alternate signal stack until it overflowed (SIGSEGV).
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        event_loop.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
        event_loop.add_signal_handler(libc::SIGUSR2, || {}).unwrap();
        for sig in [libc::SIGUSR1, libc::SIGUSR2] {
            // SAFETY: a zeroed `sigaction` is a valid value to be overwritten.
            let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: with a null `act`, `sigaction` only writes the current disposition.
            let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut cur) };
            assert_eq!(rc, 0);
            for other in [
                libc::SIGUSR1,
                libc::SIGUSR2,
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGWINCH,
                libc::SIGRTMIN(),
            ] {
                // SAFETY: `cur.sa_mask` is an initialised signal set.
                let member = unsafe { libc::sigismember(&cur.sa_mask, other) };
                assert_eq!(
                    member, 1,
                    "signal {other} not blocked in the handler of {sig}"
                );
            }
        }
        event_loop.close().unwrap();
    });
}

static BLOCKING_ARMED: AtomicBool = AtomicBool::new(false);
static BLOCKING_INSIDE: AtomicBool = AtomicBool::new(false);
static BLOCKING_RELEASE: AtomicBool = AtomicBool::new(false);

/// Another library's handler that, once armed, stays inside until released (atomics only).
extern "C" fn blocking_handler(_sig: libc::c_int) {
    if BLOCKING_ARMED.swap(false, Ordering::SeqCst) {
        BLOCKING_INSIDE.store(true, Ordering::SeqCst);
        while !BLOCKING_RELEASE.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    }
}

#[test]
fn a_loop_that_takes_a_released_slot_keeps_its_signals() {
    // Issue 9: a dropped loop freed its wake slot first and cleared the slot's pending bits
    // only after every running handler had left, so a new loop that took the slot in between
    // lost the signals marked for it. Here a handler stays running (chained to a foreign
    // handler that blocks) while loop A is dropped and loop B takes a slot and gets SIGUSR1.
    watchdog(|| {
        let blocking = blocking_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        set_disposition(libc::SIGUSR2, blocking);
        let (ready_tx, ready_rx) = mpsc::channel();
        let (drop_tx, drop_rx) = mpsc::channel::<()>();
        let dropper = std::thread::spawn(move || {
            let a = EventLoop::new().unwrap();
            a.add_signal_handler(libc::SIGUSR2, || {}).unwrap();
            ready_tx.send(()).unwrap();
            drop_rx.recv().unwrap();
            drop(a);
        });
        ready_rx.recv_timeout(WATCHDOG).unwrap();
        BLOCKING_ARMED.store(true, Ordering::SeqCst);
        let raiser = std::thread::spawn(|| raise(libc::SIGUSR2));
        while !BLOCKING_INSIDE.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // A's drop gives its subscription back (the foreign disposition returns) and frees
        // its slot, while our handler is still running on the raiser's thread.
        drop_tx.send(()).unwrap();
        while disposition(libc::SIGUSR2) != blocking {
            std::thread::yield_now();
        }
        let b = EventLoop::new().unwrap();
        let got = Rc::new(Cell::new(0));
        let g = got.clone();
        b.add_signal_handler(libc::SIGUSR1, move || g.set(g.get() + 1))
            .unwrap();
        raise(libc::SIGUSR1);
        BLOCKING_RELEASE.store(true, Ordering::SeqCst);
        raiser.join().unwrap();
        dropper.join().unwrap();
        one_iteration(&b);
        one_iteration(&b);
        assert_eq!(got.get(), 1, "the signal marked for the new loop was lost");
        b.close().unwrap();
        set_disposition(libc::SIGUSR2, libc::SIG_DFL);
    });
}

#[test]
fn a_handler_installed_over_ours_keeps_ours_alive_until_the_default_returns() {
    // Issue 9: removing our last handler while another library's is on top must keep our
    // entry (theirs may chain to ours), so a later add only counts instead of installing ours
    // over theirs; once the disposition is reset, a later add installs ours again.
    watchdog(|| {
        let custom = custom_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        let event_loop = EventLoop::new().unwrap();
        event_loop.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
        let ours = disposition(libc::SIGUSR1);
        set_disposition(libc::SIGUSR1, custom);
        assert!(event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
        assert_eq!(disposition(libc::SIGUSR1), custom, "theirs stays on top");
        event_loop.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
        assert_eq!(
            disposition(libc::SIGUSR1),
            custom,
            "ours was installed over theirs"
        );
        assert!(event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
        set_disposition(libc::SIGUSR1, libc::SIG_DFL);
        event_loop.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
        assert_eq!(disposition(libc::SIGUSR1), ours);
        assert!(event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
        assert_eq!(disposition(libc::SIGUSR1), libc::SIG_DFL);
        event_loop.close().unwrap();
    });
}
