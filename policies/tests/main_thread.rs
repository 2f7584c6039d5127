//! Main-thread behaviour of the ready-made policies (`harness = false`: this runs on the
//! process's main thread, where the default policy creates loops implicitly).
//!
//! - `StrictEventLoopPolicy` never creates a loop, even here, with asyncio 3.14's message;
//! - `DebugEventLoopPolicy` and `VirtualTimePolicy` get their loops into the default
//!   `get_event_loop`'s implicit creation (open recursion);
//! - `ExecutorPolicy`'s implicit loop uses the shared executor.

#[path = "../../tests/common/main_thread_harness.rs"]
mod main_thread_harness;
#[path = "../../tests/common/pool.rs"]
mod pool;

use std::sync::Arc;

use asyncio::{get_event_loop, set_event_loop, set_event_loop_policy, ErrorKind, EventLoopPolicy};
use asyncio_policies::{
    DebugEventLoopPolicy, ExecutorPolicy, StrictEventLoopPolicy, VirtualTimePolicy,
};

fn strict_never_creates_on_the_main_thread() {
    let policy = Arc::new(StrictEventLoopPolicy::new());
    set_event_loop_policy(Some(policy.clone()));
    for _ in 0..2 {
        let err = get_event_loop().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoCurrentLoop);
        assert_eq!(
            err.to_string(),
            "There is no current event loop in thread 'MainThread'."
        );
    }
    // Explicit set / get / unset works as in the default policy.
    let lp = asyncio::new_event_loop().unwrap();
    set_event_loop(Some(lp.clone())).unwrap();
    assert!(get_event_loop().unwrap().ptr_eq(&lp));
    // Inside a running loop, the module function returns the running loop.
    let other = policy.new_event_loop().unwrap();
    let inside = other
        .run_until_complete(async { get_event_loop().unwrap().id() })
        .unwrap();
    assert_eq!(inside, other.id());
    other.close().unwrap();
    set_event_loop(None).unwrap();
    assert_eq!(
        get_event_loop().unwrap_err().kind(),
        ErrorKind::NoCurrentLoop
    );
    lp.close().unwrap();
    set_event_loop_policy(None);

    // The same process's default policy does create one here: the difference is the policy's.
    let created = get_event_loop().unwrap();
    assert!(get_event_loop().unwrap().ptr_eq(&created));
    set_event_loop(None).unwrap();
    created.close().unwrap();
    set_event_loop_policy(None);
}

fn debug_policy_implicit_loop_is_a_debug_loop() {
    set_event_loop_policy(Some(Arc::new(DebugEventLoopPolicy::new())));
    let lp = get_event_loop().unwrap();
    assert!(lp.get_debug());
    set_event_loop(None).unwrap();
    lp.close().unwrap();
    set_event_loop_policy(None);
}

fn virtual_time_implicit_loop_has_a_clock() {
    let policy = Arc::new(VirtualTimePolicy::new());
    set_event_loop_policy(Some(policy.clone()));
    let lp = get_event_loop().unwrap();
    let clock = policy
        .clock_of(&lp)
        .expect("implicit loop made by the policy");
    lp.run_until_complete(asyncio::sleep(90.0))
        .unwrap()
        .unwrap();
    assert_eq!(clock.now(), 90.0);
    assert_eq!(lp.time(), 90.0);
    set_event_loop(None).unwrap();
    lp.close().unwrap();
    set_event_loop_policy(None);
}

fn executor_policy_implicit_loop_uses_the_pool() {
    let pool = pool::named_pool("main-pool", 1);
    let policy = Arc::new(ExecutorPolicy::new(pool.clone()));
    set_event_loop_policy(Some(policy.clone()));
    let lp = get_event_loop().unwrap();
    assert_eq!(pool::worker_name(&lp).as_deref(), Some("main-pool_0"));
    set_event_loop(None).unwrap();
    lp.close().unwrap();
    set_event_loop_policy(None);
    asyncio::Executor::shutdown(&*pool, true);
}

fn main() {
    assert!(asyncio::unix::is_main_thread());
    let tests: [(&str, fn()); 4] = [
        (
            "strict_never_creates_on_the_main_thread",
            strict_never_creates_on_the_main_thread,
        ),
        (
            "debug_policy_implicit_loop_is_a_debug_loop",
            debug_policy_implicit_loop_is_a_debug_loop,
        ),
        (
            "virtual_time_implicit_loop_has_a_clock",
            virtual_time_implicit_loop_has_a_clock,
        ),
        (
            "executor_policy_implicit_loop_uses_the_pool",
            executor_policy_implicit_loop_uses_the_pool,
        ),
    ];
    main_thread_harness::run_tests(&tests);
}
