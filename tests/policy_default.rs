//! The policy contract off the main thread (spec R43-R47): the global slot, the module
//! functions, and `DefaultEventLoopPolicy`'s per-thread rules. Main-thread rules (implicit
//! creation, fork) are in `policy_main_thread.rs`.

mod policy_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use asyncio::{
    get_event_loop, get_event_loop_policy, new_event_loop, set_event_loop, set_event_loop_policy,
    DefaultEventLoopPolicy, ErrorKind, EventLoop, EventLoopPolicy,
};
use policy_support::{global_policy_lock, released_flag, watchdog, FailingPolicy};

// R43 -----------------------------------------------------------------------------------------

#[test]
fn get_event_loop_policy_returns_one_default_object() {
    watchdog(|| {
        let _g = global_policy_lock();
        let a = get_event_loop_policy();
        let b = get_event_loop_policy();
        assert!(Arc::ptr_eq(&a, &b));
        // It is a default policy: off the main thread, nothing is created.
        assert_eq!(
            a.get_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );
    });
}

#[test]
fn set_event_loop_policy_replaces_the_global_policy() {
    watchdog(|| {
        let _g = global_policy_lock();
        let mine: Arc<dyn EventLoopPolicy> = Arc::new(DefaultEventLoopPolicy::new());
        set_event_loop_policy(Some(mine.clone()));
        assert!(Arc::ptr_eq(&get_event_loop_policy(), &mine));
        // The module functions go through it.
        let lp = new_event_loop().unwrap();
        set_event_loop(Some(lp.clone())).unwrap();
        assert!(mine.get_event_loop().unwrap().ptr_eq(&lp));
        set_event_loop(None).unwrap();
        lp.close().unwrap();
        set_event_loop_policy(None);
    });
}

#[test]
fn set_event_loop_policy_none_restores_a_fresh_default() {
    watchdog(|| {
        let _g = global_policy_lock();
        let old = get_event_loop_policy();
        let lp = new_event_loop().unwrap();
        set_event_loop(Some(lp.clone())).unwrap();
        assert!(get_event_loop().unwrap().ptr_eq(&lp));

        set_event_loop_policy(None);
        let fresh = get_event_loop_policy();
        assert!(!Arc::ptr_eq(&fresh, &old), "a new default, not the old one");
        assert!(Arc::ptr_eq(&fresh, &get_event_loop_policy()));
        // The loop set on the old policy is forgotten...
        assert_eq!(
            get_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );
        // ... by the new policy only: the old object still has it.
        assert!(old.get_event_loop().unwrap().ptr_eq(&lp));
        old.set_event_loop(None).unwrap();
        lp.close().unwrap();
    });
}

// R45 -----------------------------------------------------------------------------------------

#[test]
fn get_event_loop_returns_the_running_loop_without_asking_the_policy() {
    watchdog(|| {
        let _g = global_policy_lock();
        let policy = FailingPolicy::new();
        set_event_loop_policy(Some(policy.clone()));
        // Outside a running loop, the policy is asked (and fails).
        let err = get_event_loop().unwrap_err();
        assert_eq!(err.to_string(), "FailingPolicy.get_event_loop");
        assert_eq!(policy.asked.load(Ordering::SeqCst), 1);

        let lp = EventLoop::new().unwrap();
        let id = lp.id();
        let inside = lp
            .run_until_complete(async move {
                let from_task = get_event_loop().unwrap().id();
                // From a callback too.
                let lp = asyncio::get_running_loop().unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                lp.call_soon(move || tx.send(get_event_loop().unwrap().id()).unwrap())
                    .unwrap();
                asyncio::sleep(0.0).await.unwrap();
                (from_task, rx.try_recv().unwrap())
            })
            .unwrap();
        assert_eq!(inside, (id, id));
        assert_eq!(policy.asked.load(Ordering::SeqCst), 1, "not consulted");

        // Stopped again: the policy is asked again.
        assert!(get_event_loop().is_err());
        assert_eq!(policy.asked.load(Ordering::SeqCst), 2);
        lp.close().unwrap();
        set_event_loop_policy(None);
    });
}

// R44 off the main thread ---------------------------------------------------------------------

#[test]
fn a_thread_without_a_loop_has_no_current_loop() {
    let policy = Arc::new(DefaultEventLoopPolicy::new());
    let p = policy.clone();
    std::thread::Builder::new()
        .name("worker-7".into())
        .spawn(move || {
            for _ in 0..2 {
                let err = p.get_event_loop().unwrap_err();
                assert_eq!(err.kind(), ErrorKind::NoCurrentLoop);
                assert_eq!(
                    err.to_string(),
                    "There is no current event loop in thread 'worker-7'."
                );
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn the_module_function_gives_the_same_error_off_the_main_thread() {
    watchdog(|| {
        let _g = global_policy_lock();
        let msg = std::thread::Builder::new()
            .name("module-worker".into())
            .spawn(|| get_event_loop().unwrap_err().to_string())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(
            msg,
            "There is no current event loop in thread 'module-worker'."
        );
    });
}

#[test]
fn after_set_event_loop_none_nothing_is_created() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let lp = policy.new_event_loop().unwrap();
        policy.set_event_loop(Some(lp.clone())).unwrap();
        policy.set_event_loop(None).unwrap();
        for _ in 0..2 {
            assert_eq!(
                policy.get_event_loop().unwrap_err().kind(),
                ErrorKind::NoCurrentLoop
            );
        }
        lp.close().unwrap();
    });
}

// R46 / R47 -----------------------------------------------------------------------------------

#[test]
fn new_event_loop_is_not_set_as_current() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let a = policy.new_event_loop().unwrap();
        let b = policy.new_event_loop().unwrap();
        assert!(!a.ptr_eq(&b));
        assert!(!a.is_running() && !a.is_closed());
        assert!(policy.get_event_loop().is_err());
        a.close().unwrap();
        b.close().unwrap();
    });
}

#[test]
fn the_module_new_event_loop_is_not_set_either() {
    watchdog(|| {
        let _g = global_policy_lock();
        let lp = new_event_loop().unwrap();
        assert!(get_event_loop().is_err());
        lp.close().unwrap();
    });
}

#[test]
fn set_event_loop_then_get_event_loop_returns_it() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let a = policy.new_event_loop().unwrap();
        let b = policy.new_event_loop().unwrap();
        policy.set_event_loop(Some(a.clone())).unwrap();
        assert!(policy.get_event_loop().unwrap().ptr_eq(&a));
        assert!(policy.get_event_loop().unwrap().ptr_eq(&a));
        policy.set_event_loop(Some(b.clone())).unwrap();
        assert!(policy.get_event_loop().unwrap().ptr_eq(&b));
        // A loop from elsewhere (not made by the policy) is accepted too.
        let c = EventLoop::new().unwrap();
        policy.set_event_loop(Some(c.clone())).unwrap();
        assert!(policy.get_event_loop().unwrap().ptr_eq(&c));
        policy.set_event_loop(None).unwrap();
        for lp in [a, b, c] {
            lp.close().unwrap();
        }
    });
}

#[test]
fn two_policies_keep_separate_loops_on_one_thread() {
    watchdog(|| {
        let p1 = DefaultEventLoopPolicy::new();
        let p2 = DefaultEventLoopPolicy::new();
        let lp = p1.new_event_loop().unwrap();
        p1.set_event_loop(Some(lp.clone())).unwrap();
        assert!(p1.get_event_loop().unwrap().ptr_eq(&lp));
        assert!(p2.get_event_loop().is_err());
        p1.set_event_loop(None).unwrap();
        lp.close().unwrap();
    });
}

#[test]
fn a_dropped_policy_releases_this_threads_loop() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let lp = policy.new_event_loop().unwrap();
        let released = released_flag(&lp);
        policy.set_event_loop(Some(lp.clone())).unwrap();
        drop(lp);
        assert!(!released.get(), "the policy still holds the loop");
        drop(policy);
        assert!(released.get(), "dropping the policy dropped its loop");
    });
}

#[test]
fn after_run_until_complete_the_policy_is_asked_again() {
    watchdog(|| {
        let policy = DefaultEventLoopPolicy::new();
        let lp = policy.new_event_loop().unwrap();
        lp.run_until_complete(async {}).unwrap();
        assert!(policy.get_event_loop().is_err());
        lp.close().unwrap();
    });
}
