//! The policy rules that only hold on the process's main thread (`harness = false`, so this
//! runs there): implicit loop creation (R44) and its open recursion through the outermost
//! policy, `set_event_loop(None)` disabling it, a fresh default after
//! `set_event_loop_policy(None)`, child-watcher attachment (R46), and a `fork()`ed child not
//! inheriting the parent's loop.

#[path = "common/main_thread_harness.rs"]
mod main_thread_harness;
mod policy_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use asyncio::{
    get_event_loop, get_event_loop_policy, set_child_watcher, set_event_loop,
    set_event_loop_policy, DefaultEventLoopPolicy, Error, ErrorKind, EventLoop, EventLoopPolicy,
    PolicyWrapper, Result,
};
use policy_support::{CountingGet, CountingNew, CountingSet, MockWatcher};

/// Counts `new_event_loop` calls and, once `refuse` is set, fails them without allocating (so
/// that a forked child can probe "would the policy create a loop now?" with minimal work).
#[derive(Default)]
struct ForkProbe {
    base: DefaultEventLoopPolicy,
    created: AtomicUsize,
    refuse: AtomicBool,
}

impl PolicyWrapper for ForkProbe {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }
    fn new_event_loop(&self) -> Result<EventLoop> {
        self.created.fetch_add(1, Ordering::SeqCst);
        if self.refuse.load(Ordering::SeqCst) {
            return Err(Error::from_kind(ErrorKind::NotSupported));
        }
        self.base.new_event_loop_with(self)
    }
}

/// Runs first, while the process has a single thread.
fn forked_child_does_not_inherit_the_parents_loop() {
    let probe = Arc::new(ForkProbe::default());
    set_event_loop_policy(Some(probe.clone()));
    let parent_loop = get_event_loop().unwrap();
    assert_eq!(probe.created.load(Ordering::SeqCst), 1);
    assert!(get_event_loop().unwrap().ptr_eq(&parent_loop));
    probe.refuse.store(true, Ordering::SeqCst);

    // SAFETY: the process is single-threaded here (this binary has no harness threads and this
    // test runs before any other), so the child may use the allocator and locks. The child
    // only reads policy state, compares two numbers and calls `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // In the child: the parent's loop must be forgotten, so the default get_event_loop
        // (main thread, set_event_loop never called in this process) asks for a new loop,
        // which the probe refuses with NotSupported.
        let code = match get_event_loop() {
            Err(e) if e.kind() == ErrorKind::NotSupported => {
                if probe.created.load(Ordering::SeqCst) == 2 {
                    0
                } else {
                    3
                }
            }
            Ok(lp) if lp.ptr_eq(&parent_loop) => 1,
            _ => 2,
        };
        // SAFETY: `_exit` ends the child at once, without running the parent's exit handlers
        // or destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child did not exit normally");
    match libc::WEXITSTATUS(status) {
        0 => {}
        1 => panic!("the forked child got the parent's loop"),
        n => panic!("the forked child failed its check ({n})"),
    }
    // The parent is unaffected.
    assert!(get_event_loop().unwrap().ptr_eq(&parent_loop));
    set_event_loop(None).unwrap();
    parent_loop.close().unwrap();
    set_event_loop_policy(None);
}

fn implicit_creation_on_the_main_thread() {
    let policy = get_event_loop_policy();
    let lp = policy.get_event_loop().unwrap();
    assert!(!lp.is_running() && !lp.is_closed());
    // Created and set: the same loop every time, through the module function too.
    assert!(policy.get_event_loop().unwrap().ptr_eq(&lp));
    assert!(get_event_loop().unwrap().ptr_eq(&lp));
    set_event_loop(None).unwrap();
    lp.close().unwrap();
    set_event_loop_policy(None);
}

fn set_event_loop_none_disables_implicit_creation() {
    let policy = DefaultEventLoopPolicy::new();
    policy.set_event_loop(None).unwrap();
    for _ in 0..2 {
        let err = policy.get_event_loop().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoCurrentLoop);
        assert_eq!(
            err.to_string(),
            "There is no current event loop in thread 'MainThread'."
        );
    }
    // Sticky even after a loop was set and unset again.
    let lp = policy.new_event_loop().unwrap();
    policy.set_event_loop(Some(lp.clone())).unwrap();
    policy.set_event_loop(None).unwrap();
    assert!(policy.get_event_loop().is_err());
    lp.close().unwrap();
}

fn implicitly_created_loop_then_set_none() {
    let policy = DefaultEventLoopPolicy::new();
    let lp = policy.get_event_loop().unwrap();
    policy.set_event_loop(None).unwrap();
    assert_eq!(
        policy.get_event_loop().unwrap_err().kind(),
        ErrorKind::NoCurrentLoop
    );
    lp.close().unwrap();
}

fn fresh_default_after_set_event_loop_policy_none() {
    let old_loop = get_event_loop().unwrap();
    set_event_loop_policy(None);
    let new_loop = get_event_loop().unwrap();
    assert!(
        !new_loop.ptr_eq(&old_loop),
        "the old policy's loop is forgotten"
    );
    assert!(get_event_loop().unwrap().ptr_eq(&new_loop));
    set_event_loop(None).unwrap();
    set_event_loop_policy(None);
    old_loop.close().unwrap();
    new_loop.close().unwrap();
}

fn overriding_only_new_event_loop_feeds_the_default_get_event_loop() {
    let policy = Arc::new(CountingNew::default());
    let lp = EventLoopPolicy::get_event_loop(&*policy).unwrap();
    assert_eq!(
        policy.created(),
        1,
        "the default get_event_loop used the override"
    );
    assert!(EventLoopPolicy::get_event_loop(&*policy)
        .unwrap()
        .ptr_eq(&lp));
    assert_eq!(policy.created(), 1, "created once, then remembered");

    // Installed globally, the module function goes the same way.
    let global = Arc::new(CountingNew::default());
    set_event_loop_policy(Some(global.clone()));
    let g = get_event_loop().unwrap();
    assert_eq!(global.created(), 1);
    set_event_loop(None).unwrap();
    set_event_loop_policy(None);
    EventLoopPolicy::set_event_loop(&*policy, None).unwrap();
    lp.close().unwrap();
    g.close().unwrap();
}

/// CPython's `test_get_event_loop_calls_set_event_loop`.
fn get_event_loop_calls_set_event_loop_of_the_outermost_policy() {
    let policy = CountingSet::default();
    let lp = EventLoopPolicy::get_event_loop(&policy).unwrap();
    assert_eq!(policy.sets(), [Some(lp.id())]);
    EventLoopPolicy::get_event_loop(&policy).unwrap();
    assert_eq!(policy.sets(), [Some(lp.id())], "set only when created");
    EventLoopPolicy::set_event_loop(&policy, None).unwrap();
    assert_eq!(policy.sets(), [Some(lp.id()), None]);
    lp.close().unwrap();
}

fn overriding_get_event_loop_calls_through() {
    let policy = CountingGet::default();
    let lp = EventLoopPolicy::get_event_loop(&policy).unwrap();
    assert!(EventLoopPolicy::get_event_loop(&policy)
        .unwrap()
        .ptr_eq(&lp));
    assert_eq!(policy.gets(), 2);
    EventLoopPolicy::set_event_loop(&policy, None).unwrap();
    assert!(EventLoopPolicy::get_event_loop(&policy).is_err());
    assert_eq!(policy.gets(), 3);
    lp.close().unwrap();
}

/// R46: on the main thread `set_event_loop` attaches an existing watcher (and `None` detaches
/// it); `set_child_watcher` attaches the new watcher to the current loop.
fn set_event_loop_attaches_the_child_watcher() {
    let policy = DefaultEventLoopPolicy::new();
    let watcher = MockWatcher::new();
    policy.set_child_watcher(Some(watcher.clone())).unwrap();
    assert!(watcher.attached().is_empty(), "no current loop yet");
    let lp = policy.new_event_loop().unwrap();
    policy.set_event_loop(Some(lp.clone())).unwrap();
    policy.set_event_loop(None).unwrap();
    assert_eq!(watcher.attached(), [Some(lp.id()), None]);

    policy.set_event_loop(Some(lp.clone())).unwrap();
    let second = MockWatcher::new();
    policy.set_child_watcher(Some(second.clone())).unwrap();
    assert_eq!(second.attached(), [Some(lp.id())]);
    assert_eq!(watcher.closes(), 1);
    policy.set_event_loop(None).unwrap();
    lp.close().unwrap();

    // Through the module functions.
    set_event_loop_policy(None);
    let m = MockWatcher::new();
    set_child_watcher(Some(m.clone())).unwrap();
    let lp = get_event_loop().unwrap(); // implicit creation sets, which attaches
    assert_eq!(m.attached(), [Some(lp.id())]);
    set_event_loop(None).unwrap();
    set_child_watcher(None).unwrap();
    assert_eq!(m.closes(), 1);
    set_event_loop_policy(None);
    lp.close().unwrap();
}

fn main() {
    assert!(
        asyncio::unix::is_main_thread(),
        "must run on the main thread"
    );
    let tests: [(&str, fn()); 9] = [
        (
            "forked_child_does_not_inherit_the_parents_loop",
            forked_child_does_not_inherit_the_parents_loop,
        ),
        (
            "implicit_creation_on_the_main_thread",
            implicit_creation_on_the_main_thread,
        ),
        (
            "set_event_loop_none_disables_implicit_creation",
            set_event_loop_none_disables_implicit_creation,
        ),
        (
            "implicitly_created_loop_then_set_none",
            implicitly_created_loop_then_set_none,
        ),
        (
            "fresh_default_after_set_event_loop_policy_none",
            fresh_default_after_set_event_loop_policy_none,
        ),
        (
            "overriding_only_new_event_loop_feeds_the_default_get_event_loop",
            overriding_only_new_event_loop_feeds_the_default_get_event_loop,
        ),
        (
            "get_event_loop_calls_set_event_loop_of_the_outermost_policy",
            get_event_loop_calls_set_event_loop_of_the_outermost_policy,
        ),
        (
            "overriding_get_event_loop_calls_through",
            overriding_get_event_loop_calls_through,
        ),
        (
            "set_event_loop_attaches_the_child_watcher",
            set_event_loop_attaches_the_child_watcher,
        ),
    ];
    main_thread_harness::run_tests(&tests);
}
