//! [`LoopFuture<T>`]: asyncio's `Future`, a result slot that callbacks and tasks wait on.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::{EventLoop, Inner};
use crate::runtime::running::check_owner;

type DoneCallback<T> = Box<dyn FnOnce(&LoopFuture<T>)>;

/// Who waits for the outcome, in registration order: an awaiting task's wake-up is, as in
/// asyncio, just another done callback, so the two kinds run in the order they were added.
enum Waiter<T> {
    Wake(Waker),
    Callback(DoneCallback<T>),
}

struct State<T> {
    outcome: Option<Result<T>>,
    waiters: Vec<Waiter<T>>,
}

struct Shared<T> {
    event_loop: Weak<Inner>,
    state: RefCell<State<T>>,
}

/// asyncio's `Future`: a slot for a result that is set once, by [`set_result`],
/// [`set_exception`] or [`cancel`].
///
/// Done callbacks are scheduled with `call_soon` when the result is set, in registration order,
/// never called synchronously (rule R9). Awaiting a `LoopFuture` (clone it first; clones share
/// the slot) gives `Result<T, Error>`. It must be awaited on its own loop: awaited while another
/// loop runs (`run_until_complete` of another loop, or that loop's tasks), it gives
/// [`ErrorKind::InvalidArgument`], as asyncio refuses a future of a different loop.
///
/// [`set_result`]: LoopFuture::set_result
/// [`set_exception`]: LoopFuture::set_exception
/// [`cancel`]: LoopFuture::cancel
///
/// ```
/// use asyncio::EventLoop;
///
/// let event_loop = EventLoop::new()?;
/// let fut = event_loop.create_future::<&str>();
/// let setter = fut.clone();
/// event_loop.call_later(0.01, move || setter.set_result("done").unwrap())?;
/// assert_eq!(event_loop.run_until_complete(fut)??, "done");
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct LoopFuture<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for LoopFuture<T> {
    fn clone(&self) -> Self {
        LoopFuture {
            shared: self.shared.clone(),
        }
    }
}

impl<T: 'static> LoopFuture<T> {
    pub(crate) fn new(event_loop: &EventLoop) -> Self {
        LoopFuture {
            shared: Rc::new(Shared {
                event_loop: Rc::downgrade(&event_loop.inner),
                state: RefCell::new(State {
                    outcome: None,
                    waiters: Vec::new(),
                }),
            }),
        }
    }

    /// The loop the future is bound to, unless it is gone.
    pub fn get_loop(&self) -> Option<EventLoop> {
        self.shared.event_loop.upgrade().map(EventLoop::from_inner)
    }

    /// Whether a result, error or cancellation was set.
    pub fn done(&self) -> bool {
        self.shared.state.borrow().outcome.is_some()
    }

    /// Whether the future was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(&self.shared.state.borrow().outcome, Some(Err(e)) if e.is_cancelled())
    }

    /// Sets the result and schedules the done callbacks.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] if the future is already done; [`ErrorKind::Closed`] if it has
    /// done callbacks and its loop is closed (the result is still set).
    pub fn set_result(&self, value: T) -> Result<()> {
        self.complete(Ok(value))
    }

    /// Sets an error as the outcome and schedules the done callbacks.
    ///
    /// # Errors
    /// As [`set_result`](LoopFuture::set_result).
    pub fn set_exception(&self, error: Error) -> Result<()> {
        self.complete(Err(error))
    }

    /// Cancels the future; returns `false` if it was already done.
    pub fn cancel(&self) -> bool {
        if self.done() {
            return false;
        }
        let _ = self.complete(Err(Error::cancelled()));
        true
    }

    fn complete(&self, outcome: Result<T>) -> Result<()> {
        let waiters = {
            let mut st = self.shared.state.borrow_mut();
            if st.outcome.is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidState,
                    "invalid state: future is done",
                ));
            }
            st.outcome = Some(outcome);
            std::mem::take(&mut st.waiters)
        };
        self.schedule_waiters(waiters)
    }

    /// Wakes tasks and schedules callbacks, in registration order (a task woken on the loop
    /// thread joins the ready queue right away, as a `call_soon` would).
    fn schedule_waiters(&self, waiters: Vec<Waiter<T>>) -> Result<()> {
        let mut lp = None;
        let mut result = Ok(());
        for w in waiters {
            match w {
                Waiter::Wake(w) => w.wake(),
                Waiter::Callback(cb) => {
                    if lp.is_none() {
                        lp = self.get_loop();
                    }
                    let me = self.clone();
                    let scheduled = match &lp {
                        Some(lp) => lp.call_soon(move || cb(&me)).map(|_| ()),
                        None => Err(Error::closed()),
                    };
                    if result.is_ok() {
                        result = scheduled;
                    }
                }
            }
        }
        result
    }

    /// A copy of the result.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] ("Result is not set.") while pending; the stored error if one
    /// was set; [`ErrorKind::Cancelled`] if cancelled.
    pub fn result(&self) -> Result<T>
    where
        T: Clone,
    {
        match &self.shared.state.borrow().outcome {
            None => Err(Error::new(ErrorKind::InvalidState, "Result is not set.")),
            Some(o) => o.clone(),
        }
    }

    /// The stored error: `Ok(None)` after a normal result.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] while pending.
    pub fn exception(&self) -> Result<Option<Error>> {
        match &self.shared.state.borrow().outcome {
            None => Err(Error::new(ErrorKind::InvalidState, "Exception is not set.")),
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => Ok(Some(e.clone())),
        }
    }

    /// Adds a callback run (through `call_soon`) once the future is done; on a done future it is
    /// scheduled at once.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] if the future is done and its loop closed.
    pub fn add_done_callback(&self, callback: impl FnOnce(&LoopFuture<T>) + 'static) -> Result<()> {
        if self.done() {
            return self.schedule_waiters(vec![Waiter::Callback(Box::new(callback))]);
        }
        self.shared
            .state
            .borrow_mut()
            .waiters
            .push(Waiter::Callback(Box::new(callback)));
        Ok(())
    }
}

impl<T: Clone + 'static> Future for LoopFuture<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let owner = self.shared.event_loop.as_ptr();
        if let Err(e) = check_owner(|running| Rc::as_ptr(running) == owner) {
            return Poll::Ready(Err(e));
        }
        let mut st = self.shared.state.borrow_mut();
        match &st.outcome {
            Some(o) => Poll::Ready(o.clone()),
            None => {
                let known = st
                    .waiters
                    .iter()
                    .any(|w| matches!(w, Waiter::Wake(w) if w.will_wake(cx.waker())));
                if !known {
                    st.waiters.push(Waiter::Wake(cx.waker().clone()));
                }
                Poll::Pending
            }
        }
    }
}

impl<T> fmt::Debug for LoopFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.state.borrow();
        let state = match &st.outcome {
            None => "pending",
            Some(Ok(_)) => "finished",
            Some(Err(e)) if e.is_cancelled() => "cancelled",
            Some(Err(_)) => "failed",
        };
        f.debug_struct("LoopFuture").field("state", &state).finish()
    }
}
