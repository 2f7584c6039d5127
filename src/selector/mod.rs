//! I/O readiness: the [`Selector`] trait and its default, [`PollingSelector`].
//!
//! A selector is asyncio's `selectors.BaseSelector`: the loop registers file descriptors with an
//! [`Interest`], and once per iteration waits (with a timeout) for [`ReadyEvent`]s. A user may
//! hand the loop another selector through [`EventLoopBuilder::selector`](crate::EventLoopBuilder::selector),
//! as asyncio's `SelectorEventLoop(selector)` allows: to count polls in a test, to wrap a
//! different OS facility, or to trace.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll_selector;
mod polling_selector;

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub use epoll_selector::EpollSelector;
pub use polling_selector::PollingSelector;

/// The platform's default selector: [`EpollSelector`] on Linux, [`PollingSelector`] elsewhere.
///
/// # Errors
/// The OS error if the selector cannot be created.
pub fn default_selector() -> std::io::Result<Box<dyn Selector>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        Ok(Box::new(EpollSelector::new()?))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        Ok(Box::new(PollingSelector::new()?))
    }
}

/// Which readiness a descriptor is watched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    /// Watch for readability.
    pub readable: bool,
    /// Watch for writability.
    pub writable: bool,
}

impl Interest {
    /// Readable only.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writable only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Neither (the descriptor stays registered but reports nothing).
    pub const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };

    /// Whether neither direction is watched.
    pub fn is_empty(self) -> bool {
        !self.readable && !self.writable
    }
}

/// One readiness report from [`Selector::select`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyEvent {
    /// The descriptor.
    pub fd: RawFd,
    /// It is readable (or at end of file, or in error).
    pub readable: bool,
    /// It is writable (or in error).
    pub writable: bool,
}

/// Wakes a selector blocked in [`Selector::select`] from any thread.
pub trait SelectorWaker: Send + Sync {
    /// Makes the current or next `select` return promptly.
    ///
    /// # Errors
    /// The OS error from the wake-up mechanism.
    fn wake(&self) -> io::Result<()>;
}

/// An I/O readiness multiplexer, driven by one event loop on one thread.
///
/// Registration is level-triggered: a descriptor that stays readable is reported by every
/// `select` until it is drained or its interest changes.
pub trait Selector {
    /// Starts watching `fd`.
    ///
    /// # Errors
    /// The OS error (for example `EBADF` for a closed descriptor, `EEXIST` if registered twice).
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    /// Changes what `fd` is watched for.
    ///
    /// # Errors
    /// The OS error (`ENOENT` if `fd` is not registered).
    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    /// Stops watching `fd`.
    ///
    /// # Errors
    /// The OS error; deregistering a descriptor that was already closed may fail harmlessly.
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;

    /// Waits until a registered descriptor is ready, the waker fires, or `timeout` passes
    /// (`None` waits without limit), and appends the ready descriptors to `events`.
    ///
    /// # Errors
    /// The OS error; `EINTR` is handled inside and never returned.
    fn select(&mut self, events: &mut Vec<ReadyEvent>, timeout: Option<Duration>)
        -> io::Result<()>;

    /// A handle that wakes this selector from another thread.
    fn waker(&self) -> Arc<dyn SelectorWaker>;
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every selector must have, run against each implementation.

    use super::{Interest, ReadyEvent, Selector};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// Level-triggered readiness, interest changes, deregistration, bad fds, and the waker.
    pub(crate) fn check(sel: &mut dyn Selector) {
        let (a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        sel.register(fd, Interest::READABLE).unwrap();
        let mut evs = Vec::new();
        sel.select(&mut evs, Some(Duration::ZERO)).unwrap();
        assert!(evs.is_empty());
        b.write_all(b"x").unwrap();
        for _ in 0..2 {
            evs.clear();
            sel.select(&mut evs, Some(Duration::from_secs(5))).unwrap();
            assert_eq!(
                evs,
                vec![ReadyEvent {
                    fd,
                    readable: true,
                    writable: false
                }]
            );
        }
        sel.modify(fd, Interest::WRITABLE).unwrap();
        evs.clear();
        sel.select(&mut evs, Some(Duration::ZERO)).unwrap();
        assert_eq!(
            evs,
            vec![ReadyEvent {
                fd,
                readable: false,
                writable: true
            }]
        );
        sel.modify(fd, Interest::NONE).unwrap();
        evs.clear();
        sel.select(&mut evs, Some(Duration::ZERO)).unwrap();
        assert!(evs.is_empty());
        sel.deregister(fd).unwrap();
        assert!(sel.deregister(fd).is_err());
        assert!(sel.register(-1, Interest::READABLE).is_err());
        // The waker interrupts a blocking select, and the next poll is quiet again.
        let w = sel.waker();
        let t = std::thread::spawn(move || w.wake().unwrap());
        evs.clear();
        sel.select(&mut evs, None).unwrap();
        t.join().unwrap();
        assert!(evs.is_empty());
        sel.select(&mut evs, Some(Duration::ZERO)).unwrap();
        assert!(evs.is_empty());
    }
}
