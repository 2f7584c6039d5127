//! Subclass-style policies (`PolicyWrapper`) off the main thread: overrides are used by the
//! default's internal calls (open recursion) and by the module functions, `Runner` and
//! `asyncio::run`; methods not overridden fall through. Main-thread implicit creation through
//! the overrides is in `policy_main_thread.rs`.

mod policy_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use asyncio::{
    DefaultEventLoopPolicy, ErrorKind, EventLoop, EventLoopPolicy, Executor, PolicyWrapper, Result,
    ThreadPoolExecutor,
};
use policy_support::{
    global_policy_lock, named_pool, watchdog, worker_name, CountingGet, CountingNew, CountingSet,
};

#[test]
fn overriding_new_event_loop_is_what_new_event_loop_uses() {
    watchdog(|| {
        let policy = CountingNew::default();
        let lp = EventLoopPolicy::new_event_loop(&policy).unwrap();
        assert_eq!(policy.created(), 1);
        // Off the main thread the default get_event_loop creates nothing.
        assert!(EventLoopPolicy::get_event_loop(&policy).is_err());
        assert_eq!(policy.created(), 1);
        lp.close().unwrap();
    });
}

#[test]
fn an_overridden_get_event_loop_calls_through_to_the_default() {
    watchdog(|| {
        let policy = CountingGet::default();
        let err = EventLoopPolicy::get_event_loop(&policy).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoCurrentLoop);
        let lp = EventLoopPolicy::new_event_loop(&policy).unwrap();
        EventLoopPolicy::set_event_loop(&policy, Some(lp.clone())).unwrap();
        assert!(EventLoopPolicy::get_event_loop(&policy)
            .unwrap()
            .ptr_eq(&lp));
        assert_eq!(policy.gets(), 2);
        EventLoopPolicy::set_event_loop(&policy, None).unwrap();
        lp.close().unwrap();
    });
}

#[test]
fn the_module_functions_reach_the_overrides() {
    watchdog(|| {
        let _g = global_policy_lock();
        let policy = Arc::new(CountingGet::default());
        asyncio::set_event_loop_policy(Some(policy.clone()));
        let lp = asyncio::new_event_loop().unwrap();
        asyncio::set_event_loop(Some(lp.clone())).unwrap();
        assert!(asyncio::get_event_loop().unwrap().ptr_eq(&lp));
        assert_eq!(policy.gets(), 1);
        // Inside the running loop, the policy is not asked.
        lp.run_until_complete(async { asyncio::get_event_loop().unwrap() })
            .unwrap();
        assert_eq!(policy.gets(), 1);
        asyncio::set_event_loop(None).unwrap();
        lp.close().unwrap();
        asyncio::set_event_loop_policy(None);
    });
}

#[test]
fn runner_and_run_create_their_loops_through_the_policy() {
    watchdog(|| {
        let _g = global_policy_lock();
        let policy = Arc::new(CountingNew::default());
        asyncio::set_event_loop_policy(Some(policy.clone()));
        assert_eq!(asyncio::run(async { 1 }).unwrap(), 1);
        assert_eq!(policy.created(), 1);
        let mut runner = asyncio::Runner::new();
        assert_eq!(runner.run(async { 2 }).unwrap(), 2);
        runner.close().unwrap();
        assert_eq!(policy.created(), 2);
        // With a loop factory, the policy is not used.
        let mut runner = asyncio::Runner::builder()
            .loop_factory(EventLoop::new)
            .build();
        runner.run(async {}).unwrap();
        runner.close().unwrap();
        assert_eq!(policy.created(), 2);
        asyncio::set_event_loop_policy(None);
    });
}

#[test]
fn runner_sets_its_loop_through_the_outermost_set_event_loop() {
    watchdog(|| {
        let _g = global_policy_lock();
        let policy = Arc::new(CountingSet::default());
        asyncio::set_event_loop_policy(Some(policy.clone()));
        let mut runner = asyncio::Runner::new();
        let id = runner.get_loop().unwrap().id();
        runner.close().unwrap();
        let sets = policy.sets();
        assert_eq!(sets.first(), Some(&Some(id)));
        asyncio::set_event_loop_policy(None);
    });
}

/// Overrides only `default_executor`; the default `new_event_loop` asks the outermost policy.
struct PooledPolicy {
    base: DefaultEventLoopPolicy,
    pool: Arc<ThreadPoolExecutor>,
    asked: AtomicUsize,
}

impl PolicyWrapper for PooledPolicy {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }
    fn default_executor(&self) -> Option<Arc<dyn Executor>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Some(self.pool.clone())
    }
}

#[test]
fn an_overridden_default_executor_is_used_by_the_default_new_event_loop() {
    watchdog(|| {
        let pool = named_pool("pooled", 1);
        let policy = PooledPolicy {
            base: DefaultEventLoopPolicy::new(),
            pool: pool.clone(),
            asked: AtomicUsize::new(0),
        };
        let lp = EventLoopPolicy::new_event_loop(&policy).unwrap();
        assert_eq!(policy.asked.load(Ordering::SeqCst), 1);
        assert_eq!(worker_name(&lp).as_deref(), Some("pooled_0"));
        lp.close().unwrap();
        assert!(
            !pool.is_shutdown(),
            "a policy's executor is shared, not owned"
        );
        pool.shutdown(true);
    });
}

#[test]
fn with_executor_shares_one_executor_between_loops() {
    watchdog(|| {
        let pool = Arc::new(ThreadPoolExecutor::new());
        let policy = DefaultEventLoopPolicy::with_executor(pool.clone());
        let ex = policy.default_executor().unwrap();
        let as_dyn: Arc<dyn Executor> = pool.clone();
        assert!(Arc::ptr_eq(&ex, &as_dyn));
        let (a, b) = (
            policy.new_event_loop().unwrap(),
            policy.new_event_loop().unwrap(),
        );
        a.close().unwrap();
        b.close().unwrap();
        assert!(!pool.is_shutdown());
        pool.shutdown(true);
        // The plain default lets each loop make its own.
        assert!(DefaultEventLoopPolicy::new().default_executor().is_none());
    });
}

/// A policy built on a wrapper: overrides can call `super()` and add behaviour around it.
struct Decorating {
    base: DefaultEventLoopPolicy,
}

impl PolicyWrapper for Decorating {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }
    fn new_event_loop(&self) -> Result<EventLoop> {
        let lp = self.base.new_event_loop_with(self)?;
        lp.set_debug(true);
        Ok(lp)
    }
    fn get_event_loop(&self) -> Result<EventLoop> {
        let lp = self.base.get_event_loop_with(self)?;
        lp.set_slow_callback_duration(std::time::Duration::from_millis(1));
        Ok(lp)
    }
}

#[test]
fn super_calls_compose() {
    watchdog(|| {
        let policy: Arc<dyn EventLoopPolicy> = Arc::new(Decorating {
            base: DefaultEventLoopPolicy::new(),
        });
        let lp = policy.new_event_loop().unwrap();
        assert!(lp.get_debug());
        policy.set_event_loop(Some(lp.clone())).unwrap();
        let got = policy.get_event_loop().unwrap();
        assert!(got.ptr_eq(&lp));
        assert_eq!(
            lp.slow_callback_duration(),
            std::time::Duration::from_millis(1)
        );
        policy.set_event_loop(None).unwrap();
        lp.close().unwrap();
    });
}
