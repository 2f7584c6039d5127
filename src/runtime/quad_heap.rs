//! An indexed 4-ary min-heap: the timer heap's storage.
//!
//! A binary heap of 200k timers is 18 levels deep and, with the entries spread over several
//! megabytes, nearly every level of a pop is a cache miss. With four children per node the heap
//! is half as deep and the four children of a node sit next to each other, so a pop costs about
//! half the misses for one more comparison per level.
//!
//! The heap's nodes hold only the ordering key (deadline, sequence number) and a slot number;
//! the values sit in a slot table that also records where each slot's node is. So an entry can
//! be removed at once by its slot (a cancelled timer leaves the heap when it is cancelled), and
//! ordering never touches the values (a timer's cell is not read until it runs).
//!
//! When a large share of the heap comes due at once, popping one node after the other costs a
//! sift-down per node through memory that no longer fits the cache: after [`BULK_MIN`] pops,
//! once the popped nodes are at least a [`BULK_RATIO`]th of the heap, the rest of the due nodes
//! are taken in one pass (partition, sort, heapify the remainder), which gives the same order.
//!
//! A push only appends: new nodes wait unsorted after the heap (the *pending tail*) until
//! something needs the order (a peek, a pop, a removal inside the heap), which sifts them in
//! one by one. A timer armed and cancelled before the loop looks at its timers again (a
//! `timeout` around work that finishes in the same step, a callback that re-arms a timer)
//! never enters the heap: its removal is a swap with the last node. The order is the same,
//! since the sequence numbers are given at the push.

/// Pops one by one at least this many due nodes before considering the bulk path.
pub(crate) const BULK_MIN: usize = 1024;
/// The bulk path is taken once the popped nodes are at least `1 / BULK_RATIO` of the heap, so
/// its linear pass over the heap costs at most `BULK_RATIO` times the pops already made.
const BULK_RATIO: usize = 16;

/// Marks a slot outside the heap in the position array: free ([`FREE`] alone), or kept (a
/// popped entry whose slot its owner releases; the low bits are the owner's tag).
const FREE: u32 = 1 << 31;
/// In a node's slot number: the entry's slot is kept when it is popped (see
/// [`push_kept`](QuadHeap::push_kept)).
const KEEP: u32 = 1 << 31;
/// The tags a kept slot can carry (`FREE | KEPT_BASE | tag`); also one past the largest slot
/// number.
const KEPT_BASE: u32 = 1 << 30;

/// What leaves the heap when an entry comes due.
#[derive(Debug, PartialEq)]
pub(crate) enum Popped<V> {
    /// A plain entry: its value, its slot freed.
    Value(V),
    /// An entry pushed with [`push_kept`](QuadHeap::push_kept): its slot, still holding the
    /// value, tagged 0, until its owner [`release`](QuadHeap::release)s it.
    Kept(u32),
}

/// Where a slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Free (or never used).
    Free,
    /// Its entry is in the heap.
    InHeap,
    /// Popped and kept, with its owner's tag.
    Kept(u8),
}

/// The ordering key of a deadline: unsigned integer order equals the float order (NaN never
/// comes here; `-0.0` counts as `0.0`, so the two tie and keep their scheduling order).
pub(crate) fn order_key(when: f64) -> u64 {
    let bits = (when + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The deadline of an ordering key (the inverse of [`order_key`]).
pub(crate) fn key_deadline(key: u64) -> f64 {
    if key >> 63 == 1 {
        f64::from_bits(key & !(1 << 63))
    } else {
        f64::from_bits(!key)
    }
}

/// 16 bytes: a node's four children are 64 bytes side by side (two cache lines at most).
#[derive(Clone, Copy, Debug)]
struct Node {
    order: u64,
    /// Scheduling order among equal deadlines (renumbered before it would wrap).
    seq: u32,
    /// The slot number, and [`KEEP`] for an entry whose slot is kept when popped.
    slot_keep: u32,
}

impl Node {
    fn slot(&self) -> u32 {
        self.slot_keep & !KEEP
    }

    fn before(&self, other: &Node) -> bool {
        (self.order, self.seq) < (other.order, other.seq)
    }
}

/// A min-heap on `(order, seq)` whose entries can be removed by slot number.
///
/// The slot table is the node positions, which every move of a node updates (4 bytes a slot, so
/// that they stay in cache), and the values, touched once on the way in and out: plain entries'
/// values (`V`) and kept entries' values (`K`) in two arrays, each grown only as far as the
/// highest slot its kind used (a loop that only arms callbacks never touches the second, and
/// each stays as small as its type: no enum tag).
#[derive(Debug)]
pub(crate) struct QuadHeap<V, K = V> {
    /// The heap (`nodes[..heap_len]`), then the pending tail in push order.
    nodes: Vec<Node>,
    heap_len: usize,
    /// By slot: the index of the slot's node in `nodes`; [`FREE`] for a free slot, `FREE |
    /// KEPT_BASE | tag` for a kept one.
    pos: Vec<u32>,
    /// By slot: a plain entry's value; `None` for any other slot (or past the end).
    values: Vec<Option<V>>,
    /// By slot: a kept entry's value (in the heap, or kept until its value is taken); `None`
    /// for any other slot (or past the end).
    kept: Vec<Option<K>>,
    /// The free slots; the last one is taken first. A stack of its own, not a list threaded
    /// through `pos`: with many timers alive, slots freed in no particular order are scattered,
    /// and a list through them makes every push wait for a cache miss to learn the next free
    /// slot (a fifth of the push in a profile of 200k sleeping tasks); the top of this stack is
    /// in cache, and the slot itself is only written.
    free: Vec<u32>,
    next_seq: u32,
}

impl<V, K> Default for QuadHeap<V, K> {
    fn default() -> Self {
        QuadHeap {
            nodes: Vec::new(),
            heap_len: 0,
            pos: Vec::new(),
            values: Vec::new(),
            kept: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

const ARITY: usize = 4;

fn parent(i: usize) -> usize {
    (i - 1) / ARITY
}

/// Puts `value` in `slot` of `values`, which holds nothing there: grown if it is short, else the
/// slot is only written (a plain assignment reads it first, for the drop, and waits for that
/// cache miss: three quarters of the push in a profile of 200k sleeping tasks).
#[inline(always)]
fn put<T>(values: &mut Vec<Option<T>>, slot: u32, value: T) {
    let slot = slot as usize;
    if let Some(v) = values.get_mut(slot) {
        debug_assert!(v.is_none());
        std::mem::forget(v.replace(value));
    } else {
        if slot > values.len() {
            values.resize_with(slot, || None);
        }
        values.push(Some(value));
    }
}

impl<V, K> QuadHeap<V, K> {
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The smallest order (entries of equal order come out in the order they were pushed).
    pub(crate) fn peek(&mut self) -> Option<u64> {
        self.settle();
        self.nodes.first().map(|n| n.order)
    }

    /// Sifts the pending tail into the heap.
    fn settle(&mut self) {
        while self.heap_len < self.nodes.len() {
            self.heap_len += 1;
            self.sift_up(self.heap_len - 1);
        }
    }

    /// Inserts `value` and returns its slot number (stable until the value leaves the heap).
    ///
    /// # Panics
    /// With 2^31 - 1 entries at once (over 60 GiB of timers).
    pub(crate) fn push(&mut self, order: u64, value: V) -> u32 {
        let slot = self.push_node(order, 0);
        put(&mut self.values, slot, value);
        slot
    }

    /// As [`push`](QuadHeap::push), but when the entry comes due its slot is not freed:
    /// [`pop_due`](QuadHeap::pop_due) gives the slot ([`Popped::Kept`]) without reading the
    /// value, which stays in the slot for its owner ([`kept_mut`](QuadHeap::kept_mut)) until
    /// the owner [`release`](QuadHeap::release)s the slot. Until then the slot number names
    /// this entry alone.
    pub(crate) fn push_kept(&mut self, order: u64, value: K) -> u32 {
        let slot = self.push_node(order, KEEP);
        put(&mut self.kept, slot, value);
        slot
    }

    /// A slot and a node in the pending tail for a new entry; the caller puts the value.
    #[inline(always)]
    fn push_node(&mut self, order: u64, keep: u32) -> u32 {
        let pos = self.nodes.len() as u32;
        let slot = if let Some(s) = self.free.pop() {
            self.pos[s as usize] = pos;
            s
        } else {
            let s = u32::try_from(self.pos.len())
                .ok()
                .filter(|s| *s < KEPT_BASE)
                .expect("timer heap: over 2^30 timers");
            self.pos.push(pos);
            s
        };
        if self.next_seq == u32::MAX {
            self.renumber();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        // Into the pending tail: no sift until the order is needed.
        self.nodes.push(Node {
            order,
            seq,
            slot_keep: slot | keep,
        });
        slot
    }

    /// Where `slot` is.
    pub(crate) fn state(&self, slot: u32) -> SlotState {
        match self.pos.get(slot as usize) {
            None => SlotState::Free,
            Some(&p) if p & FREE == 0 => SlotState::InHeap,
            Some(&p) if p & KEPT_BASE != 0 => SlotState::Kept((p & 0xff) as u8),
            Some(_) => SlotState::Free,
        }
    }

    /// Tags a kept slot (the owner's state for it); anything else is left alone.
    pub(crate) fn set_tag(&mut self, slot: u32, tag: u8) {
        if let SlotState::Kept(_) = self.state(slot) {
            self.pos[slot as usize] = FREE | KEPT_BASE | u32::from(tag);
        }
    }

    /// The value of a kept entry (in the heap, or popped and kept); `None` for a free slot.
    /// (`Some(None)` for a plain entry's slot, or a kept one whose value was taken.)
    pub(crate) fn kept_mut(&mut self, slot: u32) -> Option<&mut Option<K>> {
        match self.state(slot) {
            SlotState::Free => None,
            _ => self.kept.get_mut(slot as usize),
        }
    }

    /// Frees a kept slot and gives back what is left of its value; `None` (and nothing done)
    /// for a slot that is not kept.
    pub(crate) fn release(&mut self, slot: u32) -> Option<Option<K>> {
        if let SlotState::Kept(_) = self.state(slot) {
            self.free_pos(slot);
            Some(self.kept.get_mut(slot as usize).and_then(Option::take))
        } else {
            None
        }
    }

    /// Removes the entry in `slot` if there is one and `is_it` accepts its value.
    pub(crate) fn remove(&mut self, slot: u32, is_it: impl FnOnce(&V) -> bool) -> Option<V> {
        // The small position array first: a slot freed since (the common case of a timer that
        // fired, then was cancelled) is refused without reading the values.
        let pos = *self.pos.get(slot as usize)?;
        let mine = self
            .values
            .get(slot as usize)
            .is_some_and(|v| v.as_ref().is_some_and(is_it));
        if pos & FREE != 0 || !mine {
            return None;
        }
        self.unlink(slot, pos as usize);
        Some(self.free_slot(slot))
    }

    /// Removes the kept entry in `slot` if it is still in the heap (not if it was popped).
    pub(crate) fn remove_kept(&mut self, slot: u32) -> Option<K> {
        let pos = *self.pos.get(slot as usize)?;
        if pos & FREE != 0 || !self.kept.get(slot as usize).is_some_and(Option::is_some) {
            return None;
        }
        self.unlink(slot, pos as usize);
        self.free_pos(slot);
        self.kept[slot as usize].take()
    }

    /// Takes the node of `slot`, at `pos`, out of the heap or its pending tail (the slot still
    /// points to it).
    #[inline(always)]
    fn unlink(&mut self, slot: u32, mut pos: usize) {
        if pos >= self.heap_len {
            // Still pending: the last node takes its place, no order to keep.
            let last = self.nodes.pop().expect("a used slot has a node");
            if pos < self.nodes.len() {
                self.place(pos, last);
            }
            return;
        }
        if self.heap_len < self.nodes.len() {
            self.settle();
            pos = self.pos[slot as usize] as usize;
        }
        let last = self.nodes.pop().expect("a used slot has a node");
        self.heap_len -= 1;
        if pos < self.nodes.len() {
            self.nodes[pos] = last;
            if pos > 0 && last.before(&self.nodes[parent(pos)]) {
                self.sift_up(pos);
            } else {
                self.sift_down(pos);
            }
        }
    }

    /// Removes and returns the smallest entry (a plain one: tests).
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<V> {
        match self.pop_node().map(|n| self.leave(n))? {
            Popped::Value(v) => Some(v),
            Popped::Kept(_) => panic!("pop() of a kept entry"),
        }
    }

    /// Takes the smallest node out of the heap (its slot still points to it).
    fn pop_node(&mut self) -> Option<Node> {
        self.settle();
        let top = *self.nodes.first()?;
        let last = self.nodes.pop().expect("not empty");
        self.heap_len -= 1;
        if !self.nodes.is_empty() {
            self.nodes[0] = last;
            self.sift_down(0);
        }
        Some(top)
    }

    /// The slot of a node taken out of the heap: freed, with its value, or kept.
    fn leave(&mut self, n: Node) -> Popped<V> {
        if n.slot_keep & KEEP != 0 {
            self.pos[n.slot() as usize] = FREE | KEPT_BASE;
            Popped::Kept(n.slot())
        } else {
            Popped::Value(self.free_slot(n.slot()))
        }
    }

    /// Removes every entry whose order is `<= end`, smallest first, into `out`.
    pub(crate) fn pop_due(&mut self, end: u64, mut out: impl FnMut(Popped<V>)) {
        self.settle();
        let mut popped = 0;
        while let Some(top) = self.nodes.first() {
            if top.order > end {
                return;
            }
            if popped >= BULK_MIN && popped * BULK_RATIO >= self.nodes.len() {
                return self.pop_due_bulk(end, out);
            }
            if let Some(n) = self.pop_node() {
                out(self.leave(n));
            }
            popped += 1;
        }
    }

    /// [`pop_due`](QuadHeap::pop_due) in one pass: the due nodes are moved out and sorted, the
    /// rest is heapified again.
    fn pop_due_bulk(&mut self, end: u64, mut out: impl FnMut(Popped<V>)) {
        let mut due = Vec::new();
        let mut kept = 0;
        for i in 0..self.nodes.len() {
            let n = self.nodes[i];
            if n.order <= end {
                due.push(n);
            } else {
                self.nodes[kept] = n;
                kept += 1;
            }
        }
        self.nodes.truncate(kept);
        self.heap_len = kept;
        if kept > 1 {
            for i in (0..=parent(kept - 1)).rev() {
                self.sift_down(i);
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            self.pos[n.slot() as usize] = i as u32;
        }
        due.sort_unstable_by_key(|n| (n.order, n.seq));
        for n in due {
            out(self.leave(n));
        }
    }

    /// Empties the heap, returning the plain and the kept values in no particular order.
    pub(crate) fn take_all(&mut self) -> (Vec<V>, Vec<K>) {
        self.nodes.clear();
        self.heap_len = 0;
        self.free.clear();
        self.pos.clear();
        let values = std::mem::take(&mut self.values).into_iter().flatten();
        let kept = std::mem::take(&mut self.kept).into_iter().flatten();
        (values.collect(), kept.collect())
    }

    /// The values in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.values.iter().flatten()
    }

    /// The number of slots, used or free (the table's high-water mark).
    #[cfg(test)]
    pub(crate) fn slot_count(&self) -> usize {
        self.pos.len()
    }

    /// Marks `slot` free and puts it on the free stack (its value is the caller's to take).
    fn free_pos(&mut self, slot: u32) {
        self.pos[slot as usize] = FREE;
        self.free.push(slot);
        if self.free.len() == self.pos.len() {
            // Every slot is free: number them from 0 again, so that the next burst of timers
            // fills the arrays front to back. The free stack, in whatever order the last burst
            // ended, would scatter it over them: a cache miss per timer instead of a stride.
            // The values' arrays keep their length (their slots are all empty, or about to be
            // emptied by the caller), so no slot number is ever out of their range.
            self.free.clear();
            self.pos.clear();
        }
    }

    fn free_slot(&mut self, slot: u32) -> V {
        self.free_pos(slot);
        self.values[slot as usize]
            .take()
            .expect("a used slot has a value")
    }

    /// Gives the nodes the sequence numbers 0, 1, ... in their `(order, seq)` order, before
    /// `next_seq` would wrap (after 4 billion pushes): the order of every pair of nodes, and so
    /// the heap, stays as it was.
    fn renumber(&mut self) {
        let mut by_rank: Vec<u32> = (0..self.nodes.len() as u32).collect();
        by_rank.sort_unstable_by_key(|&i| {
            let n = &self.nodes[i as usize];
            (n.order, n.seq)
        });
        for (rank, &i) in by_rank.iter().enumerate() {
            self.nodes[i as usize].seq = rank as u32;
        }
        self.next_seq = self.nodes.len() as u32;
    }

    /// Sets the next sequence number (tests of the renumbering).
    #[cfg(test)]
    pub(crate) fn set_next_seq(&mut self, seq: u32) {
        self.next_seq = seq;
    }

    #[inline(always)]
    fn place(&mut self, i: usize, n: Node) {
        self.nodes[i] = n;
        self.pos[n.slot() as usize] = i as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        let node = self.nodes[i];
        while i > 0 {
            let p = parent(i);
            let pn = self.nodes[p];
            if !node.before(&pn) {
                break;
            }
            self.place(i, pn);
            i = p;
        }
        self.place(i, node);
    }

    fn sift_down(&mut self, mut i: usize) {
        let len = self.heap_len;
        let node = self.nodes[i];
        loop {
            let first = ARITY * i + 1;
            if first >= len {
                break;
            }
            let end = (first + ARITY).min(len);
            let mut min = first;
            for c in first + 1..end {
                if self.nodes[c].before(&self.nodes[min]) {
                    min = c;
                }
            }
            let mn = self.nodes[min];
            if !mn.before(&node) {
                break;
            }
            self.place(i, mn);
            i = min;
        }
        self.place(i, node);
    }

    /// Checks the heap order and the slot table (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let has = |slot: usize, kept: bool| {
            if kept {
                self.kept.get(slot).is_some_and(Option::is_some)
            } else {
                self.values.get(slot).is_some_and(Option::is_some)
            }
        };
        for (i, n) in self.nodes.iter().enumerate() {
            let keep = n.slot_keep & KEEP != 0;
            assert_eq!(self.pos[n.slot() as usize] as usize, i, "slot position");
            assert!(has(n.slot() as usize, keep), "an entry has its value");
            assert!(
                !has(n.slot() as usize, !keep),
                "and no value of the other kind"
            );
            if i > 0 && i < self.heap_len {
                assert!(!n.before(&self.nodes[parent(i)]), "heap order at {i}");
            }
        }
        assert!(self.heap_len <= self.nodes.len());
        let kept = (0..self.pos.len())
            .filter(|&i| self.pos[i] & KEPT_BASE != 0)
            .inspect(|&i| assert!(!has(i, false), "a kept slot has no plain value"))
            .count();
        let plain_nodes = self.nodes.iter().filter(|n| n.slot_keep & KEEP == 0);
        let used = self.values.iter().filter(|v| v.is_some()).count();
        assert_eq!(used, plain_nodes.count(), "plain values are in the heap");
        for &f in &self.free {
            assert!(
                !has(f as usize, false) && !has(f as usize, true),
                "a free slot holds a value"
            );
            assert_eq!(self.pos[f as usize], FREE);
        }
        let mut distinct = self.free.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), self.free.len(), "a slot freed twice");
        assert_eq!(
            self.nodes.len() + kept + self.free.len(),
            self.pos.len(),
            "every slot in the heap, kept or free"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % modulo
            })
            .collect()
    }

    #[test]
    fn order_keys_follow_the_float_order_and_invert() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -1.5,
            -f64::MIN_POSITIVE,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            1.0 + f64::EPSILON,
            1e300,
            f64::MAX,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(order_key(w[0]) < order_key(w[1]), "{} < {}", w[0], w[1]);
        }
        for x in xs {
            assert_eq!(key_deadline(order_key(x)).to_bits(), x.to_bits());
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
    }

    #[test]
    fn pops_in_order_then_fifo_for_every_size() {
        for n in 0..70 {
            let input = numbers(n as u64 + 1, n, 10);
            let mut h: QuadHeap<_, ()> = QuadHeap::default();
            for (seq, &x) in input.iter().enumerate() {
                h.push(x, (x, seq));
                h.check();
            }
            assert_eq!(h.len(), n);
            let mut out = Vec::new();
            while let Some(v) = h.pop() {
                h.check();
                out.push(v);
            }
            let mut sorted: Vec<(u64, usize)> =
                input.iter().enumerate().map(|(i, &x)| (x, i)).collect();
            sorted.sort();
            assert_eq!(out, sorted, "size {n}");
        }
    }

    #[test]
    fn removal_by_slot_matches_a_sorted_model() {
        let ops = numbers(42, 6_000, 1_000);
        let mut h: QuadHeap<_, ()> = QuadHeap::default();
        let mut model: Vec<(u64, u64, u32)> = Vec::new();
        for (k, &x) in ops.iter().enumerate() {
            match k % 4 {
                0 | 1 => {
                    let slot = h.push(x, (x, k as u64));
                    model.push((x, k as u64, slot));
                }
                2 if !model.is_empty() => {
                    let i = (x as usize) % model.len();
                    let (o, s, slot) = model.swap_remove(i);
                    // A wrong value in the slot is not removed.
                    assert_eq!(h.remove(slot, |v| *v == (o, s + 1)), None);
                    assert_eq!(h.remove(slot, |v| *v == (o, s)), Some((o, s)));
                    assert_eq!(h.remove(slot, |_| true), None, "the slot is free now");
                }
                _ => {
                    model.sort();
                    let first = (!model.is_empty()).then(|| model.remove(0));
                    assert_eq!(h.pop(), first.map(|(o, s, _)| (o, s)));
                }
            }
            h.check();
            assert_eq!(h.len(), model.len());
        }
        assert!(h.slot_count() <= 6_000 / 2);
    }

    /// Once every slot is free, slots are handed out from 0 in order again, whatever order
    /// the last burst freed them in; while one slot is in use (here a kept one), they are not.
    #[test]
    fn an_empty_slot_table_numbers_from_zero_again() {
        let mut h: QuadHeap<u64, u64> = QuadHeap::default();
        let slots: Vec<u32> = (0..100u64).map(|i| h.push((i * 7919) % 100, i)).collect();
        assert_eq!(slots, (0..100).collect::<Vec<u32>>());
        // Freed in a scrambled order: half removed, the rest popped by deadline.
        for i in (0..100).step_by(2) {
            assert_eq!(h.remove(slots[i], |_| true), Some(i as u64));
        }
        let mut popped = 0;
        h.pop_due(u64::MAX, |p| {
            assert!(matches!(p, Popped::Value(_)));
            popped += 1;
        });
        assert_eq!(popped, 50);
        assert_eq!(h.slot_count(), 0);
        let again: Vec<u32> = (0..10u64).map(|i| h.push(i, i)).collect();
        assert_eq!(again, (0..10).collect::<Vec<u32>>());
        // A kept slot outstanding: freeing every other slot does not renumber.
        let kept = h.push_kept(0, 99);
        h.pop_due(u64::MAX, |_| {});
        assert_eq!(h.state(kept), SlotState::Kept(0));
        assert_eq!(h.slot_count(), 11);
        assert_eq!(h.push(5, 5), 9, "the last slot freed is reused first");
        assert_eq!(h.release(kept), Some(Some(99)));
        assert_eq!(h.remove(9, |_| true), Some(5));
        assert_eq!(h.slot_count(), 0, "now every slot is free");
    }

    #[test]
    fn pushes_wait_in_the_pending_tail_until_the_order_is_needed() {
        let mut h: QuadHeap<_, ()> = QuadHeap::default();
        // Armed and cancelled before anyone looks: never sifted, removed by a swap.
        let slots: Vec<u32> = (0..100u64).map(|x| h.push(1000 - x, x)).collect();
        assert_eq!(h.heap_len, 0);
        for &slot in slots.iter().step_by(2) {
            assert!(h.remove(slot, |_| true).is_some());
            h.check();
        }
        assert_eq!((h.heap_len, h.len()), (0, 50));
        // A peek settles the tail: the smallest is the last pushed odd one.
        assert_eq!(h.peek(), Some(1000 - 99));
        assert_eq!(h.heap_len, 50);
        // New pushes (one ties with a settled node: it comes after it) then a removal inside
        // the heap while the tail is pending.
        let tie = h.push(1000 - 99, 500);
        let early = h.push(5, 501);
        assert_eq!(h.heap_len, 50);
        assert!(h.remove(slots[51], |v| *v == 51).is_some());
        h.check();
        assert_eq!(
            h.heap_len,
            h.len(),
            "a removal inside the heap settles the tail first"
        );
        assert_eq!(h.pop(), Some(501));
        assert_eq!(h.pop(), Some(99));
        assert!(h.remove(tie, |_| true).is_some());
        let _ = early;
        let rest: Vec<u64> = std::iter::from_fn(|| h.pop()).collect();
        let expected: Vec<u64> = (1..98).rev().step_by(2).filter(|&x| x != 51).collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn pop_due_gives_the_same_order_on_the_bulk_path() {
        // Enough due nodes for the bulk path, with ties, and some nodes that stay.
        for (seed, n) in [(3u64, 3_000usize), (5, 20_000), (9, BULK_MIN + 1)] {
            let input = numbers(seed, n, 500);
            let mut h: QuadHeap<_, ()> = QuadHeap::default();
            for (seq, &x) in input.iter().enumerate() {
                h.push(x, (x, seq as u64));
            }
            // Remove some, so that the slot table has holes.
            for slot in (0..n as u32).step_by(7) {
                assert!(h.remove(slot, |_| true).is_some());
            }
            let mut expected: Vec<(u64, u64)> = input
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 7 != 0)
                .map(|(i, &x)| (x, i as u64))
                .collect();
            expected.sort();
            let end = 450;
            let mut out = Vec::new();
            h.pop_due(end, |v| match v {
                Popped::Value(v) => out.push(v),
                Popped::Kept(_) => panic!("no kept entries here"),
            });
            h.check();
            let split = expected.partition_point(|e| e.0 <= end);
            assert_eq!(out, expected[..split], "n {n}");
            let mut rest = Vec::new();
            while let Some(v) = h.pop() {
                rest.push(v);
            }
            assert_eq!(rest, expected[split..], "n {n}");
        }
    }

    #[test]
    fn sequence_numbers_are_renumbered_before_they_wrap_and_ties_stay_fifo() {
        let mut h: QuadHeap<_, ()> = QuadHeap::default();
        // Ties on order 5 and 7 on both sides of the renumbering.
        let mut pushed = Vec::new();
        for (k, order) in [5u64, 7, 5, 3, 7, 5].into_iter().enumerate() {
            h.push(order, k);
            pushed.push((order, k));
        }
        h.set_next_seq(u32::MAX - 2);
        for (k, order) in [7u64, 5, 5, 7, 3, 9, 5].into_iter().enumerate() {
            h.push(order, 100 + k);
            pushed.push((order, 100 + k));
            h.check();
        }
        assert!(h.next_seq < 100, "renumbered: {}", h.next_seq);
        pushed.sort_by_key(|&(order, k)| (order, k));
        let mut out = Vec::new();
        while let Some(v) = h.pop() {
            out.push(v);
        }
        let expected: Vec<usize> = pushed.iter().map(|p| p.1).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn kept_entries_keep_their_slot_until_released() {
        let mut h = QuadHeap::default();
        let plain = h.push(5, "plain");
        let kept = h.push_kept(3, "kept");
        let later = h.push_kept(9, "later");
        assert_eq!(h.state(kept), SlotState::InHeap);
        let mut out = Vec::new();
        h.pop_due(6, |p| out.push(p));
        assert_eq!(out, [Popped::Kept(kept), Popped::Value("plain")]);
        assert_eq!(h.state(kept), SlotState::Kept(0));
        assert_eq!(h.state(plain), SlotState::Free);
        h.check();
        // The kept slot is not reused while kept; its value is still there.
        let other = h.push(1, "other");
        assert_ne!(other, kept);
        assert_eq!(h.kept_mut(kept).unwrap().take(), Some("kept"));
        h.set_tag(kept, 2);
        assert_eq!(h.state(kept), SlotState::Kept(2));
        // A heap entry or a free slot is not released (nor tagged).
        assert_eq!(h.release(later), None);
        h.set_tag(later, 1);
        assert_eq!(h.state(later), SlotState::InHeap);
        assert_eq!(h.release(kept), Some(None));
        assert_eq!(h.release(kept), None, "released once");
        assert_eq!(h.state(kept), SlotState::Free);
        h.check();
        // An in-heap kept entry is removed by its owner (not as a plain one).
        assert_eq!(h.remove(later, |_| true), None);
        assert_eq!(h.remove_kept(later), Some("later"));
        assert_eq!(h.remove_kept(later), None);
        assert_eq!(h.state(later), SlotState::Free);
        assert_eq!(h.state(99), SlotState::Free, "never used");
        h.check();
    }

    #[test]
    fn take_all_empties_the_table() {
        let mut h: QuadHeap<_, ()> = QuadHeap::default();
        for i in 0..10u64 {
            h.push(i, i);
        }
        h.remove(3, |_| true);
        let (mut all, kept) = h.take_all();
        assert!(kept.is_empty());
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(h.len(), 0);
        assert_eq!(h.remove(5, |_| true), None);
        h.check();
    }
}
