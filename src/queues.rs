//! asyncio's queues: [`Queue`] (FIFO), [`LifoQueue`] and [`PriorityQueue`], with `maxsize`,
//! `put`/`get`, their `_nowait` forms, `task_done`/`join` and 3.13's `shutdown`.
//!
//! Like the [`locks`](crate::locks), queues are loop-thread objects: `Rc` inside (cloning
//! shares one queue), not `Send`, no atomics, and they need only their futures' wakers.
//!
//! **Fairness.** The queue keeps as many woken getters as there are items and as many woken
//! putters as there are free slots, so each woken waiter has its item or slot. Blocked getters (and blocked putters) are served strictly first come, first
//! served: each item put wakes one getter, and the item is the woken getter's: a `get()` that
//! arrives later waits its turn behind the woken getter instead of taking the item (asyncio lets
//! it take the item, and the woken getter goes to the back of the line). A getter dropped after
//! it was woken passes its wake-up on. The `_nowait` forms never wait and never queue: they
//! take or add an item if they can.
//!
//! ```
//! use asyncio::queues::Queue;
//!
//! let event_loop = asyncio::EventLoop::new()?;
//! let q: Queue<u32> = Queue::new(2);
//! let total = event_loop.run_until_complete(async move {
//!     let lp = asyncio::get_running_loop().unwrap();
//!     let consumer = {
//!         let q = q.clone();
//!         lp.create_task(async move {
//!             let mut sum = 0;
//!             while let Ok(n) = q.get().await {
//!                 sum += n;
//!                 q.task_done().unwrap();
//!             }
//!             sum
//!         }).unwrap()
//!     };
//!     for n in 1..=10 {
//!         q.put(n).await.unwrap();
//!     }
//!     q.join().await;
//!     q.shutdown(false);
//!     consumer.await.unwrap()
//! })?;
//! assert_eq!(total, 55);
//! # Ok::<(), asyncio::Error>(())
//! ```

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::error::{Error, ErrorKind, Result};
use crate::locks::waiters::{WaitList, Waiter};
use crate::locks::Event;

/// Where a queue keeps its items: the order in which `get` returns them.
pub trait Store<T>: Default + 'static {
    /// Adds an item.
    fn push(&mut self, item: T);
    /// Removes the next item.
    fn pop(&mut self) -> Option<T>;
    /// The number of items.
    fn len(&self) -> usize;
    /// Whether there is no item.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// First in, first out: [`Queue`]'s order.
#[derive(Debug)]
pub struct Fifo<T>(VecDeque<T>);

/// Last in, first out: [`LifoQueue`]'s order.
#[derive(Debug)]
pub struct Lifo<T>(Vec<T>);

/// Smallest first (Python's `heapq`): [`PriorityQueue`]'s order.
#[derive(Debug)]
pub struct Priority<T: Ord>(BinaryHeap<Reverse<T>>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T: Ord> Default for Priority<T> {
    fn default() -> Self {
        Priority(BinaryHeap::new())
    }
}

impl<T: 'static> Store<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T: 'static> Store<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T: Ord + 'static> Store<T> for Priority<T> {
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item))
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(t)| t)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

struct Inner<T, S> {
    maxsize: usize,
    items: RefCell<S>,
    getters: WaitList,
    putters: WaitList,
    unfinished: Cell<usize>,
    finished: Event,
    shutdown: Cell<bool>,
    _item: std::marker::PhantomData<T>,
}

impl<T: 'static, S: Store<T>> Inner<T, S> {
    #[inline]
    fn qsize(&self) -> usize {
        self.items.borrow().len()
    }

    /// Free slots (`usize::MAX` when unbounded).
    #[inline]
    fn room(&self) -> usize {
        if self.maxsize == 0 {
            usize::MAX
        } else {
            self.maxsize.saturating_sub(self.qsize())
        }
    }

    fn put_nowait(&self, item: T) -> Result<()> {
        if self.shutdown.get() {
            return Err(shut_down());
        }
        if self.room() == 0 {
            return Err(Error::from_kind(ErrorKind::QueueFull));
        }
        self.push(item);
        Ok(())
    }

    /// Adds `item` (there is room, the queue is not shut down) and wakes a getter for it.
    #[inline]
    fn push(&self, item: T) {
        self.items.borrow_mut().push(item);
        self.unfinished.set(self.unfinished.get() + 1);
        self.finished.clear();
        self.getters.wake_up_to(self.qsize());
    }

    fn get_nowait(&self) -> Result<T> {
        match self.pop() {
            Some(item) => Ok(item),
            None if self.shutdown.get() => Err(shut_down()),
            None => Err(Error::from_kind(ErrorKind::QueueEmpty)),
        }
    }

    /// Takes the next item, if any, and wakes a putter for the freed slot.
    #[inline]
    fn pop(&self) -> Option<T> {
        let item = self.items.borrow_mut().pop()?;
        self.putters.wake_up_to(self.room());
        Some(item)
    }
}

fn shut_down() -> Error {
    Error::from_kind(ErrorKind::QueueShutDown)
}

/// The queue shared by [`Queue`], [`LifoQueue`] and [`PriorityQueue`]: `S` decides the order.
pub struct GenericQueue<T, S> {
    inner: Rc<Inner<T, S>>,
}

impl<T, S> Clone for GenericQueue<T, S> {
    fn clone(&self) -> Self {
        GenericQueue {
            inner: self.inner.clone(),
        }
    }
}

/// asyncio's `Queue`: first in, first out.
pub type Queue<T> = GenericQueue<T, Fifo<T>>;
/// asyncio's `LifoQueue`: the last item put is the first out.
pub type LifoQueue<T> = GenericQueue<T, Lifo<T>>;
/// asyncio's `PriorityQueue`: the smallest item first (use `(priority, item)` tuples, as in
/// Python).
pub type PriorityQueue<T> = GenericQueue<T, Priority<T>>;

impl<T: 'static, S: Store<T>> Default for GenericQueue<T, S> {
    fn default() -> Self {
        Self::new(0)
    }
}

impl<T: 'static, S: Store<T>> GenericQueue<T, S> {
    /// A queue of at most `maxsize` items; `0` means unbounded (as in Python).
    pub fn new(maxsize: usize) -> Self {
        let finished = Event::new();
        finished.set();
        GenericQueue {
            inner: Rc::new(Inner {
                maxsize,
                items: RefCell::new(S::default()),
                getters: WaitList::default(),
                putters: WaitList::default(),
                unfinished: Cell::new(0),
                finished,
                shutdown: Cell::new(false),
                _item: std::marker::PhantomData,
            }),
        }
    }

    /// The bound given to [`new`](GenericQueue::new) (`0`: unbounded).
    pub fn maxsize(&self) -> usize {
        self.inner.maxsize
    }

    /// The number of items in the queue.
    pub fn qsize(&self) -> usize {
        self.inner.qsize()
    }

    /// Whether the queue holds no item.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items (never, when unbounded).
    pub fn full(&self) -> bool {
        self.inner.room() == 0
    }

    /// Puts `item`, waiting for a free slot if the queue is full.
    ///
    /// # Errors
    /// [`ErrorKind::QueueShutDown`] once the queue is shut down (the item is dropped).
    ///
    /// # Cancel safety
    /// Dropping the future before it returned drops the item and gives up the place in line
    /// (a slot already given to it goes to the next putter).
    pub fn put(&self, item: T) -> Put<T, S> {
        Put {
            queue: self.clone(),
            item: Some(item),
            waiter: None,
        }
    }

    /// Gets the next item, waiting for one if the queue is empty.
    ///
    /// # Errors
    /// [`ErrorKind::QueueShutDown`] once the queue is shut down and empty (items put before
    /// a non-immediate shutdown are still delivered).
    ///
    /// # Cancel safety
    /// Dropping the future loses no item: an item is taken only when the future returns it.
    pub fn get(&self) -> Get<T, S> {
        Get {
            queue: self.clone(),
            waiter: None,
        }
    }

    /// Puts `item` if there is a free slot.
    ///
    /// # Errors
    /// [`ErrorKind::QueueFull`] when full, [`ErrorKind::QueueShutDown`] after `shutdown`; the
    /// item is dropped. On one thread, `!q.full()` before the call guarantees success.
    pub fn put_nowait(&self, item: T) -> Result<()> {
        self.inner.put_nowait(item)
    }

    /// Takes the next item if there is one.
    ///
    /// # Errors
    /// [`ErrorKind::QueueEmpty`] when empty; [`ErrorKind::QueueShutDown`] when empty after
    /// `shutdown`.
    pub fn get_nowait(&self) -> Result<T> {
        self.inner.get_nowait()
    }

    /// Marks one item taken with `get` as processed; [`join`](GenericQueue::join) returns once
    /// every item put has been marked.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "task_done() called too many times".
    pub fn task_done(&self) -> Result<()> {
        let n = self.inner.unfinished.get();
        if n == 0 {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "task_done() called too many times",
            ));
        }
        self.inner.unfinished.set(n - 1);
        if n == 1 {
            self.inner.finished.set();
        }
        Ok(())
    }

    /// Waits until every item put has been marked with [`task_done`](GenericQueue::task_done).
    pub async fn join(&self) {
        if self.inner.unfinished.get() > 0 {
            self.inner.finished.wait().await;
        }
    }

    /// Shuts the queue down (asyncio 3.13): `put` fails with [`ErrorKind::QueueShutDown`] from
    /// now on, blocked putters too; `get` fails once the queue is empty. With `immediate`, the
    /// items are dropped at once (counted as done for `join`) and blocked getters fail.
    pub fn shutdown(&self, immediate: bool) {
        let inner = &*self.inner;
        inner.shutdown.set(true);
        if immediate {
            loop {
                let item = inner.items.borrow_mut().pop();
                let Some(item) = item else { break };
                drop(item);
                let n = inner.unfinished.get();
                inner.unfinished.set(n.saturating_sub(1));
            }
            if inner.unfinished.get() == 0 {
                inner.finished.set();
            }
        }
        inner.getters.wake_all();
        inner.putters.wake_all();
    }

    /// Whether [`shutdown`](GenericQueue::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.inner.shutdown.get()
    }
}

impl<T, S> fmt::Debug for GenericQueue<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("maxsize", &self.inner.maxsize)
            .field("getters", &self.inner.getters.len())
            .field("putters", &self.inner.putters.len())
            .field("unfinished", &self.inner.unfinished.get())
            .finish_non_exhaustive()
    }
}

/// The future returned by [`GenericQueue::put`].
#[must_use = "futures do nothing unless awaited"]
pub struct Put<T: 'static, S: Store<T>> {
    queue: GenericQueue<T, S>,
    item: Option<T>,
    waiter: Option<Rc<Waiter>>,
}

// The item is never pinned.
impl<T: 'static, S: Store<T>> Unpin for Put<T, S> {}

impl<T: 'static, S: Store<T>> Future for Put<T, S> {
    type Output = Result<()>;

    /// The usual case inline (not queued, nobody queued ahead, a free slot: the item goes in),
    /// the rest out of line.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let inner = &*this.queue.inner;
        if this.waiter.is_none() && !inner.shutdown.get() && inner.room() > inner.putters.len() {
            if let Some(item) = this.item.take() {
                inner.push(item);
                return Poll::Ready(Ok(()));
            }
        }
        this.poll_slow(cx)
    }
}

impl<T: 'static, S: Store<T>> Put<T, S> {
    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self;
        let inner = &*this.queue.inner;
        let mut was_woken = false;
        if let Some(w) = &this.waiter {
            if w.poll_woken(cx).is_pending() {
                return Poll::Pending;
            }
            inner.putters.remove(w);
            this.waiter = None;
            was_woken = true;
        }
        if inner.shutdown.get() {
            this.item = None;
            return Poll::Ready(Err(shut_down()));
        }
        // A newcomer queues behind the putters already waiting; a woken one has its slot
        // unless a `put_nowait` took it (then it keeps its place at the head).
        let room = inner.room();
        let free = if was_woken {
            room > 0
        } else {
            room > inner.putters.len()
        };
        if !free {
            this.waiter = Some(if was_woken {
                inner.putters.requeue_front(cx)
            } else {
                inner.putters.push_back(cx)
            });
            return Poll::Pending;
        }
        let Some(item) = this.item.take() else {
            return Poll::Ready(Err(Error::new(
                ErrorKind::InvalidState,
                "put() polled after it returned",
            )));
        };
        // put_nowait wakes a getter for the new item; the free slots only shrank.
        Poll::Ready(inner.put_nowait(item))
    }
}

impl<T: 'static, S: Store<T>> Drop for Put<T, S> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.queue.inner.putters.remove(&w);
            // A slot it was given goes to the next putter.
            let inner = &*self.queue.inner;
            inner.putters.wake_up_to(inner.room());
        }
    }
}

impl<T: 'static, S: Store<T>> fmt::Debug for Put<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put")
            .field("waiting", &self.waiter.is_some())
            .finish_non_exhaustive()
    }
}

/// The future returned by [`GenericQueue::get`].
#[must_use = "futures do nothing unless awaited"]
pub struct Get<T: 'static, S: Store<T>> {
    queue: GenericQueue<T, S>,
    waiter: Option<Rc<Waiter>>,
}

impl<T: 'static, S: Store<T>> Future for Get<T, S> {
    type Output = Result<T>;

    /// The usual case inline (not queued, nobody queued ahead, an item there: take it), the
    /// rest out of line.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let inner = &*this.queue.inner;
        if this.waiter.is_none() && inner.getters.is_empty() {
            if let Some(item) = inner.pop() {
                return Poll::Ready(Ok(item));
            }
        }
        this.poll_slow(cx)
    }
}

impl<T: 'static, S: Store<T>> Get<T, S> {
    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self;
        let inner = &*this.queue.inner;
        let mut was_woken = false;
        if let Some(w) = &this.waiter {
            if w.poll_woken(cx).is_pending() {
                return Poll::Pending;
            }
            inner.getters.remove(w);
            this.waiter = None;
            was_woken = true;
        }
        let qsize = inner.qsize();
        let available = if was_woken {
            qsize > 0
        } else {
            qsize > inner.getters.len()
        };
        if !available {
            if inner.shutdown.get() && qsize == 0 {
                return Poll::Ready(Err(shut_down()));
            }
            if !inner.shutdown.get() || qsize == 0 {
                this.waiter = Some(if was_woken {
                    inner.getters.requeue_front(cx)
                } else {
                    inner.getters.push_back(cx)
                });
                return Poll::Pending;
            }
        }
        // get_nowait wakes a putter for the freed slot; the items only shrank.
        Poll::Ready(inner.get_nowait())
    }
}

impl<T: 'static, S: Store<T>> Drop for Get<T, S> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            let inner = &*self.queue.inner;
            inner.getters.remove(&w);
            // An item it was woken for goes to the next getter.
            inner.getters.wake_up_to(inner.qsize());
        }
    }
}

impl<T: 'static, S: Store<T>> fmt::Debug for Get<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("waiting", &self.waiter.is_some())
            .finish_non_exhaustive()
    }
}
