//! Python's "Hello World coroutine" example: `asyncio::run` runs an `async` block that prints
//! "Hello", sleeps for a second without blocking the loop, and prints "World".
//!
//! ```text
//! cargo run --example hello_world_coroutine
//! ```

// ANCHOR: all
fn main() -> Result<(), asyncio::Error> {
    // `asyncio::run` makes a fresh loop, runs the future to completion and closes the loop.
    // Its own `Result` reports loop errors; the inner one is the future's output.
    asyncio::run(async {
        println!("Hello");
        asyncio::sleep(1.0).await?;
        println!("World");
        Ok(())
    })?
}
// ANCHOR_END: all
