//! asyncio's coroutine helpers: `sleep`, `wait_for`, `timeout`, `gather`, `shield`, `wait`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, ErrorKind, Result};
use crate::handles::TimerSlot;
use crate::runtime::clock::IntoDelay;
use crate::runtime::running::get_running_loop;
use crate::runtime::timers::WakeState;
use crate::task::Task;

/// The future returned by [`sleep`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    /// The delay, or why it is not one (boxed: the future lives in every sleeping task).
    delay: std::result::Result<f64, Box<Error>>,
    state: SleepState,
}

/// Where a [`Sleep`] is.
enum SleepState {
    /// Not polled yet.
    Idle,
    /// Its timer is armed: the slot that holds the task's waker in the loop's timer heap (no
    /// allocation of its own; see `runtime::timers`).
    Armed(TimerSlot),
    /// Over (or, for a zero delay, yielded once: over at the next poll).
    Done,
}

/// Sleeps `delay` (`f64` seconds or a `Duration`) on the running loop. `sleep(0.0)` yields once,
/// letting every other ready callback and task run (asyncio's `sleep(0)`); so does any delay
/// `<= 0`, `-inf` included. `+inf` sleeps forever. The table of values is at [`IntoDelay`].
///
/// # Errors
/// The awaited result is [`ErrorKind::NoRunningLoop`] outside a running loop and
/// [`ErrorKind::InvalidArgument`] for a NaN delay.
///
/// # Cancel safety
/// Dropping the future cancels its timer; nothing else is lost.
///
/// ```
/// let event_loop = asyncio::EventLoop::new()?;
/// event_loop.run_until_complete(async {
///     asyncio::sleep(0.001).await.unwrap();
///     asyncio::sleep(std::time::Duration::from_millis(1)).await.unwrap();
/// })?;
/// # Ok::<(), asyncio::Error>(())
/// ```
pub fn sleep<D: IntoDelay>(delay: D) -> Sleep {
    Sleep::new(delay.into_delay())
}

impl Sleep {
    fn new(delay: Result<f64>) -> Sleep {
        Sleep {
            delay: delay.map_err(Box::new),
            state: SleepState::Idle,
        }
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("delay", &self.delay.as_ref().ok())
            .field("armed", &matches!(self.state, SleepState::Armed(_)))
            .finish()
    }
}

impl Future for Sleep {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let delay = match &self.delay {
            Ok(d) => *d,
            Err(e) => return Poll::Ready(Err((**e).clone())),
        };
        match &self.state {
            SleepState::Done => return Poll::Ready(Ok(())),
            SleepState::Armed(timer) => {
                return match timer.poll_wake(cx.waker()) {
                    WakeState::Fired => {
                        self.state = SleepState::Done;
                        Poll::Ready(Ok(()))
                    }
                    WakeState::Waiting | WakeState::Gone => Poll::Pending,
                };
            }
            SleepState::Idle => {}
        }
        if delay <= 0.0 {
            if let Err(e) = get_running_loop() {
                return Poll::Ready(Err(e));
            }
            self.state = SleepState::Done;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let lp = match get_running_loop() {
            Ok(lp) => lp,
            Err(e) => return Poll::Ready(Err(e)),
        };
        match lp.call_later_wake(delay, cx.waker().clone()) {
            Ok(t) => {
                self.state = SleepState::Armed(t);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let SleepState::Armed(timer) = &self.state {
            timer.release_wake();
        }
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`timeout`] and [`wait_for`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Option<Sleep>,
        immediate: bool,
    }
}

/// Runs `future` with a time limit of `delay`: its output, or [`ErrorKind::Timeout`] once the
/// delay passes (the future is then dropped, which cancels it). A delay of zero or less gives
/// the future exactly one poll; `f64::INFINITY` means no limit (the table of values is at
/// [`IntoDelay`]).
///
/// # Errors
/// [`ErrorKind::Timeout`]; [`ErrorKind::InvalidArgument`] for NaN;
/// [`ErrorKind::NoRunningLoop`] outside a running loop.
///
/// # Cancel safety
/// Dropping the `Timeout` drops `future`; whatever `future` guarantees applies. A [`Task`]
/// handle passed as `future` is detached, not cancelled, when time runs out (dropping a task
/// handle detaches); pass [`Task::cancel_on_drop`]'s wrapper for asyncio's `wait_for(task, t)`,
/// which cancels the task on timeout.
///
/// ```
/// use asyncio::ErrorKind;
/// let event_loop = asyncio::EventLoop::new()?;
/// let r = event_loop.run_until_complete(asyncio::timeout(0.01, asyncio::sleep(60.0)))?;
/// assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub fn timeout<D: IntoDelay, F: Future>(delay: D, future: F) -> Timeout<F> {
    let delay = delay.into_delay();
    let immediate = matches!(delay, Ok(d) if d <= 0.0);
    let sleep = match delay {
        Ok(d) if d.is_infinite() && d > 0.0 => None,
        other => Some(Sleep::new(other)),
    };
    Timeout {
        future,
        sleep,
        immediate,
    }
}

/// asyncio's `wait_for(aw, timeout)`: [`timeout`] with Python's argument order.
///
/// # Errors
/// As [`timeout`].
///
/// # Cancel safety
/// As [`timeout`].
pub fn wait_for<F: Future, D: IntoDelay>(future: F, delay: D) -> Timeout<F> {
    timeout(delay, future)
}

impl<F> std::fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("sleep", &self.sleep)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(Sleep { delay: Err(e), .. }) = this.sleep {
            return Poll::Ready(Err((**e).clone()));
        }
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if *this.immediate {
            return Poll::Ready(Err(Error::from_kind(ErrorKind::Timeout)));
        }
        match this.sleep {
            Some(s) => match Pin::new(s).poll(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Err(Error::from_kind(ErrorKind::Timeout))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Pending,
        }
    }
}

/// The future returned by [`gather`].
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<T> {
    tasks: Result<Vec<Option<Task<T>>>>,
    results: Vec<Option<T>>,
}

/// Runs `futures` concurrently as tasks of the running loop (scheduled now, in order) and
/// returns their outputs in the same order.
///
/// # Errors
/// The first error (cancellation or panic) of any task, as soon as it happens; the other tasks
/// keep running, as with asyncio's `gather` without `return_exceptions`.
/// [`ErrorKind::NoRunningLoop`] if no loop runs on this thread.
///
/// # Cancel safety
/// Dropping the `Gather` before it returned cancels the children that have not finished, as
/// cancelling asyncio's `gather()` cancels its children: a [`timeout`] around it, or the
/// cancellation of the task awaiting it, stops them all. Once it has returned (an error
/// included), the remaining children are detached and run on.
///
/// ```
/// let event_loop = asyncio::EventLoop::new()?;
/// let v = event_loop.run_until_complete(async {
///     asyncio::gather((1..=3).map(|i| async move {
///         asyncio::sleep(0.001 * (4 - i) as f64).await.unwrap();
///         i * 10
///     })).await
/// })??;
/// assert_eq!(v, vec![10, 20, 30]);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub fn gather<I>(futures: I) -> Gather<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future + 'static,
{
    let tasks = get_running_loop().and_then(|lp| {
        futures
            .into_iter()
            .map(|f| lp.create_task(f).map(Some))
            .collect::<Result<Vec<_>>>()
    });
    let n = tasks.as_ref().map(Vec::len).unwrap_or(0);
    Gather {
        tasks,
        results: (0..n).map(|_| None).collect(),
    }
}

/// asyncio's `gather(*tasks)` over tasks that already exist: the handles are awaited as they
/// are, with no task wrapped around them, so dropping the `Gather` (a [`timeout`] that ran
/// out, the cancellation of the awaiting task) cancels the tasks themselves, in that same
/// iteration.
///
/// (A [`Task`] is a `Future`, so [`gather`] accepts one too, but it then runs the handle in a
/// task of its own, and cancelling that wrapper only detaches the task inside.)
///
/// # Errors
/// As [`gather`].
///
/// # Cancel safety
/// As [`gather`]: dropping it before it returned cancels the unfinished tasks.
///
/// ```
/// use asyncio::ErrorKind;
/// let event_loop = asyncio::EventLoop::new()?;
/// let tasks: Vec<_> = (0..3)
///     .map(|_| event_loop.create_task(asyncio::sleep(3600.0)))
///     .collect::<asyncio::Result<_>>()?;
/// let probes: Vec<_> = tasks.iter().map(|t| t.as_task_ref()).collect();
/// let r = event_loop.run_until_complete(asyncio::wait_for(asyncio::gather_tasks(tasks), 0.01))?;
/// assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
/// event_loop.run_until_complete(asyncio::sleep(0.0))??; // their cancelled last step
/// assert!(probes.iter().all(|t| t.cancelled()));
/// # Ok::<(), asyncio::Error>(())
/// ```
pub fn gather_tasks<T: 'static>(tasks: impl IntoIterator<Item = Task<T>>) -> Gather<T> {
    let tasks: Vec<Option<Task<T>>> = tasks.into_iter().map(Some).collect();
    let n = tasks.len();
    Gather {
        tasks: Ok(tasks),
        results: (0..n).map(|_| None).collect(),
    }
}

impl<T: 'static> Gather<T> {
    /// asyncio's `return_exceptions=True`: waits for every child and returns each one's
    /// outcome, errors (cancellation, panic) in their place, instead of the first error.
    ///
    /// ```
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let out = event_loop.run_until_complete(async {
    ///     asyncio::gather([
    ///         Box::pin(async { 1 }) as std::pin::Pin<Box<dyn std::future::Future<Output = i32>>>,
    ///         Box::pin(async { panic!("boom") }),
    ///     ])
    ///     .return_exceptions()
    ///     .await
    /// })??;
    /// assert_eq!(*out[0].as_ref().unwrap(), 1);
    /// assert_eq!(out[1].as_ref().unwrap_err().kind(), asyncio::ErrorKind::Panicked);
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn return_exceptions(mut self) -> GatherAll<T> {
        let tasks = std::mem::replace(&mut self.tasks, Ok(Vec::new()));
        GatherAll {
            results: match &tasks {
                Ok(t) => (0..t.len()).map(|_| None).collect(),
                Err(_) => Vec::new(),
            },
            tasks,
        }
    }
}

/// The future returned by [`Gather::return_exceptions`].
#[must_use = "futures do nothing unless awaited"]
pub struct GatherAll<T> {
    tasks: Result<Vec<Option<Task<T>>>>,
    results: Vec<Option<Result<T>>>,
}

impl<T> std::fmt::Debug for GatherAll<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatherAll")
            .field("tasks", &self.tasks.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl<T> Unpin for GatherAll<T> {}

impl<T: 'static> Future for GatherAll<T> {
    type Output = Result<Vec<Result<T>>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let tasks = match &mut this.tasks {
            Ok(t) => t,
            Err(e) => return Poll::Ready(Err(e.clone())),
        };
        let mut pending = false;
        for (slot, out) in tasks.iter_mut().zip(this.results.iter_mut()) {
            let Some(task) = slot else { continue };
            match task.poll_done(cx) {
                Poll::Pending => pending = true,
                Poll::Ready(()) => {
                    *out = Some(task.take_result());
                    *slot = None;
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(Ok(this
            .results
            .iter_mut()
            .filter_map(Option::take)
            .collect()))
    }
}

impl<T> Drop for GatherAll<T> {
    fn drop(&mut self) {
        cancel_unfinished(&self.tasks);
    }
}

impl<T> std::fmt::Debug for Gather<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gather")
            .field("tasks", &self.tasks.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

// The outputs sit in a `Vec` on the heap and are never pinned.
impl<T> Unpin for Gather<T> {}

impl<T: 'static> Future for Gather<T> {
    type Output = Result<Vec<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let tasks = match &mut this.tasks {
            Ok(t) => t,
            Err(e) => return Poll::Ready(Err(e.clone())),
        };
        let mut pending = false;
        for (slot, out) in tasks.iter_mut().zip(this.results.iter_mut()) {
            let Some(task) = slot else { continue };
            match task.poll_done(cx) {
                Poll::Pending => pending = true,
                Poll::Ready(()) => {
                    let r = task.take_result();
                    *slot = None;
                    match r {
                        Ok(v) => *out = Some(v),
                        Err(e) => {
                            // asyncio's gather without return_exceptions: the others run on.
                            tasks.clear();
                            return Poll::Ready(Err(e));
                        }
                    }
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(Ok(this
            .results
            .iter_mut()
            .filter_map(Option::take)
            .collect()))
    }
}

impl<T> Drop for Gather<T> {
    fn drop(&mut self) {
        cancel_unfinished(&self.tasks);
    }
}

/// Cancels the children a dropped gather was still waiting for (asyncio's gather cancellation);
/// finished ones were taken out of their slots already.
fn cancel_unfinished<T>(tasks: &Result<Vec<Option<Task<T>>>>) {
    if let Ok(tasks) = tasks {
        for task in tasks.iter().flatten() {
            task.cancel();
        }
    }
}

/// The future returned by [`shield`].
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<T> {
    task: Result<Task<T>>,
}

/// Protects `future` from cancellation: it runs as its own task, so dropping or cancelling the
/// awaiting side (for example by a [`timeout`]) leaves it running to completion.
///
/// # Errors
/// The task's own error; [`ErrorKind::NoRunningLoop`] if no loop runs on this thread.
///
/// # Cancel safety
/// This is the point: dropping the `Shield` does not stop the work.
pub fn shield<F: Future + 'static>(future: F) -> Shield<F::Output> {
    Shield {
        task: get_running_loop().and_then(|lp| lp.create_task(future)),
    }
}

impl<T> std::fmt::Debug for Shield<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shield").field("task", &self.task).finish()
    }
}

impl<T: 'static> Future for Shield<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match &mut self.get_mut().task {
            Ok(t) => Pin::new(t).poll(cx),
            Err(e) => Poll::Ready(Err(e.clone())),
        }
    }
}

/// When [`wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task finishes or is cancelled.
    FirstCompleted,
    /// As soon as any task fails (panics); else when all finish.
    FirstException,
    /// When every task has finished.
    AllCompleted,
}

/// Waits for `tasks` until `return_when` holds or `timeout` (seconds, `None` = no limit) passes,
/// and returns them split into `(done, pending)`. No task is cancelled.
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for an empty list ("Set of Tasks/Futures is empty.") or a NaN
/// timeout; [`ErrorKind::NoRunningLoop`] outside a running loop.
///
/// # Cancel safety
/// Dropping the future drops the task handles, which detaches the tasks.
pub async fn wait<T: 'static>(
    tasks: Vec<Task<T>>,
    return_when: ReturnWhen,
    timeout: Option<f64>,
) -> Result<(Vec<Task<T>>, Vec<Task<T>>)> {
    if tasks.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "Set of Tasks/Futures is empty.",
        ));
    }
    let mut timer = timeout.map(sleep);
    std::future::poll_fn(|cx| {
        let mut done = 0;
        let mut failed = false;
        for t in &tasks {
            if t.poll_done(cx).is_ready() {
                done += 1;
                failed |= t.as_task_ref().raw_status_failed();
            }
        }
        let met = match return_when {
            ReturnWhen::FirstCompleted => done > 0,
            ReturnWhen::FirstException => failed || done == tasks.len(),
            ReturnWhen::AllCompleted => done == tasks.len(),
        };
        if met {
            return Poll::Ready(Ok(()));
        }
        match timer.as_mut().map(|s| Pin::new(s).poll(cx)) {
            Some(Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            Some(Poll::Ready(Err(e))) => Poll::Ready(Err(e)),
            _ => Poll::Pending,
        }
    })
    .await?;
    Ok(tasks.into_iter().partition(|t| t.done()))
}

impl crate::task::TaskRef {
    pub(crate) fn raw_status_failed(&self) -> bool {
        !self.cancelled() && self.done() && self.exception_peek().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::Sleep;

    /// A `Sleep` lives inside every sleeping task's future (and every `timeout`): it keeps only
    /// its timer's slot, not a whole `TimerHandle`, and boxes the rare error. It was 96 bytes;
    /// 200k sleeping tasks are that many bytes more to miss in the cache.
    #[test]
    fn a_sleep_stays_small() {
        assert!(
            std::mem::size_of::<Sleep>() <= 48,
            "{}",
            std::mem::size_of::<Sleep>()
        );
    }

    /// A sleep's wake-up runs as a callback: a waker of the user's that panics is reported to
    /// the exception handler ("Exception in callback asyncio::sleep"), as any callback's panic
    /// is, and the loop goes on.
    #[test]
    fn a_panicking_waker_of_a_sleep_is_reported_not_propagated() {
        use std::cell::RefCell;
        use std::future::Future;
        use std::rc::Rc;
        use std::task::Context;
        let lp = crate::EventLoop::new().unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        lp.set_exception_handler(Some(Rc::new(move |_, ctx| {
            log.borrow_mut().push(ctx.message.clone());
        })));
        let mut s = Box::pin(super::sleep(0.001));
        {
            // Polled as a foreign executor would, with the loop as the running one.
            let _running = crate::runtime::running::RunGuard::enter(&lp).unwrap();
            let waker = crate::task::panicking_waker("sleep waker panics");
            let first = s.as_mut().poll(&mut Context::from_waker(&waker));
            assert!(first.is_pending());
        }
        // Fires while this longer sleep waits; the loop is not unwound by the panic.
        lp.run_until_complete(super::sleep(0.05)).unwrap().unwrap();
        assert_eq!(*seen.borrow(), ["Exception in callback asyncio::sleep"]);
        drop(s);
        lp.close().unwrap();
    }

    /// Arm, drop before it fires, and the heap holds nothing: the slot is enough to remove it.
    #[test]
    fn a_dropped_sleep_leaves_the_heap() {
        let lp = crate::EventLoop::new().unwrap();
        lp.run_until_complete(async {
            let lp = crate::get_running_loop().unwrap();
            for _ in 0..3 {
                let mut s = Box::pin(super::sleep(3600.0));
                let first = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(std::future::Future::poll(s.as_mut(), cx))
                })
                .await;
                assert!(first.is_pending());
                assert_eq!(lp.timer_heap_len(), 1);
                drop(s);
                assert_eq!(lp.timer_heap_len(), 0);
            }
        })
        .unwrap();
    }
}
