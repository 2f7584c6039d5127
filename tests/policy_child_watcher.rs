//! The policy's child watcher (P5): created lazily on first use (pidfd where the kernel allows
//! it, else threaded), the same object until replaced; `set_child_watcher` closes the previous
//! one (not the same one set again); `None` clears it so the next `get` makes a new default.
//! Main-thread attachment (R46) is in `policy_main_thread.rs`.

mod policy_support;

use std::sync::Arc;

use asyncio::{
    get_child_watcher, set_child_watcher, ChildWatcher, DefaultEventLoopPolicy, EventLoopPolicy,
    PidfdChildWatcher, ThreadedChildWatcher,
};
use policy_support::{global_policy_lock, watchdog, MockWatcher};

#[test]
fn get_child_watcher_creates_one_lazily_and_keeps_it() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let w = policy.get_child_watcher().unwrap();
        assert!(w.is_active());
        assert!(Arc::ptr_eq(&w, &policy.get_child_watcher().unwrap()));
        // Each policy has its own.
        let other = DefaultEventLoopPolicy::new().get_child_watcher().unwrap();
        assert!(!Arc::ptr_eq(&w, &other));
        w.close();
        other.close();
    });
}

/// Whether some thread of this process is named like a `ThreadedChildWatcher` waiter
/// ("asyncio-waitpid-PID", which the kernel truncates to 15 bytes).
#[cfg(target_os = "linux")]
fn has_waitpid_thread() -> bool {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .any(|comm| comm.trim_end() == "asyncio-waitpid")
}

/// Runs a short-lived child under `watcher` on a loop of `policy`; returns its return code and
/// whether a waiter thread existed while it ran.
fn watch_a_child(policy: &DefaultEventLoopPolicy, watcher: Arc<dyn ChildWatcher>) -> (i32, bool) {
    let lp = policy.new_event_loop().unwrap();
    let out = lp
        .run_until_complete(async move {
            let child = std::process::Command::new("sleep")
                .arg("0.5")
                .spawn()
                .unwrap();
            let pid = i32::try_from(child.id()).unwrap();
            // The watcher reaps the child from now on.
            drop(child);
            let (tx, rx) = std::sync::mpsc::channel();
            watcher
                .add_child_handler(pid, Box::new(move |pid, rc| tx.send((pid, rc)).unwrap()))
                .unwrap();
            // A new thread names itself once it runs: give it a moment (the child lives 0.5 s).
            #[cfg(target_os = "linux")]
            let threaded = (0..100).any(|_| {
                let seen = has_waitpid_thread();
                if !seen {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                seen
            });
            #[cfg(not(target_os = "linux"))]
            let threaded = !PidfdChildWatcher::is_supported();
            loop {
                if let Ok((p, rc)) = rx.try_recv() {
                    assert_eq!(p, pid);
                    return (rc, threaded);
                }
                asyncio::sleep(0.01).await.unwrap();
            }
        })
        .unwrap();
    lp.close().unwrap();
    out
}

#[test]
fn the_default_watcher_is_pidfd_where_supported_else_threaded() {
    watchdog(|| {
        // The watcher's type is not observable through `dyn ChildWatcher`; its mechanism is:
        // the threaded watcher starts a thread per child, the pidfd one does not.
        let policy = DefaultEventLoopPolicy::new();
        let w = policy.get_child_watcher().unwrap();
        let (rc, threaded) = watch_a_child(&policy, w.clone());
        assert_eq!(rc, 0);
        assert_eq!(threaded, !PidfdChildWatcher::is_supported());
        w.close();

        // The probe itself: a threaded watcher is seen as one.
        let (rc, threaded) = watch_a_child(&policy, Arc::new(ThreadedChildWatcher::new()));
        assert_eq!(rc, 0);
        assert!(threaded);
    });
}

#[test]
fn set_child_watcher_closes_the_previous_watcher() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let first = MockWatcher::new();
        let second = MockWatcher::new();
        policy.set_child_watcher(Some(first.clone())).unwrap();
        let got = policy.get_child_watcher().unwrap();
        let first_dyn: Arc<dyn ChildWatcher> = first.clone();
        assert!(Arc::ptr_eq(&got, &first_dyn));
        assert_eq!(first.closes(), 0);

        policy.set_child_watcher(Some(second.clone())).unwrap();
        assert_eq!(first.closes(), 1);
        assert_eq!(second.closes(), 0);

        // Setting the same watcher again does not close it.
        policy.set_child_watcher(Some(second.clone())).unwrap();
        assert_eq!(second.closes(), 0);

        // None closes it and clears the slot: the next get makes a fresh default.
        policy.set_child_watcher(None).unwrap();
        assert_eq!(second.closes(), 1);
        let fresh = policy.get_child_watcher().unwrap();
        let second_dyn: Arc<dyn ChildWatcher> = second.clone();
        assert!(!Arc::ptr_eq(&fresh, &second_dyn));
        assert!(fresh.is_active());
        assert_eq!(first.closes(), 1, "closed exactly once");
        fresh.close();
    });
}

#[test]
fn replacing_the_lazily_created_default_closes_it() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let default = policy.get_child_watcher().unwrap();
        assert!(default.is_active());
        policy.set_child_watcher(Some(MockWatcher::new())).unwrap();
        assert!(!default.is_active());
    });
}

#[test]
fn off_the_main_thread_nothing_is_attached() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let lp = policy.new_event_loop().unwrap();
        policy.set_event_loop(Some(lp.clone())).unwrap();
        let w = MockWatcher::new();
        policy.set_child_watcher(Some(w.clone())).unwrap();
        policy.set_event_loop(None).unwrap();
        assert!(w.attached().is_empty());
        lp.close().unwrap();
    });
}

#[test]
fn module_functions_use_the_global_policys_watcher() {
    watchdog(|| {
        let _g = global_policy_lock();
        let w = MockWatcher::new();
        set_child_watcher(Some(w.clone())).unwrap();
        let got = get_child_watcher().unwrap();
        let w_dyn: Arc<dyn ChildWatcher> = w.clone();
        assert!(Arc::ptr_eq(&got, &w_dyn));
        // A fresh default policy has a fresh watcher slot.
        asyncio::set_event_loop_policy(None);
        let fresh = get_child_watcher().unwrap();
        assert!(!Arc::ptr_eq(&fresh, &w_dyn));
        fresh.close();
        asyncio::set_event_loop_policy(None);
    });
}
