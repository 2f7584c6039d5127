//! The child-watcher contract for [`FastChildWatcher`] (`SIGCHLD`, `waitpid(-1)`), plus what
//! only it does. It reaps every child of the process, so this binary holds only these tests,
//! run one at a time.

#[macro_use]
mod watcher_support;

use std::sync::Arc;

use asyncio::{ChildWatcher, FastChildWatcher};
use watcher_support::{Env, Kind};

const KIND: Kind = Kind {
    name: "FastChildWatcher",
    make: || Arc::new(FastChildWatcher::new()) as Arc<dyn ChildWatcher>,
    supported: || true,
    sigchld: true,
};

watcher_contract!(KIND);
sigchld_watcher_checks!(KIND);

/// Fast reaps children nobody registered, keeps their exit, and hands it to a handler added
/// later.
fn keeps_unclaimed_exits(kind: Kind) {
    let env = Env::new(kind);
    let early = watcher_support::spawn_exit(9);
    watcher_support::drive_until(
        &env.event_loop,
        "Fast to reap the unregistered child",
        || watcher_support::is_reaped(early),
    );
    env.watch(early, "late registration");
    env.reports.run_until(&env.event_loop, 1);
    let got = env.reports.for_pid(early);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rc, 9);
    // Claimed once: a second registration for that pid finds nothing kept, and (the pid being
    // no child of ours any more) is told 255.
    env.watch(early, "again");
    env.reports.run_until(&env.event_loop, 2);
    assert_eq!(env.reports.for_pid(early)[1].rc, 255);
}

#[test]
fn exits_of_unregistered_children_are_kept_for_later() {
    watcher_support::check(KIND, keeps_unclaimed_exits);
}
