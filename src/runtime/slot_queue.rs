//! The inbox's queue: many producers, one consumer (the loop thread), and slots that a handle can
//! point into, so that `call_soon_threadsafe` allocates nothing of its own for a small closure.
//!
//! Items live in blocks of [`CAP`] slots, linked in push order. A producer claims a slot by
//! advancing the tail index (a CAS, as in crossbeam's `SegQueue`, whose layout this follows: the
//! index counts `CAP + 1` positions per block, the last one meaning "the next block is being
//! linked in"; the producer that claims a block's last slot links the next block, which it
//! allocated before claiming). It then writes the item and publishes it with `WRITTEN`. The
//! consumer reads slots in order and stops at the first one not yet written.
//!
//! A slot is referred to by the loop (until it has popped and finished with it) and, for a
//! cancellable item, by the [`SlotHandle`]s of its producer. Its state word holds the flags and
//! the handle count; whoever leaves it with the loop done and no handle *releases* the slot, and
//! the release of a block's last slot frees the block. The item itself is moved out once, by
//! whoever sets `TAKEN` first: the loop to run it, or a cancelling handle to drop it.
//!
//! So a block costs one allocation per [`CAP`] items, made by a producer and freed by the loop
//! (or the last handle), instead of one cell per item allocated on one thread and freed on
//! another.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::{null_mut, NonNull};

use crate::sync::{yield_now, AtomicPtr, AtomicUsize, Mutex, Ordering, UnsafeCell};

/// Slots per block. Small under loom, so that the models cross blocks.
#[cfg(not(all(loom, test)))]
const CAP: usize = 31;
#[cfg(all(loom, test))]
const CAP: usize = 2;
/// Positions per block in the tail index: the [`CAP`] slots, then one that means "the next
/// block is being linked in".
const LAP: usize = CAP + 1;
/// The tail index counts positions from this bit up; bit 0 is [`CLOSED`].
const SHIFT: usize = 1;
/// Set in the tail index by [`SlotQueue::close`]: pushes fail from then on.
const CLOSED: usize = 1;

// A slot's state word.
/// The producer has written the item.
const WRITTEN: usize = 1;
/// The item was moved out (to run it, or by a cancel that dropped it).
const TAKEN: usize = 1 << 1;
/// A handle cancelled the item.
const CANCELLED: usize = 1 << 2;
/// The loop has finished with the slot (popped it, and ran or dropped its item).
const LOOP_DONE: usize = 1 << 3;
/// Pushed with a handle: the loop defers taking the item until it runs it.
const CANCELLABLE: usize = 1 << 4;
/// One per live [`SlotHandle`], counted from this bit up.
const HANDLE: usize = 1 << 5;

struct Slot<T> {
    state: AtomicUsize,
    item: UnsafeCell<MaybeUninit<T>>,
}

struct Block<T> {
    /// Linked by the producer of this block's last slot, before it writes that slot.
    next: AtomicPtr<Block<T>>,
    /// Released slots; the release that makes it [`CAP`] frees the block.
    released: AtomicUsize,
    slots: [Slot<T>; CAP],
}

impl<T> Block<T> {
    fn new() -> Box<Block<T>> {
        Box::new(Block {
            next: AtomicPtr::new(null_mut()),
            released: AtomicUsize::new(0),
            slots: std::array::from_fn(|_| Slot {
                state: AtomicUsize::new(0),
                item: UnsafeCell::new(MaybeUninit::uninit()),
            }),
        })
    }
}

/// A slot: its block and its offset there.
struct SlotPtr<T> {
    block: NonNull<Block<T>>,
    offset: usize,
}

impl<T> SlotPtr<T> {
    /// # Safety
    /// The slot is not released (its block is alive).
    unsafe fn slot(&self) -> &Slot<T> {
        // SAFETY: the caller's promise; `offset < CAP` by construction.
        unsafe { self.block.as_ref().slots.get_unchecked(self.offset) }
    }

    /// Moves the item out.
    ///
    /// # Safety
    /// The slot is written and not released, and the caller is the one that set `TAKEN` (or
    /// the only one left that can).
    unsafe fn read(&self) -> T {
        // SAFETY: written (so initialized), and moved out once: the caller's promise.
        unsafe { self.slot().item.with_mut(|p| (*p).assume_init_read()) }
    }

    /// Releases the slot; the last release of its block frees the block.
    ///
    /// # Safety
    /// Called once per slot, when nobody refers to it any more and its item is gone.
    unsafe fn release(self) {
        // SAFETY: the block is alive until its last slot is released, which this may be.
        let block = unsafe { self.block.as_ref() };
        if block.released.fetch_add(1, Ordering::AcqRel) + 1 == CAP {
            // SAFETY: every slot is released: nothing refers to the block. The acquire above
            // saw every other slot's last use.
            drop(unsafe { Box::from_raw(self.block.as_ptr()) });
        }
    }
}

/// The consumer's end: where the next item is.
struct Head<T> {
    block: NonNull<Block<T>>,
    /// Always below [`CAP`]: the head moves to the next block as it pops the last slot, so the
    /// head's slot is never released and its block is alive.
    offset: usize,
    /// The position in tail-index units (offsets plus one skipped position per block).
    position: usize,
}

/// Aligned to its own cache lines, away from the consumer's head.
#[repr(align(128))]
struct Tail<T> {
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
}

/// The queue. See the module docs.
pub(crate) struct SlotQueue<T> {
    /// Only the consumer takes this lock (once per drain), so it costs no contention; it makes
    /// the consumer's methods safe to call from anywhere.
    head: Mutex<Head<T>>,
    tail: Tail<T>,
    _items: PhantomData<T>,
}

// SAFETY: items are moved in on producer threads and out on the consumer's or a cancelling
// handle's thread, so `T: Send` suffices; the head is behind a lock, the tail is atomic, and a
// slot's item is touched only by the producer before `WRITTEN` and by the one that sets `TAKEN`.
unsafe impl<T: Send> Send for SlotQueue<T> {}
// SAFETY: as for `Send`: `&SlotQueue` gives no access to an item in place.
unsafe impl<T: Send> Sync for SlotQueue<T> {}

/// A popped item: moved out, or (pushed with a handle) still in its slot until the loop runs
/// it, so that a cancel until then keeps it from running.
pub(crate) enum Popped<T> {
    Item(T),
    Cancellable(LoopRef<T>),
}

impl<T> SlotQueue<T> {
    pub(crate) fn new() -> Self {
        let first = NonNull::from(Box::leak(Block::new()));
        SlotQueue {
            head: Mutex::new(Head {
                block: first,
                offset: 0,
                position: 0,
            }),
            tail: Tail {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(first.as_ptr()),
            },
            _items: PhantomData,
        }
    }

    /// Claims a slot and writes `item` there with `flags`; fails once closed.
    fn push_slot(&self, item: T, flags: usize) -> Result<SlotPtr<T>, T> {
        let mut next_block: Option<Box<Block<T>>> = None;
        loop {
            let tail = self.tail.index.load(Ordering::Acquire);
            if tail & CLOSED != 0 {
                return Err(item);
            }
            let offset = (tail >> SHIFT) % LAP;
            if offset == CAP {
                // Another producer is linking in the next block (a few instructions).
                yield_now();
                continue;
            }
            let block = self.tail.block.load(Ordering::Acquire);
            if offset + 1 == CAP && next_block.is_none() {
                next_block = Some(Block::new());
            }
            let new_tail = tail + (1 << SHIFT);
            if self
                .tail
                .index
                .compare_exchange_weak(tail, new_tail, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // The CAS claimed position `offset`, and `block` is the block of that position: the
            // block pointer is stored before the index moves into it, and a successful CAS
            // means the index did not move since it was read (it only grows). The block stays
            // alive at least until this slot is released, which needs it written first.
            if let Some(next) = next_block.take().filter(|_| offset + 1 == CAP) {
                let next = Box::into_raw(next);
                self.tail.block.store(next, Ordering::Release);
                self.tail
                    .index
                    .store(new_tail + (1 << SHIFT), Ordering::Release);
                // SAFETY: `block` is alive (above).
                unsafe { (*block).next.store(next, Ordering::Release) };
            }
            let slot = SlotPtr {
                // SAFETY: the tail block is never null (`new` links the first one).
                block: unsafe { NonNull::new_unchecked(block) },
                offset,
            };
            // SAFETY: the slot is ours until `WRITTEN`: nobody else reads its item before.
            unsafe {
                slot.slot()
                    .item
                    .with_mut(|p| p.write(MaybeUninit::new(item)));
                slot.slot().state.store(WRITTEN | flags, Ordering::Release);
            }
            return Ok(slot);
        }
    }

    /// Queues `item`; fails, handing it back, once closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        self.push_slot(item, 0).map(|_| ())
    }

    /// Queues `item` with a handle that can cancel it until the loop runs it.
    pub(crate) fn push_cancellable(&self, item: T) -> Result<SlotHandle<T>, T> {
        let slot = self.push_slot(item, CANCELLABLE | HANDLE)?;
        Ok(SlotHandle {
            slot,
            _items: PhantomData,
        })
    }

    /// Pops the items written so far, in order, into `f`; stops at the first slot claimed but
    /// not yet written (its producer wakes the loop once it is). Items pushed after the call
    /// began are left for the next one, so that busy producers cannot keep the loop here.
    /// `f` must not call back into the queue's consumer side (the lock is held).
    pub(crate) fn drain(&self, mut f: impl FnMut(Popped<T>)) {
        let mut head = lock(&self.head);
        let end = self.tail.index.load(Ordering::Acquire) >> SHIFT;
        while head.position < end {
            // SAFETY: the head's slot is alive (see `Head::offset`), and only the lock holder
            // pops.
            match unsafe { pop(&mut head) } {
                Some(popped) => f(popped),
                None => break,
            }
        }
    }

    /// Refuses further pushes, atomically with them.
    pub(crate) fn close(&self) {
        let mut tail = self.tail.index.load(Ordering::Acquire);
        loop {
            if tail & CLOSED != 0 {
                return;
            }
            if (tail >> SHIFT) % LAP == CAP {
                // A producer is linking in the next block and will store the index.
                yield_now();
                tail = self.tail.index.load(Ordering::Acquire);
                continue;
            }
            match self.tail.index.compare_exchange_weak(
                tail,
                tail | CLOSED,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => tail = now,
            }
        }
    }

    /// The oldest item not cancelled, if written. Once the queue is closed, an item whose slot
    /// was claimed before the close but is not written yet is waited for (its producer is
    /// between its claim and its write, a few instructions): the claimed slots are final then,
    /// so the loop's close drops every callback a push was accepted for.
    pub(crate) fn pop(&self) -> Option<T> {
        let mut head = lock(&self.head);
        loop {
            // SAFETY: as in `drain`.
            match unsafe { pop(&mut head) } {
                Some(Popped::Item(item)) => return Some(item),
                Some(Popped::Cancellable(slot)) => {
                    if let Some(item) = slot.into_item() {
                        return Some(item);
                    }
                }
                None => {
                    let tail = self.tail.index.load(Ordering::Acquire);
                    if tail & CLOSED == 0 || head.position >= tail >> SHIFT {
                        return None;
                    }
                    yield_now();
                }
            }
        }
    }

    /// The number of slots claimed and not popped (some may not be written yet).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let head = lock(&self.head).position;
        let mut tail = self.tail.index.load(Ordering::Acquire) >> SHIFT;
        if tail % LAP == CAP {
            tail += 1;
        }
        // One skipped position per block boundary between the two.
        (tail - head) - (tail / LAP - head / LAP)
    }

    /// Whether the oldest slot is unwritten. A push that happens before this is seen by it:
    /// either its slot is the head's, or the head's slot was claimed before it, and the
    /// inbox's protocol holds all the same (see `inbox.rs`).
    pub(crate) fn is_empty(&self) -> bool {
        let head = lock(&self.head);
        // SAFETY: the head's slot is alive (see `Head::offset`).
        let slot = unsafe { head.block.as_ref().slots.get_unchecked(head.offset) };
        slot.state.load(Ordering::Acquire) & WRITTEN == 0
    }
}

/// The consumer's lock. A panic while holding it cannot leave the head inconsistent (it is
/// updated before `f` runs), so a poisoned lock is used as is.
fn lock<T>(head: &Mutex<Head<T>>) -> crate::sync::MutexGuard<'_, Head<T>> {
    match head.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Pops the head's slot if written.
///
/// # Safety
/// The head's slot is alive, and the caller holds the consumer's lock.
unsafe fn pop<T>(head: &mut Head<T>) -> Option<Popped<T>> {
    let slot = SlotPtr {
        block: head.block,
        offset: head.offset,
    };
    // SAFETY: the caller's promise.
    let state = unsafe { slot.slot() }.state.load(Ordering::Acquire);
    if state & WRITTEN == 0 {
        return None;
    }
    head.offset += 1;
    head.position += 1;
    if head.offset == CAP {
        // SAFETY: the slot is not released yet (the loop has not finished with it), so the
        // block is alive; its producer linked `next` before writing it, and the acquire load
        // above saw that write.
        let next = unsafe { slot.block.as_ref() }.next.load(Ordering::Acquire);
        // SAFETY: non-null, as just said.
        head.block = unsafe { NonNull::new_unchecked(next) };
        head.offset = 0;
        head.position += 1;
    }
    if state & CANCELLABLE != 0 {
        return Some(Popped::Cancellable(LoopRef {
            slot,
            _not_send: PhantomData,
        }));
    }
    // SAFETY: written, and without a handle the loop is the slot's only user: it moves the item
    // out once and releases the slot.
    let item = unsafe { slot.read() };
    // SAFETY: as just said.
    unsafe { slot.release() };
    Some(Popped::Item(item))
}

impl<T> Drop for SlotQueue<T> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
        let head = lock(&self.head);
        // No producer is left, so every claimed slot was written and popped above: the head's
        // slot and the rest of its block were never claimed. Release them all at once.
        let unclaimed = CAP - head.offset;
        // SAFETY: those slots have no users and no items; the head's block is alive.
        let block = unsafe { head.block.as_ref() };
        if block.released.fetch_add(unclaimed, Ordering::AcqRel) + unclaimed == CAP {
            // SAFETY: every slot of the block is released.
            drop(unsafe { Box::from_raw(head.block.as_ptr()) });
        }
    }
}

/// The loop's reference to a popped cancellable item: takes the item to run it, unless a
/// handle cancelled it first. Dropping it drops an item not taken.
pub(crate) struct LoopRef<T> {
    slot: SlotPtr<T>,
    /// The loop keeps these on its own thread.
    _not_send: PhantomData<*const T>,
}

impl<T> LoopRef<T> {
    /// The item, unless cancelled; the slot is done with.
    pub(crate) fn into_item(self) -> Option<T> {
        // SAFETY: the loop has not finished with the slot: it is alive.
        let slot = unsafe { self.slot.slot() };
        let state = slot.state.load(Ordering::Acquire);
        if state < HANDLE {
            // No handle is left, and none can come back (a handle is made only by cloning one):
            // the loop is the slot's only user. No read-modify-write needed.
            let item = if state & TAKEN == 0 {
                // SAFETY: written, not taken, and nobody else can take it.
                Some(unsafe { self.slot.read() })
            } else {
                None
            };
            let slot = SlotPtr {
                block: self.slot.block,
                offset: self.slot.offset,
            };
            std::mem::forget(self);
            // SAFETY: the only user finishes with it; the item is gone.
            unsafe { slot.release() };
            return item;
        }
        self.take()
        // `self` drops here: the loop is done with the slot.
    }

    /// Moves the item out unless a cancel or an earlier take did.
    fn take(&self) -> Option<T> {
        // SAFETY: alive, as in `into_item`.
        let slot = unsafe { self.slot.slot() };
        let old = slot.state.fetch_or(TAKEN, Ordering::AcqRel);
        // SAFETY: this set `TAKEN`: the item is ours.
        (old & TAKEN == 0).then(|| unsafe { self.slot.read() })
    }
}

impl<T> Drop for LoopRef<T> {
    fn drop(&mut self) {
        let item = self.take();
        // SAFETY: alive until this marks the loop done.
        let old = unsafe { self.slot.slot() }
            .state
            .fetch_or(LOOP_DONE, Ordering::AcqRel);
        if old < HANDLE {
            let slot = SlotPtr {
                block: self.slot.block,
                offset: self.slot.offset,
            };
            // SAFETY: the loop was the last user, and the item is out.
            unsafe { slot.release() };
        }
        drop(item);
    }
}

/// A producer's handle on a cancellable item; clones share it. Keeps the slot (not the item)
/// alive.
pub(crate) struct SlotHandle<T> {
    slot: SlotPtr<T>,
    _items: PhantomData<T>,
}

// SAFETY: a handle touches the slot's atomics, and moves the item out only to drop it, on
// whichever thread cancels: `T: Send` suffices for both.
unsafe impl<T: Send> Send for SlotHandle<T> {}
// SAFETY: as for `Send`; `&SlotHandle` gives no access to the item in place.
unsafe impl<T: Send> Sync for SlotHandle<T> {}

impl<T> SlotHandle<T> {
    fn state(&self) -> &AtomicUsize {
        // SAFETY: a handle keeps its slot unreleased.
        unsafe { &self.slot.slot().state }
    }

    /// Cancels the item: it will not run, and it is dropped now unless the loop took it
    /// already. Returns whether this was the first cancel.
    pub(crate) fn cancel(&self) -> bool {
        let old = self.state().fetch_or(CANCELLED | TAKEN, Ordering::AcqRel);
        if old & TAKEN == 0 {
            // SAFETY: this set `TAKEN`; the item was written before the handle existed.
            drop(unsafe { self.slot.read() });
        }
        old & CANCELLED == 0
    }

    /// Whether a handle cancelled the item.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.state().load(Ordering::Acquire) & CANCELLED != 0
    }
}

impl<T> Clone for SlotHandle<T> {
    fn clone(&self) -> Self {
        // Relaxed, as `Arc::clone`: the new handle comes from an existing one.
        self.state().fetch_add(HANDLE, Ordering::Relaxed);
        SlotHandle {
            slot: SlotPtr {
                block: self.slot.block,
                offset: self.slot.offset,
            },
            _items: PhantomData,
        }
    }
}

impl<T> Drop for SlotHandle<T> {
    fn drop(&mut self) {
        let old = self.state().fetch_sub(HANDLE, Ordering::AcqRel);
        if old & LOOP_DONE != 0 && old / HANDLE == 1 {
            let slot = SlotPtr {
                block: self.slot.block,
                offset: self.slot.offset,
            };
            // SAFETY: the last handle of a slot the loop is done with: nobody else refers to
            // it, and its item was taken (the loop takes or drops it before it is done).
            unsafe { slot.release() };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Popped, SlotQueue, CAP};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts its drops in a shared counter.
    struct Counted(usize, Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drains `queue`, "running" every item it gets: their numbers.
    fn drain(queue: &SlotQueue<Counted>) -> Vec<usize> {
        let mut got = Vec::new();
        queue.drain(|entry| match entry {
            Popped::Item(item) => got.push(item.0),
            Popped::Cancellable(slot) => got.extend(slot.into_item().map(|item| item.0)),
        });
        got
    }

    #[test]
    fn items_come_out_in_order_across_blocks_and_are_all_dropped() {
        let drops = Arc::new(AtomicUsize::new(0));
        let queue = SlotQueue::new();
        let n = 3 * CAP + 2;
        let mut handles = Vec::new();
        for i in 0..n {
            if i % 3 == 0 {
                handles.push(queue.push_cancellable(Counted(i, drops.clone())).ok());
            } else {
                assert!(queue.push(Counted(i, drops.clone())).is_ok());
            }
        }
        assert_eq!(queue.len(), n);
        assert!(!queue.is_empty());
        assert_eq!(drain(&queue), (0..n).collect::<Vec<_>>());
        assert_eq!(drops.load(Ordering::Relaxed), n);
        assert_eq!(queue.len(), 0);
        assert!(queue.is_empty());
        // Handles outlive the loop's use of their slots, and keep their blocks; cancelling
        // one that ran is a no-op that still reads as cancelled.
        let first = handles[0].take().unwrap();
        assert!(first.cancel());
        assert!(!first.cancel());
        assert!(first.is_cancelled());
        assert_eq!(drops.load(Ordering::Relaxed), n);
        drop(handles);
        drop(queue);
        drop(first);
    }

    #[test]
    fn a_cancelled_item_is_dropped_at_once_and_never_comes_out() {
        let drops = Arc::new(AtomicUsize::new(0));
        let queue = SlotQueue::new();
        let handle = queue
            .push_cancellable(Counted(0, drops.clone()))
            .ok()
            .unwrap();
        let twin = handle.clone();
        assert!(queue.push(Counted(1, drops.clone())).is_ok());
        assert!(!twin.is_cancelled());
        assert!(twin.cancel());
        assert!(handle.is_cancelled());
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(twin);
        // Cancelled after the drain, before it runs: it does not run either.
        let late = queue
            .push_cancellable(Counted(2, drops.clone()))
            .ok()
            .unwrap();
        let mut queued = Vec::new();
        queue.drain(|entry| queued.push(entry));
        assert_eq!(queued.len(), 3);
        assert!(late.cancel());
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        let ran: Vec<_> = queued
            .into_iter()
            .filter_map(|entry| match entry {
                Popped::Item(item) => Some(item.0),
                Popped::Cancellable(slot) => slot.into_item().map(|item| item.0),
            })
            .collect();
        assert_eq!(ran, [1]);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
        // The loop is done with both slots; the handles free them.
        drop(handle);
        drop(late);
    }

    #[test]
    fn a_closed_queue_refuses_pushes_and_dropping_it_drops_what_it_holds() {
        let drops = Arc::new(AtomicUsize::new(0));
        let queue = SlotQueue::new();
        for i in 0..CAP + 1 {
            assert!(queue.push(Counted(i, drops.clone())).is_ok());
        }
        let kept = queue
            .push_cancellable(Counted(99, drops.clone()))
            .ok()
            .unwrap();
        queue.close();
        let refused = queue.push(Counted(100, drops.clone()));
        assert_eq!(refused.map_err(|item| item.0), Err(100));
        assert!(queue.push_cancellable(Counted(101, drops.clone())).is_err());
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        assert_eq!(queue.pop().map(|item| item.0), Some(0));
        drop(queue);
        assert_eq!(drops.load(Ordering::Relaxed), CAP + 4);
        // Its slot outlived the queue.
        assert!(!kept.is_cancelled());
        kept.cancel();
        assert_eq!(drops.load(Ordering::Relaxed), CAP + 4);
    }

    /// Producers on other threads push cancellable and plain items and cancel some of their
    /// own while the loop thread drains: every item is dropped exactly once, and the blocks are
    /// freed by whichever side finishes last (Miri checks the frees and the races).
    #[test]
    fn producers_cancelling_while_the_loop_drains_lose_and_leak_nothing() {
        const PRODUCERS: usize = 2;
        const EACH: usize = if cfg!(miri) { 3 * CAP } else { 20 * CAP };
        let drops = Arc::new(AtomicUsize::new(0));
        let queue = Arc::new(SlotQueue::new());
        let threads: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (queue, drops) = (queue.clone(), drops.clone());
                std::thread::spawn(move || {
                    let mut cancelled = 0;
                    for i in 0..EACH {
                        let item = Counted(p * EACH + i, drops.clone());
                        if i % 2 == 0 {
                            assert!(queue.push(item).is_ok());
                            continue;
                        }
                        let handle = queue.push_cancellable(item).ok().unwrap();
                        if i % 4 == 1 {
                            handle.cancel();
                            cancelled += 1;
                        }
                    }
                    cancelled
                })
            })
            .collect();
        let mut seen = vec![false; PRODUCERS * EACH];
        let mut spins = 0;
        while threads.iter().any(|t| !t.is_finished()) && spins < 1_000_000 {
            for i in drain(&queue) {
                assert!(!std::mem::replace(&mut seen[i], true));
            }
            spins += 1;
            std::thread::yield_now();
        }
        let cancelled: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        for i in drain(&queue) {
            assert!(!std::mem::replace(&mut seen[i], true));
        }
        assert!(queue.is_empty());
        let ran = seen.iter().filter(|s| **s).count();
        // A cancel may come after the loop took the item: it ran then.
        assert!(ran >= PRODUCERS * EACH - cancelled);
        assert_eq!(drops.load(Ordering::Relaxed), PRODUCERS * EACH);
    }
}
