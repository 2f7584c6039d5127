//! [`EpollSelector`]: a lean Linux selector on epoll and an eventfd (the default on Linux).
//!
//! `polling::Poller::wait` costs about five syscalls per wake-up (it re-arms a timerfd and its
//! one-shot notifier). Here the eventfd is registered once, edge-triggered, and the timeout goes
//! straight to `epoll_wait`: a cross-thread wake-up is one `write` on the waking side and the
//! `epoll_wait` that returns on the loop's (design section 7; measured with `benches/core.rs`,
//! row 6). Each write to an eventfd is a new edge, so the loop never reads the counter; the
//! waker resets it in the (theoretical) case that it saturates.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags, Timespec};
use rustix::io::Errno;

use super::{Interest, ReadyEvent, Selector, SelectorWaker};

/// The key of the wake-up eventfd (no real fd is `u64::MAX`).
const WAKE_KEY: u64 = u64::MAX;

/// A level-triggered epoll selector with an (edge-triggered) eventfd for cross-thread wake-ups
/// (Linux only).
pub struct EpollSelector {
    epoll: OwnedFd,
    wake: Arc<OwnedFd>,
    events: Vec<epoll::Event>,
}

impl std::fmt::Debug for EpollSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpollSelector").finish_non_exhaustive()
    }
}

impl EpollSelector {
    /// Creates the epoll instance and the wake-up eventfd.
    ///
    /// # Errors
    /// The OS error (for example when out of file descriptors).
    pub fn new() -> io::Result<Self> {
        let epoll = epoll::create(CreateFlags::CLOEXEC)?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &wake,
            EventData::new_u64(WAKE_KEY),
            EventFlags::IN | EventFlags::ET,
        )?;
        Ok(EpollSelector {
            epoll,
            wake: Arc::new(wake),
            events: Vec::with_capacity(1024),
        })
    }
}

fn flags(interest: Interest) -> EventFlags {
    let mut f = EventFlags::empty();
    if interest.readable {
        f |= EventFlags::IN | EventFlags::RDHUP;
    }
    if interest.writable {
        f |= EventFlags::OUT;
    }
    f
}

fn borrow(fd: RawFd) -> io::Result<BorrowedFd<'static>> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: `BorrowedFd` requires a descriptor other than -1 (checked above) that stays open
    // while borrowed. The borrow lives only for one `epoll_ctl` call, which never closes it; a
    // descriptor the caller already closed makes the kernel answer EBADF, returned as an error.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

impl EpollSelector {
    /// Adds or modifies (`op`: `epoll::add` or `epoll::modify`) the registration of `fd` for
    /// `interest`, keyed by the fd.
    fn ctl<'a>(
        &'a self,
        op: fn(BorrowedFd<'a>, BorrowedFd<'static>, EventData, EventFlags) -> Result<(), Errno>,
        fd: RawFd,
        interest: Interest,
    ) -> io::Result<()> {
        let src = borrow(fd)?;
        op(
            self.epoll.as_fd(),
            src,
            EventData::new_u64(fd as u64),
            flags(interest),
        )?;
        Ok(())
    }
}

impl Selector for EpollSelector {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl(epoll::add, fd, interest)
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl(epoll::modify, fd, interest)
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let src = borrow(fd)?;
        epoll::delete(&self.epoll, src)?;
        Ok(())
    }

    fn select(&mut self, out: &mut Vec<ReadyEvent>, timeout: Option<Duration>) -> io::Result<()> {
        let ts = timeout.map(|d| Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        self.events.clear();
        match epoll::wait(
            self.epoll.as_fd(),
            rustix::buffer::spare_capacity(&mut self.events),
            ts.as_ref(),
        ) {
            Ok(_) => {}
            // A signal arrived: return so the loop can run its handlers.
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        for ev in &self.events {
            let key = ev.data.u64();
            if key == WAKE_KEY {
                continue;
            }
            let f = ev.flags;
            out.push(ReadyEvent {
                fd: key as RawFd,
                readable: f.intersects(
                    EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR,
                ),
                writable: f.intersects(EventFlags::OUT | EventFlags::HUP | EventFlags::ERR),
            });
        }
        Ok(())
    }

    fn waker(&self) -> Arc<dyn SelectorWaker> {
        Arc::new(EventfdWaker(self.wake.clone()))
    }
}

struct EventfdWaker(Arc<OwnedFd>);

impl SelectorWaker for EventfdWaker {
    fn wake(&self) -> io::Result<()> {
        match rustix::io::write(&*self.0, &1u64.to_ne_bytes()) {
            Ok(_) => Ok(()),
            // The counter is saturated (after 2^64 - 2 wake-ups): reset it, and write again so
            // that there is a new edge for the loop.
            Err(Errno::AGAIN) => {
                let mut buf = [0u8; 8];
                let _ = rustix::io::read(&*self.0, &mut buf);
                match rustix::io::write(&*self.0, &1u64.to_ne_bytes()) {
                    Ok(_) | Err(Errno::AGAIN) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_selector_contract() {
        crate::selector::contract::check(&mut EpollSelector::new().unwrap());
    }

    /// Whether `epoll_wait` (not blocking) reports the wake-up eventfd.
    fn woken(sel: &EpollSelector) -> bool {
        let mut events = Vec::with_capacity(4);
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        epoll::wait(
            sel.epoll.as_fd(),
            rustix::buffer::spare_capacity(&mut events),
            Some(&zero),
        )
        .unwrap();
        events.iter().any(|e| e.data.u64() == WAKE_KEY)
    }

    #[test]
    fn every_wake_is_an_edge_without_reading_the_counter() {
        let sel = EpollSelector::new().unwrap();
        let waker = sel.waker();
        assert!(!woken(&sel));
        for _ in 0..3 {
            waker.wake().unwrap();
            assert!(woken(&sel));
            // Consumed: no event until the next wake-up.
            assert!(!woken(&sel));
        }
    }

    #[test]
    fn a_saturated_counter_is_reset_and_still_wakes() {
        let sel = EpollSelector::new().unwrap();
        // The largest value an eventfd holds: the next write would get EAGAIN.
        rustix::io::write(&*sel.wake, &(u64::MAX - 1).to_ne_bytes()).unwrap();
        assert!(woken(&sel));
        assert!(!woken(&sel));
        sel.waker().wake().unwrap();
        assert!(woken(&sel));
    }
}
