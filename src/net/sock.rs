//! The loop's low-level socket coroutines (asyncio's `loop.sock_*`): `sock_recv`,
//! `sock_recv_into`, `sock_sendall`, `sock_connect`, `sock_accept`, `sock_recvfrom` and
//! `sock_sendto`, on nonblocking sockets.
//!
//! As in asyncio, each call tries the operation at once; when the socket would block it
//! watches the fd with [`add_reader`](EventLoop::add_reader) or
//! [`add_writer`](EventLoop::add_writer) and a [`LoopFuture`], tries again when it is ready,
//! and removes the watcher when done or when its future is dropped.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use socket2::{SockAddr, SockRef, Socket};

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::EventLoop;
use crate::task::LoopFuture;
use crate::transports::{as_uninit, is_retry, SEND_FLAGS};

#[derive(Clone, Copy)]
enum Side {
    Read,
    Write,
}

/// Removes the watcher it added when dropped (done or cancelled).
struct Watch<'a> {
    lp: &'a EventLoop,
    fd: RawFd,
    side: Side,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        match self.side {
            Side::Read => self.lp.unwatch_reader(self.fd),
            Side::Write => self.lp.unwatch_writer(self.fd),
        };
    }
}

fn check_nonblocking(sock: &Socket) -> Result<()> {
    if !sock.nonblocking()? {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "the socket must be non-blocking",
        ));
    }
    Ok(())
}

impl EventLoop {
    /// Waits once until `fd` is ready for `side`.
    async fn sock_wait(&self, fd: RawFd, side: Side) -> Result<()> {
        let fut: LoopFuture<()> = self.create_future();
        let f2 = fut.clone();
        let cb = move || {
            if !f2.done() {
                let _ = f2.set_result(());
            }
        };
        match side {
            Side::Read => self.add_reader(fd, cb)?,
            Side::Write => self.add_writer(fd, cb)?,
        };
        let _watch = Watch { lp: self, fd, side };
        fut.await
    }

    /// Runs `op` until it does not report "would block", waiting for readiness between tries.
    async fn sock_retry<T>(
        &self,
        sock: &Socket,
        side: Side,
        mut op: impl FnMut(&Socket) -> std::io::Result<T>,
    ) -> Result<T> {
        self.check_closed()?;
        check_nonblocking(sock)?;
        loop {
            match op(sock) {
                Ok(v) => return Ok(v),
                Err(e) if is_retry(&e) => self.sock_wait(sock.as_raw_fd(), side).await?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives up to `nbytes` bytes from a connected nonblocking socket (asyncio's
    /// `loop.sock_recv`); an empty result means EOF.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a blocking socket; [`ErrorKind::Io`] when `recv`
    /// fails; [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// Cancel-safe: nothing is received unless the future completes.
    pub async fn sock_recv(&self, sock: &impl AsFd, nbytes: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; nbytes];
        let n = self.sock_recv_into(sock, &mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Receives into `buf` and returns how many bytes were written (asyncio's
    /// `loop.sock_recv_into`); 0 means EOF (or an empty `buf`).
    ///
    /// # Errors
    /// As [`sock_recv`](EventLoop::sock_recv).
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn sock_recv_into(&self, sock: &impl AsFd, buf: &mut [u8]) -> Result<usize> {
        let sock = SockRef::from(sock);
        self.sock_retry(&sock, Side::Read, |s| {
            let mut s: &Socket = s;
            s.read(buf)
        })
        .await
    }

    /// Sends all of `data` on a connected nonblocking socket (asyncio's
    /// `loop.sock_sendall`), waiting for writability as needed.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a blocking socket; [`ErrorKind::Io`] when `send`
    /// fails (for example `BrokenPipe`); [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// Not cancel-safe: part of `data` may have been sent when the future is dropped (as in
    /// asyncio, there is no way to tell how much).
    pub async fn sock_sendall(&self, sock: &impl AsFd, data: &[u8]) -> Result<()> {
        self.check_closed()?;
        let sock = SockRef::from(sock);
        check_nonblocking(&sock)?;
        let mut sent = 0;
        while sent < data.len() {
            sent += self
                .sock_retry(&sock, Side::Write, |s| {
                    s.send_with_flags(&data[sent..], SEND_FLAGS)
                })
                .await?;
        }
        Ok(())
    }

    /// Connects a nonblocking socket to `address` (asyncio's `loop.sock_connect`; the address
    /// is already resolved). A `SocketAddr` or `SockAddr::unix(path)` converts into
    /// [`SockAddr`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a blocking socket; [`ErrorKind::Io`] when the
    /// connection fails (`ConnectionRefused`, ...); [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// Not cancel-safe: dropping the future leaves the socket with a connection attempt in
    /// progress; close it.
    pub async fn sock_connect(&self, sock: &impl AsFd, address: impl Into<SockAddr>) -> Result<()> {
        self.check_closed()?;
        let sock = SockRef::from(sock);
        check_nonblocking(&sock)?;
        super::sock_connect(self, &sock, &address.into()).await
    }

    /// Accepts a connection on a listening nonblocking socket (asyncio's
    /// `loop.sock_accept`). The new socket is nonblocking.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a blocking socket; [`ErrorKind::Io`] when `accept`
    /// fails (for example `EMFILE`); [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// Cancel-safe: no connection is accepted unless the future completes.
    pub async fn sock_accept(&self, sock: &impl AsFd) -> Result<(Socket, SockAddr)> {
        let sock = SockRef::from(sock);
        let (conn, addr) = self.sock_retry(&sock, Side::Read, |s| s.accept()).await?;
        conn.set_nonblocking(true)?;
        Ok((conn, addr))
    }

    /// Receives one datagram of at most `bufsize` bytes and its sender (asyncio's
    /// `loop.sock_recvfrom`); a longer datagram is truncated.
    ///
    /// # Errors
    /// As [`sock_recv`](EventLoop::sock_recv).
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn sock_recvfrom(
        &self,
        sock: &impl AsFd,
        bufsize: usize,
    ) -> Result<(Vec<u8>, SockAddr)> {
        let mut buf = vec![0; bufsize];
        let (n, addr) = self.sock_recvfrom_into(sock, &mut buf).await?;
        buf.truncate(n);
        Ok((buf, addr))
    }

    /// Receives one datagram into `buf` (asyncio's `loop.sock_recvfrom_into`) and returns its
    /// length (truncated to `buf`) and sender.
    ///
    /// # Errors
    /// As [`sock_recv`](EventLoop::sock_recv).
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn sock_recvfrom_into(
        &self,
        sock: &impl AsFd,
        buf: &mut [u8],
    ) -> Result<(usize, SockAddr)> {
        let sock = SockRef::from(sock);
        self.sock_retry(&sock, Side::Read, |s| s.recv_from(as_uninit(buf)))
            .await
    }

    /// Sends one datagram to `address` (asyncio's `loop.sock_sendto`) and returns the number
    /// of bytes sent.
    ///
    /// # Errors
    /// As [`sock_sendall`](EventLoop::sock_sendall).
    ///
    /// # Cancel safety
    /// Cancel-safe: the datagram is sent whole or not at all.
    pub async fn sock_sendto(
        &self,
        sock: &impl AsFd,
        data: &[u8],
        address: impl Into<SockAddr>,
    ) -> Result<usize> {
        let sock = SockRef::from(sock);
        let address = address.into();
        self.sock_retry(&sock, Side::Write, |s| {
            s.send_to_with_flags(data, &address, SEND_FLAGS)
        })
        .await
    }
}
