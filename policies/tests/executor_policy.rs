//! `ExecutorPolicy`: every loop it makes (explicitly, implicitly, through `asyncio::run`) uses
//! the shared executor, on every thread, and no loop shuts it down.

mod support;

use std::sync::Arc;

use asyncio::{EventLoopPolicy, Executor};
use asyncio_policies::ExecutorPolicy;
use support::{global_policy_lock, named_pool, watchdog, worker_name};

#[test]
fn default_executor_is_the_shared_one() {
    let pool = named_pool("shared", 1);
    let policy = ExecutorPolicy::new(pool.clone());
    let ex = policy.default_executor().unwrap();
    let as_dyn: Arc<dyn Executor> = pool.clone();
    assert!(Arc::ptr_eq(&ex, &as_dyn));
    assert!(Arc::ptr_eq(policy.executor(), &as_dyn));
    pool.shutdown(true);
}

#[test]
fn loops_on_several_threads_share_one_pool_and_do_not_shut_it_down() {
    watchdog(|| {
        let pool = named_pool("shared", 1);
        let policy = Arc::new(ExecutorPolicy::new(pool.clone()));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let p = policy.clone();
                std::thread::spawn(move || {
                    let lp = p.new_event_loop().unwrap();
                    let name = worker_name(&lp);
                    lp.close().unwrap();
                    name
                })
            })
            .collect();
        for t in threads {
            // One worker: every loop's job ran on the same pool thread.
            assert_eq!(t.join().unwrap().as_deref(), Some("shared_0"));
        }
        assert!(!pool.is_shutdown());
        assert_eq!(pool.thread_count(), 1);
        pool.shutdown(true);
    });
}

#[test]
fn shutdown_default_executor_leaves_the_shared_pool_running() {
    watchdog(|| {
        let pool = named_pool("sde", 1);
        let policy = ExecutorPolicy::new(pool.clone());
        let lp = policy.new_event_loop().unwrap();
        let l = lp.clone();
        lp.run_until_complete(async move { l.shutdown_default_executor(None).await })
            .unwrap()
            .unwrap();
        assert!(!pool.is_shutdown());
        lp.close().unwrap();
        assert!(!pool.is_shutdown());
        pool.shutdown(true);
    });
}

#[test]
fn without_the_policy_each_loop_has_its_own_pool() {
    watchdog(|| {
        let lp = asyncio::DefaultEventLoopPolicy::new()
            .new_event_loop()
            .unwrap();
        assert_eq!(worker_name(&lp).as_deref(), Some("asyncio_0"));
        lp.close().unwrap();
    });
}

#[test]
fn asyncio_run_uses_the_shared_pool_and_leaves_it_running() {
    watchdog(|| {
        let _g = global_policy_lock();
        let pool = named_pool("run", 2);
        asyncio::set_event_loop_policy(Some(Arc::new(ExecutorPolicy::new(pool.clone()))));
        for _ in 0..2 {
            let name = asyncio::run(async {
                let lp = asyncio::get_running_loop().unwrap();
                lp.run_in_executor(None, || std::thread::current().name().map(str::to_owned))
                    .unwrap()
                    .await
                    .unwrap()
            })
            .unwrap();
            assert!(name.unwrap().starts_with("run_"));
            // asyncio.run shuts the default executor down: not a shared one.
            assert!(!pool.is_shutdown());
        }
        asyncio::set_event_loop_policy(None);
        pool.shutdown(true);
    });
}
