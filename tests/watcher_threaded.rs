//! The child-watcher contract for [`ThreadedChildWatcher`] (one thread per child).

#[macro_use]
mod watcher_support;

use std::sync::Arc;

use asyncio::{ChildWatcher, ThreadedChildWatcher};
use watcher_support::Kind;

const KIND: Kind = Kind {
    name: "ThreadedChildWatcher",
    make: || Arc::new(ThreadedChildWatcher::new()) as Arc<dyn ChildWatcher>,
    supported: || true,
    sigchld: false,
    // Its thread blocks in waitpid(pid) and races the other waiter for the status.
    reports_reaped_after_registration: false,
};

watcher_contract!(KIND);
