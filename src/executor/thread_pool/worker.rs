//! The worker threads: starting one, its loop (run queued jobs, wait idle, leave), and its exit.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::state::{IdleStep, Inner, State};
use super::sync::{self, thread, Arc, IdleClock, MutexGuard};
use crate::error::{Error, Result};
use crate::executor::Job;

/// Starts a worker for the job `submit` just queued ([`Placement::StartWorker`]), with the lock
/// still held.
///
/// [`Placement::StartWorker`]: super::state::Placement::StartWorker
pub(super) fn start(inner: &Arc<Inner>, mut state: MutexGuard<'_, State>) -> Result<()> {
    // Forget threads that have completely exited (their handles need no join).
    state.handles.retain(|h| !sync::is_finished(h));
    let name = format!("{}_{}", inner.prefix, state.next_id);
    let worker_inner = Arc::clone(inner);
    match thread::Builder::new()
        .name(name)
        .spawn(move || worker_main(worker_inner))
    {
        Ok(handle) => {
            state.started(handle);
            Ok(())
        }
        Err(e) if state.num_threads == 0 => {
            // No worker could ever run the job: take it back and report.
            let job = state.queue.pop_back();
            drop(state);
            drop(job);
            Err(Error::from(e))
        }
        Err(e) => {
            // Busy workers will still get to the job.
            drop(state);
            log::warn!("ThreadPoolExecutor: could not start a worker thread: {e}");
            Ok(())
        }
    }
}

/// Counts the worker out when it exits, even by unwinding, and wakes `shutdown(true)` waiters.
struct ExitGuard<'a> {
    inner: &'a Inner,
    /// The worker already took itself out of `num_threads` (an idle exit, under the same lock
    /// as its decision to exit).
    counted_out: bool,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let shutdown = self.inner.lock().exited(self.counted_out);
        if shutdown {
            self.inner.exit_cond.notify_all();
        }
    }
}

/// Runs a job, surviving its panic (and a panic while dropping the panic's payload).
fn run_job(job: Job) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            // Dropping this one could panic again; leak it instead.
            std::mem::forget(again);
        }
    }
}

/// The body of a worker thread.
fn worker_main(inner: Arc<Inner>) {
    inner.enter_worker();
    let mut exit = ExitGuard {
        inner: &inner,
        counted_out: false,
    };
    let mut state = inner.lock();
    'main: loop {
        // 1. Run the queued jobs, without the lock.
        while let Some(job) = state.queue.pop_front() {
            drop(state);
            run_job(job);
            state = inner.lock();
        }
        // 2. Queue drained after shutdown: exit.
        if state.shutdown {
            break;
        }

        // 3. Wait idle until a submit claims us, shutdown, or the idle timeout.
        state.go_idle();
        let mut clock = IdleClock::start(inner.idle_timeout);
        loop {
            match state.idle_step(clock.is_up()) {
                IdleStep::Work => continue 'main,
                IdleStep::Leave => {
                    exit.counted_out = true;
                    break 'main;
                }
                IdleStep::Wait => {}
            }
            state = clock.wait(&inner.state, &inner.work_cond, state);
        }
    }
    drop(state);
    #[cfg(all(test, not(loom)))]
    if exit.counted_out {
        if let Some(hook) = &*inner.idle_exit_hook.lock().unwrap() {
            hook();
        }
    }
    // 4. `exit` now wakes `shutdown(true)` waiters (and counts the thread out if still counted).
    drop(exit);
}
