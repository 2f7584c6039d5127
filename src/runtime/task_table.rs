//! The loop's table of unfinished tasks (asyncio's `_all_tasks`, for `all_tasks()` and for
//! destroying what is pending at `close`): a slot per task, found again by the key the task
//! keeps in its header.
//!
//! Free slots are kept in a stack of keys beside the slots, not threaded through the free slots
//! themselves as `slab` does: with many tasks alive, the slots freed by tasks that finished in
//! no particular order are scattered, and a free list through them makes every spawn wait for a
//! cache miss to learn the next free slot (a profile of 200k sleeping tasks, half cancelled, put
//! 9 % of the loop's time on that one load). Here the next key comes from the top of a
//! contiguous stack, and the slot is only written.

/// A table of values under `usize` keys, with O(1) insertion and removal.
pub(crate) struct TaskTable<T> {
    slots: Vec<Option<T>>,
    /// Keys of the free slots; the last one is taken first.
    free: Vec<usize>,
}

impl<T> Default for TaskTable<T> {
    fn default() -> Self {
        TaskTable {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

/// A free slot of a [`TaskTable`]: its key is known before the value is made (a task's header
/// holds it).
pub(crate) struct VacantEntry<'a, T> {
    table: &'a mut TaskTable<T>,
    key: usize,
}

impl<T> VacantEntry<'_, T> {
    pub(crate) fn key(&self) -> usize {
        self.key
    }

    pub(crate) fn insert(self, value: T) {
        let table = self.table;
        if self.key == table.slots.len() {
            table.slots.push(Some(value));
        } else {
            let popped = table.free.pop();
            debug_assert_eq!(popped, Some(self.key));
            let slot = &mut table.slots[self.key];
            debug_assert!(slot.is_none());
            // A free slot holds `None`: nothing to drop, so the slot is only written (a plain
            // assignment would read it first, for the drop, and wait for that cache miss).
            std::mem::forget(slot.replace(value));
        }
    }
}

impl<T> TaskTable<T> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The next free slot.
    pub(crate) fn vacant_entry(&mut self) -> VacantEntry<'_, T> {
        let key = self.free.last().copied().unwrap_or(self.slots.len());
        VacantEntry { table: self, key }
    }

    /// Takes the value under `key`, if there is one (the tests' model of [`forget`]).
    ///
    /// [`forget`]: TaskTable::forget
    #[cfg(test)]
    pub(crate) fn try_remove(&mut self, key: usize) -> Option<T> {
        let value = self.slots.get_mut(key)?.take()?;
        self.free.push(key);
        Some(value)
    }

    /// Empties the slot `key` without reading its value (a finished task's slot is a cache
    /// miss away: with many tasks alive they finish in no particular order): the value is
    /// leaked, and the caller gives up what it held. The slot must hold a value (the caller
    /// knows: a task's `IN_TABLE` flag); since it is not read, that is checked in debug builds
    /// only, and a key forgotten twice would be handed out twice.
    pub(crate) fn forget(&mut self, key: usize) {
        let Some(slot) = self.slots.get_mut(key) else {
            debug_assert!(false, "task table: no slot {key}");
            return;
        };
        debug_assert!(slot.is_some(), "task table: slot {key} is free already");
        // The old value is forgotten, not read: the write is all that reaches memory.
        std::mem::forget(slot.take());
        self.free.push(key);
    }

    /// Takes every value, in key order.
    pub(crate) fn into_values(self) -> impl Iterator<Item = T> {
        self.slots.into_iter().flatten()
    }

    /// The values with their keys, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::TaskTable;
    use std::collections::BTreeMap;

    #[test]
    fn keys_are_reused_and_values_found_again() {
        let mut t = TaskTable::new();
        let mut keys = Vec::new();
        for i in 0..5 {
            let e = t.vacant_entry();
            keys.push(e.key());
            e.insert(i);
        }
        assert_eq!(keys, [0, 1, 2, 3, 4]);
        assert_eq!(t.try_remove(1), Some(1));
        assert_eq!(t.try_remove(3), Some(3));
        assert_eq!(t.try_remove(3), None, "removed twice");
        assert_eq!(t.try_remove(99), None, "never used");
        assert_eq!(t.iter().count(), 3);
        // The last freed slot is taken first, then the other, then a new one.
        for (want, v) in [(3, 30), (1, 10), (5, 50)] {
            let e = t.vacant_entry();
            assert_eq!(e.key(), want);
            e.insert(v);
        }
        let all: Vec<_> = t.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(all, [(0, 0), (1, 10), (2, 2), (3, 30), (4, 4), (5, 50)]);
        let owned: Vec<_> = t.into_values().collect();
        assert_eq!(owned, [0, 10, 2, 30, 4, 50]);
    }

    #[test]
    fn forget_frees_the_slot_and_leaves_the_value_to_its_caller() {
        use std::rc::Rc;
        let value = Rc::new(7);
        let mut t = TaskTable::new();
        for _ in 0..3 {
            t.vacant_entry().insert(value.clone());
        }
        t.forget(1);
        // Not dropped: the caller gives up what the value held (a task's count, in the loop).
        assert_eq!(Rc::strong_count(&value), 4);
        let keys: Vec<_> = t.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [0, 2]);
        assert_eq!(
            t.vacant_entry().key(),
            1,
            "the forgotten slot is reused first"
        );
        // SAFETY: the leaked clone is given back, as the loop does with a task's reference.
        unsafe { Rc::decrement_strong_count(Rc::as_ptr(&value)) };
        drop(t);
        assert_eq!(Rc::strong_count(&value), 1);
    }

    #[test]
    fn matches_a_map_under_random_use() {
        // A fixed-seed xorshift drives inserts and removals against a BTreeMap.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut t = TaskTable::new();
        let mut model = BTreeMap::new();
        for step in 0..5_000u64 {
            if next() % 3 != 0 || model.is_empty() {
                let e = t.vacant_entry();
                let k = e.key();
                assert!(!model.contains_key(&k), "key {k} handed out twice");
                e.insert(step);
                model.insert(k, step);
            } else {
                let keys: Vec<_> = model.keys().copied().collect();
                let k = keys[(next() % keys.len() as u64) as usize];
                if next() % 2 == 0 {
                    assert_eq!(t.try_remove(k), model.remove(&k));
                } else {
                    // u64 values own nothing: forgetting one is a removal.
                    t.forget(k);
                    model.remove(&k);
                }
            }
        }
        let all: Vec<_> = t.iter().map(|(k, v)| (k, *v)).collect();
        let want: Vec<_> = model.into_iter().collect();
        assert_eq!(all, want);
    }
}
