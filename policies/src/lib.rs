//! Ready-made policies for the `asyncio` crate.
