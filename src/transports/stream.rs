//! The stream transport shared by TCP and Unix sockets (asyncio's `_SelectorSocketTransport`)
//! and by pipes (`_UnixReadPipeTransport`, `_UnixWritePipeTransport`): see [`Mode`].
//!
//! Reading: a reader is registered with the loop while reading is not paused; each readiness
//! event reads up to [`MAX_READ_SIZE`] bytes and hands them to the protocol. Writing: `write`
//! tries the socket at once, buffers what the kernel did not take, and registers a writer while
//! writes go on (removed by the first writable event that finds the buffer empty and no direct
//! writer waiting). The buffer's high- and low-water marks drive the protocol's
//! `pause_writing` / `resume_writing`. A `StreamWriter`'s `AsyncWrite` writes past the buffer
//! when it is empty ([`Transport::write_direct`]): the caller keeps its bytes until told how
//! many the fd took.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::Waker;

use socket2::Socket;

use super::endpoint::{Endpoint, Mode};
use super::{
    is_connection_error, is_retry, Address, ExtraInfo, UnlessRun, DEFAULT_HIGH_WATER, MAX_READ_SIZE,
};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{log_warning, ExceptionContext};
use crate::protocols::{BaseProtocol, BufferedProtocol, Protocol};
use crate::runtime::core::EventLoop;
use crate::runtime::fds::FdOwner;
use crate::task::LoopFuture;
use crate::tls::TlsInner;

/// The alignment of the offset the shared read buffer is read at (see `read_plain`).
const READ_ALIGN: usize = 64;

/// After this many writes to a lost connection, `write` logs a warning (once).
const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;

thread_local! {
    /// One read buffer per thread, shared by every transport of the thread's loop.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the thread's read buffer: [`MAX_READ_SIZE`] bytes at a cache-line-aligned
/// offset. A large buffer from mmap starts 16 bytes into a page, and the kernel's copy into
/// such an address runs at about 60% speed on some CPUs (4K aliasing between source and
/// destination; measured with benches/net.rs, 16 KiB messages: 68k -> ~107k msgs/s). The
/// buffer is taken out of its cell while `f` runs, so code that `f` calls (a protocol's
/// `data_received`) may read another transport: it gets a buffer of its own.
fn with_read_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = READ_BUF.with(|b| {
        b.try_borrow_mut()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    });
    if buf.len() < MAX_READ_SIZE + READ_ALIGN {
        buf.resize(MAX_READ_SIZE + READ_ALIGN, 0);
    }
    let off = buf.as_ptr().align_offset(READ_ALIGN).min(READ_ALIGN);
    let out = f(&mut buf[off..off + MAX_READ_SIZE]);
    READ_BUF.with(|b| {
        if let Ok(mut b) = b.try_borrow_mut() {
            *b = buf;
        }
    });
    out
}

/// The two kinds of stream protocol a transport can drive.
#[derive(Clone)]
pub(crate) enum StreamKind {
    Plain(Rc<RefCell<dyn Protocol>>),
    Buffered(Rc<RefCell<dyn BufferedProtocol>>),
}

/// The transport's views of its protocol: the base-protocol view for the common callbacks and
/// the stream view for reads. Both point at the same `RefCell`.
#[derive(Clone)]
pub(crate) struct ProtocolRefs {
    pub(crate) base: Rc<RefCell<dyn BaseProtocol>>,
    pub(crate) kind: StreamKind,
}

impl ProtocolRefs {
    /// The views of a [`Protocol`].
    pub(crate) fn plain<P: Protocol + 'static>(p: &Rc<RefCell<P>>) -> Self {
        ProtocolRefs {
            base: p.clone(),
            kind: StreamKind::Plain(p.clone()),
        }
    }

    /// The views of a [`BufferedProtocol`].
    pub(crate) fn buffered<P: BufferedProtocol + 'static>(p: &Rc<RefCell<P>>) -> Self {
        ProtocolRefs {
            base: p.clone(),
            kind: StreamKind::Buffered(p.clone()),
        }
    }
}

type LostHook = Box<dyn FnOnce()>;

pub(crate) struct StreamInner {
    lp: EventLoop,
    fd: RawFd,
    /// The socket or pipe; `None` once closed.
    sock: RefCell<Option<Endpoint>>,
    mode: Mode,
    protocol: RefCell<Option<ProtocolRefs>>,
    protocol_connected: Cell<bool>,
    buffer: RefCell<Vec<u8>>,
    buffer_start: Cell<usize>,
    closing: Cell<bool>,
    eof: Cell<bool>,
    conn_lost: Cell<u32>,
    finalized: Cell<bool>,
    paused: Cell<bool>,
    writer_added: Cell<bool>,
    protocol_paused: Cell<bool>,
    high_water: Cell<usize>,
    low_water: Cell<usize>,
    peername: Option<Address>,
    sockname: Option<Address>,
    on_lost: RefCell<Option<LostHook>>,
    /// The protocol only buffers what it receives for one reader, which may read past it
    /// ([`Transport::allow_read_direct`]); cleared when the protocol is replaced.
    read_through: Cell<bool>,
    /// A reader that found the fd empty (see [`Transport::read_direct`]).
    direct_reader: RefCell<Option<Waker>>,
    /// The fd was found empty (`EAGAIN`, or a read that did not fill its buffer) since its
    /// last readiness event: a direct read waits for the next event instead of asking the
    /// kernel again (a readiness cache, as tokio keeps per registration). Every readiness
    /// event clears it. A short read almost always means the fd is empty: a stream socket's
    /// or a pipe's read copies from every queued buffer until the caller's is full. It stops
    /// early only at a boundary the kernel keeps (a Unix socket's passed descriptors or
    /// credentials, TCP's urgent mark, a packet-mode pipe): the bytes left keep the
    /// level-triggered registration reporting the fd, so they cost one loop iteration, and
    /// data that comes later is reported as well.
    drained: Cell<bool>,
    /// A writer that found the fd full (see [`Transport::write_direct`]): woken by the next
    /// writable event once the write buffer is empty, or when the transport closes.
    direct_writer: RefCell<Option<Waker>>,
}

/// What [`Transport::write_direct`] did.
#[derive(Debug)]
pub(crate) enum DirectWrite {
    /// The fd took this many bytes (more than 0).
    Written(usize),
    /// The fd is full: the waker is woken once it is writable (or the transport closes).
    Blocked,
    /// The write failed; the transport is closed with this error (its protocol's
    /// `connection_lost` gets it too).
    Failed(std::io::Error),
    /// The direct path does not apply (a TLS transport, a read pipe, data already buffered,
    /// `write_eof` called, closing): use [`Transport::write`].
    Unavailable,
}

/// A stream-socket transport (TCP or Unix): asyncio's `Transport` for sockets.
///
/// Cheap to clone (all clones are the same transport) and `!Send`. The protocol's
/// `connection_made` receives one; keep it to write. The transport owns the socket and closes
/// it after `connection_lost`.
///
/// - `close()` stops reading, flushes the write buffer, then calls
///   `connection_lost(None)`; `abort()` drops the buffer and does the same at once.
/// - The peer's EOF calls `eof_received`: `true` keeps the transport half-open, `false` closes
///   it.
/// - An I/O error (such as a reset by the peer) closes the transport and calls
///   `connection_lost(Some(error))`.
/// - Writes after the connection is lost are dropped; after a few, a warning is logged once
///   ("socket.send() raised exception.", asyncio's text).
///
/// A TLS connection's application transport is a `Transport` too (see [`crate::tls`]): the
/// same methods act on the plaintext side of the TLS layer.
#[derive(Clone)]
pub struct Transport {
    inner: Rc<StreamInner>,
    /// Set on a TLS application transport: the methods then go to the TLS layer, and `inner`
    /// (the socket transport under it) answers only the socket's own questions (fd, names,
    /// loop).
    tls: Option<Rc<TlsInner>>,
}

impl Transport {
    /// Wraps a connected nonblocking socket and schedules `connection_made`, then reading, then
    /// `waiter`'s result, each with `call_soon`.
    pub(crate) fn start(
        lp: &EventLoop,
        sock: Socket,
        protocol: ProtocolRefs,
        waiter: Option<LoopFuture<()>>,
        on_lost: Option<LostHook>,
    ) -> Result<Transport> {
        let names = Address::of_socket(&sock);
        // asyncio's socket transports set `TCP_NODELAY` on internet sockets; the local address
        // tells the family without a `getsockopt(SO_DOMAIN)`.
        if matches!(names.1, Some(Address::Inet(_))) {
            let _ = sock.set_tcp_nodelay(true);
        }
        let endpoint = Endpoint::Socket(sock);
        Self::start_endpoint(lp, endpoint, Mode::Socket, names, protocol, waiter, on_lost)
    }

    /// [`start`](Transport::start) for one end of a pipe (already non-blocking).
    pub(crate) fn start_pipe(
        lp: &EventLoop,
        pipe: std::fs::File,
        mode: Mode,
        protocol: ProtocolRefs,
        waiter: Option<LoopFuture<()>>,
    ) -> Result<Transport> {
        let endpoint = Endpoint::Pipe(pipe);
        Self::start_endpoint(lp, endpoint, mode, (None, None), protocol, waiter, None)
    }

    fn start_endpoint(
        lp: &EventLoop,
        endpoint: Endpoint,
        mode: Mode,
        (peername, sockname): (Option<Address>, Option<Address>),
        protocol: ProtocolRefs,
        waiter: Option<LoopFuture<()>>,
        on_lost: Option<LostHook>,
    ) -> Result<Transport> {
        lp.check_closed()?;
        let fd = endpoint.as_raw_fd();
        let inner = Rc::new(StreamInner {
            lp: lp.clone(),
            fd,
            sock: RefCell::new(Some(endpoint)),
            mode,
            protocol: RefCell::new(Some(protocol)),
            protocol_connected: Cell::new(true),
            buffer: RefCell::new(Vec::new()),
            buffer_start: Cell::new(0),
            closing: Cell::new(false),
            eof: Cell::new(false),
            conn_lost: Cell::new(0),
            finalized: Cell::new(false),
            paused: Cell::new(false),
            writer_added: Cell::new(false),
            protocol_paused: Cell::new(false),
            high_water: Cell::new(DEFAULT_HIGH_WATER),
            low_water: Cell::new(DEFAULT_HIGH_WATER / 4),
            peername,
            sockname,
            on_lost: RefCell::new(on_lost),
            read_through: Cell::new(false),
            direct_reader: RefCell::new(None),
            drained: Cell::new(false),
            direct_writer: RefCell::new(None),
        });
        let owner: Rc<dyn FdOwner> = inner.clone();
        lp.register_transport(fd, Rc::downgrade(&owner));
        let transport = Transport {
            inner: inner.clone(),
            tls: None,
        };
        let t = transport.clone();
        lp.call_soon(move || t.inner.clone().connection_made(t, waiter))?;
        Ok(transport)
    }

    /// Writes `data`: sends what the socket takes now and buffers the rest, to be sent when the
    /// socket is writable. Never blocks. Crossing the high-water mark calls the protocol's
    /// `pause_writing`.
    ///
    /// Writing to a transport whose connection is lost (closed, aborted or failed) does nothing.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] ("Cannot call write() after write_eof()") after
    /// [`write_eof`](Transport::write_eof).
    pub fn write(&self, data: &[u8]) -> Result<()> {
        if let Some(tls) = &self.tls {
            return tls.write(data);
        }
        self.inner.write(data)
    }

    /// Writes each buffer of `list` in turn, as one [`write`](Transport::write) of their
    /// concatenation.
    ///
    /// # Errors
    /// As [`write`](Transport::write).
    pub fn writelines<I, B>(&self, list: I) -> Result<()>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut all = Vec::new();
        for b in list {
            all.extend_from_slice(b.as_ref());
        }
        self.write(&all)
    }

    /// Shuts down the write side of the socket once the buffered data is sent; reading goes
    /// on. Does nothing on a closing transport or a second time. On a write pipe, which cannot
    /// half-close, it closes the transport once the buffer is sent (asyncio's
    /// `_UnixWritePipeTransport.write_eof`); on a read pipe it does nothing.
    pub fn write_eof(&self) {
        if let Some(tls) = &self.tls {
            return tls.write_eof();
        }
        let inner = &self.inner;
        if inner.closing.get() || inner.eof.get() {
            return;
        }
        match inner.mode {
            Mode::Socket => {}
            Mode::WritePipe => return inner.close(),
            Mode::ReadPipe => return,
        }
        inner.eof.set(true);
        if inner.buffered() == 0 {
            inner.shutdown_write();
        }
    }

    /// Whether [`write_eof`](Transport::write_eof) is supported: `true` for sockets and write
    /// pipes, `false` for read pipes.
    pub fn can_write_eof(&self) -> bool {
        if self.tls.is_some() {
            return false;
        }
        self.inner.mode != Mode::ReadPipe
    }

    /// Whether the transport is one end of a pipe (from
    /// [`connect_read_pipe`](EventLoop::connect_read_pipe) or
    /// [`connect_write_pipe`](EventLoop::connect_write_pipe)) rather than a socket connection.
    pub fn is_pipe(&self) -> bool {
        self.inner.is_pipe()
    }

    /// Closes the transport: stops reading, sends the buffered data, then calls the protocol's
    /// `connection_lost(None)` (through `call_soon`) and closes the socket. Idempotent.
    pub fn close(&self) {
        if let Some(tls) = &self.tls {
            return tls.close();
        }
        self.inner.close();
    }

    /// Closes the transport at once: drops the buffered data and calls
    /// `connection_lost(None)` (through `call_soon`). Idempotent.
    pub fn abort(&self) {
        if let Some(tls) = &self.tls {
            return tls.abort();
        }
        self.inner.force_close(None);
    }

    /// Whether the transport is closing or closed.
    pub fn is_closing(&self) -> bool {
        if let Some(tls) = &self.tls {
            return tls.is_closing();
        }
        self.inner.closing.get()
    }

    /// Whether the transport is reading (not paused and not closing; never for a write pipe).
    pub fn is_reading(&self) -> bool {
        if let Some(tls) = &self.tls {
            return tls.is_reading();
        }
        self.inner.mode.reads() && !self.inner.paused.get() && !self.inner.closing.get()
    }

    /// Stops reading: the protocol receives no data until
    /// [`resume_reading`](Transport::resume_reading). Does nothing if already paused or
    /// closing.
    pub fn pause_reading(&self) {
        if let Some(tls) = &self.tls {
            return tls.pause_reading();
        }
        let inner = &self.inner;
        if inner.closing.get() || inner.paused.get() || !inner.mode.reads() {
            return;
        }
        inner.paused.set(true);
        inner.lp.unwatch_reader(inner.fd);
    }

    /// Resumes reading after [`pause_reading`](Transport::pause_reading).
    pub fn resume_reading(&self) {
        if let Some(tls) = &self.tls {
            return tls.resume_reading();
        }
        let inner = &self.inner;
        if inner.closing.get() || !inner.paused.get() || !inner.mode.reads() {
            return;
        }
        inner.paused.set(false);
        inner.add_reader();
    }

    socket_accessors!(tls);

    /// Sets the write buffer's water marks. `high` defaults to `4 * low` when only `low` is
    /// given, else to 64 KiB; `low` defaults to `high / 4`. May call `pause_writing` at once.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `high < low`.
    pub fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) -> Result<()> {
        let high = match (high, low) {
            (Some(h), _) => h,
            (None, Some(l)) => l.saturating_mul(4),
            (None, None) => DEFAULT_HIGH_WATER,
        };
        let low = low.unwrap_or(high / 4);
        if high < low {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("high ({high}) must be >= low ({low}) must be >= 0"),
            ));
        }
        if let Some(tls) = &self.tls {
            return tls.set_write_buffer_limits(high, low);
        }
        self.inner.high_water.set(high);
        self.inner.low_water.set(low);
        self.inner.maybe_pause_protocol();
        Ok(())
    }

    /// The write buffer's `(low, high)` water marks.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        if let Some(tls) = &self.tls {
            return tls.get_write_buffer_limits();
        }
        (self.inner.low_water.get(), self.inner.high_water.get())
    }

    /// How many bytes wait in the write buffer.
    pub fn get_write_buffer_size(&self) -> usize {
        if let Some(tls) = &self.tls {
            return tls.get_write_buffer_size();
        }
        self.inner.buffered()
    }

    /// The loop the transport runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.inner.lp.clone()
    }

    /// Whether two handles are the same transport.
    pub fn ptr_eq(&self, other: &Transport) -> bool {
        let same_tls = match (&self.tls, &other.tls) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        same_tls && Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// The current protocol (asyncio's `get_protocol`), as its base-protocol view; `None` once
    /// the connection is lost (the transport then lets go of its protocol).
    pub fn get_protocol(&self) -> Option<Rc<RefCell<dyn BaseProtocol>>> {
        if let Some(tls) = &self.tls {
            return tls.get_protocol();
        }
        self.inner.base()
    }

    /// Switches to `protocol` (asyncio's `set_protocol`): later data, EOF, flow-control and
    /// `connection_lost` calls go to it. It gets no `connection_made` call. Ignored once the
    /// connection is lost.
    pub fn set_protocol<P: Protocol + 'static>(&self, protocol: Rc<RefCell<P>>) {
        self.set_protocol_refs(ProtocolRefs::plain(&protocol));
    }

    /// [`set_protocol`](Transport::set_protocol) for a [`BufferedProtocol`].
    pub fn set_buffered_protocol<P: BufferedProtocol + 'static>(&self, protocol: Rc<RefCell<P>>) {
        self.set_protocol_refs(ProtocolRefs::buffered(&protocol));
    }

    /// `set_protocol` with both views of the protocol.
    pub(crate) fn set_protocol_refs(&self, refs: ProtocolRefs) {
        match &self.tls {
            Some(tls) => tls.replace_protocol(refs),
            None => self.inner.replace_protocol(refs),
        }
    }

    /// Lets a stream reader read this transport's fd itself ([`read_direct`]): for a transport
    /// whose protocol only buffers what it receives for that one reader (a stream's
    /// `StreamReaderProtocol`, a [`Process`]'s stdout and stderr). Replacing the protocol
    /// ([`set_protocol`](Transport::set_protocol)) withdraws it.
    ///
    /// [`read_direct`]: Transport::read_direct
    /// [`Process`]: crate::subprocess::Process
    pub(crate) fn allow_read_direct(&self) {
        if self.tls.is_none() && self.inner.mode.reads() {
            self.inner.read_through.set(true);
        }
    }

    /// Reads the socket or read pipe straight into `buf`, past the protocol: `Some(n)` when
    /// `n > 0` bytes were read; `None` when nothing was (no data yet, EOF, an error), or when
    /// the transport is not a plain reading transport whose reader may do this (see
    /// [`allow_read_direct`](Transport::allow_read_direct); TLS, paused, closing): the
    /// transport's own read then meets the EOF or error and reports it to the protocol as
    /// usual.
    ///
    /// For a reader whose buffer is empty, so no byte can overtake one read earlier: the bytes
    /// go from the kernel to the caller's buffer in one copy, where `data_received` takes two
    /// more (into the loop's read buffer, then into the stream's).
    ///
    /// When the fd is empty (`EAGAIN`, or known empty since its last readiness event: no
    /// syscall then), `waker` is kept: the fd's next readiness wakes it instead of reading, so
    /// the reader's next call reads the new bytes itself. A reader that does not come back
    /// costs one loop iteration: the level-triggered readiness fires again and the transport
    /// reads as usual.
    pub(crate) fn read_direct(&self, buf: &mut [u8], waker: &Waker) -> Option<usize> {
        if !self.may_read_direct(waker) {
            return None;
        }
        self.inner.direct_recv(buf, waker)
    }

    /// [`read_direct`](Transport::read_direct) for a small read: reads as much as the fd
    /// holds (up to [`MAX_READ_SIZE`]) into the loop's read buffer and hands it to `take`,
    /// which keeps what the caller asked for and buffers the rest; returns what `take`
    /// returns. One read then usually empties the fd, and a read that does not fill the loop's
    /// buffer marks it empty (see `drained`), so the caller's next read waits for readiness
    /// without the `EAGAIN` read that a read of exactly the caller's size would need first.
    pub(crate) fn read_direct_buffered(
        &self,
        waker: &Waker,
        take: impl FnOnce(&[u8]) -> usize,
    ) -> Option<usize> {
        if !self.may_read_direct(waker) {
            return None;
        }
        with_read_buf(|buf| {
            let n = self.inner.direct_recv(buf, waker)?;
            Some(take(&buf[..n]))
        })
    }

    /// Whether a direct read may ask the fd: the transport lets its reader read past the
    /// protocol (see [`allow_read_direct`](Transport::allow_read_direct)), and the fd is not
    /// known empty; if it is, `waker` is kept for its next readiness.
    fn may_read_direct(&self, waker: &Waker) -> bool {
        let inner = &self.inner;
        let allowed = self.tls.is_none()
            && inner.read_through.get()
            && !inner.paused.get()
            && !inner.closing.get()
            && inner.conn_lost.get() == 0;
        if allowed && inner.drained.get() {
            inner.keep_direct_reader(waker);
            return false;
        }
        allowed
    }

    /// Writes `data` straight to the fd, past the write buffer, for a writer that keeps its
    /// data until told how much was taken (the `AsyncWrite` of a
    /// [`StreamWriter`](crate::streams::StreamWriter)): no copy into the buffer.
    ///
    /// Applies only when the write buffer is empty, so no byte overtakes one written earlier;
    /// otherwise (or on a TLS transport, a read pipe, after `write_eof`, while closing) it is
    /// [`DirectWrite::Unavailable`] and the caller uses [`write`](Transport::write). When the
    /// fd takes nothing (`EAGAIN`), `waker` is kept and the fd watched for writability: the
    /// next writable event with an empty buffer, or the transport closing, wakes it.
    pub(crate) fn write_direct(&self, data: &[u8], waker: &Waker) -> DirectWrite {
        let inner = &self.inner;
        if self.tls.is_some()
            || inner.mode == Mode::ReadPipe
            || inner.eof.get()
            || inner.closing.get()
            || inner.conn_lost.get() > 0
            || inner.buffered() > 0
            || data.is_empty()
        {
            return DirectWrite::Unavailable;
        }
        match inner.send(data) {
            Ok(n) if n > 0 => DirectWrite::Written(n),
            Ok(_) => DirectWrite::Unavailable,
            Err(e) if is_retry(&e) => {
                {
                    let mut slot = inner.direct_writer.borrow_mut();
                    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        *slot = Some(waker.clone());
                    }
                }
                // If watching fails, the transport closes and wakes the waker: the caller then
                // finds it closing.
                inner.add_writer();
                DirectWrite::Blocked
            }
            Err(e) => {
                let kind = e.kind();
                let raw = e.raw_os_error();
                inner.fatal_error(e.into(), &inner.fatal_message("write"));
                DirectWrite::Failed(match raw {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => kind.into(),
                })
            }
        }
    }

    /// The current protocol's views (`None` once the connection is lost).
    pub(crate) fn protocol_refs(&self) -> Option<ProtocolRefs> {
        match &self.tls {
            Some(tls) => tls.protocol_refs(),
            None => self.inner.protocol.borrow().clone(),
        }
    }

    /// The application transport of the TLS layer `tls` that runs on this transport.
    pub(crate) fn with_tls(&self, tls: Rc<TlsInner>) -> Transport {
        Transport {
            inner: self.inner.clone(),
            tls: Some(tls),
        }
    }
}

impl FdOwner for StreamInner {
    fn is_closing(&self) -> bool {
        self.closing.get()
    }

    fn describe(&self) -> String {
        format!("<Transport fd={} peername={:?}>", self.fd, self.peername)
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tls) = &self.tls {
            return tls.fmt_transport(f, &self.inner.peername);
        }
        let inner = &self.inner;
        let state = if inner.finalized.get() {
            "closed"
        } else if inner.closing.get() {
            "closing"
        } else {
            "open"
        };
        f.debug_struct("Transport")
            .field("mode", &inner.mode)
            .field("fd", &inner.fd)
            .field("state", &state)
            .field("peername", &inner.peername)
            .field("write_buffer", &inner.buffered())
            .finish()
    }
}

impl StreamInner {
    fn buffered(&self) -> usize {
        self.buffer.borrow().len() - self.buffer_start.get()
    }

    fn clear_buffer(&self) {
        self.buffer.borrow_mut().clear();
        self.buffer_start.set(0);
    }

    /// Drops the first `n` unsent bytes. The sent part stays in front of `buffer_start` until
    /// the buffer empties or [`append`](StreamInner::append) needs its room: moving the unsent
    /// rest forward here would copy it once per partial send (a 64 KiB pipe takes a 256 KiB
    /// write in four).
    fn consume(&self, n: usize) {
        let mut buf = self.buffer.borrow_mut();
        let start = self.buffer_start.get() + n;
        if start >= buf.len() {
            buf.clear();
            self.buffer_start.set(0);
        } else {
            self.buffer_start.set(start);
        }
    }

    /// Buffers `data` after the unsent bytes. The sent bytes in front are dropped (the unsent
    /// ones moved to the start) only when `data` does not fit in the allocation otherwise:
    /// that move replaces the copy a reallocation would make, and keeps the allocation within
    /// about twice the most ever buffered.
    fn append(&self, data: &[u8]) {
        let mut buf = self.buffer.borrow_mut();
        let start = self.buffer_start.get();
        if start > 0 && buf.len() + data.len() > buf.capacity() {
            buf.drain(..start);
            self.buffer_start.set(0);
        }
        buf.extend_from_slice(data);
    }

    fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        match self.sock.borrow().as_ref() {
            Some(s) => s.send(data),
            None => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    fn shutdown_write(&self) {
        if let Some(s) = self.sock.borrow().as_ref() {
            s.shutdown_write();
        }
    }

    pub(crate) fn is_pipe(&self) -> bool {
        self.mode != Mode::Socket
    }

    /// The write end of a pipe became readable: its reader closed (asyncio's
    /// `_UnixWritePipeTransport._read_ready`). Unsent data makes it a broken pipe.
    fn write_pipe_peer_closed(self: &Rc<Self>) {
        if self.buffered() > 0 {
            let err = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
            self.force_close(Some(err.into()));
        } else {
            self.force_close(None);
        }
    }

    fn add_reader(self: &Rc<Self>) {
        if self.paused.get() || self.closing.get() {
            return;
        }
        // Data that came while the fd was not watched has no readiness event of its own yet.
        self.drained.set(false);
        let me = self.clone();
        let watched = if self.mode == Mode::WritePipe {
            // Only a FIFO or a socket tells its writer that the reader left, by becoming
            // readable (asyncio watches just those; a pty or `/dev/null` is not watched).
            if !super::pipe::signals_peer_close(self.fd) {
                return;
            }
            self.lp
                .watch_reader(self.fd, move || me.write_pipe_peer_closed())
        } else {
            self.lp.watch_reader(self.fd, move || me.read_ready())
        };
        if let Err(e) = watched {
            let noun = self.mode.noun();
            self.fatal_error(
                e,
                &format!("Fatal error: could not watch the {noun} for reading"),
            );
        }
    }

    fn add_writer(self: &Rc<Self>) {
        if self.writer_added.replace(true) {
            return;
        }
        let me = self.clone();
        if let Err(e) = self.lp.watch_writer(self.fd, move || me.write_ready()) {
            self.writer_added.set(false);
            self.clear_buffer();
            let noun = self.mode.noun();
            self.fatal_error(
                e,
                &format!("Fatal error: could not watch the {noun} for writing"),
            );
        }
    }

    fn remove_writer(&self) {
        if self.writer_added.replace(false) {
            self.lp.unwatch_writer(self.fd);
        }
    }

    fn base(&self) -> Option<Rc<RefCell<dyn BaseProtocol>>> {
        self.protocol.borrow().as_ref().map(|p| p.base.clone())
    }

    fn replace_protocol(&self, refs: ProtocolRefs) {
        // The new protocol is to receive the data: no reader reads past it any more, and the
        // fd's next readiness is read for it (not handed to a reader waiting to read it).
        self.read_through.set(false);
        let waiting = self.direct_reader.borrow_mut().take();
        drop(waiting);
        let old = {
            let mut slot = self.protocol.borrow_mut();
            match slot.as_mut() {
                Some(current) => Some(std::mem::replace(current, refs)),
                None => None,
            }
        };
        // Dropped outside the borrow: the old protocol's `Drop` may use the transport.
        drop(old);
    }

    fn connection_made(self: Rc<Self>, transport: Transport, waiter: Option<LoopFuture<()>>) {
        let Some(refs) = self.protocol.borrow().clone() else {
            return;
        };
        if self.conn_lost.get() > 0 && self.finalized.get() {
            return;
        }
        let res = match &refs.kind {
            StreamKind::Plain(p) => match p.try_borrow_mut() {
                Ok(mut p) => {
                    catch_unwind(AssertUnwindSafe(|| p.connection_made(transport.clone())))
                }
                Err(_) => return self.defer(move |me| me.connection_made(transport, waiter)),
            },
            StreamKind::Buffered(p) => match p.try_borrow_mut() {
                Ok(mut p) => {
                    catch_unwind(AssertUnwindSafe(|| p.connection_made(transport.clone())))
                }
                Err(_) => return self.defer(move |me| me.connection_made(transport, waiter)),
            },
        };
        if let Err(payload) = res {
            let err = Error::from_panic(&*payload);
            self.fatal_error(
                err.clone(),
                "Fatal error: protocol.connection_made() call failed.",
            );
            if let Some(w) = waiter {
                let _ = w.set_exception(err);
            }
            return;
        }
        self.add_reader();
        if let Some(w) = waiter {
            if !w.done() {
                let _ = w.set_result(());
            }
        }
    }

    /// Runs `f` on the next iteration: the protocol was busy (borrowed).
    fn defer(self: &Rc<Self>, f: impl FnOnce(Rc<Self>) + 'static) {
        let me = self.clone();
        if self.lp.call_soon(move || f(me)).is_err() {
            // The loop is closed: nothing more will run; release what we hold.
            self.finalize();
        }
    }

    /// Calls a base-protocol method, deferring it when the protocol is busy.
    fn call_base(self: &Rc<Self>, what: &'static str, f: fn(&mut dyn BaseProtocol)) {
        let Some(base) = self.base() else { return };
        let res = match base.try_borrow_mut() {
            Ok(mut p) => catch_unwind(AssertUnwindSafe(|| f(&mut *p))),
            Err(_) => return self.defer(move |me| me.call_base(what, f)),
        };
        if let Err(payload) = res {
            self.report_with_transport(
                ExceptionContext::new(format!("protocol.{what}() failed"))
                    .with_exception(Error::from_panic(&*payload)),
            );
        }
    }

    /// Records what a read of `len` bytes found: `EAGAIN` or a short read marks the fd empty
    /// until its next readiness event (see `drained`).
    fn note_read(&self, res: &std::io::Result<usize>, len: usize) {
        let empty = match res {
            Ok(n) => *n > 0 && *n < len,
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        };
        if empty {
            self.drained.set(true);
        }
    }

    /// Keeps `waker` for the fd's next readiness (see [`Transport::read_direct`]).
    fn keep_direct_reader(&self, waker: &Waker) {
        let mut slot = self.direct_reader.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    /// The read of [`Transport::read_direct`], once the transport allows it.
    fn direct_recv(self: &Rc<Self>, buf: &mut [u8], waker: &Waker) -> Option<usize> {
        let res = self.sock.borrow().as_ref()?.read(buf);
        self.note_read(&res, buf.len());
        match res {
            Ok(n) if n > 0 => Some(n),
            // EOF: a socket or pipe repeats it, so the transport's own read meets it again
            // and reports it to the protocol.
            Ok(_) => None,
            Err(e) if is_retry(&e) => {
                self.keep_direct_reader(waker);
                None
            }
            // An error is reported once (a socket's `ECONNRESET`, then EOF): the transport
            // closes now with it, as after its own read (`fatal_error`), so a read of the fd
            // already queued in this iteration finds it closing instead of meeting the EOF;
            // `connection_lost(error)` follows with `call_soon`. Closing runs no protocol code;
            // the exception handler (user code) does, so the report of an error that is not a
            // connection error waits for the next callback: the caller holds the stream's state.
            Err(e) => {
                let err = Error::from(e);
                if !is_connection_error(&err) {
                    let report = err.clone();
                    self.defer(move |me| {
                        let message = me.fatal_message("read");
                        me.report_with_transport(
                            ExceptionContext::new(message).with_exception(report),
                        );
                    });
                } else if self.lp.get_debug() {
                    let message = self.fatal_message("read");
                    log::debug!(target: "asyncio", "{message}: {err}");
                }
                self.force_close(Some(err));
                None
            }
        }
    }

    fn read_ready(self: &Rc<Self>) {
        // New readiness: what was drained may hold data again.
        self.drained.set(false);
        if self.conn_lost.get() > 0 || self.closing.get() {
            return;
        }
        // A reader waits to read the fd itself (`Transport::read_direct`): wake it instead.
        // (This readiness may have been polled before that reader's last read in this
        // iteration; waking it anyway costs an `EAGAIN` when nothing came since, and saves a
        // turn when more did: see the book's timeouts-around-I/O notes.)
        let direct = self.direct_reader.borrow_mut().take();
        if let Some(waker) = direct {
            waker.wake();
            return;
        }
        let Some(refs) = self.protocol.borrow().clone() else {
            return;
        };
        match refs.kind {
            StreamKind::Plain(p) => self.read_plain(&p),
            StreamKind::Buffered(p) => self.read_buffered(&p),
        }
    }

    fn read_plain(self: &Rc<Self>, p: &Rc<RefCell<dyn Protocol>>) {
        // A busy protocol (borrowed across an await by user code) is not read into: the
        // level-triggered reader fires again on the next iteration.
        let Ok(mut proto) = p.try_borrow_mut() else {
            return;
        };
        /// What one read of the fd came to.
        enum Outcome {
            /// Nothing to read (`EAGAIN`), or the socket is gone.
            Nothing,
            /// `data_received` ran (and may have panicked).
            Delivered(std::thread::Result<()>),
            Eof,
            Failed(std::io::Error),
        }
        let outcome = with_read_buf(|buf| {
            let res = match self.sock.borrow().as_ref() {
                Some(s) => s.read(buf),
                None => return Outcome::Nothing,
            };
            self.note_read(&res, buf.len());
            match res {
                Ok(0) => Outcome::Eof,
                Ok(n) => Outcome::Delivered(catch_unwind(AssertUnwindSafe(|| {
                    proto.data_received(&buf[..n])
                }))),
                Err(e) if is_retry(&e) => Outcome::Nothing,
                Err(e) => Outcome::Failed(e),
            }
        });
        match outcome {
            Outcome::Failed(e) => {
                drop(proto);
                self.fatal_error(e.into(), &self.fatal_message("read"));
            }
            Outcome::Eof => {
                let keep = catch_unwind(AssertUnwindSafe(|| proto.eof_received()));
                drop(proto);
                self.after_eof(keep);
            }
            Outcome::Nothing | Outcome::Delivered(Ok(())) => {}
            Outcome::Delivered(Err(payload)) => {
                drop(proto);
                self.fatal_error(
                    Error::from_panic(&*payload),
                    "Fatal error: protocol.data_received() call failed.",
                );
            }
        }
    }

    fn read_buffered(self: &Rc<Self>, p: &Rc<RefCell<dyn BufferedProtocol>>) {
        let Ok(mut proto) = p.try_borrow_mut() else {
            return;
        };
        let step = catch_unwind(AssertUnwindSafe(|| {
            let buf = proto.get_buffer(MAX_READ_SIZE);
            if buf.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidState,
                    "get_buffer() returned an empty buffer",
                ));
            }
            let res = match self.sock.borrow().as_ref() {
                Some(s) => s.read(buf),
                None => return Ok(None),
            };
            self.note_read(&res, buf.len());
            match res {
                Ok(0) => Ok(Some(0)),
                Ok(n) => {
                    proto.buffer_updated(n);
                    Ok(None)
                }
                Err(e) if is_retry(&e) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }));
        match step {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(_))) => {
                let keep = catch_unwind(AssertUnwindSafe(|| proto.eof_received()));
                drop(proto);
                self.after_eof(keep);
            }
            Ok(Err(e)) => {
                drop(proto);
                self.fatal_error(e, &self.fatal_message("read"));
            }
            Err(payload) => {
                drop(proto);
                self.fatal_error(
                    Error::from_panic(&*payload),
                    "Fatal error: protocol.buffer_updated() call failed.",
                );
            }
        }
    }

    /// asyncio's "Fatal read error on socket transport" (or "pipe").
    fn fatal_message(&self, what: &str) -> String {
        format!("Fatal {what} error on {} transport", self.mode.noun())
    }

    fn after_eof(self: &Rc<Self>, keep: std::thread::Result<bool>) {
        match keep {
            // A pipe has no half-open state: its EOF ends the transport whatever the protocol
            // answered (asyncio's read pipe calls `connection_lost` after `eof_received`).
            Ok(true) if self.mode == Mode::ReadPipe => self.close(),
            Ok(true) => {
                // Half-open: stop reading, keep writing.
                self.lp.unwatch_reader(self.fd);
            }
            Ok(false) => self.close(),
            Err(payload) => self.fatal_error(
                Error::from_panic(&*payload),
                "Fatal error: protocol.eof_received() call failed.",
            ),
        }
    }

    fn write(self: &Rc<Self>, data: &[u8]) -> Result<()> {
        if self.mode == Mode::ReadPipe {
            return Err(Error::new(
                ErrorKind::NotSupported,
                "a read pipe transport cannot write",
            ));
        }
        if self.eof.get() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "Cannot call write() after write_eof()",
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        let lost = self.conn_lost.get();
        if lost > 0 {
            if lost == LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                log_warning("socket.send() raised exception.");
            }
            self.conn_lost.set(lost.saturating_add(1));
            return Ok(());
        }
        let mut data = data;
        if self.buffered() == 0 {
            match self.send(data) {
                Ok(n) => {
                    data = &data[n..];
                    if data.is_empty() {
                        return Ok(());
                    }
                }
                Err(e) if is_retry(&e) => {}
                Err(e) => {
                    self.fatal_error(e.into(), &self.fatal_message("write"));
                    return Ok(());
                }
            }
            self.add_writer();
            if self.conn_lost.get() > 0 {
                return Ok(());
            }
        }
        self.append(data);
        self.maybe_pause_protocol();
        Ok(())
    }

    /// The fd is writable: send the buffer. Once it is empty, the writer stays registered
    /// while writes go on (a direct writer waits, or the next `write` would register it
    /// again): it is removed by the first writable event that finds nothing to do, so a flow
    /// of writes costs no `epoll_ctl` pair per drained buffer and an idle loop still sleeps.
    fn write_ready(self: &Rc<Self>) {
        if self.conn_lost.get() > 0 {
            return;
        }
        if self.buffered() == 0 {
            match self.direct_writer.borrow_mut().take() {
                Some(waker) => waker.wake(),
                None => self.remove_writer(),
            }
            return;
        }
        let res = {
            let buf = self.buffer.borrow();
            self.send(&buf[self.buffer_start.get()..])
        };
        match res {
            Ok(n) => {
                self.consume(n);
                self.maybe_resume_protocol();
                if self.buffered() == 0 {
                    if self.closing.get() {
                        self.remove_writer();
                        self.conn_lost.set(self.conn_lost.get() + 1);
                        self.call_connection_lost(None);
                    } else if self.eof.get() {
                        self.remove_writer();
                        self.shutdown_write();
                    } else if let Some(waker) = self.direct_writer.borrow_mut().take() {
                        waker.wake();
                    }
                }
            }
            Err(e) if is_retry(&e) => {}
            Err(e) => {
                self.remove_writer();
                self.clear_buffer();
                self.fatal_error(e.into(), &self.fatal_message("write"));
            }
        }
    }

    /// Wakes a direct writer waiting for writability: the transport is closing, so it must
    /// look again (and find it closing).
    fn wake_direct_writer(&self) {
        let waker = self.direct_writer.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn maybe_pause_protocol(self: &Rc<Self>) {
        if self.buffered() <= self.high_water.get() || self.protocol_paused.get() {
            return;
        }
        self.protocol_paused.set(true);
        self.call_base("pause_writing", |p| p.pause_writing());
    }

    fn maybe_resume_protocol(self: &Rc<Self>) {
        if self.protocol_paused.get() && self.buffered() <= self.low_water.get() {
            self.protocol_paused.set(false);
            self.call_base("resume_writing", |p| p.resume_writing());
        }
    }

    fn close(self: &Rc<Self>) {
        if self.closing.replace(true) {
            return;
        }
        self.wake_direct_writer();
        self.lp.unwatch_reader(self.fd);
        if self.buffered() == 0 {
            self.conn_lost.set(self.conn_lost.get() + 1);
            self.remove_writer();
            self.schedule_connection_lost(None);
        }
    }

    fn force_close(self: &Rc<Self>, exc: Option<Error>) {
        if self.conn_lost.get() > 0 {
            return;
        }
        self.clear_buffer();
        self.remove_writer();
        self.wake_direct_writer();
        if !self.closing.replace(true) {
            self.lp.unwatch_reader(self.fd);
        }
        self.conn_lost.set(self.conn_lost.get() + 1);
        self.schedule_connection_lost(exc);
    }

    fn schedule_connection_lost(self: &Rc<Self>, exc: Option<Error>) {
        let me = self.clone();
        let fallback = self.clone();
        // A closed loop drops the callback unrun (or refuses it): finalize all the same.
        let guard = UnlessRun::new(move || fallback.finalize());
        let _ = self.lp.call_soon(move || {
            guard.disarm();
            me.call_connection_lost(exc)
        });
    }

    /// Calls the loop's exception handler with `ctx` and this transport (its `Debug` form) as
    /// `"transport"`.
    fn report_with_transport(self: &Rc<Self>, ctx: ExceptionContext) {
        let transport = Transport {
            inner: self.clone(),
            tls: None,
        };
        self.lp
            .call_exception_handler(&ctx.with("transport", format!("{transport:?}")));
    }

    fn fatal_error(self: &Rc<Self>, err: Error, message: &str) {
        if !is_connection_error(&err) {
            self.report_with_transport(ExceptionContext::new(message).with_exception(err.clone()));
        } else if self.lp.get_debug() {
            log::debug!(target: "asyncio", "{message}: {err}");
        }
        self.force_close(Some(err));
    }

    fn call_connection_lost(self: &Rc<Self>, exc: Option<Error>) {
        if self.finalized.get() {
            return;
        }
        if self.protocol_connected.get() {
            if let Some(base) = self.base() {
                let res = match base.try_borrow_mut() {
                    Ok(mut p) => catch_unwind(AssertUnwindSafe(|| p.connection_lost(exc))),
                    Err(_) => return self.defer(move |me| me.call_connection_lost(exc)),
                };
                self.protocol_connected.set(false);
                if let Err(payload) = res {
                    self.lp.call_exception_handler(
                        &ExceptionContext::new("protocol.connection_lost() failed")
                            .with_exception(Error::from_panic(&*payload)),
                    );
                }
            }
        }
        self.finalize();
    }

    /// Stops watching the fd, closes the socket, drops the protocol (breaking the usual
    /// protocol <-> transport cycle) and tells the server, if any.
    fn finalize(self: &Rc<Self>) {
        if self.finalized.replace(true) {
            return;
        }
        self.closing.set(true);
        if self.conn_lost.get() == 0 {
            self.conn_lost.set(1);
        }
        self.lp.unwatch_reader(self.fd);
        self.remove_writer();
        self.lp.forget_transport(self.fd);
        let sock = self.sock.borrow_mut().take();
        drop(sock);
        let protocol = self.protocol.borrow_mut().take();
        drop(protocol);
        self.clear_buffer();
        self.wake_direct_writer();
        let hook = self.on_lost.borrow_mut().take();
        if let Some(hook) = hook {
            hook();
        }
    }
}
