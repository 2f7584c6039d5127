//! File-descriptor readiness callbacks: `add_reader`, `add_writer`, `remove_reader`,
//! `remove_writer` (asyncio's selector-loop API, rules R33-R34).

use std::os::fd::RawFd;
use std::rc::Rc;

use crate::error::{Error, ErrorKind, Result};
use crate::handles::{Handle, HandleRun, RepeatCell};
use crate::runtime::core::{EventLoop, FdWatch};
use crate::selector::Interest;

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
    ///     lp.remove_reader(fd);
    ///     lp.stop();
    /// })?;
    /// event_loop.run_forever()?;
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn add_reader<F: FnMut() + 'static>(&self, fd: RawFd, callback: F) -> Result<Handle> {
        self.add_watch(fd, Side::Read, RepeatCell::new_rc(callback))
    }

    /// Calls `callback` each time `fd` is writable; see [`add_reader`](EventLoop::add_reader).
    ///
    /// # Errors
    /// As [`add_reader`](EventLoop::add_reader).
    pub fn add_writer<F: FnMut() + 'static>(&self, fd: RawFd, callback: F) -> Result<Handle> {
        self.add_watch(fd, Side::Write, RepeatCell::new_rc(callback))
    }

    /// Stops watching `fd` for readability; `true` if a reader was removed (`false` on a closed
    /// loop).
    pub fn remove_reader(&self, fd: RawFd) -> bool {
        self.remove_watch(fd, Side::Read)
    }

    /// Stops watching `fd` for writability; `true` if a writer was removed.
    pub fn remove_writer(&self, fd: RawFd) -> bool {
        self.remove_watch(fd, Side::Write)
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
