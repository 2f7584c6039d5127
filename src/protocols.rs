//! asyncio's protocol interfaces: [`BaseProtocol`], [`Protocol`], [`BufferedProtocol`],
//! [`DatagramProtocol`] and [`SubprocessProtocol`].
//!
//! A protocol is the callback side of a connection: the loop's transports call its methods when
//! the connection is made, data arrives, the peer closes, the write buffer crosses its water
//! marks, or the connection is lost. Protocol objects live on the loop thread and need not be
//! `Send`; transports hold them as `Rc<RefCell<P>>`.
//!
//! Every method has asyncio's default (do nothing; `eof_received` returns `false`), so a protocol
//! implements only what it needs. One departure from Python: `connection_made` is declared on
//! each sub-trait rather than on [`BaseProtocol`], because it receives the concrete transport
//! type ([`Transport`] for streams, [`DatagramTransport`] for datagrams).
//!
//! A protocol method may call back into its transport (write, close, pause reading, ...).
//! When such a call has to notify the protocol while it is still busy (for example a `write`
//! that crosses the high-water mark from inside `data_received`), the transport delivers that
//! notification with `call_soon` instead of re-entering the protocol.
//!
//! ```
//! use asyncio::{BaseProtocol, Protocol, Transport};
//!
//! struct Echo(Option<Transport>);
//! impl BaseProtocol for Echo {}
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, transport: Transport) {
//!         self.0 = Some(transport);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         if let Some(t) = &self.0 {
//!             let _ = t.write(data);
//!         }
//!     }
//! }
//! ```

use crate::error::Error;
use crate::subprocess::SubprocessTransport;
use crate::transports::{Address, DatagramTransport, Transport};

/// The callbacks every protocol has (asyncio's `BaseProtocol`).
pub trait BaseProtocol {
    /// The connection is lost or closed: `None` after a regular close or EOF, `Some(error)`
    /// after an I/O error (for example a reset by the peer). Called once, last.
    fn connection_lost(&mut self, exc: Option<Error>) {
        let _ = exc;
    }

    /// The transport's write buffer went over its high-water mark: stop writing until
    /// [`resume_writing`](BaseProtocol::resume_writing).
    fn pause_writing(&mut self) {}

    /// The transport's write buffer drained to its low-water mark or below.
    fn resume_writing(&mut self) {}
}

/// A stream protocol that receives data as byte slices (asyncio's `Protocol`).
pub trait Protocol: BaseProtocol {
    /// The connection is made; keep `transport` to write to it. Called once, first.
    fn connection_made(&mut self, transport: Transport) {
        let _ = transport;
    }

    /// Bytes arrived. The slice is only valid during the call.
    fn data_received(&mut self, data: &[u8]) {
        let _ = data;
    }

    /// The peer shut down its write side. Return `true` to keep the transport half-open (you
    /// may still write, and must close it yourself); `false` (the default) closes it.
    fn eof_received(&mut self) -> bool {
        false
    }
}

/// A stream protocol that supplies its own receive buffers (asyncio's `BufferedProtocol`).
pub trait BufferedProtocol: BaseProtocol {
    /// The connection is made; keep `transport` to write to it.
    fn connection_made(&mut self, transport: Transport) {
        let _ = transport;
    }

    /// Returns the buffer the next read goes into. `size_hint` is the size the transport would
    /// like (it may be larger or smaller than the buffer returned); an empty buffer is a fatal
    /// error for the connection.
    fn get_buffer(&mut self, size_hint: usize) -> &mut [u8];

    /// `nbytes` bytes were written at the start of the buffer from the last
    /// [`get_buffer`](BufferedProtocol::get_buffer).
    fn buffer_updated(&mut self, nbytes: usize);

    /// As [`Protocol::eof_received`].
    fn eof_received(&mut self) -> bool {
        false
    }
}

/// A datagram (UDP or Unix datagram) protocol (asyncio's `DatagramProtocol`).
pub trait DatagramProtocol: BaseProtocol {
    /// The endpoint is ready; keep `transport` to send with it.
    fn connection_made(&mut self, transport: DatagramTransport) {
        let _ = transport;
    }

    /// A datagram arrived from `addr`: an [`Address::Inet`] for UDP, an [`Address::Unix`] for a
    /// Unix datagram socket (`Address::Unix(None)` when the sender did not bind to a path: it
    /// cannot be answered). Answer with `transport.sendto(reply, addr)`
    /// ([`DatagramTransport::sendto`]). The slice is only valid during the call.
    fn datagram_received(&mut self, data: &[u8], addr: Address) {
        let (_, _) = (data, addr);
    }

    /// A send or receive failed with an error that does not end the endpoint (for example
    /// `ECONNREFUSED` reported for an earlier datagram, or a Unix peer whose socket is gone).
    fn error_received(&mut self, exc: Error) {
        let _ = exc;
    }
}

/// The callbacks of a child process started with
/// [`EventLoop::subprocess_exec`](crate::EventLoop::subprocess_exec) or
/// [`subprocess_shell`](crate::EventLoop::subprocess_shell) (asyncio's `SubprocessProtocol`).
///
/// Order: `connection_made` first; then the data of each pipe (`pipe_data_received`), each
/// pipe's end (`pipe_connection_lost`), `process_exited` once the exit is known and the pipes
/// the child closed by exiting are drained, and `connection_lost` last, once the child exited
/// and every pipe is closed. `pause_writing` / `resume_writing` come from the stdin pipe.
///
/// ```
/// use asyncio::{BaseProtocol, SubprocessProtocol, SubprocessTransport};
///
/// #[derive(Default)]
/// struct Collect {
///     out: Vec<u8>,
///     exited: bool,
/// }
/// impl BaseProtocol for Collect {}
/// impl SubprocessProtocol for Collect {
///     fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
///         if fd == 1 {
///             self.out.extend_from_slice(data);
///         }
///     }
///     fn process_exited(&mut self) {
///         self.exited = true;
///     }
/// }
/// ```
pub trait SubprocessProtocol: BaseProtocol {
    /// The child is started and its pipes are connected; keep `transport` to signal the child
    /// or reach its pipes ([`SubprocessTransport::get_pipe_transport`]). Called once, first.
    fn connection_made(&mut self, transport: SubprocessTransport) {
        let _ = transport;
    }

    /// The child wrote `data` to its stdout (`fd` 1) or stderr (`fd` 2). The slice is only
    /// valid during the call.
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        let _ = (fd, data);
    }

    /// The pipe of `fd` (0, 1 or 2) closed: `None` after EOF or a regular close, `Some(error)`
    /// after an I/O error (for example a broken stdin pipe with data still buffered).
    fn pipe_connection_lost(&mut self, fd: i32, exc: Option<Error>) {
        let _ = (fd, exc);
    }

    /// The child exited; [`SubprocessTransport::get_returncode`] has its code.
    fn process_exited(&mut self) {}
}
