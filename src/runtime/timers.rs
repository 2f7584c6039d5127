//! The timer heap: deadline order, FIFO among equal deadlines, and a cancelled timer leaves the
//! heap at once.

use std::rc::Rc;

use crate::handles::HandleRun;
use crate::runtime::quad_heap::{key_deadline, order_key, QuadHeap};

/// The loop's scheduled timers.
///
/// Each timer's handle knows its slot in the heap ([`push`](Timers::push) returns it), and
/// [`cancel`](Timers::cancel) removes the entry at once: the heap holds only live timers, however
/// many are armed and cancelled, and popping due timers never reads a cancelled timer's cell.
/// (asyncio leaves cancelled timers in its heap and drops them lazily; the order in which live
/// timers fire is the same.)
#[derive(Default)]
pub(crate) struct Timers {
    heap: QuadHeap<Rc<dyn HandleRun>>,
}

impl Timers {
    /// Schedules `cell` at `when`; returns the slot to [`cancel`](Timers::cancel) it with.
    pub(crate) fn push(&mut self, when: f64, cell: Rc<dyn HandleRun>) -> u32 {
        self.heap.push(order_key(when), cell)
    }

    /// A timer was cancelled: removes it if `slot` still holds this `cell` (not if it already
    /// left the heap, fired or not). Returns the heap's reference, to be dropped by the caller
    /// outside any borrow of the loop.
    pub(crate) fn cancel(&mut self, slot: u32, cell: *const ()) -> Option<Rc<dyn HandleRun>> {
        // The caller holds the cell at `cell`, so no other live cell has its address: a reused
        // slot holds another address.
        self.heap
            .remove(slot, |c| std::ptr::addr_eq(Rc::as_ptr(c), cell))
    }

    /// The first deadline (every timer in the heap is live). Sifts the timers armed since the
    /// last call into the heap.
    pub(crate) fn next_deadline(&mut self) -> Option<f64> {
        self.heap.peek().map(key_deadline)
    }

    /// Moves every timer due by `end` (deadline `<= end`) into `out`, in (deadline, scheduling)
    /// order.
    pub(crate) fn pop_due(&mut self, end: f64, out: impl FnMut(Rc<dyn HandleRun>)) {
        self.heap.pop_due(order_key(end), out);
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Cancelled timers still in the heap: none, unless a cancellation found the heap borrowed
    /// (it cannot be, no user code runs while it is). Counted one by one: diagnostics only.
    pub(crate) fn cancelled_count(&self) -> usize {
        self.heap.values().filter(|c| c.is_cancelled()).count()
    }

    /// Empties the heap, returning the cells so the caller can drop them outside any borrow.
    pub(crate) fn take_all(&mut self) -> Vec<Rc<dyn HandleRun>> {
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
        t.pop_due(10.0, |c| c.run());
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
        t.pop_due(f64::INFINITY, |c| c.run());
        let mut expected: Vec<u32> = (140..300).collect();
        expected.push(1000);
        assert_eq!(*log.borrow(), expected);
        assert!(
            t.cancel(reused, Rc::as_ptr(&newcomer).cast()).is_none(),
            "fired: gone already"
        );
    }
}
