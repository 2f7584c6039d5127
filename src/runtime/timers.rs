//! The timer heap: deadline order, FIFO among equal deadlines, lazy cancellation.

use std::cmp::Ordering;
use std::rc::Rc;

use crate::handles::HandleRun;
use crate::runtime::quad_heap::QuadHeap;

/// Heaps smaller than this are never compacted (asyncio's `_MIN_SCHEDULED_TIMER_HANDLES`).
const MIN_COMPACT_LEN: usize = 100;

struct Entry {
    when: f64,
    seq: u64,
    cell: Rc<dyn HandleRun>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // The earliest deadline first, then the lowest sequence number: equal deadlines run in the
    // order they were scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        self.when
            .total_cmp(&other.when)
            .then_with(|| self.seq.cmp(&other.seq))
    }
}

/// The loop's scheduled timers.
#[derive(Default)]
pub(crate) struct Timers {
    heap: QuadHeap<Entry>,
    seq: u64,
    cancelled: usize,
}

impl Timers {
    pub(crate) fn push(&mut self, when: f64, cell: Rc<dyn HandleRun>) {
        cell.in_heap().set(true);
        self.seq += 1;
        self.heap.push(Entry {
            when,
            seq: self.seq,
            cell,
        });
    }

    /// A scheduled timer was cancelled; compact when over half the heap is dead.
    pub(crate) fn note_cancelled(&mut self) {
        self.cancelled += 1;
        if self.heap.len() > MIN_COMPACT_LEN && self.cancelled * 2 > self.heap.len() {
            self.compact();
        }
    }

    fn compact(&mut self) {
        self.heap.retain(|e| {
            let live = !e.cell.is_cancelled();
            if !live {
                e.cell.in_heap().set(false);
            }
            live
        });
        self.cancelled = 0;
    }

    /// Drops cancelled timers at the head and returns the first live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<f64> {
        while let Some(top) = self.heap.peek() {
            if top.cell.is_cancelled() {
                self.pop_head();
            } else {
                return Some(top.when);
            }
        }
        None
    }

    fn pop_head(&mut self) -> Option<Entry> {
        let e = self.heap.pop()?;
        e.cell.in_heap().set(false);
        if e.cell.is_cancelled() {
            self.cancelled = self.cancelled.saturating_sub(1);
        }
        Some(e)
    }

    /// Moves every live timer due by `end` (deadline `<= end`) into `out`, in deadline order.
    pub(crate) fn pop_due(&mut self, end: f64, mut out: impl FnMut(Rc<dyn HandleRun>)) {
        while let Some(top) = self.heap.peek() {
            if top.when > end && !top.cell.is_cancelled() {
                break;
            }
            if let Some(e) = self.pop_head() {
                if !e.cell.is_cancelled() {
                    out(e.cell);
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn cancelled_count(&self) -> usize {
        self.cancelled
    }

    /// Empties the heap, returning the cells so the caller can drop them outside any borrow.
    pub(crate) fn take_all(&mut self) -> Vec<Rc<dyn HandleRun>> {
        self.cancelled = 0;
        std::mem::take(&mut self.heap)
            .into_vec()
            .into_iter()
            .map(|e| {
                e.cell.in_heap().set(false);
                e.cell
            })
            .collect()
    }
}

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
        t.pop_due(10.0, |c| c.run());
        let mut expected = vec![0];
        expected.extend(2..=20);
        expected.push(1);
        assert_eq!(*log.borrow(), expected);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn cancelled_heads_are_dropped_and_heap_compacts() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::default();
        let cells: Vec<_> = (0..300).map(|n| cell(&log, n)).collect();
        for (i, c) in cells.iter().enumerate() {
            t.push(i as f64, c.clone());
        }
        for c in cells.iter().take(140) {
            c.cancel();
            t.note_cancelled();
        }
        assert_eq!(t.len(), 300);
        assert_eq!(t.next_deadline(), Some(140.0));
        assert_eq!(t.len(), 160);
        assert_eq!(t.cancelled_count(), 0);
        for c in cells.iter().skip(150).take(100) {
            c.cancel();
            t.note_cancelled();
        }
        // The 81st cancellation made it over half of 160: compacted to 79 entries, then 19
        // more cancellations (under half of 79) stay lazy.
        assert_eq!(t.len(), 79);
        assert_eq!(t.cancelled_count(), 19);
        assert!(!cells[200].in_heap().get());
        t.pop_due(f64::INFINITY, |c| c.run());
        assert_eq!(log.borrow().len(), 60);
    }
}
