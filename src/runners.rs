//! `asyncio.run` and `asyncio.Runner`: create a loop, run a future, clean up.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::events::ExceptionContext;
use crate::runtime::core::EventLoop;
use crate::runtime::running::try_running_loop;
use crate::task::TaskRef;
use crate::unix::signals::InterruptGuard;

/// How long [`Runner::close`] waits for the default executor's workers (asyncio's
/// `THREAD_JOIN_TIMEOUT`).
pub const THREAD_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

type LoopFactory = Box<dyn FnOnce() -> Result<EventLoop>>;

/// Runs `future` on a fresh event loop and closes the loop: asyncio's `run()`.
///
/// Tasks still pending when `future` finishes are cancelled and awaited, the default executor is
/// shut down (waiting for its workers), and the loop is closed.
///
/// # Errors
/// [`ErrorKind::AnotherLoopRunning`] ("asyncio.run() cannot be called from a running event
/// loop"); the future's task error (cancelled, panicked); loop creation errors.
///
/// ```
/// let answer = asyncio::run(async {
///     asyncio::sleep(0.001).await.unwrap();
///     42
/// })?;
/// assert_eq!(answer, 42);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub fn run<F: Future + 'static>(future: F) -> Result<F::Output> {
    if try_running_loop().is_some() {
        return Err(Error::new(
            ErrorKind::AnotherLoopRunning,
            "asyncio.run() cannot be called from a running event loop",
        ));
    }
    let mut runner = Runner::new();
    let out = runner.run(future);
    let closed = runner.close();
    let out = out?;
    closed?;
    Ok(out)
}

/// A reusable context for running several futures on one loop: asyncio's `Runner`.
///
/// ```
/// use asyncio::{EventLoop, Runner};
///
/// let mut runner = Runner::builder()
///     .debug(true)
///     .loop_factory(EventLoop::new)
///     .build();
/// assert_eq!(runner.run(async { 1 })?, 1);
/// assert_eq!(runner.run(async { 2 })?, 2);
/// assert!(runner.get_loop()?.get_debug());
/// runner.close()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct Runner {
    factory: Option<LoopFactory>,
    debug: Option<bool>,
    event_loop: Option<EventLoop>,
    /// Whether the runner made its loop the policy's current loop (no factory given).
    set_loop: bool,
    closed: bool,
}

/// Configures a [`Runner`].
#[derive(Default)]
pub struct RunnerBuilder {
    factory: Option<LoopFactory>,
    debug: Option<bool>,
}

impl RunnerBuilder {
    /// Sets the loop's debug mode (left as the loop has it when not called).
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = Some(debug);
        self
    }

    /// Makes the loop with `factory` instead of the policy's
    /// [`new_event_loop`](crate::new_event_loop); the policy's current loop is then left
    /// untouched. Without a factory the runner sets its loop as the thread's current loop while
    /// it is open, and sets `None` when it closes.
    pub fn loop_factory(mut self, factory: impl FnOnce() -> Result<EventLoop> + 'static) -> Self {
        self.factory = Some(Box::new(factory));
        self
    }

    /// The runner; its loop is created on first use.
    pub fn build(self) -> Runner {
        Runner {
            factory: self.factory,
            debug: self.debug,
            event_loop: None,
            set_loop: false,
            closed: false,
        }
    }
}

impl std::fmt::Debug for RunnerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerBuilder")
            .field("loop_factory", &self.factory.is_some())
            .field("debug", &self.debug)
            .finish()
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("event_loop", &self.event_loop)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner with the default loop factory.
    pub fn new() -> Self {
        RunnerBuilder::default().build()
    }

    /// A builder for a runner with a loop factory or debug setting.
    pub fn builder() -> RunnerBuilder {
        RunnerBuilder::default()
    }

    fn lazy_init(&mut self) -> Result<EventLoop> {
        if self.closed {
            return Err(Error::new(ErrorKind::Closed, "Runner is closed"));
        }
        if let Some(l) = &self.event_loop {
            return Ok(l.clone());
        }
        // R49: without a factory, the policy makes the loop and it becomes this thread's
        // current loop; with a factory, the policy is not touched.
        let event_loop = match self.factory.take() {
            Some(f) => f()?,
            None => {
                let lp = crate::policy::new_event_loop()?;
                crate::policy::set_event_loop(Some(lp.clone()))?;
                self.set_loop = true;
                lp
            }
        };
        if let Some(d) = self.debug {
            event_loop.set_debug(d);
        }
        self.event_loop = Some(event_loop.clone());
        Ok(event_loop)
    }

    /// The runner's loop (created now if needed).
    ///
    /// # Errors
    /// "Runner is closed" ([`ErrorKind::Closed`]); loop creation errors.
    pub fn get_loop(&mut self) -> Result<EventLoop> {
        self.lazy_init()
    }

    /// Runs `future` to completion on the runner's loop.
    ///
    /// On the main thread, when SIGINT has its default disposition, a handler is installed for
    /// the run (R51): the first SIGINT (Ctrl-C) cancels the future's task, and `run` then fails
    /// with [`ErrorKind::Interrupted`] ("KeyboardInterrupt"); a second SIGINT before `run`
    /// returns restores the default disposition and raises SIGINT again, which ends the process
    /// as an uncaught Ctrl-C does (asyncio raises `KeyboardInterrupt` at once). The previous
    /// disposition comes back when `run` returns; a handler that cannot be installed is simply
    /// not used. A loop's own `add_signal_handler(SIGINT)` during the run replaces this one.
    ///
    /// # Errors
    /// [`ErrorKind::AnotherLoopRunning`] ("Runner.run() cannot be called from a running event
    /// loop"); [`ErrorKind::Closed`] after `close`; [`ErrorKind::Interrupted`] after a SIGINT;
    /// the task's error.
    pub fn run<F: Future + 'static>(&mut self, future: F) -> Result<F::Output> {
        if try_running_loop().is_some() {
            return Err(Error::new(
                ErrorKind::AnotherLoopRunning,
                "Runner.run() cannot be called from a running event loop",
            ));
        }
        let event_loop = self.lazy_init()?;
        // The main task records itself on its first step, so the SIGINT callback can cancel it.
        let main_task: Rc<RefCell<Option<TaskRef>>> = Rc::default();
        // A SIGINT before that step: the task cancels itself when it starts.
        let cancel_on_start = Rc::new(Cell::new(false));
        // The main task was already done at the first SIGINT (asyncio raises KeyboardInterrupt
        // from the handler then, and the result is lost).
        let too_late = Rc::new(Cell::new(false));
        let (mt, on_start, late) = (main_task.clone(), cancel_on_start.clone(), too_late.clone());
        let guard = InterruptGuard::install(&event_loop, move || match mt.borrow().as_ref() {
            Some(task) => late.set(!task.cancel()),
            None => on_start.set(true),
        });
        let (mt, on_start) = (main_task.clone(), cancel_on_start);
        let result = event_loop.run_until_complete(async move {
            let me = crate::get_running_loop()
                .ok()
                .and_then(|l| l.current_task());
            let cancel_now = on_start.get() && me.as_ref().is_some_and(TaskRef::cancel);
            *mt.borrow_mut() = me;
            if cancel_now {
                // The cancellation drops this future at the task's next step.
                std::future::pending::<()>().await;
            }
            future.await
        });
        main_task.borrow_mut().take();
        let interrupted = guard.as_ref().is_some_and(InterruptGuard::interrupted);
        drop(guard);
        match result {
            Err(e) if interrupted && e.is_cancelled() => Err(keyboard_interrupt()),
            Ok(_) if interrupted && too_late.get() => Err(keyboard_interrupt()),
            other => other,
        }
    }

    /// Cancels the loop's remaining tasks and waits for them, shuts the default executor down
    /// (waiting up to [`THREAD_JOIN_TIMEOUT`]), and closes the loop. Idempotent.
    ///
    /// # Errors
    /// A failure to close the loop (for example when called from inside it).
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let Some(event_loop) = self.event_loop.take() else {
            return Ok(());
        };
        if event_loop.is_closed() {
            return Ok(());
        }
        let result = shutdown(&event_loop);
        if self.set_loop {
            let _ = crate::policy::set_event_loop(None);
        }
        event_loop.close()?;
        result
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The error of a run cut short by SIGINT (Python's `KeyboardInterrupt`).
fn keyboard_interrupt() -> Error {
    Error::new(ErrorKind::Interrupted, "KeyboardInterrupt")
}

/// Cancels every pending task, waits for them, then joins the default executor.
fn shutdown(event_loop: &EventLoop) -> Result<()> {
    let tasks = event_loop.all_tasks();
    if !tasks.is_empty() {
        for t in &tasks {
            // As asyncio's gather(return_exceptions=True) here: the shutdown owns the outcome,
            // so a failure is reported once, below, and not as "never retrieved".
            t.mark_retrieved();
            t.cancel();
        }
        let remaining = std::rc::Rc::new(std::cell::Cell::new(tasks.len()));
        let all_done = event_loop.create_future::<()>();
        for t in &tasks {
            let remaining = remaining.clone();
            let all_done = all_done.clone();
            t.add_done_callback(move |_| {
                remaining.set(remaining.get() - 1);
                if remaining.get() == 0 {
                    let _ = all_done.set_result(());
                }
            })?;
        }
        let _ = event_loop.run_until_complete(all_done);
        for t in &tasks {
            if let Some(e) = t.exception() {
                if !e.is_cancelled() {
                    let mut ctx =
                        ExceptionContext::new("unhandled exception during asyncio.run() shutdown");
                    ctx.exception = Some(e);
                    ctx.task = Some(t.clone());
                    event_loop.call_exception_handler(&ctx);
                }
            }
        }
    }
    let lp = event_loop.clone();
    match event_loop.run_until_complete(async move {
        lp.shutdown_default_executor(Some(THREAD_JOIN_TIMEOUT))
            .await
    }) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.kind() == ErrorKind::Timeout => Ok(()),
        Ok(Err(e)) | Err(e) => Err(e),
    }
}
