//! Executor helpers for the policy tests: named thread pools and the name of the thread a job
//! ran on. Included with `#[path]`.

use std::sync::Arc;

use asyncio::{EventLoop, ThreadPoolExecutor};

/// A pool of at most `workers` threads, named `<prefix>_0`, `<prefix>_1`, ...
pub fn named_pool(prefix: &str, workers: usize) -> Arc<ThreadPoolExecutor> {
    Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(workers)
            .thread_name_prefix(prefix)
            .build()
            .unwrap(),
    )
}

/// Runs `lp` until a job on its default executor (`run_in_executor(None, ..)`) is done and
/// returns the name of the thread that ran the job.
pub fn worker_name(lp: &EventLoop) -> Option<String> {
    let l = lp.clone();
    lp.run_until_complete(async move {
        l.run_in_executor(None, || std::thread::current().name().map(str::to_owned))
            .unwrap()
            .await
            .unwrap()
    })
    .unwrap()
}
