//! TLS for stream connections, as asyncio's `ssl=` support: a layer between the socket
//! transport and the user's protocol (asyncio's `sslproto`), on rustls.
//!
//! - [`TlsContext`]: the configuration (asyncio's `ssl.SSLContext`): client contexts verify
//!   servers against Mozilla's roots bundled by `webpki-roots`, or against given CA
//!   certificates; server contexts hold a PEM certificate chain and key; client certificates,
//!   ALPN and the TLS versions are options; host-name checking and verification are turned off
//!   only explicitly.
//! - The `ssl` options of [`ConnectOptions`](crate::ConnectOptions) and
//!   [`ServerOptions`](crate::ServerOptions) (with `server_hostname`,
//!   `ssl_handshake_timeout`, default [`DEFAULT_HANDSHAKE_TIMEOUT`], and
//!   `ssl_shutdown_timeout`, default [`DEFAULT_SHUTDOWN_TIMEOUT`]) put connections and
//!   servers, and so the streams functions, on TLS.
//! - [`EventLoop::start_tls`] upgrades a live connection (STARTTLS), and
//!   [`StreamWriter::start_tls`](crate::streams::StreamWriter::start_tls) a stream.
//!
//! The user's protocol gets a [`Transport`] with the usual contract: `write` (encrypted at
//! once), water marks counted on everything buffered below it, `pause_reading` /
//! `resume_reading`, `close` (sends close_notify), `abort` (does not), no `write_eof` (TLS
//! cannot half-close: [`Transport::can_write_eof`] is `false`), and `get_extra_info` with the
//! TLS keys as well as the socket's.
//!
//! Failures are [`ErrorKind::Tls`] errors whose message names the reason
//! ("certificate verify failed: unknown issuer", "... certificate has expired",
//! "... hostname mismatch", "handshake failure: ...", "unsupported protocol version"); a
//! handshake that does not finish in time is [`ErrorKind::Timeout`]. On a server, a client
//! that fails its handshake (or sends plain text) loses only its own connection.

use std::cell::RefCell;
use std::rc::Rc;

mod context;
mod error;
mod layer;

pub use context::{ClientAuth, ClientContextBuilder, ServerContextBuilder, TlsContext, TlsVersion};
pub(crate) use layer::{TlsInner, TlsParams};

use crate::error::{Error, ErrorKind, Result};
use crate::events::ExceptionContext;
use crate::protocols::{BaseProtocol, Protocol};
use crate::runtime::core::EventLoop;
use crate::transports::{ProtocolRefs, Transport};

/// How long a TLS handshake may take by default, in seconds (asyncio's
/// `SSL_HANDSHAKE_TIMEOUT`).
pub const DEFAULT_HANDSHAKE_TIMEOUT: f64 = 60.0;

/// How long a closing TLS connection waits for the peer's close_notify by default, in
/// seconds (asyncio's `SSL_SHUTDOWN_TIMEOUT`).
pub const DEFAULT_SHUTDOWN_TIMEOUT: f64 = 30.0;

/// The timeouts of [`EventLoop::start_tls_with_timeouts`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TlsTimeouts {
    /// Seconds the handshake may take ([`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub handshake: f64,
    /// Seconds to wait for the peer's close_notify ([`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub shutdown: f64,
}

impl Default for TlsTimeouts {
    fn default() -> Self {
        TlsTimeouts {
            handshake: DEFAULT_HANDSHAKE_TIMEOUT,
            shutdown: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

fn check_timeout(name: &str, t: Option<f64>, default: f64) -> Result<f64> {
    match t {
        None => Ok(default),
        Some(t) if t > 0.0 && t.is_finite() => Ok(t),
        Some(t) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{name} should be a positive number, got {t}"),
        )),
    }
}

/// The layer's parameters: the timeouts checked (asyncio's defaults when not given).
fn tls_params(
    server_hostname: Option<String>,
    handshake_timeout: Option<f64>,
    shutdown_timeout: Option<f64>,
) -> Result<TlsParams> {
    Ok(TlsParams {
        server_hostname,
        handshake_timeout: check_timeout(
            "ssl_handshake_timeout",
            handshake_timeout,
            DEFAULT_HANDSHAKE_TIMEOUT,
        )?,
        shutdown_timeout: check_timeout(
            "ssl_shutdown_timeout",
            shutdown_timeout,
            DEFAULT_SHUTDOWN_TIMEOUT,
        )?,
    })
}

/// Checks the `ssl` options of a client connection (asyncio's rules): `server_hostname` and
/// the timeouts only with `ssl`; `server_hostname` defaults to `host` and is required without
/// one. `None` for a plain connection.
pub(crate) fn client_params(
    ssl: Option<&TlsContext>,
    server_hostname: Option<&str>,
    host: Option<&str>,
    handshake_timeout: Option<f64>,
    shutdown_timeout: Option<f64>,
) -> Result<Option<(TlsContext, TlsParams)>> {
    let Some(ctx) = ssl else {
        let what = if server_hostname.is_some() {
            "server_hostname"
        } else if handshake_timeout.is_some() {
            "ssl_handshake_timeout"
        } else if shutdown_timeout.is_some() {
            "ssl_shutdown_timeout"
        } else {
            return Ok(None);
        };
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{what} is only meaningful with ssl"),
        ));
    };
    if ctx.is_server() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "a server TLS context cannot be used on the client side",
        ));
    }
    let Some(name) = server_hostname.or(host) else {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "You must set server_hostname when using ssl without a host",
        ));
    };
    let params = tls_params(Some(name.to_owned()), handshake_timeout, shutdown_timeout)?;
    Ok(Some((ctx.clone(), params)))
}

/// Checks the `ssl` options of a server; `None` for a plain server.
pub(crate) fn server_params(
    ssl: Option<&TlsContext>,
    handshake_timeout: Option<f64>,
    shutdown_timeout: Option<f64>,
) -> Result<Option<(TlsContext, TlsParams)>> {
    let Some(ctx) = ssl else {
        if handshake_timeout.is_some() || shutdown_timeout.is_some() {
            let what = if handshake_timeout.is_some() {
                "ssl_handshake_timeout"
            } else {
                "ssl_shutdown_timeout"
            };
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{what} is only meaningful with ssl"),
            ));
        }
        return Ok(None);
    };
    if !ctx.is_server() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "a client TLS context cannot be used on the server side",
        ));
    }
    let params = tls_params(None, handshake_timeout, shutdown_timeout)?;
    Ok(Some((ctx.clone(), params)))
}

/// A server's protocol factory wrapped in the TLS layer: each accepted connection runs the
/// server side of a handshake before its protocol's `connection_made`.
pub(crate) fn server_factory(
    lp: &EventLoop,
    factory: Box<dyn Fn() -> ProtocolRefs>,
    (ctx, params): (TlsContext, TlsParams),
) -> Box<dyn Fn() -> ProtocolRefs> {
    let lp = lp.clone();
    Box::new(move || {
        let app = factory();
        match TlsInner::new(&lp, &ctx, true, app, params.clone(), None, true) {
            Ok(layer) => layer.layer_refs(),
            Err(e) => {
                lp.call_exception_handler(
                    &ExceptionContext::new("Error on transport creation for incoming connection")
                        .with_exception(e),
                );
                ProtocolRefs::plain(&Rc::new(RefCell::new(Refuse)))
            }
        }
    })
}

/// Closes a connection whose TLS layer could not be made.
struct Refuse;

impl BaseProtocol for Refuse {}

impl Protocol for Refuse {
    fn connection_made(&mut self, transport: Transport) {
        transport.abort();
    }
}

/// Aborts a transport when dropped unless disarmed (a cancelled handshake wait).
struct AbortOnDrop(Option<Transport>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

impl EventLoop {
    /// Starts TLS on the socket transport of a new connection and waits for the handshake:
    /// `create_connection`'s second half when `ssl` is given.
    pub(crate) async fn finish_tls_connection(
        &self,
        sock: socket2::Socket,
        app: ProtocolRefs,
        (ctx, params): (TlsContext, TlsParams),
    ) -> Result<Transport> {
        let waiter = self.create_future::<()>();
        let layer = TlsInner::new(self, &ctx, false, app, params, Some(waiter.clone()), true)?;
        let socket = Transport::start(self, sock, layer.layer_refs(), None, None)?;
        let mut guard = AbortOnDrop(Some(socket));
        waiter.await?;
        guard.0 = None;
        layer
            .app_transport()
            .ok_or_else(|| Error::new(ErrorKind::InvalidState, "the TLS connection was lost"))
    }

    /// Upgrades the live connection of `transport` to TLS (asyncio's `loop.start_tls`, for
    /// STARTTLS): runs the handshake on it, on the `server_side` or as a client checking the
    /// server against `server_hostname`, and returns the new TLS transport. `protocol` (usually
    /// the transport's protocol) gets the decrypted data from then on; it gets no second
    /// `connection_made`. Use the returned transport, not the old one, from then on. The
    /// timeouts are the defaults ([`DEFAULT_HANDSHAKE_TIMEOUT`], [`DEFAULT_SHUTDOWN_TIMEOUT`]);
    /// see [`start_tls_with_timeouts`](EventLoop::start_tls_with_timeouts).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the context is for the other side, or a client has
    /// no `server_hostname`; [`ErrorKind::InvalidState`] when the transport is closing;
    /// [`ErrorKind::NotSupported`] for a pipe; [`ErrorKind::Tls`] when the handshake fails;
    /// [`ErrorKind::Timeout`] when it does not finish in time. A failed handshake closes the
    /// connection.
    ///
    /// # Cancel safety
    /// Dropping the future aborts the connection.
    pub async fn start_tls<P: Protocol + 'static>(
        &self,
        transport: &Transport,
        protocol: Rc<RefCell<P>>,
        context: &TlsContext,
        server_side: bool,
        server_hostname: Option<&str>,
    ) -> Result<Transport> {
        let refs = ProtocolRefs::plain(&protocol);
        let timeouts = TlsTimeouts::default();
        self.start_tls_refs(
            transport,
            refs,
            context,
            server_side,
            server_hostname,
            timeouts,
        )
        .await
    }

    /// [`start_tls`](EventLoop::start_tls) with `ssl_handshake_timeout` and
    /// `ssl_shutdown_timeout`.
    ///
    /// # Errors
    /// As [`start_tls`](EventLoop::start_tls); [`ErrorKind::InvalidArgument`] for a timeout that
    /// is not a positive number.
    ///
    /// # Cancel safety
    /// As [`start_tls`](EventLoop::start_tls).
    pub async fn start_tls_with_timeouts<P: Protocol + 'static>(
        &self,
        transport: &Transport,
        protocol: Rc<RefCell<P>>,
        context: &TlsContext,
        server_side: bool,
        server_hostname: Option<&str>,
        timeouts: TlsTimeouts,
    ) -> Result<Transport> {
        let refs = ProtocolRefs::plain(&protocol);
        self.start_tls_refs(
            transport,
            refs,
            context,
            server_side,
            server_hostname,
            timeouts,
        )
        .await
    }

    pub(crate) async fn start_tls_refs(
        &self,
        transport: &Transport,
        app: ProtocolRefs,
        context: &TlsContext,
        server_side: bool,
        server_hostname: Option<&str>,
        timeouts: TlsTimeouts,
    ) -> Result<Transport> {
        self.check_closed()?;
        if transport.is_pipe() {
            return Err(Error::new(
                ErrorKind::NotSupported,
                "start_tls() needs a socket transport, not a pipe",
            ));
        }
        if transport.is_closing() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "the transport is closing: cannot start TLS",
            ));
        }
        let (handshake, shutdown) = (Some(timeouts.handshake), Some(timeouts.shutdown));
        let (ctx, params) = if server_side {
            server_params(Some(context), handshake, shutdown)?
        } else {
            client_params(Some(context), server_hostname, None, handshake, shutdown)?
        }
        .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "no TLS context"))?;
        let waiter = self.create_future::<()>();
        let layer = TlsInner::new(
            self,
            &ctx,
            server_side,
            app,
            params,
            Some(waiter.clone()),
            false,
        )?;
        transport.set_protocol_refs(layer.layer_refs());
        layer.connection_made(transport.clone());
        let mut guard = AbortOnDrop(Some(transport.clone()));
        waiter.await?;
        guard.0 = None;
        layer
            .app_transport()
            .ok_or_else(|| Error::new(ErrorKind::InvalidState, "the TLS connection was lost"))
    }
}
