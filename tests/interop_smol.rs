//! Code written for the smol ecosystem runs on our loop unchanged: `async-process` children and
//! `async-signal` streams, awaited by tasks of an asyncio [`EventLoop`]. Those crates drive
//! their I/O from async-io's own reactor thread and wake our tasks through their wakers; that
//! second reactor is expected (see the design, section 6).
//!
//! Signals are process-wide, so the tests here run one at a time under a watchdog.

#[path = "watcher_support/process_wide.rs"]
mod process_wide;

use std::cell::Cell;
use std::rc::Rc;

use async_signal::{Signal, Signals};
use asyncio::EventLoop;
use futures_lite::StreamExt;
use process_wide::{raise, watchdog};

#[test]
fn a_task_awaits_an_async_process_child() {
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        let lp = event_loop.clone();
        let (output, status, on_our_loop) = event_loop
            .run_until_complete(async move {
                let output = async_process::Command::new("sh")
                    .args(["-c", "echo hello from a child; exit 3"])
                    .output()
                    .await
                    .expect("run the child");
                let mut child = async_process::Command::new("sh")
                    .args(["-c", "kill -TERM $$"])
                    .spawn()
                    .expect("spawn");
                let status = child.status().await.expect("status");
                let here = asyncio::get_running_loop().expect("running loop");
                (output, status, here.ptr_eq(&lp))
            })
            .unwrap();
        assert!(on_our_loop);
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(output.stdout, b"hello from a child\n");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        event_loop.close().unwrap();
    });
}

#[test]
fn a_task_reads_an_async_signal_stream() {
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        let got = event_loop
            .run_until_complete(async {
                let mut signals = Signals::new([Signal::Usr2]).expect("register SIGUSR2");
                raise(libc::SIGUSR2);
                signals.next().await
            })
            .unwrap();
        assert_eq!(got.expect("a signal").expect("no error"), Signal::Usr2);
        event_loop.close().unwrap();
    });
}

#[test]
fn async_signal_and_our_handler_both_get_the_signal() {
    watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        let ours = Rc::new(Cell::new(0));
        let (o, seen) = (ours.clone(), ours.clone());
        let lp = event_loop.clone();
        let got = event_loop
            .run_until_complete(async move {
                let mut signals = Signals::new([Signal::Usr2]).expect("register SIGUSR2");
                // Installed over async-signal's handler, which our router chains to.
                lp.add_signal_handler(libc::SIGUSR2, move || o.set(o.get() + 1))
                    .unwrap();
                raise(libc::SIGUSR2);
                let first = signals.next().await;
                // Our handler runs through the ready queue: yield until it has.
                while seen.get() == 0 {
                    asyncio::sleep(0.0).await.unwrap();
                }
                assert!(lp.remove_signal_handler(libc::SIGUSR2).unwrap());
                // async-signal's handler is back in place and still works.
                raise(libc::SIGUSR2);
                let second = signals.next().await;
                (first, second)
            })
            .unwrap();
        assert_eq!(got.0.expect("a signal").expect("no error"), Signal::Usr2);
        assert_eq!(got.1.expect("a signal").expect("no error"), Signal::Usr2);
        assert_eq!(ours.get(), 1);
        event_loop.close().unwrap();
    });
}
