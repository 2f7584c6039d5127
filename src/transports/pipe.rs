//! Pipe transports (asyncio's `connect_read_pipe` / `connect_write_pipe`): the stream
//! [`Transport`] driving one end of a pipe instead of a socket.
//!
//! A pipe is anything that owns a descriptor of a FIFO, a socket or a character device (a pty,
//! `/dev/null`): an `OwnedFd`, a `std::process::ChildStdout` or `ChildStdin`, a `File`, one end
//! of a `UnixStream::pair()`. A regular file is refused, as asyncio refuses it ("Pipe transport
//! is for pipes/sockets only."): it is always "ready", so a readiness loop cannot wait on it.
//! The transport makes the descriptor non-blocking, owns it, and closes it exactly once, after
//! `connection_lost`.

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::rc::Rc;

use rustix::fs::{FileType, OFlags};

use super::endpoint::Mode;
use super::stream::{ProtocolRefs, Transport};
use crate::error::{Error, ErrorKind, Result};
use crate::protocols::Protocol;
use crate::runtime::core::EventLoop;

/// The file type of `fd`, if `fstat` works.
fn file_type(fd: impl AsFd) -> Option<FileType> {
    rustix::fs::fstat(fd)
        .ok()
        .map(|st| FileType::from_raw_mode(st.st_mode))
}

/// Whether the write end `fd` becomes readable when its reader goes: a FIFO or a socket.
pub(crate) fn signals_peer_close(fd: RawFd) -> bool {
    // SAFETY: `fd` is the transport's own open descriptor, borrowed for this call only.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    matches!(file_type(fd), Some(FileType::Fifo | FileType::Socket))
}

/// Checks that `pipe` is a pipe, socket or character device and makes it non-blocking.
pub(crate) fn prepare(pipe: OwnedFd) -> Result<File> {
    match file_type(&pipe) {
        Some(FileType::Fifo | FileType::Socket | FileType::CharacterDevice) => {}
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "Pipe transport is for pipes/sockets only.",
            ))
        }
        None => {
            return Err(Error::from(std::io::Error::last_os_error()));
        }
    }
    let flags = rustix::fs::fcntl_getfl(&pipe).map_err(std::io::Error::from)?;
    rustix::fs::fcntl_setfl(&pipe, flags | OFlags::NONBLOCK).map_err(std::io::Error::from)?;
    Ok(File::from(pipe))
}

impl EventLoop {
    /// Reads the pipe `pipe` with a protocol from `protocol_factory` (asyncio's
    /// `loop.connect_read_pipe`): data goes to `data_received`, the writer's close to
    /// `eof_received` and then `connection_lost(None)`. The transport supports
    /// `pause_reading`/`resume_reading` and `close`; it cannot write. Returns once
    /// `connection_made` has run.
    ///
    /// `pipe` is anything that owns a descriptor of a pipe, FIFO, socket or character device
    /// (`OwnedFd`, `ChildStdout`, `File`, `UnixStream`, ...). It is made non-blocking and closed
    /// by the transport.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] ("Pipe transport is for pipes/sockets only.") for a
    /// regular file or a directory; [`ErrorKind::Closed`] on a closed loop;
    /// [`ErrorKind::Io`] if the descriptor cannot be examined, made non-blocking or watched.
    ///
    /// # Cancel safety
    /// Cancelling the call before it returns aborts the transport (the descriptor is closed).
    ///
    /// ```
    /// use std::{cell::RefCell, io::Write, rc::Rc};
    /// use asyncio::{BaseProtocol, EventLoop, Protocol};
    ///
    /// #[derive(Default)]
    /// struct Collect(Rc<RefCell<Vec<u8>>>);
    /// impl BaseProtocol for Collect {}
    /// impl Protocol for Collect {
    ///     fn data_received(&mut self, data: &[u8]) {
    ///         self.0.borrow_mut().extend_from_slice(data);
    ///     }
    /// }
    ///
    /// let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
    /// writer.write_all(b"through a pipe").unwrap();
    /// drop(writer);
    /// let got = Rc::new(RefCell::new(Vec::new()));
    /// let g = got.clone();
    /// let event_loop = EventLoop::new()?;
    /// event_loop.run_until_complete(async move {
    ///     let lp = asyncio::get_running_loop()?;
    ///     let (transport, _) = lp.connect_read_pipe(move || Collect(g), reader).await?;
    ///     while !transport.is_closing() {
    ///         asyncio::sleep(0.001).await?;
    ///     }
    ///     Ok::<(), asyncio::Error>(())
    /// })??;
    /// assert_eq!(&got.borrow()[..], b"through a pipe");
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub async fn connect_read_pipe<P, F>(
        &self,
        protocol_factory: F,
        pipe: impl Into<OwnedFd>,
    ) -> Result<(Transport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: Protocol + 'static,
    {
        self.connect_pipe(protocol_factory, pipe.into(), Mode::ReadPipe)
            .await
    }

    /// Writes to the pipe `pipe` (asyncio's `loop.connect_write_pipe`): `write`, `writelines`,
    /// `write_eof` (closes once the buffer is sent), `can_write_eof`, `abort`,
    /// `get_write_buffer_size`, water marks with the protocol's `pause_writing` /
    /// `resume_writing`. The reader closing its end ends the transport: `connection_lost(None)`,
    /// or a broken-pipe error if data was still buffered or a write fails with `EPIPE`. Returns
    /// once `connection_made` has run.
    ///
    /// # Errors
    /// As [`connect_read_pipe`](EventLoop::connect_read_pipe).
    ///
    /// # Cancel safety
    /// As [`connect_read_pipe`](EventLoop::connect_read_pipe).
    pub async fn connect_write_pipe<P, F>(
        &self,
        protocol_factory: F,
        pipe: impl Into<OwnedFd>,
    ) -> Result<(Transport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: Protocol + 'static,
    {
        self.connect_pipe(protocol_factory, pipe.into(), Mode::WritePipe)
            .await
    }

    async fn connect_pipe<P, F>(
        &self,
        protocol_factory: F,
        pipe: OwnedFd,
        mode: Mode,
    ) -> Result<(Transport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: Protocol + 'static,
    {
        self.check_closed()?;
        let pipe = prepare(pipe)?;
        let protocol = Rc::new(RefCell::new(protocol_factory()));
        let waiter = self.create_future::<()>();
        let transport = Transport::start_pipe(
            self,
            pipe,
            mode,
            ProtocolRefs::plain(&protocol),
            Some(waiter.clone()),
        )?;
        let guard = AbortOnDrop(Some(transport.clone()));
        waiter.await?;
        std::mem::forget(guard);
        Ok((transport, protocol))
    }
}

/// Aborts the transport if the connecting future is dropped before `connection_made` ran.
struct AbortOnDrop(Option<Transport>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}
