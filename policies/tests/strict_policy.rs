//! `StrictEventLoopPolicy` off the main thread: no implicit creation, asyncio's message with
//! the thread's name, explicit set/get working, the running loop still found by the module
//! function, and the rest of the default policy unchanged. (Main thread: `main_thread.rs`.)

mod support;

use std::sync::Arc;

use asyncio::{ErrorKind, EventLoopPolicy};
use asyncio_policies::StrictEventLoopPolicy;
use support::{global_policy_lock, watchdog};

#[test]
fn get_event_loop_without_a_set_loop_is_no_current_loop() {
    let policy = Arc::new(StrictEventLoopPolicy::new());
    let p = policy.clone();
    std::thread::Builder::new()
        .name("strict-worker".into())
        .spawn(move || {
            let err = p.get_event_loop().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NoCurrentLoop);
            assert_eq!(
                err.to_string(),
                "There is no current event loop in thread 'strict-worker'."
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn unnamed_threads_are_named_by_their_id() {
    let policy = Arc::new(StrictEventLoopPolicy::new());
    let p = policy.clone();
    std::thread::spawn(move || {
        let msg = p.get_event_loop().unwrap_err().to_string();
        let id = format!("{:?}", std::thread::current().id());
        assert_eq!(
            msg,
            format!("There is no current event loop in thread '{id}'.")
        );
    })
    .join()
    .unwrap();
}

#[test]
fn set_then_get_returns_the_loop_and_none_forgets_it() {
    watchdog(|| {
        let policy = StrictEventLoopPolicy::new();
        let lp = policy.new_event_loop().unwrap();
        // new_event_loop does not make it current.
        assert!(policy.get_event_loop().is_err());
        policy.set_event_loop(Some(lp.clone())).unwrap();
        assert!(policy.get_event_loop().unwrap().ptr_eq(&lp));
        assert!(policy.get_event_loop().unwrap().ptr_eq(&lp));
        policy.set_event_loop(None).unwrap();
        assert_eq!(
            policy.get_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );
        lp.close().unwrap();
    });
}

#[test]
fn each_thread_has_its_own_loop() {
    let policy = Arc::new(StrictEventLoopPolicy::new());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let p = policy.clone();
            std::thread::spawn(move || {
                let lp = p.new_event_loop().unwrap();
                p.set_event_loop(Some(lp.clone())).unwrap();
                let got = p.get_event_loop().unwrap();
                assert!(got.ptr_eq(&lp));
                let id = got.id();
                p.set_event_loop(None).unwrap();
                lp.close().unwrap();
                id
            })
        })
        .collect();
    let mut ids: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[test]
fn the_module_function_still_returns_the_running_loop() {
    watchdog(|| {
        let _g = global_policy_lock();
        let policy = Arc::new(StrictEventLoopPolicy::new());
        asyncio::set_event_loop_policy(Some(policy.clone()));
        assert!(asyncio::get_event_loop().is_err());
        let lp = policy.new_event_loop().unwrap();
        let id = lp
            .run_until_complete(async { asyncio::get_event_loop().map(|l| l.id()) })
            .unwrap()
            .unwrap();
        assert_eq!(id, lp.id());
        assert!(asyncio::get_event_loop().is_err());
        lp.close().unwrap();
        asyncio::set_event_loop_policy(None);
    });
}

#[test]
fn asyncio_run_works_and_leaves_no_loop_behind() {
    watchdog(|| {
        let _g = global_policy_lock();
        asyncio::set_event_loop_policy(Some(Arc::new(StrictEventLoopPolicy::new())));
        assert_eq!(asyncio::run(async { 5 }).unwrap(), 5);
        assert!(asyncio::get_event_loop().is_err());
        asyncio::set_event_loop_policy(None);
    });
}

#[test]
fn child_watchers_are_the_defaults() {
    let policy = StrictEventLoopPolicy::new();
    let w = policy.get_child_watcher().unwrap();
    assert!(w.is_active());
    assert!(Arc::ptr_eq(&w, &policy.get_child_watcher().unwrap()));
    policy.set_child_watcher(None).unwrap();
    assert!(!w.is_active(), "replacing the watcher closes the old one");
}
