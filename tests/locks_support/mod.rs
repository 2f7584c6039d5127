//! Shared helpers for the locks and queues tests: run a Python-style test body on a virtual
//! clock loop, bounded by the watchdog.

#![allow(dead_code)]

#[path = "../support_tasks/mod.rs"]
mod support_tasks;

use std::future::Future;

#[allow(unused_imports)]
pub use support_tasks::{run_one_iteration, virtual_loop, watchdog, Log};

use asyncio::{EventLoop, Task};

/// Runs `body` to completion on a fresh virtual-clock loop, then closes the loop.
pub fn run<F, Fut>(name: &'static str, body: F)
where
    F: FnOnce(EventLoop) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let _w = watchdog(name);
    let (event_loop, _clock) = virtual_loop();
    event_loop
        .run_until_complete(body(event_loop.clone()))
        .unwrap();
    event_loop.close().unwrap();
}

/// `asyncio.sleep(0)`: lets every ready task run one step.
pub async fn yield_now() {
    asyncio::sleep(0.0).await.unwrap();
}

/// `asyncio.create_task` on the running loop.
pub fn spawn<F: Future + 'static>(f: F) -> Task<F::Output> {
    asyncio::get_running_loop().unwrap().create_task(f).unwrap()
}
