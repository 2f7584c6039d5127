//! References to a task: the thread-safe [`Header`] that wakers point to, the loop-thread
//! [`TaskPtr`], the [`RemoteTask`] that a wake-up from another thread queues, and the waker
//! vtable.
//!
//! A task is one allocation, a `TaskCell<F>` (see `raw.rs`) with the [`Header`] as its first
//! field. Two counts keep it alive:
//!
//! - `local`: the [`TaskPtr`]s (the loop's task table, ready-queue entries, `Task<T>`,
//!   `TaskRef`, the current task). A plain `Cell`: they all live on the loop thread.
//! - `refs`: atomic; one for the whole local side while `local > 0`, plus one per [`Waker`] and
//!   per queued [`RemoteTask`].
//!
//! The header also holds the task's status and flags: plain `Cell`s that only the loop thread
//! touches (as `local`), so reading them needs no call through the task's vtable.
//!
//! When the last `TaskPtr` goes, the task *releases* what must not leave the loop thread (its
//! future or output, callbacks, its loop reference) and gives up the local side's atomic
//! reference. Wakers can outlive that (another thread may hold one for ever); they then keep only
//! memory whose contents have no drop code left to run, so freeing it on any thread is sound.
//! A waker never turns back into a `TaskPtr` once `local` is zero: a released task cannot be
//! resurrected.

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::atomics::{RefCount, Scheduled};
use super::raw::{Status, TaskJoin, TaskRun};
use crate::runtime::core::{Inner, Remote, Shared};
use crate::runtime::running::with_running;
use crate::runtime::thread_loops::with_local;

/// What a thin header pointer needs to know about its task's type.
pub(crate) struct TaskVtable {
    /// The task as a local trait object.
    pub(crate) as_dyn: unsafe fn(NonNull<Header>) -> NonNull<dyn TaskRun>,
    /// Frees the allocation; its contents were released (or never left the loop thread).
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// The task as its typed trait object, `unsafe fn(NonNull<Header>) -> NonNull<dyn
    /// TaskJoin<T>>` for the task's output type `T`, with the type erased (a vtable shared by
    /// all output types cannot name it). Only [`JoinPtr<T>`] calls it, as that type again.
    pub(crate) as_join: unsafe fn(),
}

/// The first field of every task allocation (`#[repr(C)]`, so a pointer to the task is a
/// pointer to its header).
#[repr(C)]
pub(crate) struct Header {
    /// Atomic references: one for all local references together, one per waker and per queued
    /// remote wake-up.
    refs: RefCount,
    /// Local references ([`TaskPtr`]); read and written only on the loop thread.
    local: Cell<u32>,
    /// Set while a step of the task is queued: wake-ups in between are coalesced.
    pub(crate) scheduled: Scheduled,
    /// The task's state as seen from outside; loop thread only.
    status: Cell<Status>,
    /// [`Flags`] bits; loop thread only.
    flags: Cell<u8>,
    /// Cancellation requests without a message (asyncio's `_num_cancels_requested`), counted
    /// here up to 255 so that a plain `cancel()` allocates nothing (the byte was padding); the
    /// task's extra state counts the rest. Loop thread only.
    cancels: Cell<u8>,
    /// The task's key in its loop's task table.
    pub(crate) key: usize,
    /// The loop's thread-safe part, where wake-ups from other threads go: a plain pointer (no
    /// atomic count per task), kept valid by the task's [`LoopAnchor`] while it has local
    /// references, and after that, if wakers outlive them, by a count of its own
    /// ([`Flags::OWNS_SHARED`]). Read it through [`shared`](Header::shared).
    ///
    /// [`LoopAnchor`]: crate::runtime::core::LoopAnchor
    shared: NonNull<Shared>,
    vtable: &'static TaskVtable,
}

impl Header {
    /// A header for a task that is about to get its first [`TaskPtr`] (scheduled: the caller
    /// queues its first step), whose cell holds the loop's anchor (which holds `shared`).
    pub(crate) fn new(key: usize, shared: &Arc<Shared>, vtable: &'static TaskVtable) -> Header {
        Header {
            refs: RefCount::new(),
            local: Cell::new(1),
            scheduled: Scheduled::new(true),
            status: Cell::new(Status::Pending),
            flags: Cell::new(Flags::HANDLE_ALIVE | Flags::IN_TABLE),
            cancels: Cell::new(0),
            key,
            // `as_ptr` keeps the provenance of the whole `Arc` allocation, which a count taken
            // or dropped through this pointer needs.
            // SAFETY: an `Arc`'s pointer is never null.
            shared: unsafe { NonNull::new_unchecked(Arc::as_ptr(shared).cast_mut()) },
            vtable,
        }
    }

    /// The atomic references (wakers, queued remote wake-ups, the local side).
    #[inline]
    pub(crate) fn refs(&self) -> &RefCount {
        &self.refs
    }

    /// The loop's thread-safe part. Valid for whoever holds a reference to the task: a local
    /// one (the cell's anchor holds it), or a waker or a queued wake-up (alive when the local
    /// side went, as a new one is only ever made from another or during a step: the task then
    /// took its own count, see `TaskPtr`'s drop).
    #[inline]
    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: as above: the caller's reference to the task implies one of the two counts.
        unsafe { self.shared.as_ref() }
    }
}

impl Header {
    /// Wakers outlive the task's local side: they may reach the loop's shared part after the
    /// loop is gone, so the header takes a count of it. Called while the task's anchor still
    /// holds one (the last local reference is being dropped).
    #[cold]
    #[inline(never)]
    fn share_with_wakers(&self) {
        // SAFETY: the pointer came from `Arc::as_ptr` of the `Arc` that the anchor holds.
        unsafe { Arc::increment_strong_count(self.shared.as_ptr().cast_const()) };
        self.set_flag(Flags::OWNS_SHARED, true);
    }
}

impl Drop for Header {
    fn drop(&mut self) {
        if self.flags.get() & Flags::OWNS_SHARED != 0 {
            // SAFETY: the count taken in `TaskPtr`'s drop (`Arc::increment_strong_count` on the
            // same pointer) is this header's to give back; the header is being freed.
            unsafe { Arc::decrement_strong_count(self.shared.as_ptr().cast_const()) }
        }
    }
}

/// The task's boolean state, bits of [`Header`]'s `flags`.
pub(crate) struct Flags;

impl Flags {
    /// A cancellation is pending: the next step drops the future.
    pub(crate) const CANCEL_REQUESTED: u8 = 1;
    /// A `Task<T>` handle exists (else an unretrieved failure is reported when the task ends).
    pub(crate) const HANDLE_ALIVE: u8 = 2;
    /// The outcome was looked at (no "exception was never retrieved" report).
    pub(crate) const RETRIEVED: u8 = 4;
    /// The task has (or had) extra state: done callbacks, a name, an error, cancellations.
    /// Without it, finishing and releasing the task skip the extra state's bookkeeping.
    pub(crate) const HAS_EXTRA: u8 = 8;
    /// The future or output is in use further up the stack (a step, a drop, a clone of the
    /// output): re-entrant calls leave it alone. (What a `RefCell`'s borrow flag did, without
    /// its word.)
    pub(crate) const STAGE_BUSY: u8 = 16;
    /// The header holds a count of its loop's shared part (wakers outlived the task's local
    /// side): freeing the task gives it back. Written before the local side's reference goes,
    /// read by whoever frees the task (after the count's acquire), maybe on another thread.
    pub(crate) const OWNS_SHARED: u8 = 32;
    /// The loop's task table holds a reference to the task under [`Header::key`]. Set when the
    /// task is made (it is inserted then); cleared when the finished task leaves the table, or
    /// the table is emptied at `close`.
    pub(crate) const IN_TABLE: u8 = 64;
}

impl Header {
    /// The task's state.
    #[inline]
    pub(crate) fn status(&self) -> Status {
        self.status.get()
    }

    #[inline]
    pub(crate) fn set_status(&self, status: Status) {
        self.status.set(status);
    }

    /// The count of plain cancellation requests kept in the header (see the field).
    #[inline]
    pub(crate) fn cancels(&self) -> &Cell<u8> {
        &self.cancels
    }

    /// Whether the flag `bit` (a [`Flags`] constant) is set.
    #[inline]
    pub(crate) fn flag(&self, bit: u8) -> bool {
        self.flags.get() & bit != 0
    }

    #[inline]
    pub(crate) fn set_flag(&self, bit: u8, on: bool) {
        let flags = self.flags.get();
        self.flags.set(if on { flags | bit } else { flags & !bit });
    }

    /// Counts one more local reference. Aborts on overflow, as `Rc` does: leaked references
    /// (`mem::forget`) must not wrap the count to zero and free a live task.
    #[inline]
    fn add_local(&self) {
        let local = self.local.get();
        if local == u32::MAX {
            std::process::abort();
        }
        self.local.set(local + 1);
    }
}

/// Drops one atomic reference; frees the task when it was the last.
///
/// # Safety
/// `header` points to a live task and the caller owns one of its atomic references.
unsafe fn release_ref(header: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the allocation alive until the decrement.
    let h = unsafe { header.as_ref() };
    if h.refs.decrement() {
        // SAFETY: that was the last reference: nobody can reach the task any more.
        unsafe { (h.vtable.dealloc)(header) }
    }
}

/// One local reference to a task, as the trait object `D` (`dyn TaskRun` or a typed
/// `dyn TaskJoin<T>`). `!Send`: it lives on the loop thread.
pub(crate) struct TaskPtr<D: ?Sized + TaskRun> {
    ptr: NonNull<D>,
}

impl<D: ?Sized + TaskRun> TaskPtr<D> {
    /// Takes over the local reference that `ptr` carries.
    ///
    /// # Safety
    /// `ptr` points to a live task allocation whose first field is its [`Header`], on its loop
    /// thread, and the caller hands over one local reference (`local` counts it).
    pub(crate) unsafe fn from_raw(ptr: NonNull<D>) -> Self {
        TaskPtr { ptr }
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the task is alive while this reference exists, and the header is the first
        // field of the `#[repr(C)]` allocation.
        unsafe { self.ptr.cast::<Header>().as_ref() }
    }

    /// The task's state (no call through its vtable).
    #[inline]
    pub(crate) fn status(&self) -> Status {
        self.header().status()
    }

    /// Whether a `Task<T>` handle of the task exists.
    #[inline]
    pub(crate) fn handle_alive(&self) -> bool {
        self.header().flag(Flags::HANDLE_ALIVE)
    }

    /// Whether the outcome was looked at.
    #[inline]
    pub(crate) fn retrieved(&self) -> bool {
        self.header().flag(Flags::RETRIEVED)
    }

    #[inline]
    pub(crate) fn mark_retrieved(&self) {
        self.header().set_flag(Flags::RETRIEVED, true);
    }

    /// Another local reference, as the untyped trait object.
    pub(crate) fn untyped(&self) -> TaskPtr<dyn TaskRun> {
        let h = self.header();
        h.add_local();
        // SAFETY: the vtable was made for this task's type; the count was taken above.
        let ptr = unsafe { (h.vtable.as_dyn)(self.ptr.cast()) };
        TaskPtr { ptr }
    }

    /// Queues a step of this task (a wake-up from the loop thread).
    pub(crate) fn wake_by_ref(&self) {
        schedule(self.ptr.cast());
    }

    /// Gives up a local reference that its owner forgot (the task table's slot, emptied without
    /// reading it): `self` is another one, so this is never the last.
    ///
    /// # Safety
    /// A local reference to this task was leaked (`mem::forget` or the like) and nothing will
    /// use or drop it.
    #[inline]
    pub(crate) unsafe fn release_forgotten(&self) {
        let h = self.header();
        let local = h.local.get();
        // `self` holds one besides the forgotten one.
        debug_assert!(local >= 2);
        h.local.set(local - 1);
    }

    /// How many local references the task has (tests of their owners).
    #[cfg(test)]
    pub(crate) fn local_count(&self) -> u32 {
        self.header().local.get()
    }

    /// Whether both point to the same task.
    pub(crate) fn ptr_eq<E: ?Sized + TaskRun>(&self, other: &TaskPtr<E>) -> bool {
        self.ptr.cast::<u8>() == other.ptr.cast::<u8>()
    }

    /// Converts the trait object (an unsizing cast such as `TaskCell<F>` to `dyn TaskJoin<T>`).
    pub(crate) fn map<E: ?Sized + TaskRun>(
        self,
        f: impl FnOnce(NonNull<D>) -> NonNull<E>,
    ) -> TaskPtr<E> {
        let this = ManuallyDrop::new(self);
        let ptr = f(this.ptr);
        debug_assert_eq!(ptr.cast::<u8>(), this.ptr.cast::<u8>());
        TaskPtr { ptr }
    }
}

impl<D: TaskRun + 'static> TaskPtr<D> {
    /// Another local reference, as the untyped trait object, by an unsizing cast (the concrete
    /// type is known: no call through the task's vtable).
    pub(crate) fn untyped_sized(&self) -> TaskPtr<dyn TaskRun> {
        self.header().add_local();
        let ptr: NonNull<dyn TaskRun> = self.ptr;
        TaskPtr { ptr }
    }
}

impl TaskPtr<dyn TaskRun> {
    /// The header pointer, keeping the local reference (for a one-word queue entry; see
    /// [`from_raw_header`](TaskPtr::from_raw_header)).
    #[inline]
    pub(crate) fn into_raw_header(self) -> NonNull<Header> {
        ManuallyDrop::new(self).ptr.cast()
    }

    /// Takes back the local reference that [`into_raw_header`](TaskPtr::into_raw_header) kept.
    ///
    /// # Safety
    /// `header` came from `into_raw_header`, whose reference nothing has used since, and this
    /// runs on the task's loop thread.
    #[inline]
    pub(crate) unsafe fn from_raw_header(header: NonNull<Header>) -> Self {
        // SAFETY: the task is alive (the reference is still counted), and its vtable was made
        // for its type.
        let ptr = unsafe { (header.as_ref().vtable.as_dyn)(header) };
        TaskPtr { ptr }
    }

    /// A local reference from a header, unless the task was released already.
    ///
    /// # Safety
    /// `header` points to a live task (the caller holds a reference of some kind) and this
    /// runs on the task's loop thread.
    pub(crate) unsafe fn from_header(header: NonNull<Header>) -> Option<Self> {
        // SAFETY: as the caller promises.
        let h = unsafe { header.as_ref() };
        let local = h.local.get();
        if local == 0 {
            return None;
        }
        h.add_local();
        // SAFETY: the vtable was made for this task's type; the count was taken above.
        let ptr = unsafe { (h.vtable.as_dyn)(header) };
        Some(TaskPtr { ptr })
    }
}

impl<D: ?Sized + TaskRun> Deref for TaskPtr<D> {
    type Target = D;

    fn deref(&self) -> &D {
        // SAFETY: the task is alive while this reference exists.
        unsafe { self.ptr.as_ref() }
    }
}

impl<D: ?Sized + TaskRun> Clone for TaskPtr<D> {
    fn clone(&self) -> Self {
        self.header().add_local();
        TaskPtr { ptr: self.ptr }
    }
}

impl<D: ?Sized + TaskRun> Drop for TaskPtr<D> {
    #[inline]
    fn drop(&mut self) {
        let h = self.header();
        let local = h.local.get() - 1;
        h.local.set(local);
        if local == 0 {
            self.release_last_local();
        }
    }
}

impl<D: ?Sized + TaskRun> TaskPtr<D> {
    /// The last local reference is going: drop what must stay on this thread, while the local
    /// side's atomic reference still keeps the memory, then give that reference up.
    #[inline(never)]
    fn release_last_local(&mut self) {
        let anchor = (**self).release_local();
        let h = self.header();
        let last = h.refs.release_local_side(|| h.share_with_wakers());
        if last {
            // SAFETY: that was the last atomic reference (or the only one left, and no new one
            // can appear): nobody else can reach the task.
            unsafe { (self.header().vtable.dealloc)(self.ptr.cast::<Header>()) }
        }
        drop(anchor);
    }
}

/// One local reference to a task whose output is `T`, in one word (what [`Task<T>`] holds, so
/// that a handle is 8 bytes as tokio's and smol's are, not a 16-byte trait object): the typed
/// trait object is rebuilt from the header's vtable when it is used.
///
/// [`Task<T>`]: crate::Task
pub(crate) struct JoinPtr<T> {
    header: NonNull<Header>,
    /// `fn() -> T`: the handle hands out `T`s; it is `Unpin` whatever `T` is (the output is
    /// never pinned), and `!Send` through the pointer.
    _output: PhantomData<fn() -> T>,
}

impl<T> JoinPtr<T> {
    /// Takes over `task`'s local reference.
    pub(crate) fn new(task: TaskPtr<dyn TaskJoin<T>>) -> Self {
        JoinPtr {
            header: ManuallyDrop::new(task).ptr.cast(),
            _output: PhantomData,
        }
    }

    /// The task's header: its state (status, flags) without a call through the vtable.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the task is alive while this reference exists.
        unsafe { self.header.as_ref() }
    }

    /// The typed reference, borrowed: not counted, and dropping the `ManuallyDrop` gives
    /// nothing back.
    #[inline]
    pub(crate) fn get(&self) -> ManuallyDrop<TaskPtr<dyn TaskJoin<T>>> {
        let h = self.header();
        // SAFETY: `as_join` is the task type's `unsafe fn(NonNull<Header>) -> NonNull<dyn
        // TaskJoin<F::Output>>` with its type erased, and this `JoinPtr` was made from a
        // `TaskPtr<dyn TaskJoin<T>>` of this task, so `F::Output` is `T`: the transmute gives
        // the function back its own type.
        let as_join = unsafe {
            std::mem::transmute::<unsafe fn(), unsafe fn(NonNull<Header>) -> NonNull<dyn TaskJoin<T>>>(
                h.vtable.as_join,
            )
        };
        // SAFETY: `header` is this live task's header.
        let ptr = unsafe { as_join(self.header) };
        // The `ManuallyDrop` keeps the count as it is.
        ManuallyDrop::new(TaskPtr { ptr })
    }
}

impl<T> Drop for JoinPtr<T> {
    fn drop(&mut self) {
        drop(ManuallyDrop::into_inner(self.get()));
    }
}

/// A wake-up queued from another thread: one atomic reference. Sent through the loop's inbox,
/// turned into a [`TaskPtr`] on the loop thread, or dropped (freeing the task if it was last).
pub(crate) struct RemoteTask(NonNull<Header>);

// SAFETY: a `RemoteTask` touches only the header's atomics and the loop's `Shared` (thread-safe,
// kept alive as `Header::shared` says) off the loop thread; it becomes a `TaskPtr` only on the
// loop thread (`into_local`), and freeing the allocation elsewhere is sound because the contents
// were released first (see the module docs) and the header's own count of `Shared`, if any, is
// an `Arc`'s.
unsafe impl Send for RemoteTask {}

impl RemoteTask {
    /// The task as a local reference, unless it was released meanwhile. Runs on the loop
    /// thread (the inbox is drained there).
    pub(crate) fn into_local(self) -> Option<TaskPtr<dyn TaskRun>> {
        // SAFETY: `self` holds a reference, and the inbox is drained on the loop thread.
        unsafe { TaskPtr::from_header(self.0) }
    }
}

impl Drop for RemoteTask {
    fn drop(&mut self) {
        // SAFETY: `self` owns one atomic reference.
        unsafe { release_ref(self.0) }
    }
}

/// Queues a step of the task behind `header`: on the loop's ready queue when this thread owns
/// the loop, else through its inbox. Coalesced with a step already queued.
fn schedule(header: NonNull<Header>) {
    // SAFETY: the calling waker holds a reference.
    let h = unsafe { header.as_ref() };
    if !h.scheduled.wake() {
        return;
    }
    let local = |inner: &Inner| -> bool {
        let Ok(mut ready) = inner.ready.try_borrow_mut() else {
            return false;
        };
        // SAFETY: `inner` is the task's loop, and it lives on this thread.
        if let Some(task) = unsafe { TaskPtr::from_header(header) } {
            ready.push_task(task);
        }
        true
    };
    let shared = h.shared();
    let on_running =
        with_running(|inner| std::ptr::eq(Arc::as_ptr(&inner.shared), shared) && local(inner));
    if on_running == Some(true) {
        return;
    }
    // Not running, but the loop belongs to this thread: join its FIFO queue (R1, R10). A closed
    // loop has dropped its tasks already; the wake-up is moot.
    if with_local(shared, |inner| inner.closed.get() || local(inner)) == Some(true) {
        return;
    }
    h.refs.increment();
    // A closed loop refuses it (its tasks are gone): the reference is dropped with it.
    let _ = shared.push_remote(Remote::Task(RemoteTask(header)));
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

fn header_of(data: *const ()) -> NonNull<Header> {
    // SAFETY: wakers of this vtable are made only from non-null header pointers.
    unsafe { NonNull::new_unchecked(data.cast_mut().cast()) }
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned keeps the task alive.
    let h = unsafe { header_of(data).as_ref() };
    h.refs.increment();
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    schedule(header_of(data));
    // SAFETY: `wake` consumes the waker and its reference.
    unsafe { release_ref(header_of(data)) }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    schedule(header_of(data));
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: the waker owned one reference.
    unsafe { release_ref(header_of(data)) }
}

impl<D: ?Sized + TaskRun> TaskPtr<D> {
    /// Runs `f` with a waker for this task, without taking a reference for it (clones of the
    /// waker take their own).
    pub(crate) fn with_waker<R>(&self, f: impl FnOnce(&Waker) -> R) -> R {
        let data = self.ptr.cast::<()>().as_ptr().cast_const();
        // SAFETY: the vtable's functions expect a header pointer (the allocation's own pointer,
        // so clones may free it); `ManuallyDrop` keeps this borrowed waker from dropping a
        // reference it does not own, and it does not outlive `f`, during which `self` keeps
        // the task alive.
        let waker =
            ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(data, &WAKER_VTABLE)) });
        f(&waker)
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::core::EventLoop;
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::sync::mpsc;
    use std::task::{Poll, Waker};
    use std::thread;

    /// A future that hands a clone of its waker out, then finishes on its second poll.
    fn leak_waker(out: mpsc::Sender<Waker>) -> impl std::future::Future<Output = Rc<Cell<u32>>> {
        let mut polled = false;
        poll_fn(move |cx| {
            if polled {
                return Poll::Ready(Rc::new(Cell::new(7)));
            }
            polled = true;
            out.send(cx.waker().clone()).unwrap();
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    fn run_a_few_iterations(lp: &EventLoop) {
        lp.run_until_complete(async {
            for _ in 0..3 {
                crate::sleep(0.0).await.unwrap();
            }
        })
        .unwrap();
    }

    /// Records the thread that drops it.
    struct DropThread(Rc<Cell<Option<thread::ThreadId>>>);
    impl Drop for DropThread {
        fn drop(&mut self) {
            self.0.set(Some(thread::current().id()));
        }
    }

    /// `mem::forget` on task references must not wrap the local count (a `u32`) and free a
    /// live task: the count aborts at its maximum, as `Rc`'s does. Aborting
    /// ends the process, so the check runs in a child process: this test binary again, filtered
    /// to this test.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "runs this test binary as a child process, which Miri cannot"
    )]
    fn a_local_count_at_its_maximum_aborts_instead_of_wrapping() {
        use std::os::unix::process::ExitStatusExt;
        const CHILD: &str = "ASYNCIO_TEST_LOCAL_COUNT_OVERFLOW";
        if std::env::var_os(CHILD).is_some() {
            let lp = EventLoop::new().unwrap();
            let task = lp.create_task(async {}).unwrap();
            // As if references had been forgotten until the count reached its maximum.
            task.raw.get().header().local.set(u32::MAX);
            std::mem::forget((*task.raw.get()).clone());
            // Reached only if the count wrapped: the parent sees a clean exit and fails.
            std::process::exit(0);
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "task::refs::tests::a_local_count_at_its_maximum_aborts_instead_of_wrapping",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}");
    }

    #[test]
    fn a_waker_outliving_its_task_frees_it_on_another_thread() {
        let lp = EventLoop::new().unwrap();
        let (tx, rx) = mpsc::channel();
        let task = lp.create_task(leak_waker(tx)).unwrap();
        let out = lp.run_until_complete(task).unwrap().unwrap();
        assert_eq!(out.get(), 7);
        let waker = rx.recv().unwrap();
        // The task is finished and every local reference is gone: only the waker is left.
        let worker = thread::spawn(move || {
            let more = waker.clone();
            waker.wake();
            more.wake_by_ref();
            drop(more);
        });
        worker.join().unwrap();
        // The remote wake-ups are stale: draining them runs nothing.
        lp.run_until_complete(async {}).unwrap();
        lp.close().unwrap();
    }

    #[test]
    fn a_waker_outliving_its_loop_is_refused_and_freed() {
        let lp = EventLoop::new().unwrap();
        let (tx, rx) = mpsc::channel();
        let dropped = Rc::new(Cell::new(None));
        let guard = DropThread(dropped.clone());
        let (go, ready) = mpsc::channel::<()>();
        let pending = std::future::pending::<()>();
        let task = lp
            .create_task(async move {
                let _guard = guard;
                leak_waker(tx).await;
                pending.await;
            })
            .unwrap();
        run_a_few_iterations(&lp);
        assert!(!task.done());
        let waker = rx.recv().unwrap();
        let worker = thread::spawn(move || {
            ready.recv().unwrap();
            // The loop is closed: the wake-up is refused and its reference dropped here.
            waker.wake_by_ref();
            drop(waker);
        });
        lp.close().unwrap();
        // Closing dropped the pending future, on this thread.
        assert_eq!(dropped.get(), Some(thread::current().id()));
        assert!(task.cancelled());
        drop(task);
        drop(lp);
        go.send(()).unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn a_detached_output_is_dropped_on_the_loop_thread() {
        let lp = EventLoop::new().unwrap();
        let (tx, rx) = mpsc::channel();
        let dropped = Rc::new(Cell::new(None));
        let guard = DropThread(dropped.clone());
        let task = lp
            .create_task(async move {
                leak_waker(tx).await;
                guard
            })
            .unwrap();
        drop(task);
        run_a_few_iterations(&lp);
        assert_eq!(dropped.get(), Some(thread::current().id()));
        let waker = rx.recv().unwrap();
        thread::spawn(move || waker.wake()).join().unwrap();
        lp.close().unwrap();
    }

    #[test]
    fn remote_wake_ups_resume_a_pending_task() {
        let lp = EventLoop::new().unwrap();
        let steps = Rc::new(Cell::new(0));
        let s = steps.clone();
        let (tx, rx) = mpsc::channel::<Waker>();
        let task = lp
            .create_task(poll_fn(move |cx| {
                s.set(s.get() + 1);
                if s.get() == 3 {
                    return Poll::Ready(());
                }
                tx.send(cx.waker().clone()).unwrap();
                Poll::Pending
            }))
            .unwrap();
        let waker_thread = thread::spawn(move || {
            for waker in rx {
                let twin = waker.clone();
                waker.wake();
                twin.wake();
            }
        });
        lp.run_until_complete(task).unwrap().unwrap();
        waker_thread.join().unwrap();
        assert_eq!(steps.get(), 3);
        lp.close().unwrap();
    }
}
