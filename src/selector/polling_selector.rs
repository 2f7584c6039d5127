//! The default selector, on the `polling` crate (epoll on Linux, kqueue on the BSDs and macOS).

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};

use super::{Interest, ReadyEvent, Selector, SelectorWaker};

/// The default [`Selector`]: a `polling::Poller` in level-triggered mode.
///
/// Level mode (not `polling`'s default one-shot mode) saves one `epoll_ctl` per event.
pub struct PollingSelector {
    poller: Arc<Poller>,
    events: Events,
}

impl PollingSelector {
    /// Creates the OS poller.
    ///
    /// # Errors
    /// The OS error if no poller can be created (for example when out of file descriptors).
    pub fn new() -> io::Result<Self> {
        Ok(PollingSelector {
            poller: Arc::new(Poller::new()?),
            events: Events::new(),
        })
    }
}

impl std::fmt::Debug for PollingSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollingSelector").finish_non_exhaustive()
    }
}

fn event(fd: RawFd, interest: Interest) -> Event {
    // The key is the descriptor itself: the loop keeps at most one registration per fd.
    let key = fd as usize;
    match (interest.readable, interest.writable) {
        (true, true) => Event::all(key),
        (true, false) => Event::readable(key),
        (false, true) => Event::writable(key),
        (false, false) => Event::none(key),
    }
}

fn borrow(fd: RawFd) -> io::Result<BorrowedFd<'static>> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: `BorrowedFd` only requires that `fd` is not -1 (checked above) and that it stays
    // open while borrowed. The borrow lives only for the duration of one `modify`/`delete` call
    // on the poller, which never closes it; if the caller already closed the descriptor the
    // kernel reports EBADF/ENOENT, which is returned as an error.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

impl Selector for PollingSelector {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        // SAFETY: `Poller::add` requires that the source is deleted from the poller before it is
        // closed. The event loop deregisters every descriptor on `remove_reader`/`remove_writer`
        // and on `close()`; a descriptor the caller closes while still registered is removed
        // from the epoll set by the kernel, and polling tolerates stale keys (we map events back
        // through the loop's fd table and ignore unknown ones).
        unsafe {
            self.poller
                .add_with_mode(fd, event(fd, interest), PollMode::Level)
        }
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.poller
            .modify_with_mode(borrow(fd)?, event(fd, interest), PollMode::Level)
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.poller.delete(borrow(fd)?)
    }

    fn select(&mut self, out: &mut Vec<ReadyEvent>, timeout: Option<Duration>) -> io::Result<()> {
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(_) => {}
            // A signal arrived: return so the loop can run its handlers.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        out.extend(self.events.iter().map(|ev| ReadyEvent {
            fd: ev.key as RawFd,
            readable: ev.readable,
            writable: ev.writable,
        }));
        Ok(())
    }

    fn waker(&self) -> Arc<dyn SelectorWaker> {
        Arc::new(PollerWaker(self.poller.clone()))
    }
}

struct PollerWaker(Arc<Poller>);

impl SelectorWaker for PollerWaker {
    fn wake(&self) -> io::Result<()> {
        self.0.notify()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_selector_contract() {
        crate::selector::contract::check(&mut PollingSelector::new().unwrap());
    }
}
