//! The atomics of the cross-thread protocols (a task's `scheduled` flag and reference count, the
//! loop's inbox wake-up): std's, or loom's when the crate is built with `--cfg loom`, so that the
//! loom models (`cargo test --lib loom` under `RUSTFLAGS="--cfg loom"`, run by `.ci/sanitizers`)
//! check the very types the loop uses; and the `Arc` and `Mutex` of the thread-safe primitives
//! (`locks::threadsafe`), whose waiter protocol has loom models too. Only those types go through
//! here: loom's types work only inside `loom::model`, so nothing else of a loom build runs. loom
//! is a dev-dependency: outside tests (`cargo build` or `clippy` of the library with `--cfg loom`) these are std's.

#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(all(loom, test))]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering;
