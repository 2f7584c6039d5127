//! Crossing threads: [`LoopHandle::run_coroutine_threadsafe`], its [`ConcurrentFuture`], and
//! [`EventLoop::spawn_thread`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use futures::FutureExt;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::clock::instant_after;
use crate::runtime::core::{EventLoop, LoopHandle};
use crate::runtime::running::with_running;

struct Slot<T> {
    outcome: Option<Result<T>>,
    /// Set with the outcome and never cleared: the outcome may be taken, the future stays done.
    finished: bool,
    waker: Option<Waker>,
}

/// The error for a result asked for again after it was taken.
fn already_taken() -> Error {
    Error::new(
        ErrorKind::InvalidState,
        "the coroutine's result was already taken",
    )
}

struct CfShared<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
    cancel: AtomicBool,
    task_waker: AtomicWaker,
    loop_id: u64,
}

impl<T> CfShared<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        match self.slot.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn set(&self, outcome: Result<T>) {
        let waker = {
            let mut slot = self.lock();
            if slot.finished {
                return;
            }
            slot.finished = true;
            slot.outcome = Some(outcome);
            slot.waker.take()
        };
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The result of [`LoopHandle::run_coroutine_threadsafe`]: a thread-safe future (Python's
/// `concurrent.futures.Future`) that another thread can await or block on.
pub struct ConcurrentFuture<T> {
    shared: Arc<CfShared<T>>,
}

impl<T> ConcurrentFuture<T> {
    /// Whether the coroutine has finished.
    pub fn done(&self) -> bool {
        self.shared.lock().finished
    }

    /// Asks the loop to cancel the coroutine: it is dropped at its next step and the result
    /// becomes [`ErrorKind::Cancelled`]. Returns `false` if it had already finished.
    pub fn cancel(&self) -> bool {
        if self.done() {
            return false;
        }
        self.shared.cancel.store(true, Ordering::Release);
        self.shared.task_waker.wake();
        true
    }

    /// Blocks this thread until the result is there, at most `timeout` (`None`, or a timeout
    /// too long for an `Instant` such as `Duration::MAX`: no limit).
    ///
    /// # Errors
    /// The coroutine's error ([`ErrorKind::Cancelled`], [`ErrorKind::Panicked`], or
    /// [`ErrorKind::Closed`] if the loop closed before running it); [`ErrorKind::Timeout`];
    /// [`ErrorKind::WrongThread`] when called on the thread running the target loop, where
    /// blocking would deadlock; [`ErrorKind::InvalidState`] if the result was already taken by
    /// awaiting the future.
    pub fn result(self, timeout: Option<Duration>) -> Result<T> {
        let own_loop = with_running(|i| i.shared.id == self.shared.loop_id).unwrap_or(false);
        if own_loop {
            return Err(Error::new(
                ErrorKind::WrongThread,
                "blocking on a coroutine of the loop running on this thread would deadlock",
            ));
        }
        // `None` also for a timeout past what an `Instant` holds (`Duration::MAX`): no limit.
        let deadline = timeout.and_then(instant_after);
        let mut slot = self.shared.lock();
        loop {
            if let Some(o) = slot.outcome.take() {
                return o;
            }
            if slot.finished {
                return Err(already_taken());
            }
            slot = match deadline {
                None => match self.shared.ready.wait(slot) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                },
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::from_kind(ErrorKind::Timeout));
                    }
                    match self.shared.ready.wait_timeout(slot, d - now) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    }
                }
            };
        }
    }
}

impl<T> std::fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrentFuture")
            .field("done", &self.done())
            .finish()
    }
}

impl<T> Future for ConcurrentFuture<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let mut slot = self.shared.lock();
        match slot.outcome.take() {
            Some(o) => Poll::Ready(o),
            None if slot.finished => Poll::Ready(Err(already_taken())),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Sets `Closed` if the coroutine is dropped before it produced anything (loop closed).
struct DropGuard<T>(Arc<CfShared<T>>);

impl<T> Drop for DropGuard<T> {
    fn drop(&mut self) {
        let err = if self.0.cancel.load(Ordering::Acquire) {
            Error::cancelled()
        } else {
            Error::new(ErrorKind::Closed, "Event loop is closed")
        };
        self.0.set(Err(err));
    }
}

impl LoopHandle {
    /// Submits `future` to the loop from another thread; it runs there as a task. Returns a
    /// [`ConcurrentFuture`] to await (on any executor) or to block on.
    ///
    /// `future` must be `Send` because it is made on this thread. A coroutine that uses the
    /// loop's own `!Send` types (`sleep`, tasks, `LoopFuture`) across an `.await` is not: submit
    /// a `Send` closure that builds it on the loop thread with
    /// [`run_coroutine_threadsafe_with`](LoopHandle::run_coroutine_threadsafe_with).
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] if the loop is closed.
    pub fn run_coroutine_threadsafe<F>(&self, future: F) -> Result<ConcurrentFuture<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.run_coroutine_threadsafe_with(move || future)
    }

    /// Like [`run_coroutine_threadsafe`](LoopHandle::run_coroutine_threadsafe), but `make`
    /// builds the coroutine on the loop thread, so the coroutine itself need not be `Send`.
    ///
    /// ```
    /// use asyncio::EventLoop;
    ///
    /// let (handle, thread) = EventLoop::spawn_thread()?;
    /// let slept = handle
    ///     .run_coroutine_threadsafe_with(|| async {
    ///         asyncio::sleep(0.001).await.is_ok() // `Sleep` is !Send: built on the loop thread.
    ///     })?
    ///     .result(None)?;
    /// assert!(slept);
    /// handle.stop();
    /// thread.join().unwrap()?;
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] if the loop is closed.
    pub fn run_coroutine_threadsafe_with<M, F>(
        &self,
        make: M,
    ) -> Result<ConcurrentFuture<F::Output>>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let shared = Arc::new(CfShared {
            slot: Mutex::new(Slot {
                outcome: None,
                finished: false,
                waker: None,
            }),
            ready: Condvar::new(),
            cancel: AtomicBool::new(false),
            task_waker: AtomicWaker::new(),
            loop_id: self.id(),
        });
        // The guard travels with the coroutine, so that the result resolves (to `Closed`)
        // even if the loop drops the submission without running it. In the tuple, the
        // coroutine comes first and is dropped first.
        let submission = (make, DropGuard(shared.clone()));
        self.call_soon_threadsafe(move || {
            let run = async move {
                // Declared before the coroutine, so dropped after it.
                let guard = submission.1;
                let outcome = {
                    let make = submission.0;
                    let mut future =
                        std::pin::pin!(std::panic::AssertUnwindSafe(async move { make().await })
                            .catch_unwind());
                    std::future::poll_fn(|cx| {
                        if guard.0.cancel.load(Ordering::Acquire) {
                            return Poll::Ready(None);
                        }
                        guard.0.task_waker.register(cx.waker());
                        if guard.0.cancel.load(Ordering::Acquire) {
                            return Poll::Ready(None);
                        }
                        future.as_mut().poll(cx).map(Some)
                    })
                    .await
                    // The coroutine is dropped here, before its outcome is published: whoever
                    // sees `Cancelled` can rely on its `Drop` (its `finally`) having run.
                };
                match outcome {
                    None => guard.0.set(Err(Error::cancelled())),
                    Some(Ok(v)) => guard.0.set(Ok(v)),
                    Some(Err(p)) => guard.0.set(Err(Error::from_panic(&*p))),
                }
            };
            match crate::runtime::running::try_running_loop() {
                Some(lp) => {
                    let _ = lp.create_task(run);
                }
                None => drop(run),
            }
        })?;
        Ok(ConcurrentFuture { shared })
    }
}

impl EventLoop {
    /// Starts a new thread that builds an [`EventLoop`], runs it forever, and closes it once
    /// stopped. Returns the loop's [`LoopHandle`] and the thread's join handle (whose result is
    /// the run's).
    ///
    /// This is asyncio's "loop in another thread" pattern; unlike Python, the loop is created
    /// on its thread, because a loop holding `!Send` callbacks cannot move.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the thread or the loop cannot be created.
    pub fn spawn_thread() -> Result<(LoopHandle, JoinHandle<Result<()>>)> {
        Self::spawn_thread_with(EventLoop::new)
    }

    /// Like [`spawn_thread`](EventLoop::spawn_thread), with the loop made by `factory` on the
    /// new thread (for a custom selector, clock or executor).
    ///
    /// # Errors
    /// The factory's error; [`ErrorKind::Io`] if the thread cannot be started.
    pub fn spawn_thread_with<F>(factory: F) -> Result<(LoopHandle, JoinHandle<Result<()>>)>
    where
        F: FnOnce() -> Result<EventLoop> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("asyncio-loop".into())
            .spawn(move || {
                let event_loop = match factory() {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(e.clone()));
                        return Err(e);
                    }
                };
                let _ = tx.send(Ok(event_loop.handle()));
                let r = event_loop.run_forever();
                event_loop.close()?;
                r
            })?;
        match rx.recv() {
            Ok(Ok(handle)) => Ok((handle, thread)),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(Error::new(
                ErrorKind::Panicked,
                "the loop thread panicked before its loop was ready",
            )),
        }
    }
}
