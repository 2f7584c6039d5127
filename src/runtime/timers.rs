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
///
/// Cancelled timers stay in the heap until asyncio's step 1 of an iteration
/// ([`next_deadline`](Timers::next_deadline)) drops them: all of them when more than half of
/// over [`MIN_COMPACT_LEN`] entries are cancelled, else those at the head. A heap that crosses
/// that line at another time (a cancellation, or due timers popped) is compacted at once too,
/// so it stays bounded by its live timers even when a callback arms and cancels in a tight loop;
/// the next iteration then sweeps again, so it leaves no cancelled timer, as asyncio's would
/// (the early compaction may leave the heap under the threshold).
#[derive(Default)]
pub(crate) struct Timers {
    heap: QuadHeap<Entry>,
    seq: u64,
    /// How many heap entries are cancelled (exact: counted on cancel, uncounted on removal).
    cancelled: usize,
    /// A compaction ran since the last iteration's step 1.
    compacted_early: bool,
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

    /// A scheduled timer was cancelled; compact at once when over half of a large heap is dead.
    pub(crate) fn note_cancelled(&mut self) {
        self.cancelled += 1;
        if self.over_half_cancelled() {
            self.compact();
            self.compacted_early = true;
        }
    }

    /// asyncio's test: `sched_count > MIN_SCHEDULED_TIMER_HANDLES` and `cancelled_count /
    /// sched_count > 0.5`.
    fn over_half_cancelled(&self) -> bool {
        self.heap.len() > MIN_COMPACT_LEN && self.cancelled * 2 > self.heap.len()
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

    /// Step 1 of an iteration, then the first live deadline: rebuilds the heap without its
    /// cancelled timers when over half of a large heap is cancelled (or a compaction already ran
    /// since the last iteration and more were cancelled), else drops those at the head.
    pub(crate) fn next_deadline(&mut self) -> Option<f64> {
        if self.cancelled > 0 && (self.compacted_early || self.over_half_cancelled()) {
            self.compact();
        }
        self.compacted_early = false;
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
    /// Popping live timers can leave over half of the rest cancelled: then compact at once, so
    /// that the heap stays bounded by its live timers until the next iteration.
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
        if self.over_half_cancelled() {
            self.compact();
            self.compacted_early = true;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn cancelled_count(&self) -> usize {
        self.cancelled
    }

    /// The cancelled entries, counted one by one (to check the counter).
    #[cfg(test)]
    pub(crate) fn cancelled_in_heap(&self) -> usize {
        self.heap.iter().filter(|e| e.cell.is_cancelled()).count()
    }

    /// Empties the heap, returning the cells so the caller can drop them outside any borrow.
    pub(crate) fn take_all(&mut self) -> Vec<Rc<dyn HandleRun>> {
        self.cancelled = 0;
        self.compacted_early = false;
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

    /// Issue 9: 120 timers of which 70 are cancelled (more than half of over 100): the next
    /// iteration must leave none, as asyncio's step 1 rebuilds the heap. The compaction on the
    /// 61st cancellation used to leave 59 entries, under the threshold, and the 9 cancelled
    /// after it stayed (they are not at the head).
    #[test]
    fn over_half_of_over_100_cancelled_leaves_none_after_the_next_iteration() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::default();
        let cells: Vec<_> = (0..120).map(|n| cell(&log, n)).collect();
        for (i, c) in cells.iter().enumerate() {
            t.push(i as f64, c.clone());
        }
        for c in &cells[50..] {
            c.cancel();
            t.note_cancelled();
            assert_eq!(t.cancelled_count(), t.cancelled_in_heap());
        }
        assert!(
            t.len() < 100,
            "compacted on the way: bounded between iterations"
        );
        assert_eq!(t.next_deadline(), Some(0.0));
        assert_eq!(t.len(), 50);
        assert_eq!(t.cancelled_in_heap(), 0);
        assert_eq!(t.cancelled_count(), 0);
        // Without an early compaction, the iteration decides alone, as asyncio does.
        let more: Vec<_> = (0..60).map(|n| cell(&log, 200 + n)).collect();
        for (i, c) in more.iter().enumerate() {
            t.push(100.0 + i as f64, c.clone());
        }
        for c in &more[..55] {
            c.cancel();
            t.note_cancelled();
        }
        // 55 of 110: not over half, so no compaction; the iteration pops only the head.
        assert_eq!((t.len(), t.cancelled_count()), (110, 55));
        assert_eq!(t.next_deadline(), Some(0.0));
        assert_eq!((t.len(), t.cancelled_in_heap()), (110, 55));
        more[55].cancel();
        t.note_cancelled(); // 56 of 110: compacts now, and the iteration has nothing more to do
        assert_eq!((t.len(), t.cancelled_in_heap()), (54, 0));
        assert_eq!(t.next_deadline(), Some(0.0));
        assert_eq!((t.len(), t.cancelled_count()), (54, 0));
        t.pop_due(f64::INFINITY, |c| c.run());
        let mut expected: Vec<u32> = (0..50).collect();
        expected.extend(256..260);
        assert_eq!(*log.borrow(), expected);
    }
}
