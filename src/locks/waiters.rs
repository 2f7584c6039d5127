//! The FIFO of waiters behind every primitive: asyncio's `collections.deque` of futures.
//!
//! A waiter stays in the deque from the moment it blocks until its future completes or is
//! dropped; waking marks it (asyncio's `fut.set_result`) without removing it, so a woken waiter
//! still blocks barging (asyncio's `all(w.cancelled() for w in waiters)` test). A dropped waiter
//! removes itself at once, so the deque never holds a cancelled one.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// One blocked acquirer: asyncio's waiter future.
#[derive(Default)]
pub(crate) struct Waiter {
    woken: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Waiter {
    /// Whether it was woken (its future's result is set).
    #[inline]
    pub(crate) fn woken(&self) -> bool {
        self.woken.get()
    }

    /// Ready once woken; otherwise remembers `cx`'s waker.
    pub(crate) fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken.get() {
            return Poll::Ready(());
        }
        let mut slot = self.waker.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Marks it woken and wakes its task (never polls anything in place).
    fn wake(&self) {
        self.woken.set(true);
        let waker = self.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A FIFO of waiters.
#[derive(Default)]
pub(crate) struct WaitList {
    queue: RefCell<VecDeque<Rc<Waiter>>>,
    /// How many queued waiters are woken (the queues keep this equal to what they can serve).
    woken: Cell<usize>,
}

impl WaitList {
    /// Appends a new waiter that remembers `cx`'s waker.
    pub(crate) fn push_back(&self, cx: &Context<'_>) -> Rc<Waiter> {
        let w = Rc::new(Waiter {
            woken: Cell::new(false),
            waker: RefCell::new(Some(cx.waker().clone())),
        });
        self.queue.borrow_mut().push_back(w.clone());
        w
    }

    /// Puts a waiter that was woken but found its condition false again back at the head: it
    /// keeps its turn.
    pub(crate) fn requeue_front(&self, cx: &Context<'_>) -> Rc<Waiter> {
        let w = Rc::new(Waiter {
            woken: Cell::new(false),
            waker: RefCell::new(Some(cx.waker().clone())),
        });
        self.queue.borrow_mut().push_front(w.clone());
        w
    }

    /// Removes `waiter` (it completed or was dropped). The search starts at the head, where a
    /// woken waiter usually is.
    pub(crate) fn remove(&self, waiter: &Rc<Waiter>) {
        let mut q = self.queue.borrow_mut();
        if let Some(i) = q.iter().position(|w| Rc::ptr_eq(w, waiter)) {
            q.remove(i);
            if waiter.woken.get() {
                self.woken.set(self.woken.get() - 1);
            }
        }
    }

    /// Whether no waiter is queued (woken ones included).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// How many waiters are queued (woken ones included).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    /// asyncio's `Lock._wake_up_first`: wakes the head of the queue unless it is woken already
    /// (then someone is about to take the lock, and waking another would let two in).
    pub(crate) fn wake_head(&self) {
        let head = self.queue.borrow().front().cloned();
        if let Some(w) = head {
            if !w.woken.get() {
                self.woken.set(self.woken.get() + 1);
                w.wake();
            }
        }
    }

    /// Wakes the first waiter that is not woken yet; false if there is none.
    pub(crate) fn wake_next(&self) -> bool {
        self.wake_n(1) == 1
    }

    /// Wakes the first `n` waiters that are not woken yet, in order; returns how many.
    pub(crate) fn wake_n(&self, n: usize) -> usize {
        if n > 1 {
            // Many at once (notify_all, Event.set): one pass, then wake outside the borrow.
            let batch: Vec<Rc<Waiter>> = self
                .queue
                .borrow()
                .iter()
                .filter(|w| !w.woken.get())
                .take(n)
                .cloned()
                .collect();
            self.woken.set(self.woken.get() + batch.len());
            for w in &batch {
                w.wake();
            }
            return batch.len();
        }
        let mut count = 0;
        while count < n {
            // One at a time, outside the borrow: a waker may be anything.
            let next = self.queue.borrow().iter().find(|w| !w.woken.get()).cloned();
            let Some(w) = next else { break };
            self.woken.set(self.woken.get() + 1);
            w.wake();
            count += 1;
        }
        count
    }

    /// Wakes waiters in order until `target` of them are woken (or none is left to wake).
    /// Inlined (the queues call it on every put and get): the usual case, nobody to wake, is
    /// two loads and a compare in the caller.
    #[inline]
    pub(crate) fn wake_up_to(&self, target: usize) {
        let woken = self.woken.get();
        if woken < target && woken < self.len() {
            self.wake_n(target - woken);
        }
    }

    /// Wakes every waiter not woken yet.
    pub(crate) fn wake_all(&self) -> usize {
        self.wake_n(usize::MAX)
    }
}
