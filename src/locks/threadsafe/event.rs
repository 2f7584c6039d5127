//! The thread-safe [`Event`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::waiters::{WaitQueue, Wakeups};
use crate::sync::{Arc, Mutex, MutexGuard};

struct State {
    value: bool,
    waiters: WaitQueue,
}

struct Inner {
    state: Mutex<State>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// asyncio's `Event`, for tasks on any loop or thread: `Send + Sync`, cloning shares it.
///
/// [`set`](Event::set), from any thread, wakes every waiter; a waiter that was woken returns
/// even if the flag is cleared again before it runs (as in asyncio).
///
/// ```
/// use asyncio::locks::threadsafe::Event;
///
/// let event = Event::new();
/// let e = event.clone();
/// let waiter = std::thread::spawn(move || {
///     asyncio::EventLoop::new()?.run_until_complete(async move { e.wait().await; "woken" })
/// });
/// event.set(); // from this thread
/// assert_eq!(waiter.join().unwrap()?, "woken");
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    inner: Arc<Inner>,
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Self {
        Event {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    value: false,
                    waiters: WaitQueue::default(),
                }),
            }),
        }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.inner.lock().value
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let mut wakeups = Wakeups::default();
        let mut st = self.inner.lock();
        if !st.value {
            st.value = true;
            st.waiters.wake_all(&mut wakeups);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.inner.lock().value = false;
    }

    /// How many waiters are queued.
    pub fn waiters(&self) -> usize {
        self.inner.lock().waiters.len()
    }

    /// Waits until the flag is set (at once if it is).
    ///
    /// # Cancel safety
    /// Dropping the future only leaves the list of waiters.
    pub fn wait(&self) -> EventWait {
        EventWait {
            event: self.clone(),
            ticket: None,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("Event")
            .field("set", &st.value)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

/// The future returned by [`Event::wait`]; `Send`, so any loop's task may await it.
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait {
    event: Event,
    ticket: Option<u64>,
}

impl Future for EventWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut st = this.event.inner.lock();
        match this.ticket {
            None if st.value => Poll::Ready(()),
            None => {
                this.ticket = Some(st.waiters.push(cx.waker()));
                Poll::Pending
            }
            Some(id) => {
                if !st.waiters.poll(id, cx.waker()) {
                    return Poll::Pending;
                }
                st.waiters.remove(id);
                this.ticket = None;
                Poll::Ready(())
            }
        }
    }
}

impl Drop for EventWait {
    fn drop(&mut self) {
        if let Some(id) = self.ticket.take() {
            self.event.inner.lock().waiters.remove(id);
        }
    }
}

impl fmt::Debug for EventWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("waiting", &self.ticket.is_some())
            .finish()
    }
}
