//! The child-watcher contract for [`ThreadedChildWatcher`] (one thread per child). Not here:
//! "a registered child reaped elsewhere is 255" (its thread blocks in `waitpid(pid)` and races
//! the other waiter, so either may get the status) and the `SIGCHLD`-only checks.

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
};

watcher_contract!(KIND);
