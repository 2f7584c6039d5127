//! File-descriptor readiness callbacks: `add_reader`, `add_writer`, `remove_reader`,
//! `remove_writer` (asyncio's selector-loop API, rules R33-R34).

use std::os::fd::RawFd;
use std::rc::{Rc, Weak};

use crate::error::{Error, ErrorKind, Result};
use crate::handles::{Handle, HandleRun, RepeatCell};
use crate::runtime::core::{EventLoop, FdWatch};
use crate::selector::Interest;

/// A transport that owns an fd, as the loop sees it (asyncio's `_transports` map): enough to
/// refuse `add_reader` and friends on that fd while the transport is open, so a user callback
/// cannot silently replace the transport's own watcher.
pub(crate) trait FdOwner {
    /// Whether the transport is closing or closed (its fd is then free for callbacks).
    fn is_closing(&self) -> bool;
    /// The transport, for the error message.
    fn describe(&self) -> String;
}

#[derive(Clone, Copy)]
enum Side {
    Read,
    Write,
}

fn interest_of(w: &FdWatch) -> Interest {
    Interest {
        readable: w.reader.is_some(),
        writable: w.writer.is_some(),
    }
}

impl EventLoop {
    /// Calls `callback` each time `fd` is readable (level-triggered), through the ready queue.
    /// One reader per fd: a second `add_reader` replaces (and cancels) the first.
    ///
    /// The loop does not own `fd`: remove the reader before closing it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a negative fd; [`ErrorKind::Closed`] on a closed loop;
    /// [`ErrorKind::InvalidState`] ("File descriptor N is used by transport ...") when an open
    /// transport of this loop owns `fd`, as in asyncio;
    /// [`ErrorKind::Io`] if the selector refuses the fd (for example `EBADF`, or `EPERM` for a
    /// regular file).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    ///
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let (a, mut b) = UnixStream::pair().unwrap();
    /// b.write_all(b"ping").unwrap();
    /// let lp = event_loop.clone();
    /// let fd = a.as_raw_fd();
    /// event_loop.add_reader(fd, move || {
    ///     lp.remove_reader(fd).unwrap();
    ///     lp.stop();
    /// })?;
    /// event_loop.run_forever()?;
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn add_reader<F: FnMut() + 'static>(&self, fd: RawFd, callback: F) -> Result<Handle> {
        self.ensure_fd_no_transport(fd)?;
        self.watch_reader(fd, callback)
    }

    /// Calls `callback` each time `fd` is writable; see [`add_reader`](EventLoop::add_reader).
    ///
    /// # Errors
    /// As [`add_reader`](EventLoop::add_reader).
    pub fn add_writer<F: FnMut() + 'static>(&self, fd: RawFd, callback: F) -> Result<Handle> {
        self.ensure_fd_no_transport(fd)?;
        self.watch_writer(fd, callback)
    }

    /// Stops watching `fd` for readability; `true` if a reader was removed (`false` on a closed
    /// loop).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] when an open transport of this loop owns `fd` (see
    /// [`add_reader`](EventLoop::add_reader)).
    pub fn remove_reader(&self, fd: RawFd) -> Result<bool> {
        self.ensure_fd_no_transport(fd)?;
        Ok(self.unwatch_reader(fd))
    }

    /// Stops watching `fd` for writability; `true` if a writer was removed.
    ///
    /// # Errors
    /// As [`remove_reader`](EventLoop::remove_reader).
    pub fn remove_writer(&self, fd: RawFd) -> Result<bool> {
        self.ensure_fd_no_transport(fd)?;
        Ok(self.unwatch_writer(fd))
    }

    /// `add_reader` without the transport check: for the transport that owns `fd`.
    pub(crate) fn watch_reader<F: FnMut() + 'static>(
        &self,
        fd: RawFd,
        callback: F,
    ) -> Result<Handle> {
        self.add_watch(fd, Side::Read, RepeatCell::new_rc(callback))
    }

    /// `add_writer` without the transport check.
    pub(crate) fn watch_writer<F: FnMut() + 'static>(
        &self,
        fd: RawFd,
        callback: F,
    ) -> Result<Handle> {
        self.add_watch(fd, Side::Write, RepeatCell::new_rc(callback))
    }

    /// `remove_reader` without the transport check.
    pub(crate) fn unwatch_reader(&self, fd: RawFd) -> bool {
        self.remove_watch(fd, Side::Read)
    }

    /// `remove_writer` without the transport check.
    pub(crate) fn unwatch_writer(&self, fd: RawFd) -> bool {
        self.remove_watch(fd, Side::Write)
    }

    /// Records that an open transport owns `fd` until it is finalized.
    pub(crate) fn register_transport(&self, fd: RawFd, owner: Weak<dyn FdOwner>) {
        self.inner.transports.borrow_mut().insert(fd, owner);
    }

    /// Forgets the transport of `fd` (it is closing its fd).
    pub(crate) fn forget_transport(&self, fd: RawFd) {
        self.inner.transports.borrow_mut().remove(&fd);
    }

    /// asyncio's `_ensure_fd_no_transport`: refuses an fd that an open transport owns.
    fn ensure_fd_no_transport(&self, fd: RawFd) -> Result<()> {
        let owner = self
            .inner
            .transports
            .borrow()
            .get(&fd)
            .and_then(Weak::upgrade);
        match owner {
            Some(t) if !t.is_closing() => Err(Error::new(
                ErrorKind::InvalidState,
                format!("File descriptor {fd} is used by transport {}", t.describe()),
            )),
            _ => Ok(()),
        }
    }

    fn add_watch(&self, fd: RawFd, side: Side, cell: Rc<dyn HandleRun>) -> Result<Handle> {
        if fd < 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("Invalid file descriptor: {fd}"),
            ));
        }
        self.check_closed()?;
        let inner = &self.inner;
        let old = {
            let mut fds = inner.fds.borrow_mut();
            let is_new = !fds.contains_key(&fd);
            let mut watch = fds.remove(&fd).unwrap_or_default();
            let old = match side {
                Side::Read => watch.reader.replace(cell.clone()),
                Side::Write => watch.writer.replace(cell.clone()),
            };
            let interest = interest_of(&watch);
            let mut sel = inner.selector.borrow_mut();
            let res = if is_new {
                sel.register(fd, interest)
            } else {
                sel.modify(fd, interest)
            };
            if let Err(e) = res {
                // Undo: put back what was there.
                match side {
                    Side::Read => watch.reader = old,
                    Side::Write => watch.writer = old,
                }
                if !is_new {
                    fds.insert(fd, watch);
                }
                return Err(e.into());
            }
            fds.insert(fd, watch);
            old
        };
        if let Some(old) = old {
            old.cancel();
        }
        Ok(Handle::new(cell))
    }

    fn remove_watch(&self, fd: RawFd, side: Side) -> bool {
        if self.inner.closed.get() {
            return false;
        }
        let inner = &self.inner;
        let old = {
            let mut fds = inner.fds.borrow_mut();
            let Some(watch) = fds.get_mut(&fd) else {
                return false;
            };
            let old = match side {
                Side::Read => watch.reader.take(),
                Side::Write => watch.writer.take(),
            };
            if old.is_none() {
                return false;
            }
            let interest = interest_of(watch);
            let mut sel = inner.selector.borrow_mut();
            if interest.is_empty() {
                fds.remove(&fd);
                let _ = sel.deregister(fd);
            } else {
                let _ = sel.modify(fd, interest);
            }
            old
        };
        if let Some(old) = old {
            old.cancel();
        }
        true
    }
}
