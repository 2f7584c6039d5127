//! `shutdown`: close the pool to new jobs, then (when asked to wait) wait for the workers.

use std::sync::PoisonError;

use super::state::Inner;

impl Inner {
    /// Stops accepting jobs and wakes the idle workers; with `wait`, blocks until the workers
    /// have exited (see [`ThreadPoolExecutor`](super::ThreadPoolExecutor) for a call from a job).
    pub(super) fn shutdown(&self, wait: bool) {
        let mut state = self.lock();
        state.shutdown = true;
        self.work_cond.notify_all();
        if !wait {
            return;
        }
        let as_worker = self.is_current_worker();
        if as_worker {
            // From a job: join nothing (not even ourselves), and wait only for the workers
            // that are not themselves inside `shutdown(true)`; those wait for us, and exit once
            // their job returns. Counting ourselves in may be what the others wait for.
            state.num_shutting_down += 1;
            self.exit_cond.notify_all();
        } else {
            let handles = std::mem::take(&mut state.handles);
            drop(state);
            for handle in handles {
                // A worker's panic is already caught per job; nothing else can be reported here.
                let _ = handle.join();
            }
            // Another concurrent `shutdown(true)` may have taken (and be joining) some handles.
            state = self.lock();
        }
        while state.must_wait(as_worker) {
            state = self
                .exit_cond
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if as_worker {
            state.num_shutting_down -= 1;
        }
    }
}
