//! The loops of this thread: every [`EventLoop`] is registered on the thread that built it (a
//! loop is `!Send`, so it never leaves).
//!
//! - A task of one of these loops woken here while its loop is not running joins the loop's
//!   local FIFO queue, as asyncio's `call_soon` would, rather than the cross-thread inbox (which
//!   would put it behind callbacks queued after it).
//! - When the thread ends, a loop that is still open is closed, as asyncio's `__del__` closes a
//!   loop that the garbage collector finds unclosed. This is what releases a loop kept alive by
//!   a reference cycle through its own queues (a callback or task holding a clone of its loop,
//!   the pattern `move || lp.stop()`): Rust has no cycle collector, and from the reference
//!   count alone a clone inside the loop's queues cannot be told from one a caller still holds.
//!   Closing drops the queues, which breaks the cycle. Inside a long-lived thread, call
//!   [`close`](EventLoop::close), or capture a [`WeakEventLoop`](crate::WeakEventLoop) or call
//!   [`get_running_loop`](crate::get_running_loop) in the callback instead of a clone.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use crate::runtime::core::{EventLoop, Inner, Shared};

/// The registry, with a destructor that closes what is still open at thread exit.
struct ThreadLoops {
    loops: RefCell<Vec<Weak<Inner>>>,
    /// The length at which dropped loops are next swept out (amortized O(1) registration; a
    /// dropped loop's `Weak` keeps only its allocation, and at most as many as are live).
    sweep_at: Cell<usize>,
}

thread_local! {
    static LOOPS: ThreadLoops = const {
        ThreadLoops {
            loops: RefCell::new(Vec::new()),
            sweep_at: Cell::new(16),
        }
    };
}

/// Registers a loop built on this thread.
pub(crate) fn register(inner: &Rc<Inner>) {
    let _ = LOOPS.try_with(|t| {
        let Ok(mut loops) = t.loops.try_borrow_mut() else {
            return;
        };
        if loops.len() >= t.sweep_at.get() {
            loops.retain(|w| w.strong_count() > 0);
            t.sweep_at.set((loops.len() * 2).max(16));
        }
        loops.push(Rc::downgrade(inner));
    });
}

/// Runs `f` with the state of the loop behind `shared`, if that loop belongs to this thread and
/// still exists.
pub(crate) fn with_local<R>(shared: &Shared, f: impl FnOnce(&Rc<Inner>) -> R) -> Option<R> {
    let inner = LOOPS
        .try_with(|t| {
            t.loops
                .try_borrow()
                .ok()?
                .iter()
                .filter_map(Weak::upgrade)
                .find(|i| std::ptr::eq(Arc::as_ptr(&i.shared), shared))
        })
        .ok()
        .flatten()?;
    Some(f(&inner))
}

impl Drop for ThreadLoops {
    fn drop(&mut self) {
        let loops = std::mem::take(self.loops.get_mut());
        for inner in loops.iter().filter_map(Weak::upgrade) {
            let event_loop = EventLoop::from_inner(inner);
            if event_loop.is_closed() || event_loop.is_running() {
                continue;
            }
            // User `Drop` code runs here, possibly touching thread-locals that are gone: a
            // panic must not abort the process from a thread-local destructor.
            let _ = catch_unwind(AssertUnwindSafe(|| event_loop.close()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_loops_are_swept_so_the_registry_stays_bounded() {
        for _ in 0..200 {
            drop(EventLoop::new().unwrap());
        }
        let kept = EventLoop::new().unwrap();
        let len = LOOPS.with(|t| t.loops.borrow().len());
        assert!(len <= 32, "{len} entries for 1 live loop");
        assert!(with_local(&kept.inner.shared, |_| ()).is_some());
    }
}
