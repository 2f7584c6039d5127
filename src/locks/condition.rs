//! [`Condition`]: asyncio's condition variable over a [`Lock`].

use std::fmt;
use std::rc::Rc;

use super::lock::{Acquire, Lock, LockGuard};
use super::waiters::{WaitList, Waiter};
use crate::error::{Error, ErrorKind, Result};

/// asyncio's `Condition`: tasks wait (releasing the lock) until another task notifies them.
///
/// [`wait`](Condition::wait) takes the [`LockGuard`] as proof the lock is held (Python's "cannot
/// wait on un-acquired lock" cannot happen), releases the lock, waits for a
/// [`notify`](Condition::notify), re-acquires the lock and hands a new guard back. Notified
/// waiters are woken in the order they started waiting. A waiter dropped after it was notified
/// but before it returned passes the notification to the next waiter (asyncio 3.13, gh-112202),
/// so none is lost.
///
/// ```
/// use asyncio::locks::Condition;
/// use std::{cell::Cell, rc::Rc};
///
/// let event_loop = asyncio::EventLoop::new()?;
/// let cond = Condition::new();
/// let ready = Rc::new(Cell::new(false));
/// let (c, r) = (cond.clone(), ready.clone());
/// event_loop.run_until_complete(async move {
///     let lp = asyncio::get_running_loop().unwrap();
///     let consumer = lp.create_task(async move {
///         let guard = c.acquire().await;
///         let _guard = c.wait_for(guard, || r.get()).await.unwrap();
///         "saw it"
///     }).unwrap();
///     asyncio::sleep(0.0).await.unwrap();
///     let _guard = cond.acquire().await;
///     ready.set(true);
///     cond.notify_all().unwrap();
///     drop(_guard);
///     assert_eq!(consumer.await.unwrap(), "saw it");
/// })?;
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Condition {
    lock: Lock,
    waiters: Rc<WaitList>,
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

impl Condition {
    /// A condition with a lock of its own.
    pub fn new() -> Self {
        Self::with_lock(Lock::new())
    }

    /// A condition over `lock` (Python's `Condition(lock)`), which other code may share.
    pub fn with_lock(lock: Lock) -> Self {
        Condition {
            lock,
            waiters: Rc::new(WaitList::default()),
        }
    }

    /// The underlying lock.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Acquires the underlying lock (Python's `async with cond:`).
    pub fn acquire(&self) -> Acquire {
        self.lock.acquire()
    }

    /// Whether the underlying lock is held.
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Releases the lock `guard` holds, waits to be notified, and re-acquires the lock.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] if `guard` holds a different lock (it is released).
    ///
    /// # Cancel safety
    /// Dropping the future leaves the list of waiters (a notification it had received goes to
    /// the next waiter); the lock is not re-acquired, since the code that held it is gone too.
    pub async fn wait(&self, guard: LockGuard) -> Result<LockGuard> {
        if !guard.lock().ptr_eq(&self.lock) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the guard holds a different lock than the condition's",
            ));
        }
        let mut ticket = CondTicket {
            cond: self,
            waiter: None,
            notified: false,
            done: false,
        };
        let mut held = Some(guard);
        std::future::poll_fn(|cx| match &ticket.waiter {
            Some(w) => w.poll_woken(cx),
            None => {
                // Queued first, then the lock is released: no notify can fall in between.
                ticket.waiter = Some(self.waiters.push_back(cx));
                drop(held.take());
                std::task::Poll::Pending
            }
        })
        .await;
        if let Some(w) = ticket.waiter.take() {
            self.waiters.remove(&w);
        }
        ticket.notified = true;
        let guard = self.lock.acquire().await;
        ticket.done = true;
        Ok(guard)
    }

    /// Waits until `predicate` is true, re-checking it after each notification (Python's
    /// `wait_for`). The predicate runs with the lock held.
    ///
    /// # Errors
    /// As [`wait`](Condition::wait).
    pub async fn wait_for(
        &self,
        mut guard: LockGuard,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<LockGuard> {
        while !predicate() {
            guard = self.wait(guard).await?;
        }
        Ok(guard)
    }

    /// Wakes up to `n` waiters, first come first served.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "cannot notify on un-acquired lock" when the lock is not held.
    pub fn notify(&self, n: usize) -> Result<()> {
        if !self.locked() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "cannot notify on un-acquired lock",
            ));
        }
        self.waiters.wake_n(n);
        Ok(())
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    /// As [`notify`](Condition::notify).
    pub fn notify_all(&self) -> Result<()> {
        self.notify(usize::MAX)
    }

    /// How many tasks wait on the condition.
    pub fn waiters(&self) -> usize {
        self.waiters.len()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// A waiter's place in a condition: on drop it leaves the list, and a notification it received
/// but did not use goes to the next waiter.
struct CondTicket<'a> {
    cond: &'a Condition,
    waiter: Option<Rc<Waiter>>,
    notified: bool,
    done: bool,
}

impl Drop for CondTicket<'_> {
    fn drop(&mut self) {
        let mut notified = self.notified;
        if let Some(w) = self.waiter.take() {
            self.cond.waiters.remove(&w);
            notified |= w.woken();
        }
        if notified && !self.done {
            self.cond.waiters.wake_n(1);
        }
    }
}
