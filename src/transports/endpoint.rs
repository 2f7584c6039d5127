//! What a stream transport reads and writes: a connected socket, or one end of a pipe (a FIFO, a
//! character device, or a socket used as a pipe, as asyncio's pipe transports allow).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use socket2::Socket;

use super::SEND_FLAGS;

/// The kind of stream transport: a socket (asyncio's `_SelectorSocketTransport`) or one
/// direction of a pipe (`_UnixReadPipeTransport`, `_UnixWritePipeTransport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A connected stream socket: reads and writes, `write_eof` shuts the write side down.
    Socket,
    /// The read end of a pipe: reads only; EOF closes the transport.
    ReadPipe,
    /// The write end of a pipe: writes only; `write_eof` closes it once the buffer is sent, and
    /// the peer closing its end ends the transport (EPIPE).
    WritePipe,
}

impl Mode {
    /// Whether the transport reads data for its protocol.
    pub(crate) fn reads(self) -> bool {
        self != Mode::WritePipe
    }

    /// The name used in error messages ("Fatal read error on pipe transport").
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Mode::Socket => "socket",
            Mode::ReadPipe | Mode::WritePipe => "pipe",
        }
    }
}

/// The open descriptor of a stream transport.
pub(crate) enum Endpoint {
    Socket(Socket),
    Pipe(File),
}

impl Endpoint {
    /// Reads what is there (never blocks: the descriptor is non-blocking).
    pub(crate) fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Endpoint::Socket(s) => (&*s).read(buf),
            Endpoint::Pipe(f) => (&*f).read(buf),
        }
    }

    /// Writes what the kernel takes now. Sockets send with `MSG_NOSIGNAL`; a pipe whose reader
    /// is gone gives `EPIPE` (Rust programs ignore `SIGPIPE` from the start).
    pub(crate) fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Endpoint::Socket(s) => s.send_with_flags(data, SEND_FLAGS),
            Endpoint::Pipe(f) => (&*f).write(data),
        }
    }

    /// Shuts the socket's write side down; a pipe has no half-close (its transport closes).
    pub(crate) fn shutdown_write(&self) {
        if let Endpoint::Socket(s) = self {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
    }
}

impl AsRawFd for Endpoint {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Endpoint::Socket(s) => s.as_raw_fd(),
            Endpoint::Pipe(f) => f.as_raw_fd(),
        }
    }
}
