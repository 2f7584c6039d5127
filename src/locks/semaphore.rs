//! [`Semaphore`] and [`BoundedSemaphore`], with [`SemaphoreGuard`] as `async with sem:`.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{WaitList, Waiter};
use crate::error::{Error, ErrorKind, Result};

struct Inner {
    value: Cell<usize>,
    /// `Some(initial value)` for a bounded semaphore.
    bound: Option<usize>,
    waiters: WaitList,
}

impl Inner {
    /// asyncio's `locked()`: no permit, or someone queued ahead (a woken waiter included).
    fn locked(&self) -> bool {
        self.value.get() == 0 || !self.waiters.is_empty()
    }

    /// asyncio's `_wake_up_next`: hands a permit to the first waiter not woken yet.
    fn wake_up_next(&self) -> bool {
        if self.waiters.wake_next() {
            self.value.set(self.value.get() - 1);
            true
        } else {
            false
        }
    }

    /// asyncio's `finally` in `acquire`: wake as many waiters as there are permits.
    fn wake_up_all_allowed(&self) {
        while self.value.get() > 0 {
            if !self.wake_up_next() {
                break;
            }
        }
    }

    fn release(&self) -> Result<()> {
        if let Some(bound) = self.bound {
            if self.value.get() >= bound {
                return Err(Error::new(
                    ErrorKind::InvalidState,
                    "BoundedSemaphore released too many times",
                ));
            }
        }
        self.value.set(self.value.get() + 1);
        self.wake_up_next();
        Ok(())
    }
}

/// asyncio's `Semaphore`: a counter of permits; [`acquire`](Semaphore::acquire) waits for one.
///
/// Waiters are served strictly in arrival order: a newcomer never overtakes a queued waiter,
/// even when a permit is free (asyncio 3.11.1+). A permit handed to a waiter that is then
/// cancelled goes to the next one. The semaphore is a loop-thread object: cloning shares it.
///
/// ```
/// use asyncio::locks::Semaphore;
///
/// let event_loop = asyncio::EventLoop::new()?;
/// let sem = Semaphore::new(2);
/// event_loop.run_until_complete(async move {
///     let a = sem.acquire().await;
///     let _b = sem.acquire().await;
///     assert!(sem.locked());
///     drop(a);
///     assert!(!sem.locked());
/// })?;
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    inner: Rc<Inner>,
}

impl Semaphore {
    /// A semaphore with `value` permits.
    pub fn new(value: usize) -> Self {
        Self::build(value, None)
    }

    fn build(value: usize, bound: Option<usize>) -> Self {
        Semaphore {
            inner: Rc::new(Inner {
                value: Cell::new(value),
                bound,
                waiters: WaitList::default(),
            }),
        }
    }

    /// Whether an `acquire` would wait now.
    pub fn locked(&self) -> bool {
        self.inner.locked()
    }

    /// The free permits (asyncio's `_value`).
    pub fn value(&self) -> usize {
        self.inner.value.get()
    }

    /// Waits for a permit; the guard gives it back.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the queue; a permit already handed to it goes to the next
    /// waiter.
    pub fn acquire(&self) -> SemaphoreAcquire {
        SemaphoreAcquire {
            sem: self.clone(),
            waiter: None,
        }
    }

    /// Takes a permit if one is free and nobody is queued.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard> {
        if self.inner.locked() {
            return None;
        }
        self.inner.value.set(self.inner.value.get() - 1);
        Some(SemaphoreGuard::new(self.clone()))
    }

    /// Adds a permit (Python's `sem.release()`), waking the first waiter.
    ///
    /// # Errors
    /// On a [`BoundedSemaphore`]'s inner semaphore, [`ErrorKind::InvalidState`] "BoundedSemaphore
    /// released too many times" once the initial value is reached.
    pub fn release(&self) -> Result<()> {
        self.inner.release()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("waiters", &self.inner.waiters.len())
            .finish()
    }
}

/// asyncio's `BoundedSemaphore`: a [`Semaphore`] whose `release` fails rather than raise the
/// count above its initial value.
///
/// ```
/// use asyncio::{locks::BoundedSemaphore, ErrorKind};
///
/// let sem = BoundedSemaphore::new(1);
/// let err = sem.release().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidState);
/// assert_eq!(err.to_string(), "BoundedSemaphore released too many times");
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits, never more.
    pub fn new(value: usize) -> Self {
        BoundedSemaphore {
            sem: Semaphore::build(value, Some(value)),
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

/// The future returned by [`Semaphore::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct SemaphoreAcquire {
    sem: Semaphore,
    waiter: Option<Rc<Waiter>>,
}

impl Future for SemaphoreAcquire {
    type Output = SemaphoreGuard;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphoreGuard> {
        let this = self.get_mut();
        let inner = &this.sem.inner;
        match &this.waiter {
            None => {
                if !inner.locked() {
                    inner.value.set(inner.value.get() - 1);
                    return Poll::Ready(SemaphoreGuard::new(this.sem.clone()));
                }
                this.waiter = Some(inner.waiters.push_back(cx));
                Poll::Pending
            }
            Some(w) => {
                if w.poll_woken(cx).is_pending() {
                    return Poll::Pending;
                }
                // The permit was taken for us when we were woken.
                inner.waiters.remove(w);
                this.waiter = None;
                inner.wake_up_all_allowed();
                Poll::Ready(SemaphoreGuard::new(this.sem.clone()))
            }
        }
    }
}

impl Drop for SemaphoreAcquire {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            let inner = &self.sem.inner;
            inner.waiters.remove(&w);
            if w.woken() {
                // Woken but not acquiring: undo the bookkeeping, the permit goes on.
                inner.value.set(inner.value.get() + 1);
            }
            inner.wake_up_all_allowed();
        }
    }
}

impl fmt::Debug for SemaphoreAcquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreAcquire")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

/// Holds one permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives the permit
/// back (the end of Python's `async with sem:`).
#[must_use = "dropping the guard releases the permit at once"]
pub struct SemaphoreGuard {
    sem: Semaphore,
    armed: bool,
}

impl SemaphoreGuard {
    fn new(sem: Semaphore) -> Self {
        SemaphoreGuard { sem, armed: true }
    }

    /// Keeps the permit without a guard; give it back later with `release` (Python's bare
    /// `await sem.acquire()`).
    pub fn forget(mut self) {
        self.armed = false;
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        if self.armed {
            // A bounded semaphore can only refuse if someone released behind the guard's back.
            let _ = self.sem.release();
        }
    }
}

impl fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
