//! The ready-made policies of `asyncio-policies`, one after the other: strict (no implicit
//! loops), debug (slow callbacks logged), virtual time (deterministic clocks), and a shared,
//! bounded executor for every loop.
//!
//! ```text
//! cargo run -p asyncio-policies --example ready_made
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncio::{ErrorKind, Executor, Result, ThreadPoolExecutor};
use asyncio_policies::{
    BoundedExecutor, DebugEventLoopPolicy, ExecutorPolicy, StrictEventLoopPolicy, VirtualTimePolicy,
};

fn main() -> Result<()> {
    strict()?;
    debug()?;
    virtual_time()?;
    shared_executor()?;
    Ok(())
}

// ANCHOR: strict
fn strict() -> Result<()> {
    asyncio::set_event_loop_policy(Some(Arc::new(StrictEventLoopPolicy::new())));
    // Even on the main thread, no loop appears by itself.
    let err = asyncio::get_event_loop().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoCurrentLoop);
    println!("strict: {err}");
    // Loops come from run / Runner, or are made and set explicitly.
    let answer = asyncio::run(async { 42 })?;
    println!("strict: asyncio::run still works: {answer}");
    asyncio::set_event_loop_policy(None);
    Ok(())
}
// ANCHOR_END: strict

// ANCHOR: debug
fn debug() -> Result<()> {
    let policy = DebugEventLoopPolicy::new().slow_callback_duration(Duration::from_millis(20));
    asyncio::set_event_loop_policy(Some(Arc::new(policy)));
    asyncio::run(async {
        let lp = asyncio::get_running_loop().unwrap();
        println!(
            "debug: debug mode {}, slow callbacks over {:?} are logged",
            lp.get_debug(),
            lp.slow_callback_duration()
        );
        // Blocking the loop for 50 ms: logged as "Executing Task-1 took 0.05x seconds".
        std::thread::sleep(Duration::from_millis(50));
    })?;
    asyncio::set_event_loop_policy(None);
    Ok(())
}
// ANCHOR_END: debug

// ANCHOR: virtual_time
fn virtual_time() -> Result<()> {
    let policy = Arc::new(VirtualTimePolicy::new());
    asyncio::set_event_loop_policy(Some(policy.clone()));
    let event_loop = asyncio::new_event_loop()?;
    let clock = policy.clock_of(&event_loop).expect("made by the policy");
    let wall = Instant::now();
    event_loop.run_until_complete(asyncio::sleep(24.0 * 3600.0))??; // a day
    println!(
        "virtual time: loop time {} s after {:?} of wall time",
        clock.now(),
        wall.elapsed()
    );
    event_loop.close()?;
    asyncio::set_event_loop_policy(None);
    Ok(())
}
// ANCHOR_END: virtual_time

// ANCHOR: executor
fn shared_executor() -> Result<()> {
    // One pool of 2 threads for every loop of the process, at most 4 jobs queued or running.
    let pool = Arc::new(ThreadPoolExecutor::builder().max_workers(2).build()?);
    let bounded = Arc::new(BoundedExecutor::new(pool, 4)?);
    asyncio::set_event_loop_policy(Some(Arc::new(ExecutorPolicy::new(bounded.clone()))));

    let (done, refused) = asyncio::run(async {
        let lp = asyncio::get_running_loop()?;
        let mut jobs = Vec::new();
        let mut refused = 0;
        for i in 0..6u64 {
            match lp.run_in_executor(None, move || {
                std::thread::sleep(Duration::from_millis(20));
                i
            }) {
                Ok(job) => jobs.push(job),
                Err(e) if BoundedExecutor::is_full_error(&e) => refused += 1,
                Err(e) => return Err(e),
            }
        }
        let mut done = Vec::new();
        for job in jobs {
            done.push(job.await?);
        }
        Ok((done, refused))
    })??;
    println!("executor: finished {done:?}, refused {refused} (capacity 4)");

    asyncio::set_event_loop_policy(None);
    bounded.shutdown(true); // the loops never shut a shared executor down
    Ok(())
}
// ANCHOR_END: executor
