//! The loop's ready queue: one FIFO of task steps and callbacks (asyncio's `_ready`), with a
//! task step one word long.
//!
//! A task step is the common entry (200k spawned tasks are 200k entries), and the queue's
//! memory is touched once per entry on the way in and once on the way out: a step is the task's
//! thin header pointer, 8 bytes, where a [`Ready`] is 24. Callbacks (fat pointers) wait in a
//! queue of their own, and the order queue holds, between the task steps, runs of callbacks: one
//! word that says "the next `n` callbacks", grown in place while callbacks are pushed one after
//! another (a batch of a million `call_soon`s is one word). Popping takes the front word: a task
//! step, or one callback of the front run. The interleaving of steps and callbacks is kept
//! exactly (R1: one FIFO).

use std::collections::VecDeque;
use std::ptr::NonNull;

use crate::runtime::core::Ready;
use crate::task::raw::AnyTask;
use crate::task::refs::Header;

/// One word of the order queue: a task step (its header pointer, even: headers are 8-aligned,
/// owning one local reference) or a run of `n` callbacks (`n << 1 | 1`, `n >= 1`, a pointer
/// without provenance that is never dereferenced).
struct Slot(*mut Header);

impl Slot {
    const ONE_CALLBACK: usize = 0b11;

    fn task(task: AnyTask) -> Slot {
        Slot(task.into_raw_header().as_ptr())
    }

    fn one_callback() -> Slot {
        Slot(std::ptr::without_provenance_mut(Slot::ONE_CALLBACK))
    }

    fn is_task(&self) -> bool {
        self.0.addr() & 1 == 0
    }

    /// Counts one more (`n > 0`) or one fewer callback in a run.
    fn add_callbacks(&mut self, n: isize) {
        self.0 = self.0.map_addr(|a| a.wrapping_add_signed(2 * n));
    }

    /// The task step; `self` must be one (`is_task`).
    fn into_task(self) -> AnyTask {
        debug_assert!(self.is_task());
        let ptr = std::mem::ManuallyDrop::new(self).0;
        // SAFETY: an even word is a header pointer made by `Slot::task` from a live task whose
        // local reference it kept (not dropped since: this slot owned it), on the loop thread
        // (the queue is the loop's, `!Send`).
        unsafe { AnyTask::from_raw_header(NonNull::new_unchecked(ptr)) }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.is_task() {
            drop(Slot(self.0).into_task());
        }
    }
}

/// The ready queue (see the module docs).
#[derive(Default)]
pub(crate) struct ReadyQueue {
    order: VecDeque<Slot>,
    /// The callbacks, in order; never a [`Ready::Task`].
    callbacks: VecDeque<Ready>,
    /// Steps and callbacks queued.
    len: usize,
}

impl ReadyQueue {
    /// Queues `item` behind everything queued.
    #[inline]
    pub(crate) fn push(&mut self, item: Ready) {
        self.len += 1;
        match item {
            Ready::Task(task) => self.order.push_back(Slot::task(task)),
            callback => {
                match self.order.back_mut() {
                    Some(run) if !run.is_task() => run.add_callbacks(1),
                    _ => self.order.push_back(Slot::one_callback()),
                }
                self.callbacks.push_back(callback);
            }
        }
    }

    /// Queues a step of `task` behind everything queued.
    #[inline]
    pub(crate) fn push_task(&mut self, task: AnyTask) {
        self.len += 1;
        self.order.push_back(Slot::task(task));
    }

    /// Takes the first item.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Ready> {
        let front = self.order.front_mut()?;
        self.len -= 1;
        if front.is_task() {
            let slot = self.order.pop_front()?;
            return Some(Ready::Task(slot.into_task()));
        }
        if front.0.addr() == Slot::ONE_CALLBACK {
            // A run's word owns nothing: popping it drops nothing.
            self.order.pop_front();
        } else {
            front.add_callbacks(-1);
        }
        self.callbacks.pop_front()
    }

    /// How many items are queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::core::EventLoop;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Task steps and callbacks come out in the order they went in, whatever the mix (runs of
    /// callbacks grown in place, split by steps), and a dropped queue releases its steps.
    #[test]
    fn steps_and_callbacks_keep_one_fifo_order() {
        let lp = EventLoop::new().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let task = crate::task::raw::spawn(&lp, async {}).untyped();
        let raw = || task.clone();
        let mut q = ReadyQueue::default();
        // c0 c1 T c2 T T c3 c4 c5 T
        let pattern = "cc|c||ccc|";
        for (pushed, ch) in pattern.chars().enumerate() {
            if ch == 'c' {
                let (log, n) = (log.clone(), pushed);
                let cell = crate::handles::OnceCell::new_rc(move || log.borrow_mut().push(n));
                q.push(Ready::Handle(cell));
            } else {
                q.push(Ready::Task(raw()));
            }
        }
        assert_eq!(q.len(), pattern.len());
        let mut seen = String::new();
        let mut n = 0;
        while let Some(item) = q.pop() {
            match item {
                Ready::Task(_) => seen.push('|'),
                Ready::Handle(cell) => {
                    cell.run();
                    assert_eq!(log.borrow().last(), Some(&n));
                    seen.push('c');
                }
                _ => unreachable!(),
            }
            n += 1;
        }
        assert_eq!(seen, pattern);
        assert!(q.is_empty());
        // Steps left in a dropped queue give their references back.
        let before = task.local_count();
        q.push(Ready::Task(raw()));
        q.push_task(raw());
        assert_eq!(task.local_count(), before + 2);
        drop(q);
        assert_eq!(task.local_count(), before);
        drop(task);
        lp.close().unwrap();
    }
}
