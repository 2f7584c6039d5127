//! [`Lock`]: asyncio's mutual-exclusion lock, with [`LockGuard`] as `async with lock:`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{WaitList, Waiter};
use crate::error::{Error, ErrorKind, Result};

struct Inner {
    locked: std::cell::Cell<bool>,
    waiters: WaitList,
}

/// asyncio's `Lock`: a mutual-exclusion lock for the tasks of one loop.
///
/// [`acquire`](Lock::acquire) waits until the lock is free and returns a [`LockGuard`] that
/// releases it when dropped (Python's `async with lock:`). Waiters are served strictly first
/// come, first served; a waiter cancelled (its future dropped) after it was woken hands its
/// turn to the next one (asyncio's bpo-45997 fix). The lock is a loop-thread object: cloning
/// shares it (`Rc` inside), and it is not `Send`.
///
/// ```
/// use asyncio::locks::Lock;
///
/// let event_loop = asyncio::EventLoop::new()?;
/// let lock = Lock::new();
/// event_loop.run_until_complete(async move {
///     let guard = lock.acquire().await;
///     assert!(lock.locked());
///     drop(guard);
///     assert!(!lock.locked());
/// })?;
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    inner: Rc<Inner>,
}

impl Default for Lock {
    fn default() -> Self {
        Self::new()
    }
}

impl Lock {
    /// A new, unlocked lock.
    pub fn new() -> Self {
        Lock {
            inner: Rc::new(Inner {
                locked: std::cell::Cell::new(false),
                waiters: WaitList::default(),
            }),
        }
    }

    /// Whether the lock is held.
    pub fn locked(&self) -> bool {
        self.inner.locked.get()
    }

    /// Waits for the lock and takes it; the guard releases it.
    ///
    /// # Cancel safety
    /// Dropping the future gives up the place in the queue; if the lock had already been
    /// handed to it, the next waiter gets it instead. No wake-up is lost.
    pub fn acquire(&self) -> Acquire {
        Acquire {
            lock: self.clone(),
            waiter: None,
        }
    }

    /// Takes the lock if it is free and nobody waits for it.
    pub fn try_acquire(&self) -> Option<LockGuard> {
        if self.locked() || !self.inner.waiters.is_empty() {
            return None;
        }
        self.inner.locked.set(true);
        Some(LockGuard::new(self.clone()))
    }

    /// Releases the lock without a guard (Python's `lock.release()`), for a guard given up
    /// with [`LockGuard::forget`]; wakes the first waiter.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "Lock is not acquired." when it is not held.
    pub fn release(&self) -> Result<()> {
        if !self.locked() {
            return Err(Error::new(ErrorKind::InvalidState, "Lock is not acquired."));
        }
        self.inner.locked.set(false);
        self.inner.waiters.wake_head();
        Ok(())
    }

    /// Whether `self` and `other` are the same lock.
    pub fn ptr_eq(&self, other: &Lock) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// How many tasks wait for the lock.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.len()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// The future returned by [`Lock::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire {
    lock: Lock,
    waiter: Option<Rc<Waiter>>,
}

impl Future for Acquire {
    type Output = LockGuard;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard> {
        let this = self.get_mut();
        let inner = &this.lock.inner;
        match &this.waiter {
            None => {
                if !inner.locked.get() && inner.waiters.is_empty() {
                    inner.locked.set(true);
                    return Poll::Ready(LockGuard::new(this.lock.clone()));
                }
                this.waiter = Some(inner.waiters.push_back(cx));
                Poll::Pending
            }
            Some(w) => {
                if w.poll_woken(cx).is_pending() {
                    return Poll::Pending;
                }
                inner.waiters.remove(w);
                this.waiter = None;
                inner.locked.set(true);
                Poll::Ready(LockGuard::new(this.lock.clone()))
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            let inner = &self.lock.inner;
            inner.waiters.remove(&w);
            // asyncio: a cancelled waiter makes sure the head of the queue runs if the lock is
            // free (it may have been woken itself: the wake-up passes on).
            if !inner.locked.get() {
                inner.waiters.wake_head();
            }
        }
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

/// Holds a [`Lock`]; dropping it releases the lock (the end of Python's `async with lock:`).
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard {
    lock: Lock,
    armed: bool,
}

impl LockGuard {
    fn new(lock: Lock) -> Self {
        LockGuard { lock, armed: true }
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Keeps the lock held without a guard; release it later with [`Lock::release`] (Python's
    /// bare `await lock.acquire()` ... `lock.release()`).
    pub fn forget(mut self) {
        self.armed = false;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.armed {
            // Only fails if someone released the lock behind the guard's back.
            let _ = self.lock.release();
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}
