//! The loop's registry of unfinished tasks (asyncio's `_all_tasks`, which `all_tasks()` reads
//! and `close()` destroys): a doubly linked list through the task headers.
//!
//! Every task is listed when created and unlisted when it finishes, so the registry's cost is
//! paid by every spawn. A list through the headers makes both steps O(1) without a table of its
//! own: no slot to store and clear in a separate (and, with many tasks, cache-cold) array, and
//! no growth. Unlisting a task touches its neighbours only, which are created next to it.
//!
//! The list holds one local reference of each listed task (as the slab that it replaced did), so a listed
//! header is always alive. Loop thread only, as the headers' `prev`/`next` cells are.

use std::cell::Cell;
use std::ptr::NonNull;

use super::raw::AnyTask;
use super::refs::{Flags, Header, TaskPtr};

/// The unfinished tasks of one loop, oldest first.
#[derive(Default)]
pub(crate) struct TaskList {
    head: Cell<Option<NonNull<Header>>>,
    tail: Cell<Option<NonNull<Header>>>,
}

impl TaskList {
    /// Lists `task`, keeping its local reference.
    pub(crate) fn push(&self, task: AnyTask) {
        debug_assert!(!task.header().flag(Flags::LISTED));
        task.header().set_flag(Flags::LISTED, true);
        let header = task.into_header();
        // SAFETY: `header` is alive (the list now holds its reference), and so is the tail (a
        // listed task); both are touched on the loop thread only.
        unsafe {
            let h = header.as_ref();
            h.prev.set(self.tail.get());
            h.next.set(None);
            match self.tail.get() {
                Some(tail) => tail.as_ref().next.set(Some(header)),
                None => self.head.set(Some(header)),
            }
        }
        self.tail.set(Some(header));
    }

    /// Unlists `task` (if listed) and returns the list's reference, for the caller to drop.
    pub(crate) fn remove(&self, task: &AnyTask) -> Option<AnyTask> {
        let h = task.header();
        if !h.flag(Flags::LISTED) {
            return None;
        }
        h.set_flag(Flags::LISTED, false);
        let (prev, next) = (h.prev.take(), h.next.take());
        // SAFETY: the neighbours are listed, hence alive; loop thread only.
        unsafe {
            match prev {
                Some(p) => p.as_ref().next.set(next),
                None => self.head.set(next),
            }
            match next {
                Some(n) => n.as_ref().prev.set(prev),
                None => self.tail.set(prev),
            }
        }
        // SAFETY: the list's reference, given up by `into_header` in `push`, taken back once
        // (the flag is clear now).
        Some(unsafe { TaskPtr::adopt(NonNull::from(h)) })
    }

    /// Another local reference to every listed task, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<AnyTask> {
        let mut out = Vec::new();
        let mut at = self.head.get();
        while let Some(header) = at {
            // SAFETY: a listed task is alive; `adopt` then `clone` takes a new reference and
            // gives the list's back (`into_header`) unchanged.
            let listed = unsafe { TaskPtr::adopt(header) };
            out.push(listed.clone());
            at = listed.header().next.get();
            let _ = listed.into_header();
        }
        out
    }

    /// Unlists every task and returns the list's references, oldest first (the loop closing).
    pub(crate) fn take_all(&self) -> Vec<AnyTask> {
        let mut out = Vec::new();
        let mut at = self.head.take();
        self.tail.set(None);
        while let Some(header) = at {
            // SAFETY: a listed task is alive, and the list's reference is taken back once: the
            // flag is cleared and the list emptied above.
            let task = unsafe { TaskPtr::adopt(header) };
            let h = task.header();
            h.set_flag(Flags::LISTED, false);
            h.prev.set(None);
            at = h.next.take();
            out.push(task);
        }
        out
    }
}

impl Drop for TaskList {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::core::EventLoop;

    /// Tasks finishing out of creation order unlist from the head, the middle and the tail;
    /// `all_tasks` sees exactly the unfinished ones, oldest first.
    #[test]
    fn unlisting_from_any_position_keeps_the_rest_in_order() {
        let lp = EventLoop::new().unwrap();
        let futures: Vec<_> = (0..5).map(|_| lp.create_future::<()>()).collect();
        let tasks: Vec<_> = futures
            .iter()
            .map(|f| {
                let f = f.clone();
                lp.create_task(async move { f.await.unwrap() }).unwrap()
            })
            .collect();
        let ids =
            |lp: &EventLoop| -> Vec<u64> { lp.all_tasks().iter().map(|t| t.raw.id()).collect() };
        let all: Vec<u64> = tasks.iter().map(|t| t.raw.id()).collect();
        assert_eq!(ids(&lp), all);
        lp.run_until_complete(crate::sleep(0.0)).unwrap().unwrap();
        for (finish, left) in [
            (2, vec![0, 1, 3, 4]),
            (0, vec![1, 3, 4]),
            (4, vec![1, 3]),
            (1, vec![3]),
        ] {
            futures[finish].set_result(()).unwrap();
            lp.run_until_complete(crate::sleep(0.0)).unwrap().unwrap();
            let want: Vec<u64> = left.iter().map(|&i| all[i]).collect();
            assert_eq!(ids(&lp), want);
        }
        futures[3].set_result(()).unwrap();
        lp.run_until_complete(crate::sleep(0.0)).unwrap().unwrap();
        assert!(lp.all_tasks().is_empty());
        // Listed again after emptying: the head and tail are reset.
        let f = lp.create_future::<()>();
        let g = f.clone();
        let last = lp.create_task(async move { g.await.unwrap() }).unwrap();
        assert_eq!(ids(&lp), vec![last.raw.id()]);
        drop(f);
        lp.close().unwrap();
    }
}
