//! A custom event loop policy, subclass-style: the Python documentation's `MyEventLoopPolicy`,
//! which subclasses `DefaultEventLoopPolicy`, overrides `get_event_loop`, calls
//! `super().get_event_loop()` and does something with the loop, then is installed with
//! `asyncio.set_event_loop_policy(MyEventLoopPolicy())`.
//!
//! ```text
//! cargo run --example custom_policy
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use asyncio::{DefaultEventLoopPolicy, EventLoop, PolicyWrapper, Result};

// ANCHOR: policy
/// Counts its `get_event_loop` calls; everything else is the default policy's.
#[derive(Default)]
struct MyEventLoopPolicy {
    base: DefaultEventLoopPolicy,
    calls: AtomicUsize,
}

impl PolicyWrapper for MyEventLoopPolicy {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }

    fn get_event_loop(&self) -> Result<EventLoop> {
        let event_loop = self.base.get_event_loop_with(self)?; // super().get_event_loop()
                                                               // Do something with the loop ...
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(event_loop)
    }
}
// ANCHOR_END: policy

// ANCHOR: open_recursion
/// Overrides only `new_event_loop`: every loop it makes runs in debug mode.
#[derive(Default)]
struct DebugLoops {
    base: DefaultEventLoopPolicy,
}

impl PolicyWrapper for DebugLoops {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }

    fn new_event_loop(&self) -> Result<EventLoop> {
        let event_loop = self.base.new_event_loop_with(self)?; // super().new_event_loop()
        event_loop.set_debug(true);
        Ok(event_loop)
    }
}

/// The default `get_event_loop` creates the main thread's loop with `DebugLoops::new_event_loop`.
fn open_recursion() -> Result<()> {
    asyncio::set_event_loop_policy(Some(Arc::new(DebugLoops::default())));
    let event_loop = asyncio::get_event_loop()?; // implicit creation, main thread
    assert!(event_loop.get_debug());
    println!(
        "the implicitly created loop {} is a debug loop",
        event_loop.id()
    );
    asyncio::set_event_loop(None)?;
    event_loop.close()?;
    asyncio::set_event_loop_policy(None);
    Ok(())
}
// ANCHOR_END: open_recursion

fn main() -> Result<()> {
    // ANCHOR: install
    let policy = Arc::new(MyEventLoopPolicy::default());
    asyncio::set_event_loop_policy(Some(policy.clone()));
    // ANCHOR_END: install

    // ANCHOR: use
    // On the main thread the default rules create and set a loop on first use, through
    // `MyEventLoopPolicy` (the default's `new_event_loop` and `set_event_loop` are reached
    // through the outermost policy, as with Python's `self.`).
    let event_loop = asyncio::get_event_loop()?;
    assert!(asyncio::get_event_loop()?.ptr_eq(&event_loop));

    let answer = event_loop.run_until_complete(async {
        asyncio::sleep(0.01).await?;
        // Inside a running loop, `get_event_loop` returns that loop without asking the policy.
        let running = asyncio::get_event_loop()?;
        Ok::<_, asyncio::Error>((running.id(), 6 * 7))
    })??;
    assert_eq!(answer.0, event_loop.id());

    // Two calls from outside the loop; the one inside it did not reach the policy.
    let calls = policy.calls.load(Ordering::Relaxed);
    assert_eq!(calls, 2);
    println!(
        "ran on loop {}, got {}; MyEventLoopPolicy.get_event_loop was called {calls} times",
        event_loop.id(),
        answer.1
    );
    // ANCHOR_END: use

    asyncio::set_event_loop(None)?;
    event_loop.close()?;
    asyncio::set_event_loop_policy(None);

    open_recursion()
}
