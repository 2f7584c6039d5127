//! The FIFO of waiters behind the thread-safe primitives. It lives inside the primitive's
//! mutex, so marking a waiter woken, taking its waker and refreshing it are one step under that
//! lock, and no wake-up can fall between a check and a registration. Wakers are collected in
//! [`Wakeups`] and woken after the lock is released: a waker may be anything (another loop's
//! inbox, a thread's unpark), and none of it runs under our lock.

use std::collections::VecDeque;
use std::task::Waker;

/// One queued waiter: its ticket, whether it was woken (asyncio's `fut.set_result`), and the
/// waker of its last poll.
struct Entry {
    id: u64,
    woken: bool,
    waker: Option<Waker>,
}

/// A FIFO of waiters. Waking always takes the first waiter not woken yet, and a waiter leaves
/// only when its future completes or is dropped, so the woken ones are always a prefix of the
/// queue (`woken` long); tickets grow from the back, so the queue is sorted by ticket and a
/// waiter is found by binary search.
#[derive(Default)]
pub(super) struct WaitQueue {
    entries: VecDeque<Entry>,
    woken: usize,
    next_id: u64,
}

impl WaitQueue {
    /// Queues a new waiter at the back; returns its ticket.
    pub(super) fn push(&mut self, waker: &Waker) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_back(Entry {
            id,
            woken: false,
            waker: Some(waker.clone()),
        });
        id
    }

    fn index(&self, id: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |e| e.id).ok()
    }

    /// Whether waiter `id` was woken; if not, it now holds `waker` (so a wake after this call
    /// reaches the latest poll).
    pub(super) fn poll(&mut self, id: u64, waker: &Waker) -> bool {
        let Some(i) = self.index(id) else {
            // Not queued: only a waiter that was never pushed; treat it as woken so it ends.
            return true;
        };
        let entry = &mut self.entries[i];
        if entry.woken {
            return true;
        }
        match &entry.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => entry.waker = Some(waker.clone()),
        }
        false
    }

    /// Removes waiter `id` (its future completed or was dropped); `Some(woken)` if it was queued.
    pub(super) fn remove(&mut self, id: u64) -> Option<bool> {
        let i = self.index(id)?;
        let entry = self.entries.remove(i)?;
        if entry.woken {
            self.woken -= 1;
        }
        Some(entry.woken)
    }

    /// Wakes the first waiter not woken yet (its waker goes to `wakeups`); false if none.
    pub(super) fn wake_next(&mut self, wakeups: &mut Wakeups) -> bool {
        let Some(entry) = self.entries.get_mut(self.woken) else {
            return false;
        };
        entry.woken = true;
        self.woken += 1;
        wakeups.push(entry.waker.take());
        true
    }

    /// Wakes every waiter not woken yet.
    pub(super) fn wake_all(&mut self, wakeups: &mut Wakeups) {
        while self.wake_next(wakeups) {}
    }

    /// Whether no waiter is queued (woken ones included).
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many waiters are queued (woken ones included).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Wakers taken under a primitive's lock, woken when this is dropped. Declare it before the
/// lock guard, so that the guard is dropped (the lock released) first.
#[derive(Default)]
pub(super) struct Wakeups {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakeups {
    fn push(&mut self, waker: Option<Waker>) {
        let Some(w) = waker else { return };
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.more.push(w);
        }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        if let Some(w) = self.first.take() {
            w.wake();
        }
        for w in self.more.drain(..) {
            w.wake();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use futures::task::noop_waker;

    #[test]
    fn woken_waiters_stay_a_prefix_and_removal_finds_any() {
        let w = noop_waker();
        let mut q = WaitQueue::default();
        let ids: Vec<u64> = (0..4).map(|_| q.push(&w)).collect();
        let mut wk = Wakeups::default();
        assert!(q.wake_next(&mut wk));
        assert!(q.poll(ids[0], &w));
        assert!(!q.poll(ids[1], &w));
        assert_eq!(q.remove(ids[2]), Some(false));
        assert!(q.wake_next(&mut wk)); // ids[1], not the removed ids[2]
        assert!(q.poll(ids[1], &w));
        assert_eq!(q.remove(ids[0]), Some(true));
        assert!(q.wake_next(&mut wk));
        assert!(q.poll(ids[3], &w));
        assert!(!q.wake_next(&mut wk));
        assert_eq!(q.remove(ids[0]), None);
        assert_eq!(q.len(), 2);
    }
}
