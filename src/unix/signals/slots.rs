//! The wake slots: one per loop that handles signals, read by the C handler with atomics only.
//!
//! Slots live in fixed-size blocks chained into an append-only list. The first block is static;
//! later ones are allocated when every slot is taken (by a loop, under a mutex, never inside a
//! handler) and never freed, so a handler may walk the list at any moment. A loop claims a free
//! slot with a compare-and-swap, so a released slot is reused before a block is added.
//!
//! Hand-over: a slot is claimed first and its fd published after; on release everything the
//! handler could write is cleared first (subscriptions, fd, then — once no handler is still
//! writing — pending bits) and the slot is freed last, so a loop that claims it next starts
//! clean and nothing it receives is cleared by the previous owner.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Signals are numbered below this (Linux's `_NSIG` is 65; two 64-bit words cover 1..=127).
pub(super) const MAX_SIGNAL: i32 = 128;
const WORDS: usize = MAX_SIGNAL as usize / 64;
/// Slots per block.
const BLOCK: usize = 32;

/// The word and bit of `sig` in a signal set.
pub(super) fn word_bit(sig: i32) -> (usize, u64) {
    let s = sig as usize;
    (s / 64, 1u64 << (s % 64))
}

/// One loop's mailbox for the C handler.
pub(super) struct WakeSlot {
    /// Taken by a loop: set first when claimed, cleared last when released.
    claimed: AtomicBool,
    /// The write end of the loop's self-pipe, or -1 while the handler must not write to it.
    fd: AtomicI32,
    /// Handlers between loading `fd` and finishing their write, so the pipe is not closed
    /// under one.
    writers: AtomicUsize,
    subscribed: [AtomicU64; WORDS],
    pending: [AtomicU64; WORDS],
}

impl WakeSlot {
    const fn new() -> Self {
        WakeSlot {
            claimed: AtomicBool::new(false),
            fd: AtomicI32::new(-1),
            writers: AtomicUsize::new(0),
            subscribed: [AtomicU64::new(0), AtomicU64::new(0)],
            pending: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// The handler's side: if this slot's loop watches `sig`, marks it pending and writes one
    /// byte to the loop's pipe. Async-signal-safe: atomics and `write(2)`.
    fn notify(&self, word: usize, bit: u64, byte: u8) {
        if self.subscribed[word].load(Ordering::SeqCst) & bit == 0 {
            return;
        }
        self.writers.fetch_add(1, Ordering::SeqCst);
        let fd = self.fd.load(Ordering::SeqCst);
        // Checked again after the fd: the slot may have changed hands in between, and then the
        // new owner's subscriptions decide (the old owner's were cleared before its fd).
        if fd >= 0 && self.subscribed[word].load(Ordering::SeqCst) & bit != 0 {
            self.pending[word].fetch_or(bit, Ordering::SeqCst);
            // SAFETY: `write` is async-signal-safe; `fd` is the open, non-blocking write end of
            // a loop's self-pipe, which `release` does not let close while `writers` counts us.
            // A full pipe (EAGAIN) is fine: the pending bit is set and a wake-up is queued.
            unsafe {
                libc::write(fd, (&byte as *const u8).cast(), 1);
            }
        }
        self.writers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Starts delivering `sig` to this slot.
    pub(super) fn subscribe(&self, sig: i32) {
        let (word, bit) = word_bit(sig);
        self.subscribed[word].fetch_or(bit, Ordering::SeqCst);
    }

    /// Stops delivering `sig` to this slot and forgets a delivery not yet taken.
    pub(super) fn unsubscribe(&self, sig: i32) {
        let (word, bit) = word_bit(sig);
        self.subscribed[word].fetch_and(!bit, Ordering::SeqCst);
        self.pending[word].fetch_and(!bit, Ordering::SeqCst);
    }

    /// Takes the signals marked pending, as a bit set per word.
    pub(super) fn take_pending(&self) -> [u64; WORDS] {
        let mut out = [0; WORDS];
        for (o, p) in out.iter_mut().zip(&self.pending) {
            *o = p.swap(0, Ordering::SeqCst);
        }
        out
    }

    /// Gives the slot back: see the module comment for the order. The pipe whose write end was
    /// published must stay open until this returns.
    pub(super) fn release(&self) {
        for w in &self.subscribed {
            w.store(0, Ordering::SeqCst);
        }
        self.fd.store(-1, Ordering::SeqCst);
        // A handler that loaded the fd before the store may still be writing: wait for it. It
        // is a few instructions long, and runs on another thread (a handler on this thread
        // finishes before we resume).
        while self.writers.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        for w in &self.pending {
            w.store(0, Ordering::SeqCst);
        }
        self.claimed.store(false, Ordering::SeqCst);
    }
}

struct Block {
    slots: [WakeSlot; BLOCK],
    /// The next block, or null; set once, never freed.
    next: AtomicPtr<Block>,
}

impl Block {
    const fn new() -> Self {
        Block {
            slots: [const { WakeSlot::new() }; BLOCK],
            next: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    fn next(&self) -> Option<&'static Block> {
        let next = self.next.load(Ordering::SeqCst);
        // SAFETY: `next` is null or a block leaked by `claim` (never freed), fully initialised
        // before it was published with this atomic.
        unsafe { next.as_ref() }
    }
}

static FIRST: Block = Block::new();
/// Serialises adding blocks.
static GROW: Mutex<()> = Mutex::new(());

/// The handler's side: delivers `sig` to every slot that watches it. Async-signal-safe.
pub(super) fn notify_all(sig: i32) {
    let (word, bit) = word_bit(sig);
    let byte = sig as u8;
    let mut block = &FIRST;
    loop {
        for slot in &block.slots {
            slot.notify(word, bit, byte);
        }
        match block.next() {
            Some(next) => block = next,
            None => return,
        }
    }
}

/// Claims a free slot (adding a block when all are taken) and publishes `fd`, the write end of
/// the claiming loop's self-pipe, to the handler.
pub(super) fn claim(fd: RawFd) -> &'static WakeSlot {
    let slot = claim_free().unwrap_or_else(|| {
        let _grow = GROW.lock().unwrap_or_else(|p| p.into_inner());
        // Another loop may have freed a slot or added a block meanwhile.
        claim_free().unwrap_or_else(|| {
            let block: &'static Block = Box::leak(Box::new(Block::new()));
            block.slots[0].claimed.store(true, Ordering::SeqCst);
            let mut tail = &FIRST;
            while let Some(next) = tail.next() {
                tail = next;
            }
            tail.next
                .store(block as *const Block as *mut Block, Ordering::SeqCst);
            &block.slots[0]
        })
    });
    slot.fd.store(fd, Ordering::SeqCst);
    slot
}

fn claim_free() -> Option<&'static WakeSlot> {
    let mut block = &FIRST;
    loop {
        for slot in &block.slots {
            if slot
                .claimed
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return Some(slot);
            }
        }
        block = block.next()?;
    }
}

#[cfg(test)]
fn block_count() -> usize {
    let mut n = 1;
    let mut block = &FIRST;
    while let Some(next) = block.next() {
        n += 1;
        block = next;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_never_run_out_and_released_ones_are_reused() {
        // Other unit tests may hold slots meanwhile; none release a block, so counts only grow
        // through this test's claims.
        let claimed: Vec<_> = (0..3 * BLOCK).map(|_| claim(-1)).collect();
        let blocks = block_count();
        assert!(blocks >= 3);
        for s in &claimed {
            s.release();
        }
        let again: Vec<_> = (0..3 * BLOCK).map(|_| claim(-1)).collect();
        assert_eq!(block_count(), blocks, "released slots were not reused");
        for s in &again {
            s.release();
        }
    }

    #[test]
    fn a_released_slot_starts_clean() {
        let slot = claim(-1);
        slot.subscribe(libc::SIGUSR1);
        slot.pending[0].fetch_or(word_bit(libc::SIGUSR1).1, Ordering::SeqCst);
        slot.release();
        assert!(!slot.claimed.load(Ordering::SeqCst));
        assert_eq!(slot.take_pending(), [0, 0]);
        assert_eq!(slot.subscribed[0].load(Ordering::SeqCst), 0);
    }
}
