//! Subprocesses with each of the four child watchers installed in the policy, on a loop of a
//! non-main thread; and the inactive watcher refused before spawning (R52). The watchers and
//! `SIGCHLD` are process-wide (Fast reaps every child), so these tests run one at a time.

#[path = "watcher_support/process_wide.rs"]
mod process_wide;
// Both support modules carry the shared watchdog file: two copies of a few lines, no state.
#[allow(clippy::duplicate_mod)]
mod subprocess_support;

use std::sync::Arc;

use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};
use asyncio::{
    ChildWatcher, ErrorKind, EventLoop, FastChildWatcher, PidfdChildWatcher, SafeChildWatcher,
    ThreadedChildWatcher,
};
use process_wide::watchdog;
use subprocess_support::until_reaped;

/// Installs `watcher` in the policy, runs children on a loop of this (non-main) thread, and
/// removes it again.
fn with_watcher(watcher: Arc<dyn ChildWatcher>, sigchld: bool) {
    assert!(!asyncio::unix::is_main_thread());
    let event_loop = EventLoop::new().unwrap();
    if sigchld {
        watcher.attach_loop(Some(&event_loop)).unwrap();
    }
    asyncio::set_child_watcher(Some(watcher)).unwrap();
    let (rc, out, killed, dropped) = event_loop
        .run_until_complete(async {
            let rc = create_subprocess_exec("sh", ["-c", "exit 3"], SubprocessOptions::new())
                .await
                .unwrap()
                .wait()
                .await;
            let mut echo = create_subprocess_exec(
                "sh",
                ["-c", "echo through"],
                SubprocessOptions::new().stdout(Stdio::Pipe),
            )
            .await
            .unwrap();
            let (out, _) = echo.communicate(None).await.unwrap();
            let cat = create_subprocess_exec(
                "cat",
                [] as [&str; 0],
                SubprocessOptions::new().stdin(Stdio::Pipe),
            )
            .await
            .unwrap();
            cat.kill().unwrap();
            let killed = cat.wait().await;
            let dropped = create_subprocess_exec("true", [] as [&str; 0], SubprocessOptions::new())
                .await
                .unwrap();
            let pid = dropped.pid;
            drop(dropped);
            until_reaped(pid).await;
            (rc, out.unwrap(), killed, pid)
        })
        .unwrap();
    assert_eq!(rc, 3);
    assert_eq!(out, b"through\n");
    assert_eq!(killed, -9);
    assert!(dropped > 0);
    asyncio::set_child_watcher(None).unwrap();
    event_loop.close().unwrap();
}

#[test]
fn pidfd_watcher_on_a_non_main_thread() {
    if !PidfdChildWatcher::is_supported() {
        eprintln!("pidfd not supported here: skipped");
        return;
    }
    watchdog(|| with_watcher(Arc::new(PidfdChildWatcher::new()), false));
}

#[test]
fn threaded_watcher_on_a_non_main_thread() {
    watchdog(|| with_watcher(Arc::new(ThreadedChildWatcher::new()), false));
}

#[test]
fn safe_watcher_on_a_non_main_thread() {
    watchdog(|| with_watcher(Arc::new(SafeChildWatcher::new()), true));
}

#[test]
fn fast_watcher_on_a_non_main_thread() {
    watchdog(|| with_watcher(Arc::new(FastChildWatcher::new()), true));
}

#[test]
fn an_inactive_watcher_is_refused_before_spawning() {
    watchdog(|| {
        // A Safe watcher attached to no loop cannot deliver exits.
        asyncio::set_child_watcher(Some(Arc::new(SafeChildWatcher::new()))).unwrap();
        let event_loop = EventLoop::new().unwrap();
        let err = event_loop
            .run_until_complete(async {
                create_subprocess_exec("true", [] as [&str; 0], SubprocessOptions::new())
                    .await
                    .unwrap_err()
            })
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert_eq!(
            err.to_string(),
            "asyncio.get_child_watcher() is not activated, subprocess support is not installed."
        );
        asyncio::set_child_watcher(None).unwrap();
        event_loop.close().unwrap();
    });
}
