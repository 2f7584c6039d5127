//! `gather!` over futures of different types (a tuple of outputs, as `futures::join!` gives)
//! and `to_thread`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::EventLoop;
use crate::runtime::running::get_running_loop;
use crate::task::Task;

/// asyncio's `gather(a, b, c)` over futures of different types: runs each as a task of the
/// running loop (scheduled at once, in order) and gives their outputs as a tuple.
///
/// The value is a future of `Result<(A, B, ...)>` (up to 12 futures). As with [`gather`]
/// (the homogeneous form), the first error (a child cancelled or panicked) is returned as soon
/// as it happens and the other children run on; dropping the future before it returned
/// cancels the unfinished children, in that iteration.
///
/// [`gather`]: crate::gather()
///
/// ```
/// let event_loop = asyncio::EventLoop::new()?;
/// let (n, s, unit) = event_loop.run_until_complete(async {
///     asyncio::gather!(async { 1 }, async { "two" }, asyncio::sleep(0.001)).await
/// })??;
/// assert_eq!((n, s), (1, "two"));
/// assert!(unit.is_ok());
/// # Ok::<(), asyncio::Error>(())
/// ```
#[macro_export]
macro_rules! gather {
    ($($fut:expr),+ $(,)?) => {
        $crate::task::GatherTuple::new((|| -> $crate::Result<_> {
            let lp = $crate::get_running_loop()?;
            ::std::result::Result::Ok(($($crate::task::GatherSlot::spawn(&lp, $fut)?,)+))
        })())
    };
}

/// One child of a [`gather!`]: its task, then its output.
#[doc(hidden)]
pub struct GatherSlot<T: 'static> {
    task: Option<Task<T>>,
    out: Option<T>,
}

impl<T: 'static> GatherSlot<T> {
    /// Runs `future` as a task of `lp`.
    pub fn spawn<F: Future<Output = T> + 'static>(lp: &EventLoop, future: F) -> Result<Self> {
        Ok(GatherSlot {
            task: Some(lp.create_task(future)?),
            out: None,
        })
    }

    /// Ready with `Ok` once the output is in, or with the child's error.
    fn poll_slot(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let Some(task) = &self.task else {
            return Poll::Ready(Ok(()));
        };
        match task.poll_done(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let r = task.take_result();
                self.task = None;
                Poll::Ready(r.map(|v| self.out = Some(v)))
            }
        }
    }

    /// Lets the child run on when the gather returns early.
    fn detach(&mut self) {
        self.task = None;
    }

    fn take(&mut self) -> Result<T> {
        self.out
            .take()
            .ok_or_else(|| Error::new(ErrorKind::InvalidState, "gather! polled after it returned"))
    }
}

impl<T: 'static> Drop for GatherSlot<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.cancel();
        }
    }
}

/// Tuples of [`GatherSlot`]s.
#[doc(hidden)]
pub trait GatherSlots {
    /// The tuple of outputs.
    type Output;
    /// Polls every slot; the first error detaches the rest.
    fn poll_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::Output>>;
}

macro_rules! gather_slots {
    ($($t:ident $i:tt),+) => {
        impl<$($t: 'static),+> GatherSlots for ($(GatherSlot<$t>,)+) {
            type Output = ($($t,)+);

            fn poll_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::Output>> {
                let mut pending = false;
                let mut failed = None;
                $(
                    if failed.is_none() {
                        match self.$i.poll_slot(cx) {
                            Poll::Pending => pending = true,
                            Poll::Ready(Ok(())) => {}
                            Poll::Ready(Err(e)) => failed = Some(e),
                        }
                    }
                )+
                if let Some(e) = failed {
                    $(self.$i.detach();)+
                    return Poll::Ready(Err(e));
                }
                if pending {
                    return Poll::Pending;
                }
                Poll::Ready(Ok(($(self.$i.take()?,)+)))
            }
        }
    };
}

gather_slots!(A 0);
gather_slots!(A 0, B 1);
gather_slots!(A 0, B 1, C 2);
gather_slots!(A 0, B 1, C 2, D 3);
gather_slots!(A 0, B 1, C 2, D 3, E 4);
gather_slots!(A 0, B 1, C 2, D 3, E 4, F 5);
gather_slots!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
gather_slots!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
gather_slots!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
gather_slots!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
gather_slots!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
gather_slots!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// The future made by [`gather!`](crate::gather!).
#[must_use = "futures do nothing unless awaited"]
pub struct GatherTuple<S> {
    slots: Result<S>,
}

impl<S: GatherSlots> GatherTuple<S> {
    #[doc(hidden)]
    pub fn new(slots: Result<S>) -> Self {
        GatherTuple { slots }
    }
}

impl<S> Unpin for GatherTuple<S> {}

impl<S: GatherSlots> Future for GatherTuple<S> {
    type Output = Result<S::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().slots {
            Ok(s) => s.poll_all(cx),
            Err(e) => Poll::Ready(Err(e.clone())),
        }
    }
}

impl<S> std::fmt::Debug for GatherTuple<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatherTuple").finish_non_exhaustive()
    }
}

/// asyncio's `to_thread(func)`: runs the blocking `job` on the running loop's default
/// executor and waits for its return value without blocking the loop.
///
/// # Errors
/// [`ErrorKind::NoRunningLoop`] outside a running loop; the executor's errors (shut down, a
/// panicking job as [`ErrorKind::Panicked`]).
///
/// # Cancel safety
/// As [`EventLoop::run_in_executor`]: dropping the future before the job starts means it never
/// runs; a job that started runs to the end and its result is discarded.
///
/// ```
/// let event_loop = asyncio::EventLoop::new()?;
/// let n = event_loop.run_until_complete(asyncio::to_thread(|| (1..=10).sum::<u32>()))??;
/// assert_eq!(n, 55);
/// # event_loop.close()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
pub async fn to_thread<F, T>(job: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    get_running_loop()?.run_in_executor(None, job)?.await
}
