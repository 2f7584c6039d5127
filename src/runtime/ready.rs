//! The loop's ready queue: one FIFO of task steps and callbacks (asyncio's `_ready`), with a
//! task step one word long.
//!
//! A task step is the common entry (200k spawned tasks are 200k entries), and the queue's
//! memory is touched once per entry on the way in and once on the way out: a step is the task's
//! thin header pointer, 8 bytes, where a [`Ready`] is 24. Callbacks (fat pointers) wait in a
//! queue of their own, and the order queue holds, before each task step that follows
//! callbacks, one word that says "first the next `n` callbacks", written when the step is
//! pushed (the callbacks pushed since the last step are those past the runs counted so far: a
//! batch of a million `call_soon`s writes no word). The interleaving of steps and callbacks is
//! kept exactly (R1: one FIFO).

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
    fn task(task: AnyTask) -> Slot {
        Slot(task.into_raw_header().as_ptr())
    }

    fn run(n: usize) -> Slot {
        Slot(std::ptr::without_provenance_mut(n << 1 | 1))
    }

    fn is_task(&self) -> bool {
        self.0.addr() & 1 == 0
    }

    /// The length of a run (`!is_task`).
    fn run_len(&self) -> usize {
        self.0.addr() >> 1
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
    /// Task steps, each after the run of callbacks queued before it (if any).
    order: VecDeque<Slot>,
    /// The callbacks, in order; never a [`Ready::Task`]. Those past the runs that `order`
    /// and `front_run` count were pushed after the last step.
    callbacks: VecDeque<Ready>,
    /// Callbacks left of the run popped last (they come before `order`'s front).
    front_run: usize,
    /// Callbacks counted by `front_run` and by the runs in `order`.
    in_runs: usize,
    /// Runs in `order`.
    runs: usize,
}

impl ReadyQueue {
    /// Queues `item` behind everything queued. (Always inlined: at a call site the variant is
    /// known, and the other branch folds away; a callback costs one push, as in a plain
    /// `VecDeque`.)
    #[inline(always)]
    pub(crate) fn push(&mut self, item: Ready) {
        match item {
            Ready::Task(task) => self.push_task(task),
            callback => self.callbacks.push_back(callback),
        }
    }

    /// Queues a step of `task` behind everything queued.
    #[inline]
    pub(crate) fn push_task(&mut self, task: AnyTask) {
        let back_run = self.callbacks.len() - self.in_runs;
        if back_run > 0 {
            self.order.push_back(Slot::run(back_run));
            self.in_runs += back_run;
            self.runs += 1;
        }
        self.order.push_back(Slot::task(task));
    }

    /// Takes the first item.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Ready> {
        if self.front_run == 0 {
            match self.order.pop_front() {
                Some(slot) if slot.is_task() => return Some(Ready::Task(slot.into_task())),
                // A run's word owns nothing: dropping it drops nothing.
                Some(run) => {
                    self.runs -= 1;
                    self.front_run = run.run_len();
                }
                // No step queued: only callbacks pushed after the last one, if any.
                None => return self.callbacks.pop_front(),
            }
        }
        self.front_run -= 1;
        self.in_runs -= 1;
        self.callbacks.pop_front()
    }

    /// How many items are queued.
    pub(crate) fn len(&self) -> usize {
        self.callbacks.len() + self.order.len() - self.runs
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty() && self.callbacks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::core::EventLoop;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Task steps and callbacks come out in the order they went in, whatever the mix and
    /// however pushes and pops interleave (runs counted at the back, split by steps, popped
    /// part-way), checked against a plain `VecDeque` over a fixed pseudo-random sequence; and a
    /// dropped queue releases its steps.
    #[test]
    fn steps_and_callbacks_keep_one_fifo_order() {
        use std::collections::VecDeque;
        let lp = EventLoop::new().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let task = crate::task::raw::spawn(&lp, async {}).untyped();
        let mut q = ReadyQueue::default();
        // `None`: a task step; `Some(n)`: callback n.
        let mut expected: VecDeque<Option<usize>> = VecDeque::new();
        let mut seed = 12345u32;
        let mut pushed = 0;
        for _ in 0..2_000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            match (seed >> 16) % 7 {
                0 | 1 => {
                    q.push(Ready::Task(task.clone()));
                    expected.push_back(None);
                }
                2..=4 => {
                    let (log, n) = (log.clone(), pushed);
                    let cell = crate::handles::OnceCell::new_rc(move || log.borrow_mut().push(n));
                    q.push(Ready::Handle(cell));
                    expected.push_back(Some(n));
                    pushed += 1;
                }
                _ => match (q.pop(), expected.pop_front()) {
                    (None, None) => {}
                    (Some(Ready::Task(t)), Some(None)) => assert!(t.ptr_eq(&task)),
                    (Some(Ready::Handle(cell)), Some(Some(n))) => {
                        cell.run();
                        assert_eq!(log.borrow().last(), Some(&n));
                    }
                    (got, want) => panic!("popped {:?}, expected {want:?}", got.is_some()),
                },
            }
            assert_eq!(q.len(), expected.len());
            assert_eq!(q.is_empty(), expected.is_empty());
        }
        while let Some(want) = expected.pop_front() {
            match (q.pop(), want) {
                (Some(Ready::Task(_)), None) => {}
                (Some(Ready::Handle(cell)), Some(n)) => {
                    cell.run();
                    assert_eq!(log.borrow().last(), Some(&n));
                }
                (got, want) => panic!("popped {:?}, expected {want:?}", got.is_some()),
            }
        }
        assert!(q.pop().is_none() && q.is_empty());
        let raw = || task.clone();
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
