//! The task header's cross-thread state, as two small types whose orderings the loom models
//! below check: the [`Scheduled`] flag (wake-ups coalesced between steps) and the atomic
//! [`RefCount`] (wakers and queued remote wake-ups keep the allocation; see `refs.rs`).

use crate::sync::{AtomicBool, AtomicUsize, Ordering};

/// Set while a step of the task is queued: wake-ups in between are coalesced.
///
/// A waker that finds the flag set queues nothing, so the queued step must see what that waker
/// published: the loop clears the flag with a read-modify-write right before polling. Either
/// the waker's swap comes first in the flag's modification order and the loop's swap reads it
/// (release then acquire: the poll sees the waker's writes), or the loop's comes first and the
/// waker finds the flag clear and queues a step. A plain store there could be reordered after
/// the poll's reads (store buffer), and the waker could read the old `true`: a lost wake-up
/// (the defect fixed in fe26c6f; the loom model fails with a store).
///
/// Unless no waker exists: when the task's atomic count is the local side's alone (read with
/// acquire), no other thread can be in `wake` now, and every wake-up from one that was there
/// happened before that read (its swap precedes its reference's release decrement, which the
/// read synchronises with). A plain store then comes after it in the flag's order and the poll
/// sees what it published; a waker made from here on is made during the poll, after the store.
/// Every trivial task's first step takes this path (a locked exchange saved per task).
pub(crate) struct Scheduled(AtomicBool);

impl Scheduled {
    pub(crate) fn new(scheduled: bool) -> Self {
        Scheduled(AtomicBool::new(scheduled))
    }

    /// Marks a step queued; true when none was, so the caller queues exactly one.
    #[inline]
    pub(crate) fn wake(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }

    /// The loop, right before polling: later wake-ups queue another step. `refs` is the
    /// task's count, which the caller's local reference keeps at one or more.
    #[inline]
    pub(crate) fn begin_poll(&self, refs: &RefCount) {
        if refs.local_side_only() {
            self.0.store(false, Ordering::Relaxed);
        } else {
            let _ = self.0.swap(false, Ordering::AcqRel);
        }
    }
}

/// Atomic references to a task: one for its whole local side while it has local references,
/// one per waker and per queued remote wake-up. The `Arc` protocol, plus a shortcut for the
/// local side's last reference.
pub(crate) struct RefCount(AtomicUsize);

impl RefCount {
    /// A count holding the local side's reference.
    pub(crate) fn new() -> Self {
        RefCount(AtomicUsize::new(1))
    }

    /// Takes one more reference (a waker clone, a queued remote wake-up). The caller holds
    /// one, so the count cannot be zero. Aborts on absurd counts, as `Arc` does: leaked
    /// wakers must not wrap it.
    #[inline]
    pub(crate) fn increment(&self) {
        if self.0.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Whether the local side's reference is the only one (no waker, no queued remote
    /// wake-up); with acquire, so that what their holders did before dropping them happened
    /// before. Called with a local reference held.
    #[inline]
    pub(crate) fn local_side_only(&self) -> bool {
        self.0.load(Ordering::Acquire) == 1
    }

    /// Drops one reference; true when it was the last: the caller frees the task.
    #[inline]
    pub(crate) fn decrement(&self) -> bool {
        if self.0.fetch_sub(1, Ordering::Release) != 1 {
            return false;
        }
        // Every other holder's writes happen before the free (the `Arc` protocol). An acquire
        // load rather than `fence(Acquire)`: the same guarantee (it reads the last decrement of
        // the release sequence), and ThreadSanitizer, which does not model standalone fences,
        // sees it, as `Arc` does under TSan. It costs a plain load on x86-64.
        let _ = self.0.load(Ordering::Acquire);
        true
    }

    /// The local side drops its reference once its last local reference is gone; true when
    /// the caller frees the task. When only that reference is left, no other can appear (a
    /// waker is cloned only from a waker, which would hold one, or during a step, which needs
    /// a local reference), so the decrement is skipped; the acquire load orders every other
    /// holder's writes before the free, as [`decrement`](RefCount::decrement) does.
    ///
    /// Otherwise wakers or queued wake-ups outlive the local side: `share` runs first, while
    /// the local side's reference still keeps the task (the task takes its own count of the
    /// loop's shared part there, which those wakers may reach after the loop is gone). Its
    /// writes happen before the decrement (release), so whoever frees the task sees them.
    #[inline]
    pub(crate) fn release_local_side(&self, share: impl FnOnce()) -> bool {
        if self.0.load(Ordering::Acquire) == 1 {
            return true;
        }
        share();
        self.decrement()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{RefCount, Scheduled};

    #[test]
    fn wake_ups_are_coalesced_until_the_next_poll() {
        let refs = RefCount::new();
        let s = Scheduled::new(true);
        assert!(!s.wake(), "a step is queued already");
        s.begin_poll(&refs);
        assert!(s.wake());
        assert!(!s.wake());
        // With a waker elsewhere, the exchange.
        refs.increment();
        s.begin_poll(&refs);
        assert!(s.wake());
    }

    #[test]
    fn the_last_reference_frees() {
        let refs = RefCount::new();
        refs.increment();
        refs.increment();
        let mut shared = false;
        assert!(!refs.release_local_side(|| shared = true));
        assert!(shared, "wakers outlive the local side: it shares");
        assert!(!refs.decrement());
        assert!(refs.decrement());
        let alone = RefCount::new();
        assert!(alone.release_local_side(|| unreachable!("no waker outlives the local side")));
    }
}

/// Loom models of the task header's protocols (`RUSTFLAGS="--cfg loom" cargo test --release
/// --lib loom`), with the real [`Scheduled`] and [`RefCount`] and the real loop inbox. What the
/// loop does around them (`run_task`, `schedule`, the waker vtable, `TaskPtr::drop`,
/// `RemoteTask`) is restated here step for step, since a real loop cannot run under loom.
#[cfg(all(test, loom))]
mod loom_models {
    use super::{RefCount, Scheduled};
    use crate::runtime::inbox::loom_models::{model, push, SelectorModel};
    use crate::runtime::inbox::Inbox;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    /// A future that is ready once it sees what the waker published.
    struct Task {
        scheduled: Scheduled,
        refs: RefCount,
        data: AtomicUsize,
    }

    impl Task {
        /// `run_task`: clear the flag (a plain store when no waker is left), then poll.
        fn run(&self) -> bool {
            self.scheduled.begin_poll(&self.refs);
            self.data.load(Ordering::Relaxed) == 1
        }
    }

    /// A waker on another thread publishes data (a relaxed store: whatever the future reads),
    /// wakes the task and drops its reference (as `Waker::wake` does), while the loop runs the
    /// step queued before. The step that follows must see the data: either the running step
    /// did, or a new one is queued. The loop's step clears the flag with the exchange while the
    /// waker holds its reference and with a plain store once it was dropped: both are checked.
    #[test]
    fn loom_scheduled_flag_never_loses_a_wake_up() {
        model(3, || {
            // Scheduled: the loop has a step of it queued (its local ready queue); the waker
            // holds a reference.
            let task = Arc::new(Task {
                scheduled: Scheduled::new(true),
                refs: RefCount::new(),
                data: AtomicUsize::new(0),
            });
            task.refs.increment();
            let inbox = Arc::new(Inbox::new());
            let selector = Arc::new(SelectorModel::default());
            let waker = {
                let (task, inbox, selector) = (task.clone(), inbox.clone(), selector.clone());
                thread::spawn(move || {
                    task.data.store(1, Ordering::Relaxed);
                    // `schedule` off the loop thread (the queued wake-up's own reference is
                    // left out: the loop drops it before the step it runs, as here).
                    if task.scheduled.wake() {
                        push(&inbox, &selector, ());
                    }
                    // `waker_wake`: the waker's reference goes.
                    assert!(!task.refs.decrement());
                })
            };
            let mut seen = task.run();
            while inbox.pop().is_some() {
                seen |= task.run();
            }
            waker.join().unwrap();
            // The loop goes on with what is still queued (the wake-up, if any, was queued).
            while inbox.pop().is_some() {
                seen |= task.run();
            }
            assert!(seen, "lost wake-up: no step saw the waker's data");
        });
    }

    /// The allocation, with its freeing made visible to loom: every access checks (a read of
    /// `freed`) that it was not freed, and freeing writes it, so an access that does not happen
    /// before the free is a data race loom reports, and one after it fails the check.
    struct Cell {
        refs: RefCount,
        scheduled: Scheduled,
        /// The loop's shared part, as the header's plain pointer to it.
        shared: *const SharedPart,
        /// The header holds a count of `shared` (`Flags::OWNS_SHARED`): written by the loop
        /// thread before the local side's reference goes, read by whoever frees the cell.
        owns_shared: UnsafeCell<bool>,
        /// Local references (`TaskPtr`s): the loop thread's only.
        local: UnsafeCell<usize>,
        /// The future: dropped by the loop thread when the last local reference goes.
        future: UnsafeCell<Option<loom::alloc::Track<()>>>,
        freed: UnsafeCell<bool>,
    }

    /// Reads a loom cell; loom reports a write that races with it.
    fn read<T: Copy>(cell: &UnsafeCell<T>) -> T {
        // SAFETY: loom's pointer is valid for the closure, and this is a read; whether it races
        // with a write is what loom checks.
        cell.with(|p| unsafe { *p })
    }

    /// Changes a loom cell; loom reports any access that races with it.
    fn write<T, R>(cell: &UnsafeCell<T>, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: as in `read`; loom checks that no other access races with this one.
        cell.with_mut(|p| f(unsafe { &mut *p }))
    }

    /// The loop's shared part (`Arc<Shared>`): the same count protocol as a task's, and its
    /// freeing visible to loom as the cell's is. Counts: the loop's own, the task's anchor (one
    /// `Rc` of the loop, dropped with the task's last local reference), and the header's own
    /// when wakers outlive that.
    struct SharedPart {
        refs: RefCount,
        freed: UnsafeCell<bool>,
    }

    impl SharedPart {
        /// A waker reaching the loop (`schedule`: the running-loop checks, `push_remote`).
        fn touch(&self) {
            assert!(!read(&self.freed), "loop's shared part used after free");
        }

        fn release(&self) {
            if self.refs.decrement() {
                write(&self.freed, |f| *f = true);
            }
        }
    }

    /// A pointer to the shared allocation, as wakers and queued wake-ups hold it.
    #[derive(Clone, Copy)]
    struct Ptr(*const Cell);

    // SAFETY: the model's threads share the cell as the real ones share a task: through its
    // atomics, with `local` and `future` touched only on the loop thread; loom checks it.
    unsafe impl Send for Ptr {}

    impl Ptr {
        fn get(&self) -> &Cell {
            // SAFETY: the allocation is freed for real only after the model's threads are done
            // (see `check_refs`); "freed" before that is the `freed` flag, checked here.
            let cell = unsafe { &*self.0 };
            assert!(!read(&cell.freed), "use after free");
            cell
        }

        fn shared(self) -> &'static SharedPart {
            // SAFETY: freed for real only after the model's threads are done; "freed" before
            // that is its `freed` flag, which `touch` checks.
            unsafe { &*self.get().shared }
        }

        /// `dealloc`: the header's drop gives its count of the shared part back.
        fn free(self) {
            let cell = self.get();
            if read(&cell.owns_shared) {
                self.shared().release();
            }
            write(&cell.freed, |f| *f = true);
        }

        /// `release_ref`: a waker or queued wake-up drops its reference.
        fn release_ref(self) {
            if self.get().refs.decrement() {
                self.free();
            }
        }

        /// `waker_clone`.
        fn clone_waker(self) -> Ptr {
            self.get().refs.increment();
            self
        }

        /// `schedule` from another thread: a wake-up queued with its own reference.
        fn wake_by_ref(self, inbox: &Inbox<Ptr>, selector: &SelectorModel) {
            let cell = self.get();
            self.shared().touch();
            if cell.scheduled.wake() {
                cell.refs.increment();
                push(inbox, selector, self);
            }
        }

        /// `waker_wake`.
        fn wake(self, inbox: &Inbox<Ptr>, selector: &SelectorModel) {
            self.wake_by_ref(inbox, selector);
            self.release_ref();
        }

        /// The loop thread takes a queued wake-up: `RemoteTask::into_local` (a local
        /// reference if the task is still alive locally, then the `RemoteTask`'s drop, as the
        /// inbox's drain does), then the step (`run_task`).
        fn run_queued(self) {
            let cell = self.get();
            let alive_locally = read(&cell.local) > 0;
            // With `alive_locally`, the local side's reference keeps the cell.
            self.release_ref();
            if alive_locally {
                cell.scheduled.begin_poll(&cell.refs);
                let alive = cell.future.with(|f| {
                    // SAFETY: as in `read`.
                    unsafe { (*f).is_some() }
                });
                assert!(alive, "polled a released task");
            }
        }

        /// `TaskPtr::drop` of the last local reference: release what stays on the loop
        /// thread, give up the local side's reference (the header takes a count of the shared
        /// part first if wakers outlive it), then drop the anchor.
        fn drop_last_local(self) {
            let cell = self.get();
            let shared = self.shared();
            assert_eq!(write(&cell.local, |l| std::mem::replace(l, 0)), 1);
            drop(write(&cell.future, Option::take));
            let last = cell.refs.release_local_side(|| {
                shared.refs.increment();
                write(&cell.owns_shared, |o| *o = true);
            });
            if last {
                self.free();
            }
            shared.release();
        }
    }

    /// The loop thread drops its last local reference while other threads clone, wake and drop
    /// wakers, and wake-ups arrive through the inbox: the task is freed exactly once, after
    /// every use, in every interleaving.
    fn check_refs(wakers: usize) {
        // The loop's count and the task's anchor.
        let shared = Box::into_raw(Box::new(SharedPart {
            refs: RefCount::new(),
            freed: UnsafeCell::new(false),
        }));
        // SAFETY: just made; freed after the model's threads are done.
        unsafe { &*shared }.refs.increment();
        let cell = Box::into_raw(Box::new(Cell {
            refs: RefCount::new(),
            scheduled: Scheduled::new(false),
            shared,
            owns_shared: UnsafeCell::new(false),
            local: UnsafeCell::new(1),
            future: UnsafeCell::new(Some(loom::alloc::Track::new(()))),
            freed: UnsafeCell::new(false),
        }));
        let task = Ptr(cell);
        let inbox = Arc::new(Inbox::new());
        let selector = Arc::new(SelectorModel::default());
        // The step before handed out wakers (clones of its borrowed waker).
        let threads: Vec<_> = (0..wakers)
            .map(|i| {
                let waker = task.clone_waker();
                let (inbox, selector) = (inbox.clone(), selector.clone());
                thread::spawn(move || {
                    if i == 0 {
                        let twin = waker.clone_waker();
                        twin.wake_by_ref(&inbox, &selector);
                        twin.release_ref();
                        waker.wake(&inbox, &selector);
                    } else {
                        waker.release_ref();
                    }
                })
            })
            .collect();
        // The loop: a wake-up that arrived in time runs a step; then the task's last local
        // reference goes (it finished, or its loop closed); later wake-ups are stale.
        if let Some(queued) = inbox.pop() {
            queued.run_queued();
        }
        task.drop_last_local();
        // The loop goes (its wake-up queue is modelled apart, and stays): from here only the
        // header's own count, if it took one, keeps the shared part for the wakers.
        // SAFETY: the loop's count is still held.
        unsafe { &*shared }.release();
        for t in threads {
            t.join().unwrap();
        }
        while let Some(queued) = inbox.pop() {
            queued.run_queued();
        }
        // SAFETY: every thread is done; this is the allocation's last use.
        let cell = unsafe { Box::from_raw(cell) };
        assert!(read(&cell.freed), "leaked: a reference was never dropped");
        // SAFETY: as for the cell.
        let shared = unsafe { Box::from_raw(shared) };
        assert!(
            read(&shared.freed),
            "leaked: a count of the shared part was never dropped"
        );
    }

    #[test]
    fn loom_refs_one_waker_thread_frees_exactly_once() {
        model(3, || check_refs(1));
    }

    #[test]
    fn loom_refs_two_waker_threads_free_exactly_once() {
        model(2, || check_refs(2));
    }
}
