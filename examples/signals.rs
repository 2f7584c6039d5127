//! Python's "Set signal handlers for SIGINT and SIGTERM" example: handlers registered with
//! `add_signal_handler` print the signal's name and stop the loop, which otherwise runs
//! forever. The program exits with status 0 after either signal.
//!
//! ```text
//! cargo run --example signals       # then press Ctrl+C, or: kill -TERM <pid>
//! ```

use std::process::ExitCode;

use asyncio::EventLoop;

// ANCHOR: handlers
/// The signal handler: runs on the loop thread (through the ready queue), not inside the C
/// signal handler, so it may do anything a callback may do. It finds its loop with
/// `get_running_loop` rather than capturing a clone: a clone stored in the loop's own handler
/// table would be a reference cycle.
fn ask_exit(signame: &str) {
    println!("got signal {signame}: exit");
    if let Ok(event_loop) = asyncio::get_running_loop() {
        event_loop.stop();
    }
}

fn run() -> asyncio::Result<()> {
    let event_loop: EventLoop = asyncio::get_event_loop()?;
    for (signame, signum) in [("SIGINT", libc::SIGINT), ("SIGTERM", libc::SIGTERM)] {
        event_loop.add_signal_handler(signum, move || ask_exit(signame))?;
    }

    println!("Event loop running, press Ctrl+C to interrupt.");
    println!(
        "pid {}: send SIGINT or SIGTERM to exit.",
        std::process::id()
    );
    let ran = event_loop.run_forever();
    // Closing the loop removes its signal handlers and restores the previous dispositions.
    event_loop.close()?;
    ran
}
// ANCHOR_END: handlers

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signals: {e}");
            ExitCode::FAILURE
        }
    }
}
