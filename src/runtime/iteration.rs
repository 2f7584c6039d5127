//! One iteration of the loop (asyncio's `_run_once`) and the ways to run it: `run_forever`,
//! `run_until_complete`, `block_on`.

use std::cell::Cell;
use std::future::Future;
use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::events::ExceptionContext;
use crate::handles::Handle;
use crate::runtime::clock::secs_to_timeout;
use crate::runtime::core::{EventLoop, Ready, Remote, Shared};
use crate::runtime::running::{with_running, RunGuard};

/// Wakes the future driven by `block_on`.
struct MainWaker {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            // On the loop thread the flag is seen before the next poll; from elsewhere the
            // selector may be asleep and must be woken.
            let here = with_running(|i| Arc::ptr_eq(&i.shared, &self.shared)).unwrap_or(false);
            if !here {
                // Through the inbox, so the loop's last look before blocking sees it.
                let _ = self.shared.push_remote(Remote::Wake);
            }
        }
    }
}

impl EventLoop {
    /// Runs one iteration: inbox, poll, due timers, then exactly the callbacks ready now.
    pub(crate) fn run_once(&self, extra_ready: bool) -> Result<()> {
        let inner = &*self.inner;
        inner.iterations.set(inner.iterations.get() + 1);
        // 1. Work from other threads.
        inner.drain_inbox();

        // 2. How long may we wait? (Cancelled timers left the heap when they were cancelled, so
        // its head is the first live deadline. `extra_ready` was read before the inbox was
        // drained: a `block_on` future woken from another thread since then shows as a drained
        // wake-up.)
        let woken = inner.remote_wake.replace(false);
        let nothing_ready =
            inner.ready.borrow().is_empty() && !extra_ready && !woken && !inner.stopping.get();
        let deadline = inner.timers.borrow_mut().next_deadline();
        let timeout: Option<Duration> = if !nothing_ready {
            Some(Duration::ZERO)
        } else {
            match deadline {
                // `+inf` never comes: wait for I/O or another thread only.
                None => None,
                Some(when) if when == f64::INFINITY => None,
                Some(when) => {
                    // A past deadline, `-inf` included, is due now (`secs` is not positive).
                    let secs = when - inner.now();
                    if secs > 0.0 && inner.clock.advance_to(when) {
                        // Virtual time: jump to the timer instead of sleeping, but still look at
                        // I/O and the inbox without blocking.
                        Some(Duration::ZERO)
                    } else {
                        Some(secs_to_timeout(secs))
                    }
                }
            }
        };

        // 3. Poll. Skipped when it cannot find anything: nothing registered and no wait.
        let has_fds = !inner.fds.borrow().is_empty();
        let mut timeout = timeout;
        if timeout != Some(Duration::ZERO) && !inner.shared.prepare_to_block() {
            timeout = Some(Duration::ZERO);
        }
        if has_fds || timeout != Some(Duration::ZERO) {
            self.poll(timeout)?;
            inner.drain_inbox();
        }

        // 4. Due timers go behind what is already ready. (No clock read without timers.)
        if deadline.is_some() {
            let end = inner.now() + inner.clock.resolution();
            let mut timers = inner.timers.borrow_mut();
            let mut ready = inner.ready.borrow_mut();
            timers.pop_due(end, |entry| ready.push(entry));
        }

        // 5. Run exactly what is ready now; what it schedules waits for the next iteration.
        let ntodo = inner.ready.borrow().len();
        for _ in 0..ntodo {
            let item = inner.ready.borrow_mut().pop();
            match item {
                Some(item) => self.run_ready(item),
                None => break,
            }
        }
        Ok(())
    }

    /// Waits in the selector and queues the ready fd callbacks. A selector failure ends the run
    /// with the error, as an exception from `select()` leaves CPython's `run_forever` (a loop
    /// that only reported it would spin on a broken selector); what is queued stays queued.
    fn poll(&self, timeout: Option<Duration>) -> Result<()> {
        let inner = &*self.inner;
        let mut events = std::mem::take(&mut *inner.events.borrow_mut());
        events.clear();
        let result = match inner.selector.try_borrow_mut() {
            Ok(mut sel) => sel.select(&mut events, timeout),
            Err(_) => Ok(()),
        };
        if let Err(e) = result {
            *inner.events.borrow_mut() = events;
            return Err(Error::from(e));
        }
        // Watchers whose handle was cancelled are removed, as CPython's `_process_events`
        // does: left registered, a ready fd would wake every poll and the loop would spin.
        let mut cancelled: Vec<(RawFd, bool)> = Vec::new();
        {
            let fds = inner.fds.borrow();
            let mut ready = inner.ready.borrow_mut();
            for ev in &events {
                if let Some(w) = fds.get(&ev.fd) {
                    if ev.readable {
                        if let Some(r) = &w.reader {
                            if r.is_cancelled() {
                                cancelled.push((ev.fd, true));
                            } else {
                                ready.push(Ready::Handle(r.clone()));
                            }
                        }
                    }
                    if ev.writable {
                        if let Some(wr) = &w.writer {
                            if wr.is_cancelled() {
                                cancelled.push((ev.fd, false));
                            } else {
                                ready.push(Ready::Handle(wr.clone()));
                            }
                        }
                    }
                }
            }
        }
        *inner.events.borrow_mut() = events;
        for (fd, reader) in cancelled {
            if reader {
                self.unwatch_reader(fd);
            } else {
                self.unwatch_writer(fd);
            }
        }
        Ok(())
    }

    fn run_ready(&self, item: Ready) {
        match item {
            Ready::Handle(cell) => {
                if !cell.is_cancelled() {
                    self.run_callback(
                        cell.name(),
                        || Some(Handle::new(cell.clone())),
                        || cell.run(),
                    );
                }
            }
            Ready::Remote(cell) => {
                if !cell.is_cancelled() {
                    self.run_callback(cell.name(), || None, || cell.run());
                }
            }
            Ready::Queued(slot) => {
                // `None`: cancelled (and dropped) by its handle.
                if let Some(Remote::Call(call)) = slot.into_item() {
                    self.run_callback((call.name)(), || None, call.f);
                }
            }
            Ready::Timer(slot) => {
                // A sleep fires: its waker is woken outside the borrow of the timers, as a
                // callback (a waker of the user's that panics is reported, not propagated).
                let waker = self.inner.timers.borrow_mut().fire(slot);
                if let Some(w) = waker {
                    self.run_callback("asyncio::sleep", || None, || w.wake());
                }
            }
            Ready::Task(header) => {
                let debug_start = self.inner.debug.get().then(Instant::now);
                let name = crate::task::raw::run_task(self, header);
                if let (Some(start), Some(name)) = (debug_start, name) {
                    self.check_slow(start, &name);
                }
            }
        }
    }

    /// Runs one callback: a panic goes to the exception handler ("Exception in callback ..."),
    /// and in debug mode a slow callback is logged.
    fn run_callback(
        &self,
        name: &str,
        handle: impl FnOnce() -> Option<Handle>,
        run: impl FnOnce(),
    ) {
        let debug_start = self.inner.debug.get().then(Instant::now);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(run)) {
            let mut ctx = ExceptionContext::new(format!("Exception in callback {name}"));
            ctx.exception = Some(Error::from_panic(&*payload));
            ctx.handle = handle();
            self.call_exception_handler(&ctx);
        }
        if let Some(start) = debug_start {
            self.check_slow(start, name);
        }
    }

    fn check_slow(&self, start: Instant, what: &str) {
        let took = start.elapsed();
        if took >= self.inner.slow_callback_duration.get() {
            crate::events::log_warning(&format!(
                "Executing {} took {:.3} seconds",
                what,
                took.as_secs_f64()
            ));
        }
    }

    /// Runs the loop until [`stop`](EventLoop::stop) is called.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`], [`ErrorKind::AlreadyRunning`] ("This event loop is already
    /// running"), [`ErrorKind::AnotherLoopRunning`] when another loop runs on this thread;
    /// [`ErrorKind::Io`] if the selector fails (the run ends; queued work stays queued).
    pub fn run_forever(&self) -> Result<()> {
        let _guard = RunGuard::enter(self)?;
        loop {
            self.run_once(false)?;
            if self.inner.stopping.get() {
                break;
            }
        }
        Ok(())
    }

    /// Runs `future` as a task until it completes and returns its output.
    ///
    /// As in asyncio, the loop stops one iteration after the task finishes (its done callback
    /// stops the loop), so callbacks the task scheduled just before finishing still run.
    ///
    /// # Errors
    /// The run errors of [`run_forever`](EventLoop::run_forever);
    /// [`ErrorKind::StoppedBeforeComplete`] ("Event loop stopped before Future completed.") if
    /// the loop was stopped first (the task stays scheduled, and the loop is reusable);
    /// [`ErrorKind::Cancelled`] or [`ErrorKind::Panicked`] if the task was cancelled or panicked.
    ///
    /// ```
    /// let event_loop = asyncio::EventLoop::new()?;
    /// assert_eq!(event_loop.run_until_complete(async { 1 + 1 })?, 2);
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn run_until_complete<F: Future + 'static>(&self, future: F) -> Result<F::Output> {
        // Same checks as run_forever, before the task exists (CPython's order). Leaving the
        // guard clears `stopping`; keep a stop() made before this call (R12: one iteration).
        let pre_stopped = self.inner.stopping.get();
        drop(RunGuard::enter(self)?);
        self.inner.stopping.set(pre_stopped);
        let task = self.create_task(future)?;
        let active = Rc::new(Cell::new(true));
        let flag = active.clone();
        // Weak: if the run ends first (stopped), the callback stays with the pending task, and a
        // strong clone there would keep the loop alive through its own task table.
        let lp = self.downgrade();
        task.add_done_callback(move |_| {
            if let Some(lp) = lp.upgrade().filter(|_| flag.get()) {
                lp.stop();
            }
        })?;
        let result = self.run_forever();
        active.set(false);
        result?;
        if !task.done() {
            return Err(Error::new(
                ErrorKind::StoppedBeforeComplete,
                "Event loop stopped before Future completed.",
            ));
        }
        task.take_result()
    }

    /// Runs the loop until `future` (which may borrow from the caller) completes, polling it
    /// directly rather than as a task, like tokio's and smol's `block_on`.
    ///
    /// # Errors
    /// The run errors of [`run_forever`](EventLoop::run_forever);
    /// [`ErrorKind::StoppedBeforeComplete`] if [`stop`](EventLoop::stop) is called before the
    /// future completes.
    ///
    /// ```
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let mut total = 0;
    /// event_loop.block_on(async {
    ///     asyncio::sleep(0.0).await.unwrap();
    ///     total += 5;
    /// })?;
    /// assert_eq!(total, 5);
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output> {
        let _guard = RunGuard::enter(self)?;
        let mut future = pin!(future);
        let main = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
            shared: self.inner.shared.clone(),
        });
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            if main.woken.swap(false, Ordering::AcqRel) {
                // This poll answers every wake-up so far, drained from the inbox or not.
                self.inner.remote_wake.set(false);
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
                    Ok(Poll::Ready(v)) => return Ok(v),
                    Ok(Poll::Pending) => {}
                    Err(payload) => return Err(Error::from_panic(&*payload)),
                }
            }
            if self.inner.stopping.get() {
                return Err(Error::new(
                    ErrorKind::StoppedBeforeComplete,
                    "Event loop stopped before Future completed.",
                ));
            }
            self.run_once(main.woken.load(Ordering::Acquire))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::clock::VirtualClock;

    /// `block_on` reads its future's wake flag, then `run_once` drains the inbox. A wake-up from
    /// another thread between the two used to be drained and forgotten, and the loop blocked
    /// with the future never polled again (a hang seen in the `run_in_executor` benchmark about
    /// once per 100k round trips). On a virtual clock the bug shows without waiting: the
    /// iteration that should return at once jumps to the next timer instead.
    #[test]
    fn a_drained_wake_up_keeps_the_iteration_from_blocking() {
        let clock = VirtualClock::new();
        let lp = EventLoop::builder()
            .clock(Rc::new(clock.clone()))
            .build()
            .unwrap();
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        lp.call_later(60.0, move || f.set(true)).unwrap();
        let _guard = RunGuard::enter(&lp).unwrap();
        // What the waker of a `block_on` future does on another thread.
        assert!(lp.inner.shared.push_remote(Remote::Wake).is_ok());
        lp.run_once(false).unwrap();
        assert_eq!(clock.now(), 0.0, "the iteration waited for the timer");
        assert!(!fired.get());
        // Once the wake-up is answered, an idle iteration waits (here: jumps) again.
        lp.run_once(false).unwrap();
        assert_eq!(clock.now(), 60.0);
        assert!(fired.get());
    }
}
