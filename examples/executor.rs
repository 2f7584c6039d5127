//! Offloading blocking work: the loop's default executor, a custom [`ThreadPoolExecutor`]
//! built with `ThreadPoolExecutor::builder()`, `set_default_executor`, and
//! `shutdown_default_executor`.
//!
//! ```text
//! cargo run --example executor
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncio::executor::Executor;
use asyncio::{Error, ErrorKind, EventLoop, ThreadPoolExecutor};

/// A blocking job: sleeps `ms` milliseconds and reports which thread ran it.
fn blocking_job(ms: u64) -> String {
    std::thread::sleep(Duration::from_millis(ms));
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned()
}

fn main() -> Result<(), Error> {
    let event_loop = EventLoop::new()?;
    let lp = event_loop.clone();
    event_loop.run_until_complete(async move {
        default_executor(&lp).await?;
        custom_pool(&lp).await?;
        replace_default(&lp).await?;
        shutdown(&lp).await
    })??;
    event_loop.close()
}

// ANCHOR: default
async fn default_executor(lp: &EventLoop) -> Result<(), Error> {
    // `None` picks the loop's default executor: a ThreadPoolExecutor created on first use,
    // with min(32, cpus + 4) workers named asyncio_0, asyncio_1, ...
    let thread = lp.run_in_executor(None, || blocking_job(10))?.await?;
    println!("default executor: the job ran on {thread:?}");
    Ok(())
}
// ANCHOR_END: default

// ANCHOR: custom
async fn custom_pool(lp: &EventLoop) -> Result<(), Error> {
    // At most two threads, named disk_0 and disk_1.
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(2)
            .thread_name_prefix("disk")
            .build()?,
    );
    let executor: Arc<dyn Executor> = pool.clone();

    // Four 50 ms jobs on two workers: two rounds, about 100 ms in all.
    let start = Instant::now();
    let jobs = (0..4)
        .map(|_| lp.run_in_executor(Some(executor.clone()), || blocking_job(50)))
        .collect::<Result<Vec<_>, _>>()?;
    let threads = asyncio::gather(jobs).await?;
    let threads = threads.into_iter().collect::<Result<Vec<_>, _>>()?;
    println!(
        "custom pool: 4 jobs on {} workers took {:.0} ms, threads {threads:?}",
        pool.max_workers(),
        start.elapsed().as_secs_f64() * 1000.0
    );

    // An executor passed explicitly is the caller's to shut down.
    pool.shutdown(true);
    let err = lp
        .run_in_executor(Some(executor), || blocking_job(0))
        .expect_err("a shut-down pool refuses jobs");
    assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
    println!("custom pool: after shutdown, run_in_executor fails: {err}");
    Ok(())
}
// ANCHOR_END: custom

// ANCHOR: set_default
async fn replace_default(lp: &EventLoop) -> Result<(), Error> {
    // From now on `run_in_executor(None, ..)` uses this pool. The previous default is not shut
    // down by the swap (it may be shared).
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("single")
        .build()?;
    lp.set_default_executor(Arc::new(pool));
    let thread = lp.run_in_executor(None, || blocking_job(10))?.await?;
    println!("set_default_executor: the job ran on {thread:?}");
    Ok(())
}
// ANCHOR_END: set_default

// ANCHOR: shutdown
async fn shutdown(lp: &EventLoop) -> Result<(), Error> {
    // A job still running when shutdown starts is waited for (up to the timeout), on a helper
    // thread: the loop keeps running meanwhile.
    let last = lp.run_in_executor(None, || blocking_job(50))?;
    let start = Instant::now();
    lp.shutdown_default_executor(Some(Duration::from_secs(5)))
        .await?;
    println!(
        "shutdown_default_executor: returned after {:.0} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    println!("the last job ran on {:?}", last.await?);

    // The shutdown is sticky: the loop refuses default-executor work from now on.
    let err = lp
        .run_in_executor(None, || blocking_job(0))
        .expect_err("the default executor was shut down");
    assert_eq!(err.kind(), ErrorKind::ExecutorShutdown);
    println!("after shutdown_default_executor: {err}");
    Ok(())
}
// ANCHOR_END: shutdown
