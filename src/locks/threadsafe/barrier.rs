//! The thread-safe [`Barrier`]: asyncio's barrier (3.11) for tasks on any loop or thread.

use std::fmt;
use std::future::poll_fn;
use std::task::Poll;

use super::waiters::{WaitQueue, Wakeups};
use crate::error::{Error, ErrorKind, Result};
use crate::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Filling,
    Draining,
    Resetting,
    Broken,
}

/// What the mutex guards: asyncio's `_state`, `_count` and the waiters of its condition.
struct State {
    phase: Phase,
    /// Tasks inside `wait` past the blocking phase (asyncio's `_count`).
    count: usize,
    /// Everyone waiting for a phase change.
    waiters: WaitQueue,
}

struct Inner {
    parties: usize,
    state: Mutex<State>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `step` returns `Some`, running it under the mutex at first and after every
    /// phase change: the check and what it does are one step, which no other thread can split.
    async fn until<T>(&self, mut step: impl FnMut(&mut State, &mut Wakeups) -> Option<T>) -> T {
        let mut ticket = Ticket {
            inner: self,
            id: None,
        };
        poll_fn(|cx| {
            let mut wakeups = Wakeups::default();
            let mut st = self.lock();
            if let Some(id) = ticket.id {
                if !st.waiters.poll(id, cx.waker()) {
                    return Poll::Pending;
                }
                st.waiters.remove(id);
                ticket.id = None;
            }
            match step(&mut st, &mut wakeups) {
                Some(out) => Poll::Ready(out),
                None => {
                    ticket.id = Some(st.waiters.push(cx.waker()));
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// asyncio's `_exit`: the last task out ends draining or resetting.
    fn exit(&self) {
        let mut wakeups = Wakeups::default();
        let mut st = self.lock();
        st.count -= 1;
        if st.count == 0 {
            if matches!(st.phase, Phase::Resetting | Phase::Draining) {
                st.phase = Phase::Filling;
            }
            st.waiters.wake_all(&mut wakeups);
        }
    }
}

/// A queued waiter leaves the queue when its future is dropped.
struct Ticket<'a> {
    inner: &'a Inner,
    id: Option<u64>,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.inner.lock().waiters.remove(id);
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

/// asyncio's `Barrier`, for tasks on any loop or thread: `Send + Sync`, cloning shares it.
///
/// As its loop-thread sibling [`locks::Barrier`](crate::locks::Barrier):
/// [`wait`](Barrier::wait) blocks until `parties` waiters have arrived, from any threads, then
/// releases them all; the barrier is then reusable. [`abort`](Barrier::abort) breaks it
/// ([`ErrorKind::BrokenBarrier`] for every waiter, now and later) and [`reset`](Barrier::reset)
/// sends the current waiters away with that error and makes it usable again.
///
/// ```
/// use asyncio::locks::threadsafe::Barrier;
///
/// let barrier = Barrier::new(3)?;
/// let threads: Vec<_> = (0..3)
///     .map(|_| {
///         let b = barrier.clone();
///         std::thread::spawn(move || {
///             asyncio::EventLoop::new()?.run_until_complete(async move { b.wait().await })?
///         })
///     })
///     .collect();
/// let mut indices: Vec<usize> = threads
///     .into_iter()
///     .map(|t| t.join().unwrap())
///     .collect::<asyncio::Result<_>>()?;
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Arc<Inner>,
}

impl Barrier {
    /// A barrier for `parties` waiters.
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
            inner: Arc::new(Inner {
                parties,
                state: Mutex::new(State {
                    phase: Phase::Filling,
                    count: 0,
                    waiters: WaitQueue::default(),
                }),
            }),
        })
    }

    /// Waits until `parties` waiters wait, and returns this one's arrival index (`0` for the
    /// first, `parties - 1` for the one that filled the barrier).
    ///
    /// # Errors
    /// [`ErrorKind::BrokenBarrier`]: "Barrier aborted" when the barrier is broken on arrival,
    /// "Abort or reset of barrier" when it is aborted or reset while this waiter waits.
    ///
    /// # Cancel safety
    /// A dropped waiter leaves the barrier (the count goes down) as asyncio's cancelled waiter
    /// does.
    pub async fn wait(&self) -> Result<usize> {
        let inner = &*self.inner;
        let parties = inner.parties;
        // Block while the barrier drains or resets; then arrive, in the same step.
        let index = inner
            .until(|st, wakeups| match st.phase {
                Phase::Draining | Phase::Resetting => None,
                Phase::Broken => Some(Err(Error::new(ErrorKind::BrokenBarrier, "Barrier aborted"))),
                Phase::Filling => {
                    let index = st.count;
                    st.count += 1;
                    if index + 1 == parties {
                        // The last one in releases the others.
                        st.phase = Phase::Draining;
                        st.waiters.wake_all(wakeups);
                    }
                    Some(Ok(index))
                }
            })
            .await?;
        let _arrival = Arrival(inner);
        if index + 1 < parties {
            inner
                .until(|st, _| match st.phase {
                    Phase::Filling => None,
                    Phase::Draining => Some(Ok(())),
                    Phase::Broken | Phase::Resetting => Some(Err(Error::new(
                        ErrorKind::BrokenBarrier,
                        "Abort or reset of barrier",
                    ))),
                })
                .await?;
        }
        Ok(index)
    }

    /// Returns the barrier to its empty state; waiters in it get
    /// [`ErrorKind::BrokenBarrier`]. Also repairs a broken barrier.
    pub fn reset(&self) {
        let mut wakeups = Wakeups::default();
        let mut st = self.inner.lock();
        st.phase = if st.count > 0 {
            Phase::Resetting
        } else {
            Phase::Filling
        };
        st.waiters.wake_all(&mut wakeups);
    }

    /// Breaks the barrier: current and future `wait`s fail with [`ErrorKind::BrokenBarrier`]
    /// until [`reset`](Barrier::reset).
    pub fn abort(&self) {
        let mut wakeups = Wakeups::default();
        let mut st = self.inner.lock();
        st.phase = Phase::Broken;
        st.waiters.wake_all(&mut wakeups);
    }

    /// The number of waiters needed to pass the barrier.
    pub fn parties(&self) -> usize {
        self.inner.parties
    }

    /// The number of waiters waiting while the barrier fills.
    pub fn n_waiting(&self) -> usize {
        let st = self.inner.lock();
        if st.phase == Phase::Filling {
            st.count
        } else {
            0
        }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.inner.lock().phase == Phase::Broken
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("Barrier")
            .field("state", &st.phase)
            .field("waiters", &st.count)
            .field("parties", &self.inner.parties)
            .finish()
    }
}
