//! Transports: the loop's side of a connection (asyncio's `transports` module).
//!
//! - [`Transport`]: one stream-socket transport for TCP and Unix sockets (asyncio's
//!   `_SelectorSocketTransport`), with write buffering and flow control.
//!   The same type serves pipes ([`connect_read_pipe`](crate::EventLoop::connect_read_pipe),
//!   [`connect_write_pipe`](crate::EventLoop::connect_write_pipe)).
//! - [`DatagramTransport`]: a UDP or Unix-datagram endpoint with `sendto`.
//!
//! Both are cheap-to-clone handles (`Rc` inside, `!Send`) that live on their loop's thread.

use std::fmt;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use socket2::SockAddr;

use crate::error::{Error, ErrorKind, Result};

/// The socket accessors both transports have: `get_extra_info`, `peername`, `sockname` and
/// `fd`, over the `inner` fields `peername`, `sockname` (`Option<Address>`) and `sock`
/// (`RefCell<Option<Socket>>`, `None` once closed).
macro_rules! socket_accessors {
    () => {
        socket_accessors!(@impl |_: &Self, _: &str| None);
    };
    (tls) => {
        socket_accessors!(@impl |me: &Self, name: &str| {
            me.tls.as_ref().and_then(|t| t.extra_info(name))
        });
    };
    (@impl $first:expr) => {
        /// asyncio's `get_extra_info`: `"peername"` and `"sockname"` (an [`Address`]) and
        /// `"socket"` (the fd; `"pipe"` instead for a pipe transport). `None` for any other
        /// name, for `"peername"` of a socket that is not connected or of a pipe, and for the
        /// fd once it is closed.
        ///
        /// A TLS transport also has `"peercert"` (the peer's certificate, DER, as
        /// [`ExtraInfo::Bytes`]), `"cipher"` (the cipher suite's name), `"tls_version"`
        /// (`"TLSv1.2"` or `"TLSv1.3"`), `"alpn_protocol"` (the negotiated ALPN protocol) and
        /// `"server_hostname"` (as [`ExtraInfo::Text`]); `"compression"` is always `None` (TLS
        /// compression is not supported).
        pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
            let first: fn(&Self, &str) -> Option<ExtraInfo> = $first;
            if let Some(info) = first(self, name) {
                return Some(info);
            }
            match name {
                "peername" => self.peername().map(ExtraInfo::Address),
                "sockname" => self.sockname().map(ExtraInfo::Address),
                "socket" => self
                    .fd()
                    .filter(|_| !self.inner.is_pipe())
                    .map(ExtraInfo::Fd),
                "pipe" => self
                    .fd()
                    .filter(|_| self.inner.is_pipe())
                    .map(ExtraInfo::Fd),
                _ => None,
            }
        }

        /// The address of the connected peer (`None` for a datagram socket that is not
        /// connected).
        pub fn peername(&self) -> Option<Address> {
            self.inner.peername.clone()
        }

        /// The local address (`Address::Unix(None)` for an unnamed Unix socket).
        pub fn sockname(&self) -> Option<Address> {
            self.inner.sockname.clone()
        }

        /// The socket's file descriptor while it is open.
        pub fn fd(&self) -> Option<RawFd> {
            self.inner.sock.borrow().as_ref().map(|s| s.as_raw_fd())
        }
    };
}

mod datagram;
pub(crate) mod endpoint;
pub(crate) mod pipe;
pub(crate) mod stream;

pub use datagram::{DatagramTransport, SendtoAddr};
pub use stream::Transport;
pub(crate) use stream::{DirectWrite, ProtocolRefs, StreamKind};

/// The default high-water mark of a transport's write buffer (64 KiB); the default low-water
/// mark is a quarter of the high one.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// The most a stream transport reads per readiness event (256 KiB, as asyncio).
pub const MAX_READ_SIZE: usize = 256 * 1024;

/// A socket address: an internet address or a Unix socket path.
///
/// Transports report their peers and local names as `Address`es, datagram protocols receive
/// their senders as one, and [`DatagramTransport::sendto`] takes one. A [`SocketAddr`], a
/// `&Path` or a [`PathBuf`] converts into it with `From`. `Display` shows the address or path
/// (`"<unnamed>"` for an unnamed Unix socket).
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

    /// The Unix socket path, if this is a named Unix socket.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Address::Unix(Some(p)) => Some(p),
            _ => None,
        }
    }

    /// The address as the kernel takes it. An unnamed Unix socket cannot be addressed: a
    /// socket that did not bind to a path cannot be sent to.
    pub(crate) fn to_sockaddr(&self) -> Result<SockAddr> {
        match self {
            Address::Inet(a) => Ok(SockAddr::from(*a)),
            Address::Unix(Some(path)) => Ok(SockAddr::unix(path)?),
            Address::Unix(None) => Err(Error::new(
                ErrorKind::InvalidArgument,
                "cannot send to an unnamed Unix socket: the peer did not bind to a path",
            )),
        }
    }

    /// The peer and local addresses of `sock` (asyncio's `peername` and `sockname`), `None`
    /// where the socket has none.
    pub(crate) fn of_socket(sock: &socket2::Socket) -> (Option<Address>, Option<Address>) {
        let name = |a: std::io::Result<SockAddr>| a.ok().and_then(|a| Address::from_sockaddr(&a));
        (name(sock.peer_addr()), name(sock.local_addr()))
    }

    pub(crate) fn from_sockaddr(addr: &SockAddr) -> Option<Address> {
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

impl From<&Path> for Address {
    fn from(path: &Path) -> Self {
        Address::Unix(Some(path.to_path_buf()))
    }
}

impl From<PathBuf> for Address {
    fn from(path: PathBuf) -> Self {
        Address::Unix(Some(path))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Inet(a) => a.fmt(f),
            Address::Unix(Some(path)) => path.display().fmt(f),
            Address::Unix(None) => f.write_str("<unnamed>"),
        }
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
    /// Binary data: a TLS transport's `"peercert"` (DER).
    Bytes(Vec<u8>),
    /// Text: a TLS transport's `"cipher"`, `"tls_version"`, `"alpn_protocol"`,
    /// `"server_hostname"`.
    Text(String),
}

/// Views a byte buffer as the uninitialised buffer that `socket2`'s receive calls take.
pub(crate) fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the socket calls only write
    // initialised bytes into the slice, so it stays a valid `[u8]`.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// Runs a clean-up if a scheduled callback is dropped without running (its loop was closed
/// first). Transports schedule `connection_lost` with one that finalizes them, so the protocol
/// reference still goes and a protocol that keeps its transport does not leak with it.
pub(crate) struct UnlessRun<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> UnlessRun<F> {
    pub(crate) fn new(cleanup: F) -> Self {
        UnlessRun(Some(cleanup))
    }

    /// The callback ran: no clean-up.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for UnlessRun<F> {
    fn drop(&mut self) {
        if let Some(cleanup) = self.0.take() {
            cleanup();
        }
    }
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
