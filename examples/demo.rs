//! A guided tour of the event loop: callbacks, timers, tasks, cancellation, a timeout and
//! blocking work offloaded to a thread pool, narrated as it happens.
//!
//! Run it with `cargo run --release --example demo`. It takes about half a second and exits by
//! itself. Every line starts with the loop's time (`EventLoop::time`, seconds since the loop was
//! created), so the order and the timing of events can be read off the output.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{get_running_loop, sleep, timeout, Error, ErrorKind, EventLoop};

/// Prints `message` prefixed with the running loop's time.
fn say(event_loop: &EventLoop, message: impl AsRef<str>) {
    println!("[{:6.3}s] {}", event_loop.time(), message.as_ref());
}

/// Prints a section header.
fn section(title: &str) {
    println!();
    println!("== {title}");
}

/// Drop code of a task's future: it runs when the task is cancelled, like Python's `finally`.
struct Cleanup(EventLoop);

impl Drop for Cleanup {
    fn drop(&mut self) {
        say(
            &self.0,
            "worker: cleanup ran (Drop plays the part of `finally`)",
        );
    }
}

// ANCHOR: main
fn main() -> Result<(), Error> {
    println!("asyncio demo: one thread, one event loop, started by asyncio::run()");
    // `asyncio::run` gets a new loop from the event-loop policy, runs the future as its main
    // task, cancels leftover tasks, shuts the default executor down and closes the loop.
    asyncio::run(tour())?
}

async fn tour() -> Result<(), Error> {
    let lp = get_running_loop()?;
    callbacks(&lp).await?;
    timers(&lp).await?;
    tasks(&lp).await?;
    cancellation(&lp).await?;
    time_limit(&lp).await?;
    offloading(&lp).await?;
    section("Done");
    say(&lp, "the main task returns; asyncio::run closes the loop");
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: callbacks
async fn callbacks(lp: &EventLoop) -> Result<(), Error> {
    section("Callbacks: call_soon runs them in FIFO order, after the current step");
    let finished = lp.create_future::<()>();
    for name in ["first", "second", "third"] {
        let (l, f) = (lp.clone(), finished.clone());
        lp.call_soon(move || {
            say(&l, format!("callback {name}"));
            if name == "third" {
                let _ = f.set_result(());
            }
        })?;
    }
    say(lp, "main task: scheduled three callbacks; none has run yet");
    // Awaiting gives the loop back: the callbacks run in the next iteration.
    finished.await?;
    say(lp, "main task: resumed after the callbacks");
    Ok(())
}
// ANCHOR_END: callbacks

// ANCHOR: timers
async fn timers(lp: &EventLoop) -> Result<(), Error> {
    section("Timers: call_later and call_at fire by deadline, not by scheduling order");
    let all_fired = lp.create_future::<()>();
    let fired = Rc::new(RefCell::new(0));
    let schedule = |label: &'static str| {
        let (l, f, n) = (lp.clone(), all_fired.clone(), fired.clone());
        move || {
            say(&l, format!("timer {label}"));
            *n.borrow_mut() += 1;
            if *n.borrow() == 3 {
                let _ = f.set_result(());
            }
        }
    };
    lp.call_later(0.03, schedule("call_later(0.03)"))?;
    lp.call_later(Duration::from_millis(10), schedule("call_later(10 ms)"))?;
    lp.call_at(lp.time() + 0.02, schedule("call_at(time() + 0.02)"))?;
    say(
        lp,
        "main task: scheduled 30 ms, 10 ms and 20 ms timers, in that order",
    );
    all_fired.await?;
    Ok(())
}
// ANCHOR_END: timers

// ANCHOR: tasks
async fn tasks(lp: &EventLoop) -> Result<(), Error> {
    section("Tasks: gather runs futures concurrently and keeps their order");
    let jobs = [("slow", 0.03), ("quick", 0.01), ("medium", 0.02)].map(|(name, secs)| {
        let l = lp.clone();
        async move {
            say(&l, format!("task {name}: started, sleeping {secs} s"));
            sleep(secs).await?;
            say(&l, format!("task {name}: finished"));
            Ok::<_, Error>(name)
        }
    });
    let outputs = asyncio::gather(jobs).await?;
    let names = outputs.into_iter().collect::<Result<Vec<_>, _>>()?;
    say(lp, format!("gather returned {names:?} (argument order)"));
    Ok(())
}
// ANCHOR_END: tasks

// ANCHOR: cancellation
async fn cancellation(lp: &EventLoop) -> Result<(), Error> {
    section("Cancellation: cancel() drops the task's future at its next step");
    let l = lp.clone();
    let worker = lp.create_task(async move {
        let _cleanup = Cleanup(l.clone());
        say(&l, "worker: started, sleeping 10 s");
        sleep(10.0).await?;
        say(&l, "worker: this line is never printed");
        Ok::<_, Error>(())
    })?;
    worker.set_name("worker");
    sleep(0.01).await?;
    say(lp, format!("main task: cancelling {:?}", worker.get_name()));
    worker.cancel();
    match worker.await {
        Err(e) if e.kind() == ErrorKind::Cancelled => say(
            lp,
            "main task: awaiting the worker gives ErrorKind::Cancelled",
        ),
        other => say(lp, format!("main task: unexpected outcome {other:?}")),
    }
    Ok(())
}
// ANCHOR_END: cancellation

// ANCHOR: timeout
async fn time_limit(lp: &EventLoop) -> Result<(), Error> {
    section("Timeouts: timeout() drops a future that takes too long");
    say(lp, "main task: sleep(10.0) with a 50 ms limit");
    match timeout(0.05, sleep(10.0)).await {
        Err(e) if e.kind() == ErrorKind::Timeout => say(
            lp,
            format!("main task: gave up with ErrorKind::Timeout ({e})"),
        ),
        other => say(lp, format!("main task: unexpected outcome {other:?}")),
    }
    Ok(())
}
// ANCHOR_END: timeout

// ANCHOR: offloading
async fn offloading(lp: &EventLoop) -> Result<(), Error> {
    section("Offloading: run_in_executor keeps blocking work off the loop");
    let l = lp.clone();
    let ticker = lp.create_task(async move {
        for tick in 1..=4 {
            sleep(0.04).await?;
            say(&l, format!("ticker: tick {tick} (the loop is not blocked)"));
        }
        Ok::<_, Error>(())
    })?;
    let job = lp.run_in_executor(None, || {
        // A blocking call: fine on a worker thread, fatal to latency on the loop thread.
        std::thread::sleep(Duration::from_millis(100));
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        let sum: u64 = (1..=1_000_000).sum();
        (thread, sum)
    })?;
    say(
        lp,
        "main task: started a 100 ms blocking job on the default executor",
    );
    let (thread, sum) = job.await?;
    say(
        lp,
        format!("main task: job returned {sum} from thread {thread:?}"),
    );
    ticker.await??;
    Ok(())
}
// ANCHOR_END: offloading
