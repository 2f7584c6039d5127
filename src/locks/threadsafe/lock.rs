//! The thread-safe [`Lock`]: one permit of the same FIFO machinery as the semaphore.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::semaphore::Permits;
use crate::error::{Error, ErrorKind, Result};
use crate::sync::Arc;

/// asyncio's `Lock`, for tasks on any loop or thread: `Send + Sync`, cloning shares it.
///
/// [`acquire`](Lock::acquire) waits until the lock is free and returns a [`LockGuard`] that
/// releases it when dropped, on whatever thread that happens. Waiters are served strictly first
/// come, first served across threads; a waiter cancelled (its future dropped) after the lock was
/// handed to it passes it to the next one. The lock is handed over at release: from then until
/// the woken waiter runs, [`locked`](Lock::locked) is true and nobody can barge in.
///
/// ```
/// use asyncio::locks::threadsafe::Lock;
///
/// let lock = Lock::new();
/// let threads: Vec<_> = (0..2)
///     .map(|_| {
///         let lock = lock.clone();
///         std::thread::spawn(move || {
///             let event_loop = asyncio::EventLoop::new()?;
///             event_loop.run_until_complete(async move {
///                 for _ in 0..100 {
///                     let _guard = lock.acquire().await;
///                     asyncio::sleep(0.0).await.unwrap(); // held across an await
///                 }
///             })
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap()?;
/// }
/// assert!(!lock.locked());
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    permits: Arc<Permits>,
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
            permits: Permits::new(1, Some(1)),
        }
    }

    /// Whether the lock is held (or handed to a woken waiter that has not run yet).
    pub fn locked(&self) -> bool {
        self.permits.value() == 0
    }

    /// How many waiters are queued.
    pub fn waiters(&self) -> usize {
        self.permits.waiters()
    }

    /// Waits for the lock and takes it; the guard releases it.
    ///
    /// # Cancel safety
    /// Dropping the future gives up the place in the queue; if the lock had already been
    /// handed to it, the next waiter gets it instead. No wake-up is lost.
    pub fn acquire(&self) -> LockAcquire {
        LockAcquire {
            lock: self.clone(),
            ticket: None,
        }
    }

    /// Takes the lock if it is free and nobody waits for it.
    pub fn try_acquire(&self) -> Option<LockGuard> {
        self.permits
            .try_take()
            .then(|| LockGuard::new(self.clone()))
    }

    /// Releases the lock without a guard (for a guard given up with [`LockGuard::forget`]);
    /// wakes the first waiter.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "Lock is not acquired." when it is not held.
    pub fn release(&self) -> Result<()> {
        self.permits
            .release()
            .map_err(|()| Error::new(ErrorKind::InvalidState, "Lock is not acquired."))
    }

    /// Whether `self` and `other` are the same lock.
    pub fn ptr_eq(&self, other: &Lock) -> bool {
        Arc::ptr_eq(&self.permits, &other.permits)
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

/// The future returned by [`Lock::acquire`]; `Send`, so any loop's task may await it.
#[must_use = "futures do nothing unless awaited"]
pub struct LockAcquire {
    lock: Lock,
    ticket: Option<u64>,
}

impl Future for LockAcquire {
    type Output = LockGuard;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard> {
        let this = self.get_mut();
        this.lock
            .permits
            .poll_acquire(&mut this.ticket, cx)
            .map(|()| LockGuard::new(this.lock.clone()))
    }
}

impl Drop for LockAcquire {
    fn drop(&mut self) {
        if let Some(id) = self.ticket.take() {
            self.lock.permits.cancel_acquire(id);
        }
    }
}

impl fmt::Debug for LockAcquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockAcquire")
            .field("waiting", &self.ticket.is_some())
            .finish()
    }
}

/// Holds a thread-safe [`Lock`]; dropping it (on any thread) releases the lock.
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

    /// Keeps the lock held without a guard; release it later with [`Lock::release`].
    pub fn forget(mut self) {
        self.armed = false;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.armed {
            // Only fails if someone released the lock behind the guard's back.
            let _ = self.lock.permits.release();
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}
