//! asyncio's ordering rules, shown and checked: one FIFO queue for callbacks and task steps,
//! one batch per iteration, due timers behind callbacks that were ready first, equal deadlines
//! in scheduling order, and `stop()` finishing the current iteration.
//!
//! ```text
//! cargo run --example ordering
//! ```
//!
//! Each part asserts the order it prints, so the example fails if the loop breaks a rule.

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::{Error, EventLoop};

/// A shared log that callbacks append to.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.borrow_mut().push(entry.into());
    }
    /// A callback that appends `entry`.
    fn entry(&self, entry: &'static str) -> impl FnOnce() + 'static {
        let log = self.clone();
        move || log.push(entry)
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

fn main() -> Result<(), Error> {
    one_iteration()?;
    equal_deadlines()?;
    stop_finishes_the_iteration()?;
    Ok(())
}

// ANCHOR: iteration
fn one_iteration() -> Result<(), Error> {
    let event_loop = EventLoop::new()?;
    let log = Log::default();

    event_loop.call_later(0.0, log.entry("timer (call_later 0)"))?;
    event_loop.call_soon(log.entry("soon 1"))?;
    let l = log.clone();
    event_loop.create_task(async move {
        l.push("task: step 1");
        asyncio::sleep(0.0).await?; // yield once
        l.push("task: step 2");
        Ok::<_, Error>(())
    })?;
    let (l, lp) = (log.clone(), event_loop.clone());
    event_loop.call_soon(move || {
        l.push("soon 2");
        // Scheduled while the batch runs: waits for the next iteration.
        let _ = lp.call_soon(l.entry("soon 3 (scheduled by soon 2)"));
    })?;

    event_loop.run_until_complete(asyncio::sleep(0.01))??;
    let order = log.take();
    println!("one iteration, then the next:");
    for entry in &order {
        println!("  {entry}");
    }
    assert_eq!(
        order,
        [
            // Iteration 1: what was ready when it began, FIFO, then the due timer.
            "soon 1",
            "task: step 1",
            "soon 2",
            "timer (call_later 0)",
            // Iteration 2: what iteration 1 scheduled, in the order it was scheduled.
            "task: step 2",
            "soon 3 (scheduled by soon 2)",
        ]
    );
    event_loop.close()
}
// ANCHOR_END: iteration

// ANCHOR: deadlines
fn equal_deadlines() -> Result<(), Error> {
    let event_loop = EventLoop::new()?;
    let log = Log::default();
    let when = event_loop.time() + 0.01;
    for entry in ["a", "b", "c", "d"] {
        event_loop.call_at(when, log.entry(entry))?;
    }
    // Earlier deadlines first, whatever the scheduling order; a negative delay means "now".
    event_loop.call_later(-1.0, log.entry("-1 s"))?;
    event_loop.call_later(-2.0, log.entry("-2 s"))?;
    event_loop.run_until_complete(asyncio::sleep(0.02))??;
    let order = log.take();
    println!("timers: {order:?}");
    assert_eq!(order, ["-2 s", "-1 s", "a", "b", "c", "d"]);
    event_loop.close()
}
// ANCHOR_END: deadlines

// ANCHOR: stop
fn stop_finishes_the_iteration() -> Result<(), Error> {
    let event_loop = EventLoop::new()?;
    let log = Log::default();
    let lp = event_loop.clone();
    event_loop.call_soon(log.entry("a"))?;
    event_loop.call_soon(move || lp.stop())?;
    let (l, lp) = (log.clone(), event_loop.clone());
    event_loop.call_soon(move || {
        l.push("b");
        let _ = lp.call_soon(l.entry("c"));
    })?;

    event_loop.run_forever()?; // runs a, stop, b: the whole batch
    let first_run = log.take();
    event_loop.stop(); // stopped before running: exactly one iteration
    event_loop.run_forever()?; // runs c
    let second_run = log.take();
    println!("stop: first run {first_run:?}, second run {second_run:?}");
    assert_eq!(first_run, ["a", "b"]);
    assert_eq!(second_run, ["c"]);
    event_loop.close()
}
// ANCHOR_END: stop
