//! The child-watcher contract for [`SafeChildWatcher`] (`SIGCHLD`, `waitpid(pid)` per child),
//! plus what only the signal watchers do. `SIGCHLD` is process-wide, so this binary holds only
//! these tests, run one at a time.

#[macro_use]
mod watcher_support;

use std::sync::Arc;

use asyncio::{ChildWatcher, SafeChildWatcher};
use watcher_support::{Env, Kind};

const KIND: Kind = Kind {
    name: "SafeChildWatcher",
    make: || Arc::new(SafeChildWatcher::new()) as Arc<dyn ChildWatcher>,
    supported: || true,
    sigchld: true,
    reports_reaped_after_registration: true,
};

watcher_contract!(KIND);
sigchld_watcher_checks!(KIND);

/// Safe waits only for the pids it was given: another child of the process stays for its own
/// waiter.
fn leaves_foreign_children_alone(kind: Kind) {
    let env = Env::new(kind);
    let foreign = watcher_support::spawn_exit(42);
    watcher_support::wait_exited(foreign);
    let mine = watcher_support::spawn_exit(0);
    env.watch(mine, "mine");
    env.reports.run_until(&env.event_loop, 1);
    // Our SIGCHLD passes have run (at least the one that reported `mine`): the foreign child is
    // still there for its owner, with its status.
    assert!(!watcher_support::is_reaped(foreign));
    let status = rustix::process::waitpid(
        Some(watcher_support::pid(foreign)),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap()
    .unwrap()
    .1;
    assert_eq!(status.exit_status(), Some(42));
}

#[test]
fn foreign_children_are_left_to_their_owner() {
    watcher_support::check(KIND, leaves_foreign_children_alone);
}
