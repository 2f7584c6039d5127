//! The child-watcher contract for [`PidfdChildWatcher`] (Linux pidfds on the loop). Where the
//! kernel (or a seccomp filter) refuses `pidfd_open`, the checks are skipped with a note: the
//! default policy then uses the threaded watcher.

#[macro_use]
mod watcher_support;

use std::sync::Arc;

use asyncio::{ChildWatcher, PidfdChildWatcher};
use watcher_support::Kind;

const KIND: Kind = Kind {
    name: "PidfdChildWatcher",
    make: || Arc::new(PidfdChildWatcher::new()) as Arc<dyn ChildWatcher>,
    supported: PidfdChildWatcher::is_supported,
    sigchld: false,
};

watcher_contract!(KIND);

#[test]
fn child_reaped_elsewhere_after_registration_is_255() {
    watcher_support::check(KIND, watcher_support::reaped_elsewhere_after);
}
