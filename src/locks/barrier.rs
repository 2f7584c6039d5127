//! [`Barrier`]: asyncio's barrier (3.11), a meeting point for a fixed number of tasks.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::task::Poll;

use super::waiters::{WaitList, Waiter};
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Filling,
    Draining,
    Resetting,
    Broken,
}

struct Inner {
    parties: usize,
    state: Cell<State>,
    /// Tasks inside `wait` past the blocking phase (asyncio's `_count`).
    count: Cell<usize>,
    /// Everyone waiting for a state change (asyncio's condition variable).
    waiters: WaitList,
}

impl Inner {
    /// Waits until `pred` holds, re-checking after every state change.
    async fn until(&self, pred: impl Fn(State) -> bool) {
        let mut ticket = Ticket {
            list: &self.waiters,
            waiter: None,
        };
        std::future::poll_fn(|cx| {
            if let Some(w) = &ticket.waiter {
                if w.poll_woken(cx).is_pending() {
                    return Poll::Pending;
                }
                self.waiters.remove(w);
                ticket.waiter = None;
            }
            if pred(self.state.get()) {
                return Poll::Ready(());
            }
            ticket.waiter = Some(self.waiters.push_back(cx));
            Poll::Pending
        })
        .await
    }

    /// asyncio's `_exit`: the last task out ends draining or resetting.
    fn exit(&self) {
        self.count.set(self.count.get() - 1);
        if self.count.get() == 0 {
            if matches!(self.state.get(), State::Resetting | State::Draining) {
                self.state.set(State::Filling);
            }
            self.waiters.wake_all();
        }
    }
}

struct Ticket<'a> {
    list: &'a WaitList,
    waiter: Option<Rc<Waiter>>,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.list.remove(&w);
        }
    }
}

/// Leaves the barrier (count and wake-ups) however `wait` ends: Python's `finally`.
struct Arrival<'a>(&'a Inner);

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

/// asyncio's `Barrier`: [`wait`](Barrier::wait) blocks until `parties` tasks are waiting, then
/// releases them all; the barrier is then reusable.
///
/// [`abort`](Barrier::abort) breaks it ([`ErrorKind::BrokenBarrier`] for every waiter, now and
/// later) and [`reset`](Barrier::reset) sends the current waiters away with that error and
/// makes it usable again. A loop-thread object: cloning shares it.
///
/// ```
/// use asyncio::locks::Barrier;
///
/// let event_loop = asyncio::EventLoop::new()?;
/// let barrier = Barrier::new(3)?;
/// let mut indices = event_loop.run_until_complete(async move {
///     asyncio::gather((0..3).map(|_| {
///         let b = barrier.clone();
///         async move { b.wait().await.unwrap() }
///     }))
///     .await
/// })??;
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Rc<Inner>,
}

impl Barrier {
    /// A barrier for `parties` tasks.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] "parties must be > 0" for zero.
    pub fn new(parties: usize) -> Result<Self> {
        if parties == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "parties must be > 0",
            ));
        }
        Ok(Barrier {
            inner: Rc::new(Inner {
                parties,
                state: Cell::new(State::Filling),
                count: Cell::new(0),
                waiters: WaitList::default(),
            }),
        })
    }

    /// Waits until `parties` tasks wait, and returns this task's arrival index (`0` for the
    /// first, `parties - 1` for the one that filled the barrier).
    ///
    /// # Errors
    /// [`ErrorKind::BrokenBarrier`]: "Barrier aborted" when the barrier is broken on arrival,
    /// "Abort or reset of barrier" when it is aborted or reset while this task waits.
    ///
    /// # Cancel safety
    /// A dropped waiter leaves the barrier (the count goes down) as asyncio's cancelled waiter
    /// does.
    pub async fn wait(&self) -> Result<usize> {
        let inner = &*self.inner;
        // Block while the barrier drains or resets.
        inner
            .until(|s| !matches!(s, State::Draining | State::Resetting))
            .await;
        if inner.state.get() == State::Broken {
            return Err(Error::new(ErrorKind::BrokenBarrier, "Barrier aborted"));
        }
        let index = inner.count.get();
        inner.count.set(index + 1);
        let _arrival = Arrival(inner);
        if index + 1 == inner.parties {
            // The last one in releases the others.
            inner.state.set(State::Draining);
            inner.waiters.wake_all();
        } else {
            inner.until(|s| s != State::Filling).await;
            if matches!(inner.state.get(), State::Broken | State::Resetting) {
                return Err(Error::new(
                    ErrorKind::BrokenBarrier,
                    "Abort or reset of barrier",
                ));
            }
        }
        Ok(index)
    }

    /// Returns the barrier to its empty state; tasks waiting in it get
    /// [`ErrorKind::BrokenBarrier`]. Also repairs a broken barrier.
    pub fn reset(&self) {
        let inner = &*self.inner;
        if inner.count.get() > 0 {
            inner.state.set(State::Resetting);
        } else {
            inner.state.set(State::Filling);
        }
        inner.waiters.wake_all();
    }

    /// Breaks the barrier: current and future `wait`s fail with [`ErrorKind::BrokenBarrier`]
    /// until [`reset`](Barrier::reset).
    pub fn abort(&self) {
        self.inner.state.set(State::Broken);
        self.inner.waiters.wake_all();
    }

    /// The number of tasks needed to pass the barrier.
    pub fn parties(&self) -> usize {
        self.inner.parties
    }

    /// The number of tasks waiting while the barrier fills.
    pub fn n_waiting(&self) -> usize {
        if self.inner.state.get() == State::Filling {
            self.inner.count.get()
        } else {
            0
        }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.inner.state.get() == State::Broken
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("state", &self.inner.state.get())
            .field("waiters", &self.inner.count.get())
            .field("parties", &self.inner.parties)
            .finish()
    }
}
