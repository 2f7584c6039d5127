//! The thread-safe [`Condition`]: asyncio's condition variable over a thread-safe [`Lock`].

use std::fmt;
use std::future::poll_fn;
use std::task::Poll;

use super::lock::{Lock, LockAcquire, LockGuard};
use super::waiters::{WaitQueue, Wakeups};
use crate::error::{Error, ErrorKind, Result};
use crate::sync::{Arc, Mutex, MutexGuard};

/// asyncio's `Condition`, for tasks on any loop or thread: `Send + Sync`, cloning shares it.
///
/// As its loop-thread sibling [`locks::Condition`](crate::locks::Condition):
/// [`wait`](Condition::wait) takes the [`LockGuard`] as proof the lock is held, releases the
/// lock, waits for a [`notify`](Condition::notify) from any thread, re-acquires the lock and
/// hands a new guard back. Waiters are notified in the order they started waiting, across
/// threads. A waiter dropped after it was notified but before it got the lock back passes the
/// notification to the next waiter (asyncio 3.13, gh-112202), so none is lost.
///
/// ```
/// use asyncio::locks::threadsafe::Condition;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let cond = Condition::new();
/// let ready = Arc::new(AtomicBool::new(false));
/// let (c, r) = (cond.clone(), ready.clone());
/// let consumer = std::thread::spawn(move || {
///     asyncio::EventLoop::new()?.run_until_complete(async move {
///         let guard = c.acquire().await;
///         let _guard = c.wait_for(guard, || r.load(Ordering::SeqCst)).await.unwrap();
///         "saw it"
///     })
/// });
/// // This thread is the producer: it sets the flag and notifies with the lock held.
/// let guard = futures::executor::block_on(cond.acquire());
/// ready.store(true, Ordering::SeqCst);
/// cond.notify_all()?;
/// drop(guard);
/// assert_eq!(consumer.join().unwrap()?, "saw it");
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Condition {
    lock: Lock,
    waiters: Arc<Mutex<WaitQueue>>,
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
            waiters: Arc::new(Mutex::new(WaitQueue::default())),
        }
    }

    /// The queue of waiters; a poisoned mutex is still used (nothing panics while holding it).
    fn queue(&self) -> MutexGuard<'_, WaitQueue> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The underlying lock.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Acquires the underlying lock (Python's `async with cond:`).
    pub fn acquire(&self) -> LockAcquire {
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
    /// Dropping the future leaves the queue of waiters (a notification it had received goes to
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
            id: None,
            notified: false,
            done: false,
        };
        let mut held = Some(guard);
        poll_fn(|cx| {
            let mut queue = self.queue();
            match ticket.id {
                Some(id) if queue.poll(id, cx.waker()) => Poll::Ready(()),
                Some(_) => Poll::Pending,
                None => {
                    // Queued first, then the lock is released: a notifier needs the lock, so
                    // it cannot run in between and miss this waiter.
                    ticket.id = Some(queue.push(cx.waker()));
                    drop(queue);
                    drop(held.take());
                    Poll::Pending
                }
            }
        })
        .await;
        if let Some(id) = ticket.id.take() {
            self.queue().remove(id);
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
        let mut wakeups = Wakeups::default();
        let mut queue = self.queue();
        for _ in 0..n {
            if !queue.wake_next(&mut wakeups) {
                break;
            }
        }
        Ok(())
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    /// As [`notify`](Condition::notify).
    pub fn notify_all(&self) -> Result<()> {
        self.notify(usize::MAX)
    }

    /// How many tasks wait on the condition (notified ones that have not run yet included).
    pub fn waiters(&self) -> usize {
        self.queue().len()
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

/// A waiter's place in a condition: on drop it leaves the queue, and a notification it received
/// but did not use (it was dropped before it had the lock back) goes to the next waiter.
struct CondTicket<'a> {
    cond: &'a Condition,
    id: Option<u64>,
    notified: bool,
    done: bool,
}

impl Drop for CondTicket<'_> {
    fn drop(&mut self) {
        let mut wakeups = Wakeups::default();
        let mut queue = self.cond.queue();
        let mut notified = self.notified;
        if let Some(id) = self.id.take() {
            notified |= queue.remove(id) == Some(true);
        }
        if notified && !self.done {
            queue.wake_next(&mut wakeups);
        }
    }
}
