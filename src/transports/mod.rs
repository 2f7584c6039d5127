//! Transports: the loop's side of a connection (asyncio's `transports` module).
//!
//! - [`Transport`]: one stream-socket transport for TCP and Unix sockets (asyncio's
//!   `_SelectorSocketTransport`), with write buffering and flow control.
//! - [`DatagramTransport`]: a UDP or Unix-datagram endpoint with `sendto`.
//!
//! Both are cheap-to-clone handles (`Rc` inside, `!Send`) that live on their loop's thread.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;

mod datagram;
mod stream;

pub use datagram::DatagramTransport;
pub(crate) use stream::ProtocolRefs;
pub use stream::Transport;

/// The default high-water mark of a transport's write buffer (64 KiB); the default low-water
/// mark is a quarter of the high one.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// The most a stream transport reads per readiness event (256 KiB, as asyncio).
pub const MAX_READ_SIZE: usize = 256 * 1024;

/// A socket address: an internet address or a Unix socket path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix-domain socket: its path, or `None` for an unnamed (or abstract) socket.
    Unix(Option<PathBuf>),
}

impl Address {
    /// The internet address, if this is one.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            Address::Inet(a) => Some(*a),
            Address::Unix(_) => None,
        }
    }

    pub(crate) fn from_sockaddr(addr: &socket2::SockAddr) -> Option<Address> {
        if let Some(a) = addr.as_socket() {
            Some(Address::Inet(a))
        } else if addr.is_unix() {
            Some(Address::Unix(addr.as_pathname().map(|p| p.to_path_buf())))
        } else {
            None
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Address::Inet(a)
    }
}

/// A value from `get_extra_info` (asyncio's extra-info dictionary, typed).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtraInfo {
    /// `"peername"` or `"sockname"`.
    Address(Address),
    /// `"socket"`: the socket's file descriptor (owned by the transport; do not close it).
    Fd(RawFd),
}

/// Whether an I/O error means "try again later".
pub(crate) fn is_retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Whether an error is the ordinary end of a connection (reset, broken pipe, aborted), which
/// asyncio does not report to the exception handler.
pub(crate) fn is_connection_error(e: &crate::Error) -> bool {
    matches!(
        e.io_error_kind(),
        Some(
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::TimedOut
        )
    )
}

/// `send` flags that stop a write to a closed peer from raising `SIGPIPE`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const SEND_FLAGS: libc::c_int = 0;
