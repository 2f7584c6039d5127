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
    reports_reaped_after_registration: true,
};

watcher_contract!(KIND);
