//! Python's "Hello World with call_later()" example: a callback that prints "Hello World" and
//! reschedules itself with `call_later` every two seconds, on a loop run by `run_forever`.
//!
//! ```text
//! cargo run --example hello_world_callback              # 3 times, every 2 seconds
//! cargo run --example hello_world_callback -- 5         # 5 times
//! cargo run --example hello_world_callback -- 3 --interval 0.1
//! ```

use std::process::ExitCode;

use asyncio::EventLoop;

// ANCHOR: callback
/// Prints "Hello World", then schedules itself again `interval` seconds later until it has
/// printed `remaining` times; the last call stops the loop.
fn hello_world(event_loop: &EventLoop, remaining: u32, interval: f64) {
    println!("Hello World");
    if remaining <= 1 {
        event_loop.stop();
        return;
    }
    let lp = event_loop.clone();
    let next = move || hello_world(&lp, remaining - 1, interval);
    if let Err(e) = event_loop.call_later(interval, next) {
        eprintln!("cannot reschedule: {e}");
        event_loop.stop();
    }
}

fn run(count: u32, interval: f64) -> asyncio::Result<()> {
    let event_loop = EventLoop::new()?;
    if count > 0 {
        let lp = event_loop.clone();
        // Schedule the first call; it reschedules itself.
        event_loop.call_soon(move || hello_world(&lp, count, interval))?;
        // Blocks until `hello_world` calls `stop()`.
        event_loop.run_forever()?;
    }
    event_loop.close()
}
// ANCHOR_END: callback

/// Parses `[COUNT] [--interval SECS]`.
fn parse_args() -> Result<(u32, f64), String> {
    let mut count = 3;
    let mut interval = 2.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--interval" {
            let value = args.next().ok_or("--interval needs a value in seconds")?;
            interval = value
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| format!("bad --interval {value:?}: seconds, 0 or more"))?;
        } else {
            count = arg
                .parse()
                .map_err(|_| format!("bad count {arg:?}: a whole number, 0 or more"))?;
        }
    }
    Ok((count, interval))
}

fn main() -> ExitCode {
    let (count, interval) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            eprintln!("usage: hello_world_callback [COUNT] [--interval SECS]");
            return ExitCode::from(2);
        }
    };
    match run(count, interval) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
