//! Testing with virtual time: a loop built with a `VirtualClock` jumps to its next timer instead
//! of sleeping, so hours of timers run in microseconds and every time it reports is exact.
//!
//! ```text
//! cargo run --example virtual_time
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use asyncio::{get_running_loop, sleep, Error, ErrorKind, EventLoop, VirtualClock};

fn main() -> Result<(), Error> {
    auto_advance()?;
    manual_steps()?;
    Ok(())
}

// ANCHOR: auto
fn auto_advance() -> Result<(), Error> {
    let clock = VirtualClock::new();
    let event_loop = EventLoop::builder().clock(Rc::new(clock.clone())).build()?;
    let wall = Instant::now();

    let times = event_loop.run_until_complete(async {
        let lp = get_running_loop()?;
        sleep(3600.0).await?; // an hour
        let after_sleep = lp.time();
        let err = asyncio::timeout(60.0, sleep(120.0)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        Ok::<_, Error>((after_sleep, lp.time()))
    })??;

    // Exact values: no tolerance needed.
    assert_eq!(times, (3600.0, 3660.0));
    assert_eq!(clock.now(), 3660.0);
    println!(
        "virtual: slept an hour, timed out a minute later, at t = {} s; wall clock: {:?}",
        clock.now(),
        wall.elapsed()
    );
    event_loop.close()
}
// ANCHOR_END: auto

// ANCHOR: manual
fn manual_steps() -> Result<(), Error> {
    let clock = VirtualClock::new();
    clock.set_frozen(true); // only `advance` moves time now
    let event_loop = EventLoop::builder().clock(Rc::new(clock.clone())).build()?;
    let fired = Rc::new(RefCell::new(Vec::new()));
    for secs in [5.0, 10.0] {
        let f = fired.clone();
        event_loop.call_later(secs, move || f.borrow_mut().push(secs))?;
    }

    // A loop stopped before it runs does exactly one iteration: a test's "step".
    let step = || {
        event_loop.stop();
        event_loop.run_forever()
    };
    step()?;
    assert!(fired.borrow().is_empty());
    clock.advance(5.0);
    step()?;
    assert_eq!(*fired.borrow(), [5.0]);
    clock.advance(5.0);
    step()?;
    assert_eq!(*fired.borrow(), [5.0, 10.0]);
    println!(
        "frozen: timers fired at {:?} as the test advanced the clock",
        fired.borrow()
    );
    event_loop.close()
}
// ANCHOR_END: manual
