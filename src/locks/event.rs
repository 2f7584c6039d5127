//! [`Event`]: asyncio's event flag.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{WaitList, Waiter};

struct Inner {
    value: Cell<bool>,
    waiters: WaitList,
}

/// asyncio's `Event`: a flag tasks can wait for.
///
/// [`set`](Event::set) wakes every waiter; a waiter that was woken returns even if the flag is
/// cleared again before it runs (as in asyncio). A loop-thread object: cloning shares it.
///
/// ```
/// use asyncio::locks::Event;
///
/// let event_loop = asyncio::EventLoop::new()?;
/// let event = Event::new();
/// let e = event.clone();
/// event_loop.run_until_complete(async move {
///     let lp = asyncio::get_running_loop().unwrap();
///     let waiter = lp.create_task(async move { e.wait().await; "woken" }).unwrap();
///     asyncio::sleep(0.0).await.unwrap();
///     event.set();
///     assert_eq!(waiter.await.unwrap(), "woken");
/// })?;
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    inner: Rc<Inner>,
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
            inner: Rc::new(Inner {
                value: Cell::new(false),
                waiters: WaitList::default(),
            }),
        }
    }

    /// Whether the flag is set.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.inner.value.get()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        if !self.inner.value.replace(true) {
            self.inner.waiters.wake_all();
        }
    }

    /// Clears the flag.
    #[inline]
    pub fn clear(&self) {
        self.inner.value.set(false);
    }

    /// Waits until the flag is set (at once if it is).
    ///
    /// # Cancel safety
    /// Dropping the future only leaves the list of waiters.
    pub fn wait(&self) -> EventWait {
        EventWait {
            event: self.clone(),
            waiter: None,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("waiters", &self.inner.waiters.len())
            .finish()
    }
}

/// The future returned by [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait {
    event: Event,
    waiter: Option<Rc<Waiter>>,
}

impl Future for EventWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let inner = &this.event.inner;
        match &this.waiter {
            None if inner.value.get() => Poll::Ready(()),
            None => {
                this.waiter = Some(inner.waiters.push_back(cx));
                Poll::Pending
            }
            Some(w) => {
                if w.poll_woken(cx).is_pending() {
                    return Poll::Pending;
                }
                inner.waiters.remove(w);
                this.waiter = None;
                Poll::Ready(())
            }
        }
    }
}

impl Drop for EventWait {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.event.inner.waiters.remove(&w);
        }
    }
}

impl fmt::Debug for EventWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}
