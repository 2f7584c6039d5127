//! Policies across threads: a policy object is `Send + Sync` and serves many threads at once,
//! each with its own loop; the global policy too.

mod policy_support;

use std::sync::{Arc, Barrier};

use asyncio::{DefaultEventLoopPolicy, ErrorKind, EventLoopPolicy};
use policy_support::{global_policy_lock, released_flag, watchdog, CountingNew};

#[test]
fn policies_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<DefaultEventLoopPolicy>();
    assert_send_sync::<Arc<dyn EventLoopPolicy>>();
    assert_send_sync::<CountingNew>();
}

#[test]
fn each_thread_has_its_own_loop_under_one_policy() {
    watchdog(|| {
        const THREADS: usize = 8;
        let policy: Arc<dyn EventLoopPolicy> = Arc::new(DefaultEventLoopPolicy::new());
        let all_set = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (p, b) = (policy.clone(), all_set.clone());
                std::thread::spawn(move || {
                    assert_eq!(
                        p.get_event_loop().unwrap_err().kind(),
                        ErrorKind::NoCurrentLoop
                    );
                    let lp = p.new_event_loop().unwrap();
                    p.set_event_loop(Some(lp.clone())).unwrap();
                    // Every thread has set its loop before anyone reads.
                    b.wait();
                    let got = p.get_event_loop().unwrap();
                    assert!(got.ptr_eq(&lp));
                    let ran = got.run_until_complete(async { 1 }).unwrap();
                    p.set_event_loop(None).unwrap();
                    lp.close().unwrap();
                    (lp.id(), ran)
                })
            })
            .collect();
        let mut ids: Vec<u64> = threads
            .into_iter()
            .map(|t| {
                let (id, ran) = t.join().unwrap();
                assert_eq!(ran, 1);
                id
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), THREADS);
        // This thread never set one.
        assert!(policy.get_event_loop().is_err());
    });
}

#[test]
fn the_global_policy_serves_several_threads() {
    watchdog(|| {
        let _g = global_policy_lock();
        let policy = Arc::new(CountingNew::default());
        asyncio::set_event_loop_policy(Some(policy.clone()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let lp = asyncio::new_event_loop().unwrap();
                    asyncio::set_event_loop(Some(lp.clone())).unwrap();
                    let id = asyncio::get_event_loop().unwrap().id();
                    assert_eq!(id, lp.id());
                    let inside = lp
                        .run_until_complete(async { asyncio::get_event_loop().unwrap().id() })
                        .unwrap();
                    assert_eq!(inside, id);
                    asyncio::set_event_loop(None).unwrap();
                    lp.close().unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(policy.created(), 4);
        asyncio::set_event_loop_policy(None);
    });
}

#[test]
fn a_loop_set_on_one_thread_is_invisible_on_another() {
    watchdog(|| {
        let policy = Arc::new(DefaultEventLoopPolicy::new());
        let lp = policy.new_event_loop().unwrap();
        policy.set_event_loop(Some(lp.clone())).unwrap();
        let p = policy.clone();
        let other = std::thread::spawn(move || p.get_event_loop().map(|l| l.id()))
            .join()
            .unwrap();
        assert_eq!(other.unwrap_err().kind(), ErrorKind::NoCurrentLoop);
        assert!(policy.get_event_loop().unwrap().ptr_eq(&lp));
        policy.set_event_loop(None).unwrap();
        lp.close().unwrap();
    });
}

#[test]
fn a_policy_can_be_dropped_on_another_thread() {
    watchdog(|| {
        let policy = Arc::new(DefaultEventLoopPolicy::new());
        let lp = policy.new_event_loop().unwrap();
        policy.set_event_loop(Some(lp.clone())).unwrap();
        // The last reference goes away on another thread: this thread's slot stays with this
        // thread and is released when the thread ends.
        let p = policy.clone();
        drop(policy);
        std::thread::spawn(move || drop(p)).join().unwrap();
        lp.close().unwrap();
    });
}

#[test]
fn a_policy_dropped_on_another_thread_releases_this_threads_loop() {
    watchdog(|| {
        let policy = Arc::new(DefaultEventLoopPolicy::new());
        let lp = policy.new_event_loop().unwrap();
        let released = released_flag(&lp);
        policy.set_event_loop(Some(lp)).unwrap(); // the policy holds the only reference
                                                  // `set_event_loop_policy(None)` on another thread, say: the last reference goes there.
        std::thread::spawn(move || drop(policy)).join().unwrap();
        // The next use of any default policy on this thread lets the dead policy's loop go.
        let other = DefaultEventLoopPolicy::new();
        assert!(other.get_event_loop().is_err());
        assert!(
            released.get(),
            "the dead policy's loop is still held by this thread"
        );
    });
}
