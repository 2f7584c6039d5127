//! The loop's inbox: work that other threads send (a queue) and the flag that tells them whether
//! the loop may be asleep in its selector and must be woken.
//!
//! The protocol, in two halves that race:
//!
//! - a pusher queues its item, then sets `notified`; the one that finds it clear wakes the
//!   selector (so a busy loop costs pushers no wake-up syscall);
//! - the loop, right before it blocks, clears `notified`, then blocks only if the queue is
//!   empty.
//!
//! Neither side may miss the other: if the loop's emptiness check misses an item, that item's
//! pusher must find the flag cleared and wake the selector. This is the store-buffer (Dekker)
//! shape, and it holds because every write of `notified` is a read-modify-write: the loop clears
//! it with a swap (acquire), not a store, so the flag's modification order is a chain of swaps,
//! each reading the one before. Take the loop's clearing swap and a push's swap (release):
//!
//! - the push's comes first: the clearing reads from it or from a later swap of its release
//!   sequence, so the push happens before the emptiness check, which sees the item;
//! - the clearing comes first: the first swap after it reads `false`, and its pusher wakes the
//!   selector, after the clearing.
//!
//! This needs nothing of the queue beyond "a push that happens before `is_empty` is seen by it",
//! and no fence. The store it replaces (`store(false, SeqCst)`, then the queue's `SeqCst`
//! loads) was not enough in the C++20 model: a `SeqCst` store and load on one side are not
//! ordered against the pushers' `AcqRel` swap (that would take the swap, and the queue's push,
//! being `SeqCst` too), nor is a `SeqCst` fence on the loop's side alone. On x86-64 the swap
//! costs what that store did (both are one `xchg`); the pushers' side is unchanged. The loom
//! models below find the lost wake-up with either the store or the fence.
//!
//! The queue is [`SlotQueue`] (`slot_queue.rs`), whose `is_empty` looks at the oldest slot only.
//! It may miss a written item behind an older slot that another pusher claimed and has not
//! written yet; that pusher's swap then comes after it writes, so it falls under the two cases
//! above (before the loop's clearing swap: the check sees its slot written; after: it, or the
//! first pusher after the clearing, wakes the selector).

use std::marker::PhantomData;

use crate::runtime::slot_queue::{Popped, SlotHandle, SlotQueue};
use crate::sync::{AtomicBool, Ordering};

/// What the inbox needs of its queue: many pushers, one popper (the loop thread), and a push
/// that happens before [`is_empty`](Queue::is_empty) is seen by it. [`SlotQueue`] in the loop;
/// the loom models also use a weaker stand-in, so that they check our orderings rather than
/// the queue's.
pub(crate) trait Queue<T> {
    /// Fails, handing the item back, once closed.
    fn push(&self, item: T) -> Result<(), T>;
    fn pop(&self) -> Option<T>;
    /// Items queued, for the tests.
    #[cfg(test)]
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool;
    fn close(&self);
}

impl<T> Queue<T> for SlotQueue<T> {
    fn push(&self, item: T) -> Result<(), T> {
        SlotQueue::push(self, item)
    }
    fn pop(&self) -> Option<T> {
        SlotQueue::pop(self)
    }
    #[cfg(test)]
    fn len(&self) -> usize {
        SlotQueue::len(self)
    }
    fn is_empty(&self) -> bool {
        SlotQueue::is_empty(self)
    }
    fn close(&self) {
        SlotQueue::close(self);
    }
}

/// A multi-producer queue drained by the loop thread, with coalesced selector wake-ups.
pub(crate) struct Inbox<T, Q: Queue<T> = SlotQueue<T>> {
    queue: Q,
    /// Set by the first push after the loop last looked; cleared by the loop right before it
    /// blocks. While set, pushers do not wake the selector.
    notified: AtomicBool,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Inbox<T> {
    pub(crate) fn new() -> Self {
        Inbox::with_queue(SlotQueue::new())
    }

    /// Queues `item` with a handle that can cancel it until the loop runs it (it then comes
    /// out of [`drain`](Inbox::drain) as [`Popped::Cancellable`]). `Ok((_, true))`: the caller
    /// must wake the selector, as for [`push`](Inbox::push).
    pub(crate) fn push_cancellable(&self, item: T) -> Result<(SlotHandle<T>, bool), T> {
        let handle = self.queue.push_cancellable(item)?;
        Ok((handle, !self.notified.swap(true, Ordering::AcqRel)))
    }

    /// Pops what was queued when the call began, in order, into `f` (the loop thread's drain;
    /// `f` must not pop).
    pub(crate) fn drain(&self, f: impl FnMut(Popped<T>)) {
        self.queue.drain(f);
    }
}

impl<T, Q: Queue<T>> Inbox<T, Q> {
    pub(crate) fn with_queue(queue: Q) -> Self {
        Inbox {
            queue,
            notified: AtomicBool::new(false),
            _items: PhantomData,
        }
    }

    /// Queues `item`. `Ok(true)`: the caller must wake the selector (the loop may be blocked
    /// and nobody has woken it since it last looked). Fails, handing the item back, once the
    /// inbox is closed (atomically with [`close`](Inbox::close)).
    pub(crate) fn push(&self, item: T) -> Result<bool, T> {
        self.queue.push(item)?;
        Ok(!self.notified.swap(true, Ordering::AcqRel))
    }

    /// Called by the loop right before it blocks in the selector: re-arms the wake-up and says
    /// whether blocking is safe (the queue is empty). An item pushed before the re-arm is seen
    /// here; the pusher of one pushed after it wakes the selector.
    pub(crate) fn prepare_to_block(&self) -> bool {
        // A swap, not a store: see the module docs.
        let _ = self.notified.swap(false, Ordering::Acquire);
        self.queue.is_empty()
    }

    /// The number of queued items.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The oldest item, if any.
    pub(crate) fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Refuses further pushes (what is queued stays, for [`pop`](Inbox::pop)).
    pub(crate) fn close(&self) {
        self.queue.close();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Inbox;

    #[test]
    fn only_the_first_push_after_a_look_asks_for_a_wake_up() {
        let inbox = Inbox::new();
        assert_eq!(inbox.push(1), Ok(true));
        assert_eq!(inbox.push(2), Ok(false));
        // Not empty: the loop must not block; the wake-up is re-armed all the same.
        assert!(!inbox.prepare_to_block());
        assert_eq!(inbox.push(3), Ok(true));
        assert_eq!(inbox.len(), 3);
        assert_eq!(
            [inbox.pop(), inbox.pop(), inbox.pop(), inbox.pop()],
            [Some(1), Some(2), Some(3), None]
        );
        assert!(inbox.prepare_to_block());
        assert_eq!(inbox.push(4), Ok(true));
    }

    #[test]
    fn a_closed_inbox_hands_the_item_back_and_keeps_what_it_holds() {
        let inbox = Inbox::new();
        assert_eq!(inbox.push("kept"), Ok(true));
        inbox.close();
        assert_eq!(inbox.push("refused"), Err("refused"));
        assert_eq!(inbox.pop(), Some("kept"));
        assert_eq!(inbox.pop(), None);
    }

    /// Pushers on other threads while the loop thread drains and re-arms, as the loop does: it
    /// "blocks" (spins) after a re-arm that found the queue empty until a wake-up comes. A lost
    /// wake-up shows as none coming although every pusher is done. (The interleavings are
    /// loom's job; this runs the real atomics, and under Miri checks the queue's memory use.)
    #[test]
    fn items_from_other_threads_all_arrive_and_a_blocked_loop_is_woken() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        const PUSHERS: usize = 2;
        const EACH: usize = if cfg!(miri) { 20 } else { 2000 };
        let inbox = Arc::new(Inbox::new());
        // Selector wake-ups asked for, and pushers done (each counts its wake-ups first).
        let wakes = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..PUSHERS)
            .map(|p| {
                let (inbox, wakes, done) = (inbox.clone(), wakes.clone(), done.clone());
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        if inbox.push(p * EACH + i).unwrap() {
                            wakes.fetch_add(1, Ordering::AcqRel);
                        }
                    }
                    done.fetch_add(1, Ordering::AcqRel);
                })
            })
            .collect();
        let mut seen = vec![false; PUSHERS * EACH];
        let mut got = 0;
        let mut wakes_taken = 0;
        while got < seen.len() {
            // As `drain_inbox`: up to the first slot claimed but not yet written.
            for _ in 0..inbox.len() {
                let Some(item) = inbox.pop() else { break };
                assert!(!std::mem::replace(&mut seen[item], true));
                got += 1;
            }
            if got < seen.len() && inbox.prepare_to_block() {
                // Blocked in the "selector" until a wake-up comes.
                while wakes.load(Ordering::Acquire) == wakes_taken {
                    let finished = done.load(Ordering::Acquire) == PUSHERS;
                    if finished && wakes.load(Ordering::Acquire) == wakes_taken {
                        panic!("lost wake-up: {} items queued", inbox.len());
                    }
                    std::thread::yield_now();
                }
            }
            wakes_taken = wakes.load(Ordering::Acquire);
        }
        for t in threads {
            t.join().unwrap();
        }
    }
}

/// Loom models of the inbox protocol (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`):
/// the real [`Inbox`], over a weak stand-in queue ([`WeakQueue`]: what our proof assumes of a
/// queue, and no more) and over the loop's [`SlotQueue`] (whose atomics and cells are loom's in
/// this build, with blocks of two slots), plus a model of the slot queue's own cancel protocol.
#[cfg(all(test, loom))]
pub(crate) mod loom_models {
    use super::{Inbox, Queue};
    use crate::runtime::slot_queue::{Popped, SlotQueue};
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use loom::sync::{Arc, Mutex};
    use loom::thread;
    use std::collections::VecDeque;

    /// Runs `f` under loom with a small preemption bound (each model takes well under a second
    /// in release mode).
    pub(crate) fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(bound);
        builder.check(f);
    }

    /// The weakest queue the inbox may rely on: a push is published by a release increment of
    /// `len`, and `is_empty` is an acquire load of it. Its lock orders pushes and pops among
    /// themselves, but `is_empty` takes no lock: a lock there would order the loop's re-arm
    /// before later pushes and hide a missing ordering in the inbox.
    pub(crate) struct WeakQueue<T> {
        items: Mutex<VecDeque<T>>,
        len: AtomicUsize,
    }

    impl<T> Default for WeakQueue<T> {
        fn default() -> Self {
            WeakQueue {
                items: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }
        }
    }

    impl<T> Queue<T> for WeakQueue<T> {
        fn push(&self, item: T) -> Result<(), T> {
            self.items.lock().unwrap().push_back(item);
            self.len.fetch_add(1, Ordering::Release);
            Ok(())
        }
        fn pop(&self) -> Option<T> {
            let item = self.items.lock().unwrap().pop_front()?;
            self.len.fetch_sub(1, Ordering::Relaxed);
            Some(item)
        }
        fn len(&self) -> usize {
            self.len.load(Ordering::Acquire)
        }
        fn is_empty(&self) -> bool {
            self.len() == 0
        }
        fn close(&self) {}
    }

    /// The selector's wake-up: an eventfd, readable until a poll consumes it.
    #[derive(Default)]
    pub(crate) struct SelectorModel {
        token: AtomicBool,
    }

    impl SelectorModel {
        pub(crate) fn wake(&self) {
            // A read-modify-write, as the eventfd write is one: loom does not keep a plain
            // store from being ordered before an earlier swap that did not read it.
            let _ = self.token.swap(true, Ordering::AcqRel);
        }

        /// A poll: consumes a pending wake-up; false when a blocking poll would sleep.
        pub(crate) fn poll(&self) -> bool {
            self.token.swap(false, Ordering::AcqRel)
        }
    }

    /// What a pusher does (`Shared::push_remote`).
    pub(crate) fn push<T, Q: Queue<T>>(inbox: &Inbox<T, Q>, selector: &SelectorModel, item: T) {
        if let Ok(true) = inbox.push(item) {
            selector.wake();
        }
    }

    /// Where the model loop stopped.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Done,
        /// Blocked in the selector with no wake-up pending (yet).
        Blocked,
    }

    /// Runs `run` (the loop's thread) while `others` run on their own threads; after they are
    /// done, a blocked loop must have a wake-up pending, and then runs on to the end.
    fn run_loop(
        selector: Arc<SelectorModel>,
        others: Vec<Box<dyn FnOnce() + Send>>,
        mut run: impl FnMut() -> Outcome,
    ) {
        let threads: Vec<_> = others.into_iter().map(thread::spawn).collect();
        let mut outcome = run();
        for t in threads {
            t.join().unwrap();
        }
        while outcome == Outcome::Blocked {
            assert!(
                selector.poll(),
                "lost wake-up: the loop sleeps with work queued"
            );
            outcome = run();
        }
    }

    /// `run_once` for one item from each of `pushers` threads: drain; when all is quiet, re-arm
    /// and block; a zero-timeout poll (the loop has fds) consumes wake-ups too. The loop starts
    /// busy: an earlier item set `notified`, and a poll consumed its wake-up, so a pusher finds
    /// the flag set until the loop re-arms it.
    fn check_pushers<Q: Queue<usize> + Send + Sync + 'static>(queue: Q, pushers: usize) {
        let inbox = Arc::new(Inbox::with_queue(queue));
        let selector = Arc::new(SelectorModel::default());
        push(&inbox, &selector, usize::MAX);
        assert!(selector.poll());
        let others = (0..pushers)
            .map(|i| {
                let (inbox, selector) = (inbox.clone(), selector.clone());
                Box::new(move || push(&inbox, &selector, i)) as Box<dyn FnOnce() + Send>
            })
            .collect();
        let mut got = 0;
        // As `drain_inbox`: what is queued now, up to the first slot claimed but not yet
        // written (the slot queue counts those in `len`; its pusher has not swapped yet).
        let drain = |got: &mut usize| {
            for _ in 0..inbox.len() {
                if inbox.pop().is_none() {
                    break;
                }
                *got += 1;
            }
        };
        run_loop(selector.clone(), others, || loop {
            drain(&mut got);
            if got == pushers + 1 {
                return Outcome::Done;
            }
            let may_block = inbox.prepare_to_block();
            if !selector.poll() && may_block {
                return Outcome::Blocked;
            }
            drain(&mut got);
        });
    }

    #[test]
    fn loom_inbox_a_pusher_never_leaves_the_loop_asleep() {
        model(3, || check_pushers(WeakQueue::default(), 1));
    }

    #[test]
    fn loom_inbox_two_pushers_coalesced_wake_ups_never_leave_the_loop_asleep() {
        model(3, || check_pushers(WeakQueue::default(), 2));
    }

    #[test]
    fn loom_inbox_with_slot_queue_never_leaves_the_loop_asleep() {
        model(2, || check_pushers(SlotQueue::new(), 2));
    }

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The slot queue's own protocol (blocks of two slots here): a cancellable item, pushed
    /// second (the last slot of the first block), is cancelled on one thread while another
    /// pushes (linking the next block) and the loop drains and "runs" what it pops. Every item
    /// is dropped exactly once, and loom's cells check that the cancel's and the loop's moves of
    /// the item never race (which of the two wins is free); Miri checks the frees of blocks in
    /// the unit tests. (Pushed on the loop's thread before the others start, the cancellable
    /// item is there for the loop's first drain: loom does not reach that order when a spawned
    /// thread pushes it.)
    #[test]
    fn loom_slot_queue_cancel_races_the_loop_across_blocks() {
        static POPPED_FIRST: std::sync::atomic::AtomicBool =
            std::sync::atomic::AtomicBool::new(false);
        model(3, || {
            let queue = Arc::new(SlotQueue::new());
            let drops = Arc::new(AtomicUsize::new(0));
            assert!(queue.push(Counted(drops.clone())).is_ok());
            let handle = queue.push_cancellable(Counted(drops.clone())).ok().unwrap();
            let canceller = thread::spawn(move || {
                let twin = handle.clone();
                drop(handle);
                assert!(twin.cancel());
                assert!(twin.is_cancelled());
            });
            let pusher = {
                let (queue, drops) = (queue.clone(), drops.clone());
                thread::spawn(move || assert!(queue.push(Counted(drops)).is_ok()))
            };
            let (mut popped, mut ran) = (0, 0);
            let drain = |popped: &mut usize, ran: &mut usize| {
                queue.drain(|entry| {
                    *popped += 1;
                    match entry {
                        Popped::Item(item) => drop(item),
                        Popped::Cancellable(slot) => {
                            if let Some(item) = slot.into_item() {
                                *ran += 1;
                                drop(item);
                            }
                        }
                    }
                })
            };
            drain(&mut popped, &mut ran);
            if ran == 1 {
                POPPED_FIRST.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            canceller.join().unwrap();
            pusher.join().unwrap();
            while popped < 3 {
                drain(&mut popped, &mut ran);
            }
            assert_eq!(drops.load(Ordering::Relaxed), 3);
            assert!(queue.is_empty());
        });
        // The model reached the order where the loop takes the item before the cancel.
        assert!(POPPED_FIRST.load(std::sync::atomic::Ordering::Relaxed));
    }

    /// The loop's close racing a producer: a push the queue accepted (its slot claimed before
    /// the close) is popped by the close's drain even when its producer has not written the
    /// slot yet, so closing the loop drops every callback that was queued (a refused push hands
    /// the item back to its producer instead).
    #[test]
    fn loom_slot_queue_close_pops_every_accepted_push() {
        model(3, || {
            let queue = Arc::new(SlotQueue::new());
            let drops = Arc::new(AtomicUsize::new(0));
            let producer = {
                let (queue, drops) = (queue.clone(), drops.clone());
                thread::spawn(move || queue.push(Counted(drops)).is_ok())
            };
            queue.close();
            let mut popped = 0;
            while let Some(item) = queue.pop() {
                popped += 1;
                drop(item);
            }
            let accepted = producer.join().unwrap();
            assert_eq!(popped, usize::from(accepted));
            assert_eq!(drops.load(Ordering::Relaxed), 1);
        });
    }

    /// `block_on` (f7606b5): its future's waker, on another thread, publishes data, sets the
    /// waker's flag and, if it was clear, pushes `Remote::Wake`. The loop polls the future when
    /// the flag was set, then runs an iteration: `extra_ready` is the flag read before the
    /// drain, a drained `Remote::Wake` sets `remote_wake`, and the iteration blocks only when
    /// neither is set. The future must be polled again after the data is published. As in
    /// `check_pushers`, the loop starts busy (a `call_soon_threadsafe` callback, say), so the
    /// waker's push finds `notified` set and wakes no selector.
    fn check_block_on<Q: Queue<u8> + Send + Sync + 'static>(queue: Q) {
        const WAKE: u8 = 1;
        let inbox = Arc::new(Inbox::with_queue(queue));
        let selector = Arc::new(SelectorModel::default());
        // `MainWaker::woken`; `block_on` starts with it set.
        let woken = Arc::new(AtomicBool::new(true));
        let data = Arc::new(AtomicUsize::new(0));
        let waker: Box<dyn FnOnce() + Send> = {
            let (inbox, selector) = (inbox.clone(), selector.clone());
            let (woken, data) = (woken.clone(), data.clone());
            Box::new(move || {
                data.store(1, Ordering::Relaxed);
                // `MainWaker::wake_by_ref` off the loop thread.
                if !woken.swap(true, Ordering::AcqRel) {
                    push(&inbox, &selector, WAKE);
                }
            })
        };
        push(&inbox, &selector, 0);
        assert!(selector.poll());
        let mut remote_wake = false;
        let drain = |remote_wake: &mut bool| {
            for _ in 0..inbox.len() {
                if inbox.pop() == Some(WAKE) {
                    *remote_wake = true;
                }
            }
        };
        run_loop(selector.clone(), vec![waker], || loop {
            if woken.swap(false, Ordering::AcqRel) {
                remote_wake = false;
                if data.load(Ordering::Relaxed) == 1 {
                    return Outcome::Done;
                }
            }
            // `run_once(main.woken.load(Acquire))`.
            let extra_ready = woken.load(Ordering::Acquire);
            drain(&mut remote_wake);
            let nothing_ready = !extra_ready && !std::mem::replace(&mut remote_wake, false);
            let may_block = nothing_ready && inbox.prepare_to_block();
            if !selector.poll() && may_block {
                return Outcome::Blocked;
            }
            drain(&mut remote_wake);
        });
    }

    #[test]
    fn loom_block_on_remote_wake_polls_the_future_again() {
        model(3, || check_block_on(WeakQueue::default()));
    }
}
