//! What the pool synchronises with: std's `Arc`, `Mutex`, `Condvar` and threads, or loom's in
//! `cfg(loom)` test builds (the models in `loom_tests.rs`, run by `.ci/loom`). The pool's own
//! shim, private to it; only the two things std and loom do differently are wrapped:
//!
//! * [`IdleClock`]: an idle worker's timeout. Loom has no time, so in a model a finite idle
//!   timeout is up after one wait that no wake-up ended (the lock is released and taken again
//!   in between, so other threads may run), and `Duration::MAX` waits for a wake-up.
//! * The thread-local that tells a worker which pool it belongs to ([`worker_of`]).

#[cfg(all(test, loom))]
pub(super) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(all(test, loom))]
pub(super) use loom::thread::{self, JoinHandle};
#[cfg(not(all(test, loom)))]
pub(super) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(super) use std::thread::{self, JoinHandle};

pub(super) use imp::{is_finished, IdleClock};

use std::cell::Cell;

#[cfg(not(all(test, loom)))]
std::thread_local! {
    /// The id of the pool this thread is a worker of; 0 for threads that are no pool's worker.
    static WORKER_OF: Cell<u64> = const { Cell::new(0) };
}

#[cfg(all(test, loom))]
loom::thread_local! {
    /// The id of the pool this thread is a worker of; 0 for threads that are no pool's worker.
    static WORKER_OF: Cell<u64> = Cell::new(0);
}

/// The id of the pool the current thread is a worker of (0: none).
pub(super) fn worker_of() -> u64 {
    WORKER_OF.with(Cell::get)
}

/// Marks the current thread as a worker of pool `id`.
pub(super) fn set_worker_of(id: u64) {
    WORKER_OF.with(|w| w.set(id));
}

#[cfg(not(all(test, loom)))]
mod imp {
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    /// Whether the thread behind `handle` has finished.
    pub(in super::super) fn is_finished(handle: &JoinHandle<()>) -> bool {
        handle.is_finished()
    }

    /// An idle worker's timeout, started when it goes idle.
    pub(in super::super) struct IdleClock {
        /// `None`: never (the timeout overflowed `Instant`).
        deadline: Option<Instant>,
    }

    impl IdleClock {
        /// Starts the clock: the worker may leave `timeout` from now.
        pub(in super::super) fn start(timeout: Duration) -> Self {
            IdleClock {
                deadline: Instant::now().checked_add(timeout),
            }
        }

        /// Whether the timeout has passed.
        pub(in super::super) fn is_up(&self) -> bool {
            self.deadline.is_some_and(|d| Instant::now() >= d)
        }

        /// Waits on `cond` (which `guard`, a guard of `_mutex`, goes with) until a wake-up, a
        /// spurious one, or the timeout.
        pub(in super::super) fn wait<'a, T>(
            &mut self,
            _mutex: &'a Mutex<T>,
            cond: &Condvar,
            guard: MutexGuard<'a, T>,
        ) -> MutexGuard<'a, T> {
            match self.deadline {
                None => cond.wait(guard).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    cond.wait_timeout(guard, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            }
        }
    }
}

#[cfg(all(test, loom))]
mod imp {
    use loom::sync::{Condvar, Mutex, MutexGuard};
    use loom::thread::JoinHandle;
    use std::sync::PoisonError;
    use std::time::Duration;

    /// Loom cannot tell; finished handles are simply never pruned in a model.
    pub(in super::super) fn is_finished(_handle: &JoinHandle<()>) -> bool {
        false
    }

    /// An idle worker's timeout in a model: finite ones are up after one wait.
    pub(in super::super) struct IdleClock {
        finite: bool,
        up: bool,
    }

    impl IdleClock {
        /// Starts the clock; `Duration::MAX` never runs out.
        pub(in super::super) fn start(timeout: Duration) -> Self {
            IdleClock {
                finite: timeout != Duration::MAX,
                up: false,
            }
        }

        /// Whether the timeout has passed.
        pub(in super::super) fn is_up(&self) -> bool {
            self.up
        }

        /// A finite timeout passes while nobody wakes us: the lock is released and taken
        /// again (other threads may run in between); an infinite one waits for a wake-up.
        pub(in super::super) fn wait<'a, T>(
            &mut self,
            mutex: &'a Mutex<T>,
            cond: &Condvar,
            guard: MutexGuard<'a, T>,
        ) -> MutexGuard<'a, T> {
            if !self.finite {
                return cond.wait(guard).unwrap_or_else(PoisonError::into_inner);
            }
            drop(guard);
            self.up = true;
            mutex.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }
}
