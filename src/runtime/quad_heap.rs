//! A 4-ary min-heap: the timer heap's storage.
//!
//! A binary heap of 200k timers is 18 levels deep and, with the entries spread over several
//! megabytes, nearly every level of a pop is a cache miss. With four children per node the heap
//! is half as deep and the four children of a node sit next to each other (two cache lines), so
//! a pop costs about half the misses for one more comparison per level.

/// A min-heap: [`pop`](QuadHeap::pop) returns the smallest element by `Ord`.
#[derive(Debug)]
pub(crate) struct QuadHeap<T> {
    v: Vec<T>,
}

impl<T> Default for QuadHeap<T> {
    fn default() -> Self {
        QuadHeap { v: Vec::new() }
    }
}

const ARITY: usize = 4;

fn parent(i: usize) -> usize {
    (i - 1) / ARITY
}

impl<T: Ord> QuadHeap<T> {
    pub(crate) fn len(&self) -> usize {
        self.v.len()
    }

    pub(crate) fn peek(&self) -> Option<&T> {
        self.v.first()
    }

    pub(crate) fn push(&mut self, item: T) {
        self.v.push(item);
        self.sift_up(self.v.len() - 1);
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.v.pop()?;
        if self.v.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.v[0], last);
        self.sift_down(0);
        Some(top)
    }

    /// Keeps the elements for which `keep` is true, then restores the heap order in linear time.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.v.retain(keep);
        if self.v.len() > 1 {
            for i in (0..=parent(self.v.len() - 1)).rev() {
                self.sift_down(i);
            }
        }
    }

    /// The elements in no particular order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, T> {
        self.v.iter()
    }

    /// The elements in no particular order.
    pub(crate) fn into_vec(self) -> Vec<T> {
        self.v
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = parent(i);
            if self.v[i] >= self.v[p] {
                break;
            }
            self.v.swap(i, p);
            i = p;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let len = self.v.len();
        loop {
            let first = ARITY * i + 1;
            if first >= len {
                return;
            }
            let end = (first + ARITY).min(len);
            let mut min = first;
            for c in first + 1..end {
                if self.v[c] < self.v[min] {
                    min = c;
                }
            }
            if self.v[min] >= self.v[i] {
                return;
            }
            self.v.swap(i, min);
            i = min;
        }
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
    fn pops_in_sorted_order_for_every_size() {
        for n in 0..70 {
            let input = numbers(n as u64 + 1, n, 10);
            let mut h = QuadHeap::default();
            for &x in &input {
                h.push(x);
            }
            assert_eq!(h.len(), n);
            let mut out = Vec::new();
            while let Some(x) = h.pop() {
                out.push(x);
            }
            let mut sorted = input.clone();
            sorted.sort();
            assert_eq!(out, sorted, "size {n}");
        }
    }

    #[test]
    fn interleaved_pushes_and_pops_match_a_sorted_model() {
        let ops = numbers(42, 3_000, 1_000);
        let mut h = QuadHeap::default();
        let mut model: Vec<u64> = Vec::new();
        for (k, &x) in ops.iter().enumerate() {
            if k % 3 == 2 {
                assert_eq!(h.peek(), model.iter().min());
                let min = model
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, v)| **v)
                    .map(|(i, _)| i);
                assert_eq!(h.pop(), min.map(|i| model.swap_remove(i)));
            } else {
                h.push(x);
                model.push(x);
            }
            assert_eq!(h.len(), model.len());
        }
    }

    #[test]
    fn retain_keeps_the_heap_order() {
        let input = numbers(7, 5_000, 100_000);
        let mut h = QuadHeap::default();
        for &x in &input {
            h.push(x);
        }
        h.retain(|x| x % 3 != 0);
        let mut expected: Vec<u64> = input.into_iter().filter(|x| x % 3 != 0).collect();
        expected.sort();
        assert_eq!(h.len(), expected.len());
        let mut out = Vec::new();
        while let Some(x) = h.pop() {
            out.push(x);
        }
        assert_eq!(out, expected);
    }
}
