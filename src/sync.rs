//! The atomics of the cross-thread protocols (a task's `scheduled` flag and reference count, the
//! loop's inbox wake-up): std's, or loom's when the crate is built with `--cfg loom`, so that the
//! loom models (`cargo test --lib loom` under `RUSTFLAGS="--cfg loom"`, run by `.ci/sanitizers`)
//! check the very types the loop uses; and the `Arc` and `Mutex` of the thread-safe primitives
//! (`locks::threadsafe`), whose waiter protocol has loom models too. Only those types go through
//! here: loom's types work only inside `loom::model`, so nothing else of a loom build runs. loom
//! is a dev-dependency: outside tests (`cargo build` or `clippy` of the library with `--cfg loom`) these are std's.

#[cfg(all(loom, test))]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize},
    sync::{Arc, Mutex, MutexGuard},
    thread::yield_now,
};
#[cfg(not(all(loom, test)))]
pub(crate) use std::{
    sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize},
    sync::{Arc, Mutex, MutexGuard},
    thread::yield_now,
};

/// std's `UnsafeCell` with loom's interface (`with` / `with_mut` hand out raw pointers), so
/// that loom can track the accesses in its builds.
#[cfg(not(all(loom, test)))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(all(loom, test)))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

pub(crate) use std::sync::atomic::Ordering;
