//! The exception handler ([`ExceptionContext`], [`ExceptionHandler`]) and the object-safe
//! [`AbstractEventLoop`] trait.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::handles::{Handle, ThreadsafeHandle, TimerHandle};
use crate::runtime::core::{EventLoop, LoopHandle};
use crate::task::TaskRef;

/// A custom exception handler: called with the loop and the context of an error that nobody
/// else could receive (a panicking callback, a task's unretrieved panic, ...).
pub type ExceptionHandler = Rc<dyn Fn(&EventLoop, &ExceptionContext)>;

/// What went wrong, for the exception handler (asyncio's `context` dict).
///
/// The well-known keys are fields; anything else (for example `protocol` or `transport`
/// descriptions) goes in `extra`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ExceptionContext {
    /// What happened ("Exception in callback ...", "Task exception was never retrieved", ...).
    pub message: String,
    /// The error, if there is one (a panic becomes [`ErrorKind::Panicked`](crate::ErrorKind)).
    pub exception: Option<Error>,
    /// The task concerned.
    pub task: Option<TaskRef>,
    /// The callback handle concerned.
    pub handle: Option<Handle>,
    /// Other keys, printed sorted by the default handler.
    pub extra: BTreeMap<String, String>,
}

impl ExceptionContext {
    /// A context with just a message.
    pub fn new(message: impl Into<String>) -> Self {
        ExceptionContext {
            message: message.into(),
            ..Default::default()
        }
    }

    /// Sets the error.
    pub fn with_exception(mut self, error: Error) -> Self {
        self.exception = Some(error);
        self
    }

    /// Adds an extra key.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// The text the default handler logs: the message, then one `key: value` line per key,
    /// sorted.
    pub fn render(&self) -> String {
        let message = if self.message.is_empty() {
            "Unhandled exception in event loop"
        } else {
            &self.message
        };
        let mut lines = vec![message.to_owned()];
        let mut keys: BTreeMap<&str, String> = BTreeMap::new();
        if let Some(e) = &self.exception {
            keys.insert("exception", format!("{e:?}"));
        }
        if let Some(h) = &self.handle {
            keys.insert("handle", format!("{h:?}"));
        }
        if let Some(t) = &self.task {
            keys.insert("task", format!("{t:?}"));
        }
        for (k, v) in &self.extra {
            keys.insert(k, v.clone());
        }
        for (k, v) in keys {
            lines.push(format!("{k}: {v}"));
        }
        lines.join("\n")
    }
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Logs at ERROR on target `asyncio`, or prints to stderr when no logger is set up.
pub(crate) fn log_error(text: &str) {
    if log::max_level() >= log::LevelFilter::Error {
        log::error!(target: "asyncio", "{text}");
    } else {
        eprintln!("asyncio: {text}");
    }
}

/// Logs at WARN on target `asyncio`, or prints to stderr when no logger is set up.
pub(crate) fn log_warning(text: &str) {
    if log::max_level() >= log::LevelFilter::Warn {
        log::warn!(target: "asyncio", "{text}");
    } else {
        eprintln!("asyncio: {text}");
    }
}

impl EventLoop {
    /// Sets the exception handler; `None` restores the default.
    ///
    /// ```
    /// use asyncio::{EventLoop, ExceptionHandler};
    /// use std::{cell::RefCell, rc::Rc};
    ///
    /// let event_loop = EventLoop::new()?;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let s = seen.clone();
    /// let handler: ExceptionHandler = Rc::new(move |_, ctx| s.borrow_mut().push(ctx.message.clone()));
    /// event_loop.set_exception_handler(Some(handler));
    /// event_loop.call_soon(|| panic!("boom"))?;
    /// event_loop.run_until_complete(asyncio::sleep(0.0))??;
    /// assert!(seen.borrow()[0].starts_with("Exception in callback"));
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn set_exception_handler(&self, handler: Option<ExceptionHandler>) {
        *self.inner.exception_handler.borrow_mut() = handler;
    }

    /// The custom exception handler, if one is set.
    pub fn get_exception_handler(&self) -> Option<ExceptionHandler> {
        self.inner.exception_handler.borrow().clone()
    }

    /// Calls the custom handler, or the default one. A panicking custom handler falls back to
    /// the default handler with "Unhandled error in exception handler"; nothing propagates.
    pub fn call_exception_handler(&self, context: &ExceptionContext) {
        let handler = self.get_exception_handler();
        let Some(handler) = handler else {
            self.default_exception_handler(context);
            return;
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| handler(self, context))) {
            let mut ctx = ExceptionContext::new("Unhandled error in exception handler");
            ctx.exception = Some(Error::from_panic(&*payload));
            ctx.extra.insert("context".into(), context.render());
            self.default_exception_handler(&ctx);
        }
    }

    /// The default handler: logs the context at ERROR on the `log` target `asyncio` (stderr
    /// when no logger is installed).
    pub fn default_exception_handler(&self, context: &ExceptionContext) {
        let text = context.render();
        if catch_unwind(AssertUnwindSafe(|| log_error(&text))).is_err() {
            eprintln!("asyncio: Exception in default exception handler\n{text}");
        }
    }
}

/// The object-safe event loop interface, for wrappers, mocks and `&dyn AbstractEventLoop`.
///
/// [`EventLoop`] implements it; its inherent generic methods are the fast path, and these take
/// boxed closures and futures instead.
///
/// ```
/// use asyncio::{AbstractEventLoop, EventLoop};
///
/// fn schedule_hello(lp: &dyn AbstractEventLoop) -> asyncio::Result<()> {
///     lp.call_soon(Box::new(|| println!("hello")))?;
///     Ok(())
/// }
/// let event_loop = EventLoop::new()?;
/// schedule_hello(&event_loop)?;
/// let out = AbstractEventLoop::run_until_complete(&event_loop, Box::pin(async {}))?;
/// # Ok::<(), asyncio::Error>(())
/// ```
#[async_trait(?Send)]
pub trait AbstractEventLoop {
    /// See [`EventLoop::time`].
    fn time(&self) -> f64;
    /// See [`EventLoop::call_soon`].
    ///
    /// # Errors
    /// As the inherent method.
    fn call_soon(&self, callback: Box<dyn FnOnce()>) -> Result<Handle>;
    /// See [`EventLoop::call_later`] (seconds).
    ///
    /// # Errors
    /// As the inherent method.
    fn call_later(&self, delay: f64, callback: Box<dyn FnOnce()>) -> Result<TimerHandle>;
    /// See [`EventLoop::call_at`] (loop time).
    ///
    /// # Errors
    /// As the inherent method.
    fn call_at(&self, when: f64, callback: Box<dyn FnOnce()>) -> Result<TimerHandle>;
    /// See [`EventLoop::call_soon_threadsafe`].
    ///
    /// # Errors
    /// As the inherent method.
    fn call_soon_threadsafe(&self, callback: Box<dyn FnOnce() + Send>) -> Result<ThreadsafeHandle>;
    /// See [`EventLoop::create_task`].
    ///
    /// # Errors
    /// As the inherent method.
    fn create_task(&self, future: Pin<Box<dyn Future<Output = ()>>>) -> Result<TaskRef>;
    /// See [`EventLoop::run_forever`].
    ///
    /// # Errors
    /// As the inherent method.
    fn run_forever(&self) -> Result<()>;
    /// See [`EventLoop::run_until_complete`].
    ///
    /// # Errors
    /// As the inherent method.
    fn run_until_complete(&self, future: Pin<Box<dyn Future<Output = ()>>>) -> Result<()>;
    /// See [`EventLoop::stop`].
    fn stop(&self);
    /// See [`EventLoop::close`].
    ///
    /// # Errors
    /// As the inherent method.
    fn close(&self) -> Result<()>;
    /// See [`EventLoop::is_running`].
    fn is_running(&self) -> bool;
    /// See [`EventLoop::is_closed`].
    fn is_closed(&self) -> bool;
    /// See [`EventLoop::get_debug`].
    fn get_debug(&self) -> bool;
    /// See [`EventLoop::set_debug`].
    fn set_debug(&self, enabled: bool);
    /// See [`EventLoop::call_exception_handler`].
    fn call_exception_handler(&self, context: &ExceptionContext);
    /// See [`EventLoop::handle`].
    fn handle(&self) -> LoopHandle;
    /// See [`EventLoop::run_in_executor`] (default executor).
    ///
    /// # Errors
    /// As the inherent method.
    async fn run_in_executor(&self, job: Box<dyn FnOnce() + Send>) -> Result<()>;
    /// Sleeps on this loop (see [`sleep`](crate::sleep)).
    ///
    /// # Errors
    /// As [`sleep`](crate::sleep).
    async fn sleep(&self, delay: f64) -> Result<()>;
    /// The concrete loop behind the trait object, if it is one.
    fn as_event_loop(&self) -> Option<&EventLoop>;
}

#[async_trait(?Send)]
impl AbstractEventLoop for EventLoop {
    fn time(&self) -> f64 {
        EventLoop::time(self)
    }
    fn call_soon(&self, callback: Box<dyn FnOnce()>) -> Result<Handle> {
        EventLoop::call_soon(self, callback)
    }
    fn call_later(&self, delay: f64, callback: Box<dyn FnOnce()>) -> Result<TimerHandle> {
        EventLoop::call_later(self, delay, callback)
    }
    fn call_at(&self, when: f64, callback: Box<dyn FnOnce()>) -> Result<TimerHandle> {
        EventLoop::call_at(self, when, callback)
    }
    fn call_soon_threadsafe(&self, callback: Box<dyn FnOnce() + Send>) -> Result<ThreadsafeHandle> {
        EventLoop::call_soon_threadsafe(self, callback)
    }
    fn create_task(&self, future: Pin<Box<dyn Future<Output = ()>>>) -> Result<TaskRef> {
        EventLoop::create_task(self, future).map(|t| t.as_task_ref())
    }
    fn run_forever(&self) -> Result<()> {
        EventLoop::run_forever(self)
    }
    fn run_until_complete(&self, future: Pin<Box<dyn Future<Output = ()>>>) -> Result<()> {
        EventLoop::run_until_complete(self, future)
    }
    fn stop(&self) {
        EventLoop::stop(self)
    }
    fn close(&self) -> Result<()> {
        EventLoop::close(self)
    }
    fn is_running(&self) -> bool {
        EventLoop::is_running(self)
    }
    fn is_closed(&self) -> bool {
        EventLoop::is_closed(self)
    }
    fn get_debug(&self) -> bool {
        EventLoop::get_debug(self)
    }
    fn set_debug(&self, enabled: bool) {
        EventLoop::set_debug(self, enabled)
    }
    fn call_exception_handler(&self, context: &ExceptionContext) {
        EventLoop::call_exception_handler(self, context)
    }
    fn handle(&self) -> LoopHandle {
        EventLoop::handle(self)
    }
    async fn run_in_executor(&self, job: Box<dyn FnOnce() + Send>) -> Result<()> {
        EventLoop::run_in_executor(self, None, job)?.await
    }
    async fn sleep(&self, delay: f64) -> Result<()> {
        crate::sleep(delay).await
    }
    fn as_event_loop(&self) -> Option<&EventLoop> {
        Some(self)
    }
}
