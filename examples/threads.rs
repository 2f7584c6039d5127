//! Threads: a loop's `LoopHandle` is the part other threads may use. This example sends
//! callbacks to a loop from a worker thread, stops the loop from that thread, runs a loop on its
//! own thread with `EventLoop::spawn_thread`, and submits coroutines to it with
//! `run_coroutine_threadsafe` and `run_coroutine_threadsafe_with`.
//!
//! ```text
//! cargo run --example threads
//! ```

use std::time::{Duration, Instant};

use asyncio::{Error, EventLoop};

fn main() -> Result<(), Error> {
    callbacks_from_a_thread()?;
    loop_in_a_thread()?;
    Ok(())
}

// ANCHOR: threadsafe
fn callbacks_from_a_thread() -> Result<(), Error> {
    let event_loop = EventLoop::new()?;
    // An hour-long timer: without a wake-up, the loop would sleep until it fires.
    let timer = event_loop.call_later(3600.0, || println!("not reached"))?;

    let handle = event_loop.handle(); // Send + Sync + Clone
    let worker = std::thread::spawn(move || -> Result<(), Error> {
        for i in 1..=3 {
            // The closure must be Send: it crosses threads.
            handle.call_soon_threadsafe(move || println!("loop thread runs callback {i}"))?;
        }
        // Wakes the sleeping loop; it stops after its current iteration.
        handle.stop();
        Ok(())
    });

    let start = Instant::now();
    event_loop.run_forever()?;
    println!(
        "run_forever returned after {:.0} ms, not an hour",
        start.elapsed().as_secs_f64() * 1000.0
    );
    worker.join().expect("worker thread panicked")?;
    timer.cancel();
    event_loop.close()
}
// ANCHOR_END: threadsafe

// ANCHOR: spawn_thread
fn loop_in_a_thread() -> Result<(), Error> {
    // A loop created on, and running on, its own thread.
    let (handle, thread) = EventLoop::spawn_thread()?;

    // Block this thread on a coroutine run by that loop. The future crosses threads, so it
    // must be Send.
    let future = handle.run_coroutine_threadsafe(async {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        (1..=10u64).product::<u64>().to_string() + " computed on " + &name
    })?;
    let answer = future.result(Some(Duration::from_secs(5)))?;
    println!("run_coroutine_threadsafe: {answer}");

    // The loop's own futures (sleep, Task, LoopFuture) are not Send. To run them, send a Send
    // closure that builds the coroutine on the loop thread.
    let slept = handle
        .run_coroutine_threadsafe_with(|| async {
            asyncio::sleep(0.01).await?;
            Ok::<_, Error>("slept 10 ms on the loop thread")
        })?
        .result(Some(Duration::from_secs(5)))??;
    println!("run_coroutine_threadsafe_with: {slept}");

    // A ConcurrentFuture is also a Future: another loop can await it.
    let main_loop = EventLoop::new()?;
    let doubled =
        main_loop.run_until_complete(handle.run_coroutine_threadsafe(async { 21 * 2 })?)??;
    println!("awaited from another loop: {doubled}");
    main_loop.close()?;

    // Stop the loop; its thread closes it and returns the run's result.
    handle.stop();
    thread.join().expect("loop thread panicked")?;
    assert!(handle.is_closed());
    Ok(())
}
// ANCHOR_END: spawn_thread
