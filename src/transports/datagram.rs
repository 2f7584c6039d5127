//! The datagram transport for UDP and Unix datagram sockets (asyncio's
//! `_SelectorDatagramTransport`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use socket2::{SockAddr, Socket};

use super::{as_uninit, is_retry, Address, ExtraInfo, UnlessRun, DEFAULT_HIGH_WATER, SEND_FLAGS};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{log_warning, ExceptionContext};
use crate::protocols::DatagramProtocol;
use crate::runtime::core::EventLoop;
use crate::runtime::fds::FdOwner;
use crate::task::LoopFuture;

/// The largest UDP datagram.
const MAX_DATAGRAM: usize = 64 * 1024;

struct DgramInner {
    lp: EventLoop,
    fd: RawFd,
    sock: RefCell<Option<Socket>>,
    protocol: RefCell<Option<Rc<RefCell<dyn DatagramProtocol>>>>,
    /// The one address this endpoint sends to (asyncio's `_address`): the remote address it was
    /// created with, or the peer of a connected socket.
    address: Option<Address>,
    /// The connected peer; when there is one, datagrams go out with `send`, not `sendto`.
    peername: Option<Address>,
    sockname: Option<Address>,
    /// Queued datagrams and where they go (`None`: the connected peer).
    buffer: RefCell<VecDeque<(Vec<u8>, Option<SockAddr>)>>,
    buffer_size: Cell<usize>,
    closing: Cell<bool>,
    conn_lost: Cell<u32>,
    finalized: Cell<bool>,
    writer_added: Cell<bool>,
    protocol_paused: Cell<bool>,
    high_water: Cell<usize>,
    low_water: Cell<usize>,
}

impl DgramInner {
    /// Never a pipe (for the shared `get_extra_info`).
    fn is_pipe(&self) -> bool {
        false
    }
}

impl FdOwner for DgramInner {
    fn is_closing(&self) -> bool {
        self.closing.get()
    }

    fn describe(&self) -> String {
        format!(
            "<DatagramTransport fd={} sockname={:?}>",
            self.fd, self.sockname
        )
    }
}

/// Where [`DatagramTransport::sendto`] sends a datagram: `None` for the endpoint's own remote
/// address (asyncio's `addr=None`), or an address.
///
/// Implemented for `Option<Address>` and for everything that converts into an [`Address`]: an
/// `Address`, a [`SocketAddr`](std::net::SocketAddr), and a Unix socket path (`&Path`,
/// `PathBuf`). So a UDP caller writes `t.sendto(data, addr)` with the `SocketAddr` it has, a
/// protocol answers a sender with the `Address` it received, and a connected endpoint sends
/// with `t.sendto(data, None)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a datagram destination",
    note = "pass `None`, an `Address`, a `SocketAddr`, a Unix socket path, or `Some(Address)`"
)]
pub trait SendtoAddr {
    /// The destination, `None` meaning the endpoint's remote address.
    fn into_sendto_addr(self) -> Option<Address>;
}

impl SendtoAddr for Option<Address> {
    fn into_sendto_addr(self) -> Option<Address> {
        self
    }
}

impl<T: Into<Address>> SendtoAddr for T {
    fn into_sendto_addr(self) -> Option<Address> {
        Some(self.into())
    }
}

/// A datagram transport (UDP or Unix datagram socket), from
/// [`create_datagram_endpoint`](crate::EventLoop::create_datagram_endpoint).
///
/// Cheap to clone, `!Send`. [`sendto`](DatagramTransport::sendto) sends at once or queues
/// the datagram until the socket is writable; errors of individual datagrams go to the
/// protocol's `error_received` and do not end the endpoint.
#[derive(Clone)]
pub struct DatagramTransport {
    inner: Rc<DgramInner>,
}

impl DatagramTransport {
    /// Starts a transport on the nonblocking datagram socket `sock`. `address` is the remote
    /// address the endpoint was created with (connected to, or with `allow_broadcast` only
    /// the default destination); without one, a connected socket's peer takes its place.
    pub(crate) fn start(
        lp: &EventLoop,
        sock: Socket,
        protocol: Rc<RefCell<dyn DatagramProtocol>>,
        address: Option<Address>,
        waiter: LoopFuture<()>,
    ) -> Result<DatagramTransport> {
        lp.check_closed()?;
        let (peername, sockname) = Address::of_socket(&sock);
        let inner = Rc::new(DgramInner {
            lp: lp.clone(),
            fd: sock.as_raw_fd(),
            sockname,
            sock: RefCell::new(Some(sock)),
            protocol: RefCell::new(Some(protocol.clone())),
            address: address.or_else(|| peername.clone()),
            peername,
            buffer: RefCell::new(VecDeque::new()),
            buffer_size: Cell::new(0),
            closing: Cell::new(false),
            conn_lost: Cell::new(0),
            finalized: Cell::new(false),
            writer_added: Cell::new(false),
            protocol_paused: Cell::new(false),
            high_water: Cell::new(DEFAULT_HIGH_WATER),
            low_water: Cell::new(DEFAULT_HIGH_WATER / 4),
        });
        let owner: Rc<dyn FdOwner> = inner.clone();
        lp.register_transport(inner.fd, Rc::downgrade(&owner));
        let t = DatagramTransport { inner };
        let t2 = t.clone();
        lp.call_soon(move || {
            let made = catch_unwind(AssertUnwindSafe(|| {
                protocol.borrow_mut().connection_made(t2.clone())
            }));
            if let Err(payload) = made {
                let err = Error::from_panic(&*payload);
                let _ = waiter.set_exception(err.clone());
                t2.inner
                    .fatal(err, "Fatal error: protocol.connection_made() call failed.");
                return;
            }
            let me = t2.inner.clone();
            if !me.closing.get() {
                let r = me.clone();
                if let Err(e) = me.lp.watch_reader(me.fd, move || r.read_ready()) {
                    let _ = waiter.set_exception(e.clone());
                    me.fatal(e, "Fatal error: could not watch the socket for reading");
                    return;
                }
            }
            let _ = waiter.set_result(());
        })?;
        Ok(t)
    }

    /// Sends `data` as one datagram (asyncio's `sendto(data, addr=None)`): to `addr`, or with
    /// `None` to the endpoint's remote address. `addr` is anything [`SendtoAddr`] accepts:
    /// `None`, an [`Address`] (such as the sender handed to
    /// [`datagram_received`](crate::DatagramProtocol::datagram_received)), a
    /// [`SocketAddr`](std::net::SocketAddr), or a Unix socket path.
    ///
    /// The datagram is queued if the socket is not writable now. A send error other than "try
    /// again" (for example `ConnectionRefused` from a Unix peer that went away) goes to the
    /// protocol's `error_received`; after the endpoint is closed, datagrams are dropped (and a
    /// warning is logged once).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] if the endpoint has a remote address and `addr` is another
    /// address ("Invalid address: must be None or ..."), if it has none and `addr` is `None`, or
    /// if `addr` is an unnamed Unix socket (`Address::Unix(None)`: a peer that did not bind to
    /// a path cannot be answered); [`ErrorKind::Io`] for a path too long for a socket address,
    /// or if the socket cannot be watched for writing.
    pub fn sendto(&self, data: &[u8], addr: impl SendtoAddr) -> Result<()> {
        let inner = &self.inner;
        let addr = addr.into_sendto_addr();
        let dest = match (&inner.address, addr) {
            (Some(r), Some(a)) if *r != a => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("Invalid address: must be None or {r}"),
                ))
            }
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "Invalid address: must not be None on an unconnected endpoint",
                ))
            }
            (_, _) if inner.peername.is_some() => None,
            (Some(r), _) => Some(r.to_sockaddr()?),
            (None, Some(a)) => Some(a.to_sockaddr()?),
        };
        let lost = inner.conn_lost.get();
        if lost > 0 {
            if lost == 5 {
                log_warning("socket.sendto() raised exception.");
            }
            inner.conn_lost.set(lost.saturating_add(1));
            return Ok(());
        }
        if inner.buffer.borrow().is_empty() {
            match inner.send_one(data, dest.as_ref()) {
                Ok(_) => return Ok(()),
                Err(e) if is_retry(&e) => {
                    let r = inner.clone();
                    if !inner.writer_added.replace(true) {
                        inner.lp.watch_writer(inner.fd, move || r.write_ready())?;
                    }
                }
                Err(e) => {
                    inner.error_received(e.into());
                    return Ok(());
                }
            }
        }
        inner.buffer.borrow_mut().push_back((data.to_vec(), dest));
        inner.buffer_size.set(inner.buffer_size.get() + data.len());
        inner.maybe_pause();
        Ok(())
    }

    /// Closes the endpoint once the queued datagrams are sent; `connection_lost(None)`
    /// follows through `call_soon`. Idempotent. The transport does not remove a Unix socket
    /// file it was bound to.
    pub fn close(&self) {
        let inner = &self.inner;
        if inner.closing.replace(true) {
            return;
        }
        inner.lp.unwatch_reader(inner.fd);
        if inner.buffer.borrow().is_empty() {
            inner.conn_lost.set(inner.conn_lost.get() + 1);
            inner.schedule_lost(None);
        }
    }

    /// Closes at once, dropping queued datagrams. Idempotent.
    pub fn abort(&self) {
        self.inner.force_close(None);
    }

    /// Whether the endpoint is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.inner.closing.get()
    }

    /// How many bytes of queued datagrams wait to be sent.
    pub fn get_write_buffer_size(&self) -> usize {
        self.inner.buffer_size.get()
    }

    socket_accessors!();
}

impl fmt::Debug for DatagramTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramTransport")
            .field("fd", &self.inner.fd)
            .field("sockname", &self.inner.sockname)
            .field("closing", &self.inner.closing.get())
            .finish()
    }
}

impl DgramInner {
    fn send_one(&self, data: &[u8], dest: Option<&SockAddr>) -> std::io::Result<usize> {
        let sock = self.sock.borrow();
        let Some(s) = sock.as_ref() else {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        };
        match dest {
            Some(a) => s.send_to_with_flags(data, a, SEND_FLAGS),
            None => s.send_with_flags(data, SEND_FLAGS),
        }
    }

    fn protocol(&self) -> Option<Rc<RefCell<dyn DatagramProtocol>>> {
        self.protocol.borrow().clone()
    }

    fn with_protocol(
        self: &Rc<Self>,
        what: &'static str,
        f: impl FnOnce(&mut dyn DatagramProtocol) + 'static,
    ) {
        let Some(p) = self.protocol() else { return };
        let res = match p.try_borrow_mut() {
            Ok(mut p) => catch_unwind(AssertUnwindSafe(|| f(&mut *p))),
            Err(_) => {
                let me = self.clone();
                let _ = self.lp.call_soon(move || me.with_protocol(what, f));
                return;
            }
        };
        if let Err(payload) = res {
            self.lp.call_exception_handler(
                &ExceptionContext::new(format!("protocol.{what}() failed"))
                    .with_exception(Error::from_panic(&*payload)),
            );
        }
    }

    fn error_received(self: &Rc<Self>, err: Error) {
        self.with_protocol("error_received", move |p| p.error_received(err));
    }

    fn read_ready(self: &Rc<Self>) {
        if self.conn_lost.get() > 0 {
            return;
        }
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let res = match self.sock.borrow().as_ref() {
            Some(s) => s.recv_from(as_uninit(&mut buf)),
            None => return,
        };
        match res {
            Ok((n, from)) => {
                buf.truncate(n);
                // A sender without an address is an unnamed Unix socket.
                let addr = Address::from_sockaddr(&from).unwrap_or(Address::Unix(None));
                self.with_protocol("datagram_received", move |p| {
                    p.datagram_received(&buf, addr)
                });
            }
            Err(e) if is_retry(&e) => {}
            Err(e) => self.error_received(e.into()),
        }
    }

    fn write_ready(self: &Rc<Self>) {
        loop {
            let Some((data, addr)) = self.buffer.borrow_mut().pop_front() else {
                break;
            };
            self.buffer_size.set(self.buffer_size.get() - data.len());
            match self.send_one(&data, addr.as_ref()) {
                Ok(_) => {}
                Err(e) if is_retry(&e) => {
                    self.buffer_size.set(self.buffer_size.get() + data.len());
                    self.buffer.borrow_mut().push_front((data, addr));
                    break;
                }
                Err(e) => {
                    self.error_received(e.into());
                    return;
                }
            }
        }
        self.maybe_resume();
        if self.buffer.borrow().is_empty() {
            if self.writer_added.replace(false) {
                self.lp.unwatch_writer(self.fd);
            }
            if self.closing.get() && self.conn_lost.get() == 0 {
                self.conn_lost.set(1);
                self.schedule_lost(None);
            }
        }
    }

    fn maybe_pause(self: &Rc<Self>) {
        if self.buffer_size.get() > self.high_water.get() && !self.protocol_paused.replace(true) {
            self.with_protocol("pause_writing", |p| p.pause_writing());
        }
    }

    fn maybe_resume(self: &Rc<Self>) {
        if self.protocol_paused.get() && self.buffer_size.get() <= self.low_water.get() {
            self.protocol_paused.set(false);
            self.with_protocol("resume_writing", |p| p.resume_writing());
        }
    }

    fn fatal(self: &Rc<Self>, err: Error, message: &str) {
        self.lp.call_exception_handler(
            &ExceptionContext::new(message)
                .with_exception(err.clone())
                .with("transport", format!("fd {}", self.fd)),
        );
        self.force_close(Some(err));
    }

    fn force_close(self: &Rc<Self>, exc: Option<Error>) {
        if self.conn_lost.get() > 0 {
            return;
        }
        self.buffer.borrow_mut().clear();
        self.buffer_size.set(0);
        if self.writer_added.replace(false) {
            self.lp.unwatch_writer(self.fd);
        }
        if !self.closing.replace(true) {
            self.lp.unwatch_reader(self.fd);
        }
        self.conn_lost.set(1);
        self.schedule_lost(exc);
    }

    fn schedule_lost(self: &Rc<Self>, exc: Option<Error>) {
        let me = self.clone();
        let fallback = self.clone();
        // A closed loop drops the callback unrun (or refuses it): finalize all the same.
        let guard = UnlessRun::new(move || fallback.finalize());
        let _ = self.lp.call_soon(move || {
            guard.disarm();
            me.with_protocol("connection_lost", move |p| p.connection_lost(exc));
            // After connection_lost ran (it may have been deferred one iteration).
            let me2 = me.clone();
            let guard = UnlessRun::new(move || me2.finalize());
            // Dropping the guard finalizes: when the callback runs, or if the loop drops it unrun.
            let _ = me.lp.call_soon(move || drop(guard));
        });
    }

    fn finalize(&self) {
        if self.finalized.replace(true) {
            return;
        }
        self.closing.set(true);
        self.lp.unwatch_reader(self.fd);
        if self.writer_added.replace(false) {
            self.lp.unwatch_writer(self.fd);
        }
        self.lp.forget_transport(self.fd);
        let sock = self.sock.borrow_mut().take();
        drop(sock);
        let p = self.protocol.borrow_mut().take();
        drop(p);
    }
}
