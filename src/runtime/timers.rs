//! The timer heap: deadline order, FIFO among equal deadlines, and a cancelled timer leaves the
//! heap at once.
//!
//! Two kinds of timers share the heap and its order. A callback timer (`call_later`, `call_at`)
//! holds its handle's cell, which goes to the ready queue when it comes due. A sleep holds only
//! the sleeping task's waker: no cell of its own, so a sleeping task costs one allocation (the
//! task) instead of two, and the memory touched when the timer fires and when the task resumes
//! is the heap's own. When a sleep comes due, its slot goes to the ready queue
//! ([`Ready::Timer`]), in the same order a callback would, and is *fired* when that entry runs
//! (the waker is woken then, as asyncio's timer callback resolves the sleep's future then); the
//! slot stays the sleep's until the sleep lets it go (it sees it fired, or is dropped).

use std::rc::Rc;
use std::task::Waker;

use crate::handles::HandleRun;
use crate::runtime::core::Ready;
use crate::runtime::quad_heap::{key_deadline, order_key, Popped, QuadHeap, SlotState};

/// A sleep's slot, after it came due: its ready-queue entry has not run yet.
const DUE: u8 = 0;
/// The entry ran: the waker was woken; the sleep has not let the slot go.
const FIRED: u8 = 1;
/// The sleep let the slot go while its entry was queued: the entry frees it.
const ORPHAN: u8 = 2;

/// Where a sleep stands, as its future sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeState {
    /// Waiting for its deadline, or due with its wake-up queued.
    Waiting,
    /// Fired: the sleep is over.
    Fired,
    /// Not there: the loop was closed (its timers dropped).
    Gone,
}

/// The loop's scheduled timers.
///
/// Each timer's handle knows its slot in the heap ([`push`](Timers::push) returns it), and
/// [`cancel`](Timers::cancel) removes the entry at once: the heap holds only live timers, however
/// many are armed and cancelled, and popping due timers never reads a cancelled timer's cell.
/// (asyncio leaves cancelled timers in its heap and drops them lazily; the order in which live
/// timers fire is the same.)
#[derive(Default)]
pub(crate) struct Timers {
    /// Callback timers' cells; sleeps' wakers (kept slots).
    heap: QuadHeap<Rc<dyn HandleRun>, Waker>,
}

impl Timers {
    /// Schedules `cell` at `when`; returns the slot to [`cancel`](Timers::cancel) it with.
    pub(crate) fn push(&mut self, when: f64, cell: Rc<dyn HandleRun>) -> u32 {
        self.heap.push(order_key(when), cell)
    }

    /// Schedules a sleep that wakes `waker` at `when`; returns its slot, which stays the
    /// sleep's until [`release_wake`](Timers::release_wake).
    pub(crate) fn push_wake(&mut self, when: f64, waker: Waker) -> u32 {
        self.heap.push_kept(order_key(when), waker)
    }

    /// A timer was cancelled: removes it if `slot` still holds this `cell` (not if it already
    /// left the heap, fired or not). Returns the heap's reference, to be dropped by the caller
    /// outside any borrow of the loop.
    pub(crate) fn cancel(&mut self, slot: u32, cell: *const ()) -> Option<Rc<dyn HandleRun>> {
        // The caller holds the cell at `cell`, so no other live cell has its address: a reused
        // slot holds another address (or a sleep's waker).
        self.heap
            .remove(slot, |c| std::ptr::addr_eq(Rc::as_ptr(c), cell))
    }

    /// The first deadline (every timer in the heap is live). Sifts the timers armed since the
    /// last call into the heap.
    pub(crate) fn next_deadline(&mut self) -> Option<f64> {
        self.heap.peek().map(key_deadline)
    }

    /// Moves every timer due by `end` (deadline `<= end`) into `out` as ready-queue entries, in
    /// (deadline, scheduling) order: a callback timer's cell, a sleep's slot.
    pub(crate) fn pop_due(&mut self, end: f64, mut out: impl FnMut(Ready)) {
        self.heap.pop_due(order_key(end), |popped| match popped {
            Popped::Value(cell) => out(Ready::Handle(cell)),
            Popped::Kept(slot) => out(Ready::Timer(slot)),
        });
    }

    /// Fires the sleep in `slot` (its ready-queue entry runs): returns the waker to wake,
    /// outside the borrow of the loop. Nothing if the sleep let the slot go meanwhile (the slot
    /// is freed now) or the timers were dropped with the loop's close.
    pub(crate) fn fire(&mut self, slot: u32) -> Option<Waker> {
        match self.heap.state(slot) {
            SlotState::Kept(DUE) => {
                self.heap.set_tag(slot, FIRED);
                self.heap.kept_mut(slot).and_then(Option::take)
            }
            SlotState::Kept(ORPHAN) => {
                self.heap.release(slot);
                None
            }
            _ => None,
        }
    }

    /// Where the sleep in `slot` stands. A fired sleep's slot is released by this call (the
    /// sleep is over once it has seen that); a waiting one wakes `waker` from now on, and the
    /// waker it replaced comes back, to be dropped outside the borrow.
    pub(crate) fn poll_wake(&mut self, slot: u32, waker: &Waker) -> (WakeState, Option<Waker>) {
        match self.heap.state(slot) {
            SlotState::InHeap | SlotState::Kept(DUE) => {
                let replaced = match self.heap.kept_mut(slot) {
                    Some(w) if !w.as_ref().is_some_and(|w| w.will_wake(waker)) => {
                        w.replace(waker.clone())
                    }
                    _ => None,
                };
                (WakeState::Waiting, replaced)
            }
            SlotState::Kept(FIRED) => {
                self.heap.release(slot);
                (WakeState::Fired, None)
            }
            _ => (WakeState::Gone, None),
        }
    }

    /// The sleep in `slot` is dropped: its timer leaves the heap (or its queued wake-up is
    /// disarmed). Returns what the slot held, to be dropped outside the borrow.
    pub(crate) fn release_wake(&mut self, slot: u32) -> Option<Waker> {
        match self.heap.state(slot) {
            SlotState::InHeap => self.heap.remove_kept(slot),
            SlotState::Kept(DUE) => {
                self.heap.set_tag(slot, ORPHAN);
                self.heap.kept_mut(slot).and_then(Option::take)
            }
            SlotState::Kept(FIRED) => self.heap.release(slot).flatten(),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Cancelled timers still in the heap: none, unless a cancellation found the heap borrowed
    /// (it cannot be, no user code runs while it is). Counted one by one: diagnostics only.
    pub(crate) fn cancelled_count(&self) -> usize {
        self.heap.values().filter(|c| c.is_cancelled()).count()
    }

    /// Empties the heap, returning the cells and wakers so the caller can drop them outside any
    /// borrow.
    pub(crate) fn take_all(&mut self) -> (Vec<Rc<dyn HandleRun>>, Vec<Waker>) {
        self.heap.take_all()
    }

    /// The slot table's size, used or free (tests).
    #[cfg(test)]
    pub(crate) fn slot_count(&self) -> usize {
        self.heap.slot_count()
    }

    /// Checks the heap's order and slot table (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        self.heap.check();
    }
}

#[cfg(test)]
#[path = "timers_model_tests.rs"]
mod model_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::OnceCell;
    use std::cell::RefCell;

    fn run_cell(r: Ready) {
        match r {
            Ready::Handle(c) => c.run(),
            _ => panic!("callback timers only"),
        }
    }

    fn cell(log: &Rc<RefCell<Vec<u32>>>, n: u32) -> Rc<dyn HandleRun> {
        let log = log.clone();
        OnceCell::new_rc(move || log.borrow_mut().push(n))
    }

    #[test]
    fn deadline_order_then_fifo() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::default();
        t.push(2.0, cell(&log, 1));
        for n in 2..=20 {
            t.push(1.0, cell(&log, n));
        }
        t.push(-5.0, cell(&log, 0));
        assert_eq!(t.next_deadline(), Some(-5.0));
        t.pop_due(10.0, run_cell);
        let mut expected = vec![0];
        expected.extend(2..=20);
        expected.push(1);
        assert_eq!(*log.borrow(), expected);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_cancelled_timer_leaves_at_once_and_only_its_own_slot() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::default();
        let cells: Vec<_> = (0..300).map(|n| cell(&log, n)).collect();
        let slots: Vec<u32> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| t.push(i as f64, c.clone()))
            .collect();
        for i in 0..140 {
            cells[i].cancel();
            assert!(t.cancel(slots[i], Rc::as_ptr(&cells[i]).cast()).is_some());
            assert_eq!(t.len(), 300 - i - 1);
            t.check();
        }
        assert_eq!(t.next_deadline(), Some(140.0));
        // A second cancellation, or another cell's claim on a slot, changes nothing.
        assert!(t.cancel(slots[0], Rc::as_ptr(&cells[0]).cast()).is_none());
        assert!(t
            .cancel(slots[150], Rc::as_ptr(&cells[151]).cast())
            .is_none());
        // A reused slot belongs to its new timer only.
        let newcomer = cell(&log, 1000);
        let reused = t.push(1000.0, newcomer.clone());
        assert!(slots[..140].contains(&reused));
        let old = slots.iter().position(|s| *s == reused).unwrap();
        assert!(t.cancel(reused, Rc::as_ptr(&cells[old]).cast()).is_none());
        assert_eq!(t.len(), 161);
        assert_eq!(t.cancelled_count(), 0);
        t.pop_due(f64::INFINITY, run_cell);
        let mut expected: Vec<u32> = (140..300).collect();
        expected.push(1000);
        assert_eq!(*log.borrow(), expected);
        assert!(
            t.cancel(reused, Rc::as_ptr(&newcomer).cast()).is_none(),
            "fired: gone already"
        );
    }
}
