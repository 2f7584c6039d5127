//! [`as_completed`]: the outcomes of several tasks in the order they finish.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::clock::IntoDelay;
use crate::runtime::running::get_running_loop;
use crate::task::helpers::Sleep;
use crate::task::{sleep, Task};

/// The stream returned by [`as_completed`] and [`as_completed_tasks`].
///
/// It implements [`futures::Stream`], and [`next`](AsCompleted::next) gives the same items
/// without `StreamExt`.
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T: 'static> {
    tasks: Result<Vec<Option<Task<T>>>>,
    /// Indices in `tasks`, in the order the tasks finished (pushed by their done callbacks).
    finished: Rc<Finished>,
    timer: Option<Sleep>,
    timed_out: bool,
}

#[derive(Default)]
struct Finished {
    order: RefCell<VecDeque<usize>>,
    waker: RefCell<Option<Waker>>,
}

impl<T: 'static> AsCompleted<T> {
    fn build(tasks: Result<Vec<Task<T>>>, timer: Option<Sleep>) -> Self {
        let finished = Rc::new(Finished::default());
        let tasks = tasks.map(|tasks| {
            for (i, t) in tasks.iter().enumerate() {
                let f = finished.clone();
                let registered = t.add_done_callback(move |_| {
                    f.order.borrow_mut().push_back(i);
                    let w = f.waker.borrow_mut().take();
                    if let Some(w) = w {
                        w.wake();
                    }
                });
                if registered.is_err() {
                    // Done on a closed loop: report it in list order.
                    finished.order.borrow_mut().push_back(i);
                }
            }
            tasks.into_iter().map(Some).collect()
        });
        AsCompleted {
            tasks,
            finished,
            timer,
            timed_out: false,
        }
    }
}

/// asyncio's `as_completed(aws, timeout=...)`: runs `futures` as tasks of the running loop and
/// yields their outcomes in the order they finish (the order of their done callbacks, as in
/// asyncio).
///
/// After `timeout` (seconds or a `Duration`; `None` for no limit) the stream yields one
/// [`ErrorKind::Timeout`] error and ends; the unfinished tasks run on (take them with
/// [`into_remaining`](AsCompleted::into_remaining)), as in asyncio.
///
/// ```
/// use futures::StreamExt;
/// let event_loop = asyncio::EventLoop::new()?;
/// let order = event_loop.run_until_complete(async {
///     let mut done = asyncio::as_completed([3u32, 1, 2].map(|d| async move {
///         asyncio::sleep(d as f64 * 0.001).await.unwrap();
///         d
///     }), None::<f64>);
///     let mut order = Vec::new();
///     while let Some(r) = done.next().await {
///         order.push(r.unwrap());
///     }
///     order
/// })?;
/// assert_eq!(order, [1, 2, 3]);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub fn as_completed<I, D>(
    futures: I,
    timeout: Option<D>,
) -> AsCompleted<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future + 'static,
    D: IntoDelay,
{
    let tasks = get_running_loop().and_then(|lp| {
        futures
            .into_iter()
            .map(|f| lp.create_task(f))
            .collect::<Result<Vec<_>>>()
    });
    AsCompleted::build(tasks, timeout.map(sleep))
}

/// [`as_completed`] over tasks that already exist (no task is wrapped around them).
pub fn as_completed_tasks<T: 'static, D: IntoDelay>(
    tasks: impl IntoIterator<Item = Task<T>>,
    timeout: Option<D>,
) -> AsCompleted<T> {
    AsCompleted::build(Ok(tasks.into_iter().collect()), timeout.map(sleep))
}

impl<T: 'static> AsCompleted<T> {
    /// The next outcome, `None` when every task has been reported (or after the timeout).
    pub async fn next(&mut self) -> Option<Result<T>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// The tasks not reported yet.
    pub fn into_remaining(mut self) -> Vec<Task<T>> {
        std::mem::replace(&mut self.tasks, Ok(Vec::new()))
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect()
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        if self.timed_out {
            return Poll::Ready(None);
        }
        let tasks = match &mut self.tasks {
            Ok(t) => t,
            Err(e) => {
                let e = e.clone();
                self.tasks = Ok(Vec::new());
                return Poll::Ready(Some(Err(e)));
            }
        };
        let next = self.finished.order.borrow_mut().pop_front();
        if let Some(task) = next.and_then(|i| tasks.get_mut(i)).and_then(Option::take) {
            return Poll::Ready(Some(task.take_result()));
        }
        if tasks.iter().all(Option::is_none) {
            return Poll::Ready(None);
        }
        *self.finished.waker.borrow_mut() = Some(cx.waker().clone());
        if let Some(timer) = &mut self.timer {
            match Pin::new(timer).poll(cx) {
                Poll::Ready(Ok(())) => {
                    self.timed_out = true;
                    return Poll::Ready(Some(Err(Error::from_kind(ErrorKind::Timeout))));
                }
                Poll::Ready(Err(e)) => {
                    self.timed_out = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }
}

impl<T: 'static> Unpin for AsCompleted<T> {}

impl<T: 'static> futures::Stream for AsCompleted<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.get_mut().poll_item(cx)
    }
}

impl<T: 'static> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field(
                "remaining",
                &self.tasks.as_ref().map(|t| t.iter().flatten().count()),
            )
            .field("timed_out", &self.timed_out)
            .finish()
    }
}
