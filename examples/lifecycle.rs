//! A loop's life: building it, running it with `run_until_complete`, `block_on` and `Runner`,
//! stopping it early, and what a closed loop still allows.
//!
//! ```text
//! cargo run --example lifecycle
//! ```
//!
//! Each part asserts what it shows, so the example fails if the behaviour changes.

use std::time::Duration;

use asyncio::{Error, ErrorKind, EventLoop, Runner};

fn main() -> Result<(), Error> {
    build_and_run()?;
    runner()?;
    closed()?;
    Ok(())
}

// ANCHOR: build
fn build_and_run() -> Result<(), Error> {
    let event_loop = EventLoop::builder()
        .debug(true)
        .slow_callback_duration(Duration::from_millis(50))
        .build()?;

    // run_until_complete runs the future as a task and returns its output.
    let four = event_loop.run_until_complete(async { 2 + 2 })?;
    assert_eq!(four, 4);

    // block_on polls the future directly, so it may borrow from the caller.
    let mut words = Vec::new();
    event_loop.block_on(async {
        asyncio::sleep(0.001).await.ok();
        words.push("borrowed");
    })?;
    assert_eq!(words, ["borrowed"]);

    // Stopped before the future finished: an error, and the loop can run again.
    let lp = event_loop.clone();
    event_loop.call_soon(move || lp.stop())?;
    let err = event_loop
        .run_until_complete(asyncio::sleep(0.05))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoppedBeforeComplete);
    println!("stopped early: {err}");
    // The unfinished task is still scheduled: it completes during the next run.
    event_loop.run_until_complete(asyncio::sleep(0.1))??;
    assert!(event_loop.all_tasks().is_empty());

    event_loop.close()
}
// ANCHOR_END: build

// ANCHOR: runner
fn runner() -> Result<(), Error> {
    // One loop for several futures; `close` (or dropping the runner) cancels leftover tasks,
    // waits for the default executor and closes the loop.
    let mut runner = Runner::builder().debug(false).build();
    let one = runner.run(async { 1 })?;
    let two = runner.run(async {
        let lp = asyncio::get_running_loop()?;
        lp.run_in_executor(None, || 2)?.await
    })??;
    assert_eq!((one, two), (1, 2));
    let event_loop = runner.get_loop()?;
    runner.close()?;
    assert!(event_loop.is_closed());
    println!("runner: ran {one} and {two}, then closed its loop");
    Ok(())
}
// ANCHOR_END: runner

// ANCHOR: closed
fn closed() -> Result<(), Error> {
    let event_loop = EventLoop::new()?;
    event_loop.close()?;
    event_loop.close()?; // idempotent

    // Scheduling is refused...
    let err = event_loop.call_soon(|| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert!(event_loop.create_task(async {}).is_err());
    assert!(event_loop.run_until_complete(async {}).is_err());
    // ...while queries, stop and create_future still work.
    event_loop.stop();
    let _ = event_loop.time();
    let _future = event_loop.create_future::<()>();
    assert!(event_loop.is_closed() && !event_loop.is_running());
    println!("closed loop: {err}");
    Ok(())
}
// ANCHOR_END: closed
