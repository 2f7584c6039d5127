//! The thread-safe [`Semaphore`] and [`BoundedSemaphore`]; the permits behind them also make
//! the thread-safe [`Lock`](super::Lock).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::waiters::{WaitQueue, Wakeups};
use crate::error::{Error, ErrorKind, Result};
use crate::sync::{Arc, Mutex, MutexGuard};

/// What the mutex guards: the free permits and the waiters.
struct State {
    value: usize,
    waiters: WaitQueue,
}

impl State {
    /// asyncio's `_wake_up_next`: hands a permit to the first waiter not woken yet.
    fn wake_up_next(&mut self, wakeups: &mut Wakeups) -> bool {
        if self.waiters.wake_next(wakeups) {
            self.value -= 1;
            true
        } else {
            false
        }
    }

    /// asyncio's `finally` in `acquire`: wake as many waiters as there are permits.
    fn wake_up_all_allowed(&mut self, wakeups: &mut Wakeups) {
        while self.value > 0 && self.wake_up_next(wakeups) {}
    }
}

/// The shared part: asyncio's `Semaphore` state under one mutex.
pub(super) struct Permits {
    state: Mutex<State>,
    /// `Some(initial value)` for a bounded semaphore (and a lock).
    bound: Option<usize>,
}

impl Permits {
    pub(super) fn new(value: usize, bound: Option<usize>) -> Arc<Self> {
        Arc::new(Permits {
            state: Mutex::new(State {
                value,
                waiters: WaitQueue::default(),
            }),
            bound,
        })
    }

    /// The state; a poisoned lock is still used (nothing here panics while holding it, and a
    /// panic elsewhere must not wedge the other threads).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn value(&self) -> usize {
        self.lock().value
    }

    pub(super) fn waiters(&self) -> usize {
        self.lock().waiters.len()
    }

    /// asyncio's `locked()`: no permit, or someone queued ahead (a woken waiter included).
    pub(super) fn locked(&self) -> bool {
        let st = self.lock();
        st.value == 0 || !st.waiters.is_empty()
    }

    /// Takes a permit if one is free and nobody is queued.
    pub(super) fn try_take(&self) -> bool {
        let mut st = self.lock();
        if st.value == 0 || !st.waiters.is_empty() {
            return false;
        }
        st.value -= 1;
        true
    }

    /// Gives a permit back and wakes the first waiter; `Err(())` if a bounded semaphore is at
    /// its bound.
    pub(super) fn release(&self) -> std::result::Result<(), ()> {
        let mut wakeups = Wakeups::default();
        let mut st = self.lock();
        if self.bound.is_some_and(|b| st.value >= b) {
            return Err(());
        }
        st.value += 1;
        st.wake_up_next(&mut wakeups);
        Ok(())
    }

    /// One step of an acquire: `ticket` is `None` before it queued.
    pub(super) fn poll_acquire(&self, ticket: &mut Option<u64>, cx: &Context<'_>) -> Poll<()> {
        let mut wakeups = Wakeups::default();
        let mut st = self.lock();
        match *ticket {
            None => {
                if st.value > 0 && st.waiters.is_empty() {
                    st.value -= 1;
                    return Poll::Ready(());
                }
                *ticket = Some(st.waiters.push(cx.waker()));
                Poll::Pending
            }
            Some(id) => {
                if !st.waiters.poll(id, cx.waker()) {
                    return Poll::Pending;
                }
                // The permit was taken for us when we were woken.
                st.waiters.remove(id);
                *ticket = None;
                st.wake_up_all_allowed(&mut wakeups);
                Poll::Ready(())
            }
        }
    }

    /// An acquire given up before it completed: it leaves the queue, and a permit already
    /// handed to it goes to the next waiter.
    pub(super) fn cancel_acquire(&self, id: u64) {
        let mut wakeups = Wakeups::default();
        let mut st = self.lock();
        if st.waiters.remove(id) == Some(true) {
            st.value += 1;
        }
        st.wake_up_all_allowed(&mut wakeups);
    }
}

/// asyncio's `Semaphore`, for tasks on any loop or thread: `Send + Sync`, cloning shares it.
///
/// Waiters are served strictly in arrival order across all threads: a newcomer never overtakes
/// a queued waiter, even when a permit is free. A permit handed to a waiter that is then
/// cancelled (its future dropped) goes to the next one, so none is lost. A plain thread can
/// wait too, with `futures::executor::block_on(sem.acquire())`.
///
/// ```
/// use asyncio::locks::threadsafe::Semaphore;
/// use asyncio::EventLoop;
///
/// let sem = Semaphore::new(1);
/// let held = sem.try_acquire().unwrap();
/// // A task on another loop, in another thread, waits for the permit...
/// let (handle, thread) = EventLoop::spawn_thread()?;
/// let s = sem.clone();
/// let done = handle.run_coroutine_threadsafe(async move {
///     let _permit = s.acquire().await;
///     "got it"
/// })?;
/// // ...and gets it when this thread gives it back.
/// while sem.waiters() == 0 {
///     std::thread::yield_now();
/// }
/// drop(held);
/// assert_eq!(done.result(None)?, "got it");
/// handle.stop();
/// thread.join().unwrap()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    pub(super) permits: Arc<Permits>,
}

impl Semaphore {
    /// A semaphore with `value` permits.
    pub fn new(value: usize) -> Self {
        Semaphore {
            permits: Permits::new(value, None),
        }
    }

    /// Whether an `acquire` would wait now.
    pub fn locked(&self) -> bool {
        self.permits.locked()
    }

    /// The free permits (asyncio's `_value`).
    pub fn value(&self) -> usize {
        self.permits.value()
    }

    /// How many waiters are queued (woken ones that have not run yet included).
    pub fn waiters(&self) -> usize {
        self.permits.waiters()
    }

    /// Waits for a permit; the guard gives it back.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the queue; a permit already handed to it goes to the next
    /// waiter.
    pub fn acquire(&self) -> SemaphoreAcquire {
        SemaphoreAcquire {
            sem: self.clone(),
            ticket: None,
        }
    }

    /// Takes a permit if one is free and nobody is queued.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard> {
        self.permits
            .try_take()
            .then(|| SemaphoreGuard::new(self.clone()))
    }

    /// Adds a permit (Python's `sem.release()`), waking the first waiter.
    ///
    /// # Errors
    /// On a [`BoundedSemaphore`]'s inner semaphore, [`ErrorKind::InvalidState`] "BoundedSemaphore
    /// released too many times" once the initial value is reached.
    pub fn release(&self) -> Result<()> {
        self.permits.release().map_err(|()| {
            Error::new(
                ErrorKind::InvalidState,
                "BoundedSemaphore released too many times",
            )
        })
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// asyncio's `BoundedSemaphore`, thread-safe: a [`Semaphore`] whose `release` fails rather than
/// raise the count above its initial value.
///
/// ```
/// use asyncio::{locks::threadsafe::BoundedSemaphore, ErrorKind};
///
/// let sem = BoundedSemaphore::new(1);
/// let permit = sem.try_acquire().unwrap();
/// std::thread::spawn(move || drop(permit)).join().unwrap(); // released on another thread
/// let err = sem.release().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidState);
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits, never more.
    pub fn new(value: usize) -> Self {
        BoundedSemaphore {
            sem: Semaphore {
                permits: Permits::new(value, Some(value)),
            },
        }
    }

    /// Whether an `acquire` would wait now.
    pub fn locked(&self) -> bool {
        self.sem.locked()
    }

    /// The free permits.
    pub fn value(&self) -> usize {
        self.sem.value()
    }

    /// How many waiters are queued.
    pub fn waiters(&self) -> usize {
        self.sem.waiters()
    }

    /// Waits for a permit (see [`Semaphore::acquire`]).
    pub fn acquire(&self) -> SemaphoreAcquire {
        self.sem.acquire()
    }

    /// Takes a permit if one is free and nobody is queued.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard> {
        self.sem.try_acquire()
    }

    /// Gives a permit back.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "BoundedSemaphore released too many times" when that would
    /// raise the count above the initial value.
    pub fn release(&self) -> Result<()> {
        self.sem.release()
    }

    /// The underlying semaphore.
    pub fn as_semaphore(&self) -> &Semaphore {
        &self.sem
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoundedSemaphore").field(&self.sem).finish()
    }
}

/// The future returned by [`Semaphore::acquire`]; `Send`, so any loop's task may await it.
#[must_use = "futures do nothing unless awaited"]
pub struct SemaphoreAcquire {
    sem: Semaphore,
    ticket: Option<u64>,
}

impl Future for SemaphoreAcquire {
    type Output = SemaphoreGuard;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphoreGuard> {
        let this = self.get_mut();
        this.sem
            .permits
            .poll_acquire(&mut this.ticket, cx)
            .map(|()| SemaphoreGuard::new(this.sem.clone()))
    }
}

impl Drop for SemaphoreAcquire {
    fn drop(&mut self) {
        if let Some(id) = self.ticket.take() {
            self.sem.permits.cancel_acquire(id);
        }
    }
}

impl fmt::Debug for SemaphoreAcquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreAcquire")
            .field("waiting", &self.ticket.is_some())
            .finish()
    }
}

/// Holds one permit of a thread-safe [`Semaphore`] or [`BoundedSemaphore`]; dropping it (on any
/// thread) gives the permit back.
#[must_use = "dropping the guard releases the permit at once"]
pub struct SemaphoreGuard {
    sem: Semaphore,
    armed: bool,
}

impl SemaphoreGuard {
    fn new(sem: Semaphore) -> Self {
        SemaphoreGuard { sem, armed: true }
    }

    /// Keeps the permit without a guard; give it back later with `release`.
    pub fn forget(mut self) {
        self.armed = false;
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        if self.armed {
            // A bounded semaphore can only refuse if someone released behind the guard's back.
            let _ = self.sem.permits.release();
        }
    }
}

impl fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
