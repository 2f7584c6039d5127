//! The TLS layer (asyncio's `sslproto.SSLProtocol`): a protocol on the socket transport that
//! runs the rustls state machine, and the application transport it gives the user's protocol.
//!
//! Data path: the socket transport's `data_received` feeds rustls; decrypted bytes go to the
//! user's protocol (or wait in `incoming` while it paused reading). A write encrypts at once
//! (before the handshake ends it waits in `backlog`) and hands the records to the socket
//! transport, which sends or buffers them. The application's write buffer is `backlog` plus
//! the socket transport's buffer, and the socket transport runs with the same water marks, so
//! its `pause_writing` / `resume_writing` are the application's.
//!
//! States: `Handshaking` (from `connection_made`; timed by the handshake timeout), `Wrapped`,
//! `Shutdown` (our close_notify is sent; waiting for the peer's, timed by the shutdown
//! timeout), `Closed`. TLS cannot half-close: the peer's close_notify (or EOF) is the
//! protocol's `eof_received`, and then the layer shuts down.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ProtocolVersion, ServerConnection};

use super::context::{Config, TlsContext};
use super::error::{tls_error, tls_error_msg};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{log_warning, ExceptionContext};
use crate::handles::TimerHandle;
use crate::protocols::{BaseProtocol, Protocol};
use crate::runtime::core::EventLoop;
use crate::task::LoopFuture;
use crate::transports::DEFAULT_HIGH_WATER;
use crate::transports::{Address, ExtraInfo, ProtocolRefs, StreamKind, Transport};

/// Plaintext is encrypted and handed to the socket transport in pieces of this size, so a large
/// write is not held twice (plaintext and records) in memory.
const ENCRYPT_CHUNK: usize = 64 * 1024;

/// After this many writes to a closed TLS transport, `write` logs a warning (once).
const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;

/// What a TLS connection is set up with besides its context.
#[derive(Clone, Debug)]
pub(crate) struct TlsParams {
    /// The name the server's certificate is checked against (client side).
    pub(crate) server_hostname: Option<String>,
    /// Seconds the handshake may take.
    pub(crate) handshake_timeout: f64,
    /// Seconds to wait for the peer's close_notify after ours.
    pub(crate) shutdown_timeout: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Made, waiting for the socket transport's `connection_made`.
    Unwrapped,
    Handshaking,
    Wrapped,
    Shutdown,
    Closed,
}

/// The state of one TLS connection, shared by its layer protocol and its application
/// transports.
pub(crate) struct TlsInner {
    lp: EventLoop,
    me: Weak<TlsInner>,
    conn: RefCell<Connection>,
    params: TlsParams,
    state: Cell<State>,
    /// The transport under the layer; `None` once the connection is lost.
    socket: RefCell<Option<Transport>>,
    /// The user's protocol; `None` once the connection is lost.
    app: RefCell<Option<ProtocolRefs>>,
    /// Whether the handshake's end calls the protocol's `connection_made` (not for
    /// `start_tls`, whose protocol is already connected).
    call_connection_made: bool,
    /// The protocol is connected: `connection_lost` is due.
    app_connected: Cell<bool>,
    waiter: RefCell<Option<LoopFuture<()>>>,
    handshake_timer: RefCell<Option<TimerHandle>>,
    shutdown_timer: RefCell<Option<TimerHandle>>,
    /// Plaintext written before the handshake ended.
    backlog: RefCell<Vec<u8>>,
    /// Decrypted bytes not yet given to the protocol (reading paused, or protocol busy).
    incoming: RefCell<Vec<u8>>,
    /// Records on their way to the socket transport (reused).
    scratch: RefCell<Vec<u8>>,
    /// The peer sent close_notify or closed the socket.
    peer_closed: Cell<bool>,
    /// The protocol is owed an `eof_received` once `incoming` is delivered.
    eof_pending: Cell<bool>,
    delivering: Cell<bool>,
    retry_scheduled: Cell<bool>,
    reading_paused: Cell<bool>,
    writing_paused: Cell<bool>,
    high_water: Cell<usize>,
    low_water: Cell<usize>,
    closing: Cell<bool>,
    conn_lost: Cell<u32>,
    /// The failure the protocol's `connection_lost` reports.
    error: RefCell<Option<Error>>,
}

/// The protocol the socket transport drives: forwards to [`TlsInner`].
struct Layer(Rc<TlsInner>);

impl TlsInner {
    /// A layer for `context` on the `server_side` (or client side) of a connection, for the
    /// user's protocol `app`. `waiter` gets the handshake's outcome.
    pub(crate) fn new(
        lp: &EventLoop,
        context: &TlsContext,
        server_side: bool,
        app: ProtocolRefs,
        params: TlsParams,
        waiter: Option<LoopFuture<()>>,
        call_connection_made: bool,
    ) -> Result<Rc<TlsInner>> {
        let mut conn: Connection = match (&context.config, server_side) {
            (Config::Server(c), true) => ServerConnection::new(c.clone())
                .map_err(|e| tls_error(&e, None))?
                .into(),
            (Config::Client(c), false) => {
                let host = params.server_hostname.clone().ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        "server_hostname is required for a TLS client connection",
                    )
                })?;
                let name = ServerName::try_from(host.clone()).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!("invalid server_hostname {host:?}"),
                    )
                })?;
                ClientConnection::new(c.clone(), name)
                    .map_err(|e| tls_error(&e, None))?
                    .into()
            }
            (Config::Server(_), false) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "a server TLS context cannot be used on the client side",
                ))
            }
            (Config::Client(_), true) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "a client TLS context cannot be used on the server side",
                ))
            }
        };
        // Writes are encrypted at once and handed to the socket transport, whose buffer is the
        // one flow control watches: rustls keeps nothing back.
        conn.set_buffer_limit(None);
        Ok(Rc::new_cyclic(|me| TlsInner {
            lp: lp.clone(),
            me: me.clone(),
            conn: RefCell::new(conn),
            params,
            state: Cell::new(State::Unwrapped),
            socket: RefCell::new(None),
            app: RefCell::new(Some(app)),
            call_connection_made,
            app_connected: Cell::new(false),
            waiter: RefCell::new(waiter),
            handshake_timer: RefCell::new(None),
            shutdown_timer: RefCell::new(None),
            backlog: RefCell::new(Vec::new()),
            incoming: RefCell::new(Vec::new()),
            scratch: RefCell::new(Vec::new()),
            peer_closed: Cell::new(false),
            eof_pending: Cell::new(false),
            delivering: Cell::new(false),
            retry_scheduled: Cell::new(false),
            reading_paused: Cell::new(false),
            writing_paused: Cell::new(false),
            high_water: Cell::new(DEFAULT_HIGH_WATER),
            low_water: Cell::new(DEFAULT_HIGH_WATER / 4),
            closing: Cell::new(false),
            conn_lost: Cell::new(0),
            error: RefCell::new(None),
        }))
    }

    /// The protocol views to give the socket transport.
    pub(crate) fn layer_refs(self: &Rc<Self>) -> ProtocolRefs {
        ProtocolRefs::plain(&Rc::new(RefCell::new(Layer(self.clone()))))
    }

    fn rc(&self) -> Option<Rc<TlsInner>> {
        self.me.upgrade()
    }

    fn socket(&self) -> Option<Transport> {
        self.socket.borrow().clone()
    }

    /// The application transport (`None` before `connection_made` or once lost).
    pub(crate) fn app_transport(&self) -> Option<Transport> {
        Some(self.socket()?.with_tls(self.rc()?))
    }

    // ---- the socket transport's protocol callbacks ----

    /// Starts the handshake on `socket` (the layer's `connection_made`).
    pub(crate) fn connection_made(&self, socket: Transport) {
        if self.state.get() != State::Unwrapped {
            return;
        }
        let _ =
            socket.set_write_buffer_limits(Some(self.high_water.get()), Some(self.low_water.get()));
        // start_tls: the protocol may have paused the plain transport; the handshake reads.
        socket.resume_reading();
        *self.socket.borrow_mut() = Some(socket);
        self.state.set(State::Handshaking);
        let me = self.me.clone();
        let timer = self.lp.call_later(self.params.handshake_timeout, move || {
            if let Some(me) = me.upgrade() {
                me.handshake_timed_out();
            }
        });
        *self.handshake_timer.borrow_mut() = timer.ok();
        // A client speaks first: its ClientHello.
        self.flush_tls();
    }

    fn data_received(&self, data: &[u8]) {
        if matches!(self.state.get(), State::Unwrapped | State::Closed) {
            return;
        }
        let mut input = data;
        while !input.is_empty() {
            let read = self.conn.borrow_mut().read_tls(&mut input);
            match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return self.fail(tls_error_msg(format!("TLS failure: {e}"))),
            }
            let processed = self.conn.borrow_mut().process_new_packets();
            let io = match processed {
                Ok(io) => io,
                Err(e) => {
                    // Send the alert rustls queued, so the peer learns why.
                    self.flush_tls();
                    let host = self.params.server_hostname.as_deref();
                    return self.fail(tls_error(&e, host));
                }
            };
            let n = io.plaintext_bytes_to_read();
            if n > 0 {
                let mut incoming = self.incoming.borrow_mut();
                let old = incoming.len();
                incoming.resize(old + n, 0);
                let mut conn = self.conn.borrow_mut();
                if conn.reader().read_exact(&mut incoming[old..]).is_err() {
                    incoming.truncate(old);
                }
            }
            if io.peer_has_closed() {
                self.peer_closes();
            }
        }
        self.flush_tls();
        if self.state.get() == State::Handshaking && !self.conn.borrow().is_handshaking() {
            self.handshake_complete();
        }
        match self.state.get() {
            State::Wrapped => self.deliver(),
            State::Shutdown => {
                // Whatever arrives after our close_notify is dropped.
                self.incoming.borrow_mut().clear();
                if self.peer_closed.get() {
                    self.close_socket();
                }
            }
            State::Handshaking if self.peer_closed.get() => self.fail(tls_error_msg(
                "handshake failure: the peer closed the connection during the handshake",
            )),
            _ => {}
        }
    }

    /// The peer's close_notify or the socket's EOF: the protocol gets `eof_received` once the
    /// data before it is delivered.
    fn peer_closes(&self) {
        if !self.peer_closed.replace(true) && self.state.get() == State::Wrapped {
            self.eof_pending.set(true);
        }
    }

    /// The socket transport's `eof_received`: keeps the socket open (the layer closes it when
    /// its shutdown is done).
    fn eof_received(&self) -> bool {
        match self.state.get() {
            State::Unwrapped | State::Handshaking => {
                self.peer_closed.set(true);
                self.fail(tls_error_msg(
                    "handshake failure: the peer closed the connection during the handshake",
                ));
                false
            }
            State::Wrapped => {
                // An EOF without close_notify is taken as an EOF (Python's
                // `suppress_ragged_eofs`).
                self.peer_closes();
                self.deliver();
                true
            }
            State::Shutdown => {
                self.peer_closed.set(true);
                self.close_socket();
                true
            }
            State::Closed => false,
        }
    }

    /// The socket transport's `connection_lost`: the end of the TLS connection.
    fn connection_lost(&self, exc: Option<Error>) {
        let before = self.state.replace(State::Closed);
        self.cancel_timers();
        let err = self.error.borrow_mut().take().or(exc);
        if matches!(before, State::Unwrapped | State::Handshaking) {
            let err = err.clone().unwrap_or_else(|| {
                tls_error_msg("handshake failure: connection lost during the handshake")
            });
            self.fail_waiter(err);
        }
        if self.app_connected.replace(false) {
            self.call_app_connection_lost(err);
        } else {
            self.release();
        }
    }

    fn call_app_connection_lost(&self, err: Option<Error>) {
        let app = self.app.borrow().clone();
        if let Some(app) = app {
            let res = match app.base.try_borrow_mut() {
                Ok(mut p) => catch_unwind(AssertUnwindSafe(|| p.connection_lost(err))),
                Err(_) => {
                    // The protocol is busy (borrowed by user code): try on the next iteration.
                    let me = self.rc();
                    let deferred = self.lp.call_soon(move || {
                        if let Some(me) = me {
                            me.call_app_connection_lost(err);
                        }
                    });
                    if deferred.is_err() {
                        self.release();
                    }
                    return;
                }
            };
            if let Err(payload) = res {
                self.lp.call_exception_handler(
                    &ExceptionContext::new("protocol.connection_lost() failed")
                        .with_exception(Error::from_panic(&*payload)),
                );
            }
        }
        self.release();
    }

    /// Lets go of the protocol and the socket transport (breaking the protocol <-> transport
    /// cycle) and of the buffers.
    fn release(&self) {
        let app = self.app.borrow_mut().take();
        drop(app);
        let socket = self.socket.borrow_mut().take();
        drop(socket);
        *self.backlog.borrow_mut() = Vec::new();
        *self.incoming.borrow_mut() = Vec::new();
        *self.scratch.borrow_mut() = Vec::new();
    }

    // ---- handshake ----

    fn handshake_complete(&self) {
        self.state.set(State::Wrapped);
        self.cancel_timers();
        if self.call_connection_made {
            if let Some(t) = self.app_transport() {
                let app = self.app.borrow().clone();
                let res = match app.map(|a| a.kind) {
                    Some(StreamKind::Plain(p)) => p
                        .try_borrow_mut()
                        .map(|mut p| catch_unwind(AssertUnwindSafe(|| p.connection_made(t)))),
                    Some(StreamKind::Buffered(p)) => p
                        .try_borrow_mut()
                        .map(|mut p| catch_unwind(AssertUnwindSafe(|| p.connection_made(t)))),
                    None => return,
                };
                match res {
                    Ok(Ok(())) => {}
                    Ok(Err(payload)) => {
                        let err = Error::from_panic(&*payload);
                        self.fail_waiter(err.clone());
                        self.lp.call_exception_handler(
                            &ExceptionContext::new(
                                "Fatal error: protocol.connection_made() call failed.",
                            )
                            .with_exception(err),
                        );
                        self.abort();
                        return;
                    }
                    Err(_) => {
                        // A fresh protocol cannot be borrowed elsewhere; refuse rather than
                        // skip its connection_made.
                        self.fail_waiter(Error::new(
                            ErrorKind::InvalidState,
                            "the protocol is busy: connection_made() cannot run",
                        ));
                        self.abort();
                        return;
                    }
                }
            }
        }
        self.app_connected.set(true);
        if let Some(w) = self.waiter.borrow_mut().take() {
            if !w.done() {
                let _ = w.set_result(());
            }
        }
        let backlog = std::mem::take(&mut *self.backlog.borrow_mut());
        if !backlog.is_empty() {
            self.encrypt(&backlog);
        }
        self.maybe_resume_app();
        if self.reading_paused.get() {
            if let Some(s) = self.socket() {
                s.pause_reading();
            }
        }
        if self.closing.get() {
            self.start_shutdown();
        }
    }

    fn handshake_timed_out(&self) {
        if self.state.get() != State::Handshaking {
            return;
        }
        let t = self.params.handshake_timeout;
        let err = Error::new(
            ErrorKind::Timeout,
            format!("SSL handshake is taking longer than {t} seconds: aborting the connection"),
        );
        self.fail_waiter(err.clone());
        *self.error.borrow_mut() = Some(err);
        self.state.set(State::Closed);
        if let Some(s) = self.socket() {
            s.abort();
        }
    }

    fn fail_waiter(&self, err: Error) {
        if let Some(w) = self.waiter.borrow_mut().take() {
            if !w.done() {
                let _ = w.set_exception(err);
            }
        }
    }

    /// A TLS failure: the handshake's waiter (if still waiting) and the protocol's
    /// `connection_lost` get `err`; the socket transport closes once the alert is sent. TLS
    /// errors are the connection's, not the loop's: they are not reported to the exception
    /// handler (asyncio treats `SSLError` as an `OSError`).
    fn fail(&self, err: Error) {
        if self.state.get() == State::Closed {
            return;
        }
        if self.lp.get_debug() {
            log::debug!(target: "asyncio", "TLS connection failed: {err}");
        }
        self.cancel_timers();
        self.fail_waiter(err.clone());
        *self.error.borrow_mut() = Some(err);
        self.state.set(State::Closed);
        self.incoming.borrow_mut().clear();
        self.close_socket();
    }

    fn cancel_timers(&self) {
        for slot in [&self.handshake_timer, &self.shutdown_timer] {
            let timer = slot.borrow_mut().take();
            if let Some(t) = timer {
                t.cancel();
            }
        }
    }

    // ---- records out ----

    /// Hands every record rustls has ready to the socket transport.
    fn flush_tls(&self) {
        let Some(socket) = self.socket() else { return };
        let mut out = std::mem::take(&mut *self.scratch.borrow_mut());
        out.clear();
        {
            let mut conn = self.conn.borrow_mut();
            while conn.wants_write() {
                if conn.write_tls(&mut out).is_err() {
                    break;
                }
            }
        }
        if !out.is_empty() {
            let _ = socket.write(&out);
        }
        out.clear();
        if out.capacity() <= 4 * ENCRYPT_CHUNK {
            *self.scratch.borrow_mut() = out;
        }
    }

    fn encrypt(&self, data: &[u8]) {
        for chunk in data.chunks(ENCRYPT_CHUNK) {
            let written = self.conn.borrow_mut().writer().write_all(chunk);
            if let Err(e) = written {
                return self.fail(tls_error_msg(format!("TLS failure: {e}")));
            }
            self.flush_tls();
        }
    }

    fn close_socket(&self) {
        if let Some(s) = self.socket() {
            s.close();
        }
    }

    // ---- decrypted data in ----

    /// Gives the protocol what is decrypted, unless it paused reading; then the pending EOF.
    fn deliver(&self) {
        if self.delivering.replace(true) {
            return;
        }
        loop {
            if self.reading_paused.get()
                || !self.app_connected.get()
                || self.state.get() != State::Wrapped
            {
                break;
            }
            let data = std::mem::take(&mut *self.incoming.borrow_mut());
            if data.is_empty() {
                if self.eof_pending.replace(false) {
                    self.deliver_eof();
                }
                break;
            }
            let Some(app) = self.app.borrow().clone() else {
                break;
            };
            let res = match &app.kind {
                StreamKind::Plain(p) => match p.try_borrow_mut() {
                    Ok(mut p) => Some(catch_unwind(AssertUnwindSafe(|| {
                        p.data_received(&data);
                        Ok(())
                    }))),
                    Err(_) => None,
                },
                StreamKind::Buffered(p) => match p.try_borrow_mut() {
                    Ok(mut p) => Some(catch_unwind(AssertUnwindSafe(|| {
                        feed_buffered(&mut *p, &data)
                    }))),
                    Err(_) => None,
                },
            };
            match res {
                None => {
                    // Busy (borrowed across an await by user code): keep the data, retry on
                    // the next iteration.
                    let mut incoming = self.incoming.borrow_mut();
                    let later = std::mem::replace(&mut *incoming, data);
                    incoming.extend_from_slice(&later);
                    drop(incoming);
                    self.schedule_deliver();
                    break;
                }
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    self.delivering.set(false);
                    return self.fatal_app_error(e, "Fatal read error on TLS transport");
                }
                Some(Err(payload)) => {
                    self.delivering.set(false);
                    return self.fatal_app_error(
                        Error::from_panic(&*payload),
                        "Fatal error: protocol.data_received() call failed.",
                    );
                }
            }
        }
        self.delivering.set(false);
    }

    fn schedule_deliver(&self) {
        if self.retry_scheduled.replace(true) {
            return;
        }
        let me = self.me.clone();
        let _ = self.lp.call_soon(move || {
            if let Some(me) = me.upgrade() {
                me.retry_scheduled.set(false);
                me.deliver();
            }
        });
    }

    fn deliver_eof(&self) {
        let Some(app) = self.app.borrow().clone() else {
            return;
        };
        let res = match &app.kind {
            StreamKind::Plain(p) => p
                .try_borrow_mut()
                .map(|mut p| catch_unwind(AssertUnwindSafe(|| p.eof_received()))),
            StreamKind::Buffered(p) => p
                .try_borrow_mut()
                .map(|mut p| catch_unwind(AssertUnwindSafe(|| p.eof_received()))),
        };
        match res {
            Err(_) => {
                self.eof_pending.set(true);
                self.schedule_deliver();
            }
            Ok(Err(payload)) => self.fatal_app_error(
                Error::from_panic(&*payload),
                "Fatal error: protocol.eof_received() call failed.",
            ),
            Ok(Ok(keep_open)) => {
                if keep_open && self.lp.get_debug() {
                    log::debug!(
                        target: "asyncio",
                        "returning true from eof_received() has no effect when using TLS"
                    );
                }
                self.start_shutdown();
            }
        }
    }

    /// A protocol callback failed: reported to the exception handler, and the connection is
    /// aborted with the error.
    fn fatal_app_error(&self, err: Error, message: &str) {
        let ctx = ExceptionContext::new(message).with_exception(err.clone());
        let ctx = match self.app_transport() {
            Some(t) => ctx.with("transport", format!("{t:?}")),
            None => ctx,
        };
        self.lp.call_exception_handler(&ctx);
        *self.error.borrow_mut() = Some(err);
        self.abort();
    }

    // ---- the application transport ----

    pub(crate) fn write(&self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.closing.get() || self.state.get() == State::Closed {
            let lost = self.conn_lost.get();
            if lost == LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                log_warning("socket.send() raised exception.");
            }
            self.conn_lost.set(lost.saturating_add(1));
            return Ok(());
        }
        match self.state.get() {
            State::Unwrapped | State::Handshaking => {
                self.backlog.borrow_mut().extend_from_slice(data)
            }
            _ => self.encrypt(data),
        }
        self.maybe_pause_app();
        Ok(())
    }

    /// TLS cannot half-close (asyncio raises `NotImplementedError`): does nothing; see
    /// [`Transport::can_write_eof`].
    pub(crate) fn write_eof(&self) {
        if self.lp.get_debug() {
            log::debug!(target: "asyncio", "write_eof() on a TLS transport: TLS cannot half-close");
        }
    }

    /// Sends close_notify after the buffered data, then closes once the peer answered (or the
    /// shutdown timeout passed). During the handshake it aborts, as asyncio does.
    pub(crate) fn close(&self) {
        if self.closing.replace(true) {
            return;
        }
        match self.state.get() {
            State::Unwrapped | State::Handshaking => self.abort(),
            State::Wrapped => self.start_shutdown(),
            State::Shutdown | State::Closed => {}
        }
    }

    fn start_shutdown(&self) {
        if !matches!(self.state.get(), State::Wrapped) {
            return;
        }
        self.closing.set(true);
        self.state.set(State::Shutdown);
        self.incoming.borrow_mut().clear();
        self.conn.borrow_mut().send_close_notify();
        self.flush_tls();
        if self.peer_closed.get() {
            return self.close_socket();
        }
        // Read on until the peer's close_notify, for at most the shutdown timeout.
        if let Some(s) = self.socket() {
            s.resume_reading();
        }
        let me = self.me.clone();
        let timer = self.lp.call_later(self.params.shutdown_timeout, move || {
            if let Some(me) = me.upgrade() {
                if let Some(s) = me.socket() {
                    s.abort();
                }
            }
        });
        *self.shutdown_timer.borrow_mut() = timer.ok();
    }

    /// Closes at once: no close_notify, buffered data dropped.
    pub(crate) fn abort(&self) {
        self.closing.set(true);
        self.backlog.borrow_mut().clear();
        match self.socket() {
            Some(s) => s.abort(),
            None => {
                // Not started yet (or already lost): nothing to abort.
                if self.state.get() == State::Unwrapped {
                    self.state.set(State::Closed);
                    self.fail_waiter(tls_error_msg("handshake failure: aborted"));
                }
            }
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.get() || self.state.get() == State::Closed
    }

    pub(crate) fn is_reading(&self) -> bool {
        !self.reading_paused.get() && !self.is_closing()
    }

    pub(crate) fn pause_reading(&self) {
        if self.is_closing() || self.reading_paused.replace(true) {
            return;
        }
        if self.state.get() == State::Wrapped {
            if let Some(s) = self.socket() {
                s.pause_reading();
            }
        }
    }

    pub(crate) fn resume_reading(&self) {
        if self.is_closing() || !self.reading_paused.replace(false) {
            return;
        }
        if let Some(s) = self.socket() {
            s.resume_reading();
        }
        self.schedule_deliver();
    }

    pub(crate) fn set_write_buffer_limits(&self, high: usize, low: usize) -> Result<()> {
        self.high_water.set(high);
        self.low_water.set(low);
        if let Some(s) = self.socket() {
            s.set_write_buffer_limits(Some(high), Some(low))?;
        }
        self.maybe_pause_app();
        self.maybe_resume_app();
        Ok(())
    }

    pub(crate) fn get_write_buffer_limits(&self) -> (usize, usize) {
        (self.low_water.get(), self.high_water.get())
    }

    /// What waits on both sides of the layer: plaintext not yet encrypted and records the
    /// socket has not sent.
    pub(crate) fn get_write_buffer_size(&self) -> usize {
        let socket = self.socket().map_or(0, |s| s.get_write_buffer_size());
        self.backlog.borrow().len() + socket
    }

    pub(crate) fn get_protocol(&self) -> Option<Rc<RefCell<dyn BaseProtocol>>> {
        self.app.borrow().as_ref().map(|a| a.base.clone())
    }

    pub(crate) fn protocol_refs(&self) -> Option<ProtocolRefs> {
        self.app.borrow().clone()
    }

    pub(crate) fn replace_protocol(&self, refs: ProtocolRefs) {
        let old = {
            let mut slot = self.app.borrow_mut();
            slot.as_mut()
                .map(|current| std::mem::replace(current, refs))
        };
        drop(old);
    }

    fn maybe_pause_app(&self) {
        if self.writing_paused.get() || self.get_write_buffer_size() <= self.high_water.get() {
            return;
        }
        self.writing_paused.set(true);
        self.call_app_base("pause_writing", |p| p.pause_writing());
    }

    fn maybe_resume_app(&self) {
        if self.writing_paused.get() && self.get_write_buffer_size() <= self.low_water.get() {
            self.writing_paused.set(false);
            self.call_app_base("resume_writing", |p| p.resume_writing());
        }
    }

    /// Calls a base-protocol method of the user's protocol, on the next iteration if it is
    /// busy.
    fn call_app_base(&self, what: &'static str, f: fn(&mut dyn BaseProtocol)) {
        let Some(base) = self.app.borrow().as_ref().map(|a| a.base.clone()) else {
            return;
        };
        let res = match base.try_borrow_mut() {
            Ok(mut p) => catch_unwind(AssertUnwindSafe(|| f(&mut *p))),
            Err(_) => {
                let me = self.me.clone();
                let _ = self.lp.call_soon(move || {
                    if let Some(me) = me.upgrade() {
                        me.call_app_base(what, f);
                    }
                });
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

    /// The TLS keys of `get_extra_info`.
    pub(crate) fn extra_info(&self, name: &str) -> Option<ExtraInfo> {
        let conn = self.conn.borrow();
        match name {
            "peercert" => conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| ExtraInfo::Bytes(c.to_vec())),
            "cipher" => conn
                .negotiated_cipher_suite()
                .map(|s| ExtraInfo::Text(format!("{:?}", s.suite()))),
            "tls_version" => conn.protocol_version().map(|v| {
                ExtraInfo::Text(match v {
                    ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
                    ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
                    other => format!("{other:?}"),
                })
            }),
            "alpn_protocol" => conn
                .alpn_protocol()
                .map(|p| ExtraInfo::Text(String::from_utf8_lossy(p).into_owned())),
            "server_hostname" => match &*conn {
                Connection::Client(_) => self.params.server_hostname.clone(),
                Connection::Server(s) => s.server_name().map(str::to_owned),
            }
            .map(ExtraInfo::Text),
            _ => None,
        }
    }

    /// The `Debug` form of the application transport.
    pub(crate) fn fmt_transport(
        &self,
        f: &mut fmt::Formatter<'_>,
        peername: &Option<Address>,
    ) -> fmt::Result {
        f.debug_struct("TlsTransport")
            .field("state", &self.state.get())
            .field("peername", peername)
            .field("write_buffer", &self.get_write_buffer_size())
            .finish()
    }
}

/// Copies `data` into the buffers a [`BufferedProtocol`](crate::BufferedProtocol) hands out.
fn feed_buffered(p: &mut dyn crate::protocols::BufferedProtocol, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        let buf = p.get_buffer(data.len());
        if buf.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "get_buffer() returned an empty buffer",
            ));
        }
        let n = buf.len().min(data.len());
        buf[..n].copy_from_slice(&data[..n]);
        p.buffer_updated(n);
        data = &data[n..];
    }
    Ok(())
}

impl BaseProtocol for Layer {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.0.connection_lost(exc);
    }

    fn pause_writing(&mut self) {
        self.0.maybe_pause_app();
    }

    fn resume_writing(&mut self) {
        self.0.maybe_resume_app();
    }
}

impl Protocol for Layer {
    fn connection_made(&mut self, transport: Transport) {
        self.0.connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.0.data_received(data);
    }

    fn eof_received(&mut self) -> bool {
        self.0.eof_received()
    }
}
