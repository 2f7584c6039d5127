//! The pool's shared part ([`Inner`]) and its bookkeeping ([`State`]): the job queue and the
//! worker accounting, with the transitions `submit`, the workers and `shutdown` make under the
//! lock.
//!
//! * `num_idle` counts workers waiting for work that nobody has claimed yet. `submit` claims one
//!   (`num_idle -= 1; num_notify += 1`) and wakes exactly one worker with `notify_one`; if no
//!   worker is idle and the pool is below `max_workers`, it starts a thread instead. A waking
//!   worker consumes a `num_notify` token; so `num_idle + num_notify` is always the number of
//!   workers blocked in the wait loop, and a wake-up is never lost even if a different worker
//!   than the one signalled picks it up.
//! * A worker leaving on its idle timeout counts itself out of `num_threads` in the same critical
//!   section as its decision to leave, so a `submit` never counts on a worker that is gone.

use std::collections::VecDeque;
use std::sync::PoisonError;
use std::time::Duration;

use super::sync::{self, Condvar, JoinHandle, Mutex, MutexGuard};
use crate::executor::Job;

/// The part of the pool shared with the worker threads.
pub(super) struct Inner {
    pub(super) state: Mutex<State>,
    /// Wakes idle workers (one per submitted job, all on shutdown).
    pub(super) work_cond: Condvar,
    /// Wakes `shutdown(true)` callers when a worker exits or enters `shutdown(true)`.
    pub(super) exit_cond: Condvar,
    pub(super) max_workers: usize,
    pub(super) prefix: String,
    pub(super) idle_timeout: Duration,
    /// Unique id of this pool (see [`sync::worker_of`]).
    pub(super) id: u64,
    /// Tests: runs in a worker that leaves on its idle timeout, after it released the lock.
    #[cfg(all(test, not(loom)))]
    pub(super) idle_exit_hook: std::sync::Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under the lock, so poisoning cannot leave the state inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the current thread as a worker of this pool.
    pub(super) fn enter_worker(&self) {
        sync::set_worker_of(self.id);
    }

    pub(super) fn is_current_worker(&self) -> bool {
        sync::worker_of() == self.id
    }
}

/// The job queue and the worker accounting, behind [`Inner::state`].
pub(super) struct State {
    pub(super) queue: VecDeque<Job>,
    pub(super) shutdown: bool,
    /// Workers alive (started and not yet exited).
    pub(super) num_threads: usize,
    /// Workers waiting for work and not yet claimed by a `submit`.
    pub(super) num_idle: usize,
    /// Wake-ups sent to idle workers and not yet consumed.
    pub(super) num_notify: usize,
    /// The suffix of the next thread's name.
    pub(super) next_id: usize,
    /// Handles of started threads not yet joined; finished ones are pruned when spawning.
    pub(super) handles: Vec<JoinHandle<()>>,
    /// Workers of this pool blocked inside their own `shutdown(true)` call (from a job).
    /// Another worker's `shutdown(true)` does not wait for them: they wait for it.
    pub(super) num_shutting_down: usize,
}

/// Where [`State::place`] put a job.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// An idle worker was claimed: wake one with `notify_one`.
    Claimed,
    /// Every worker is busy and the pool is full: one of them takes the job when done.
    Queued,
    /// Nobody is idle and the pool has room: start a worker.
    StartWorker,
}

/// What an idle worker does next (see [`State::idle_step`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum IdleStep {
    /// Back to the queue: a `submit` claimed us, or the pool is shutting down (drain, then
    /// exit).
    Work,
    /// The idle timeout passed: we are counted out already; leave.
    Leave,
    /// Keep waiting.
    Wait,
}

impl State {
    pub(super) fn new() -> Self {
        State {
            queue: VecDeque::new(),
            shutdown: false,
            num_threads: 0,
            num_idle: 0,
            num_notify: 0,
            next_id: 0,
            handles: Vec::new(),
            num_shutting_down: 0,
        }
    }

    /// `submit`: queues `job` and says how it gets a worker; hands the job back once the pool
    /// is shut down.
    pub(super) fn place(&mut self, job: Job, max_workers: usize) -> Result<Placement, Job> {
        if self.shutdown {
            return Err(job);
        }
        self.queue.push_back(job);
        if self.num_idle > 0 {
            // Claim one idle worker (whichever idle worker wakes first takes the token).
            self.num_idle -= 1;
            self.num_notify += 1;
            Ok(Placement::Claimed)
        } else if self.num_threads >= max_workers {
            Ok(Placement::Queued)
        } else {
            Ok(Placement::StartWorker)
        }
    }

    /// A worker thread was started for [`Placement::StartWorker`].
    pub(super) fn started(&mut self, handle: JoinHandle<()>) {
        self.next_id += 1;
        self.num_threads += 1;
        self.handles.push(handle);
    }

    /// A worker goes idle (it found the queue empty and the pool open).
    pub(super) fn go_idle(&mut self) {
        self.num_idle += 1;
    }

    /// An idle worker woke up (or is about to wait): a claim first, then shutdown, then the
    /// idle timeout (`time_is_up`). Leaving takes the worker out of the counts in the same
    /// critical section: a `submit` that still counted it as alive would not start a new
    /// worker, and with the pool at `max_workers` its job could wait for a worker that is gone.
    pub(super) fn idle_step(&mut self, time_is_up: bool) -> IdleStep {
        if self.num_notify > 0 {
            // A submit claimed an idle worker (maybe another one, but it is the same).
            self.num_notify -= 1;
            IdleStep::Work
        } else if self.shutdown {
            self.num_idle -= 1;
            IdleStep::Work
        } else if time_is_up {
            self.num_idle -= 1;
            self.num_threads -= 1;
            IdleStep::Leave
        } else {
            IdleStep::Wait
        }
    }

    /// A worker exits; `counted_out` if [`IdleStep::Leave`] already took it out of the count.
    /// Returns whether `shutdown(true)` callers may be waiting for this.
    pub(super) fn exited(&mut self, counted_out: bool) -> bool {
        if !counted_out {
            self.num_threads -= 1;
        }
        self.shutdown
    }

    /// Whether a `shutdown(true)` caller must keep waiting: a worker caller (inside a job)
    /// waits for every worker that is not inside `shutdown(true)` itself (it counts itself
    /// among those), any other caller for every worker.
    pub(super) fn must_wait(&self, as_worker: bool) -> bool {
        if as_worker {
            self.num_threads > self.num_shutting_down
        } else {
            self.num_threads > 0
        }
    }
}
