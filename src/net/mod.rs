//! The loop's networking coroutines: `create_connection`, `create_unix_connection`,
//! `connect_accepted_socket`, `create_datagram_endpoint` (UDP and Unix datagram sockets), and
//! name resolution (`getaddrinfo`, `getnameinfo`). Servers are in [`server`](crate::server).

use std::cell::RefCell;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::rc::Rc;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::error::{Error, ErrorKind, Result};
use crate::events::log_error;
use crate::protocols::{BufferedProtocol, Protocol};
use crate::runtime::core::EventLoop;
use crate::tls::{TlsContext, TlsParams};
use crate::transports::{ProtocolRefs, Transport};

/// The builder setters `family`, `proto` and `flags` (asyncio's `getaddrinfo` arguments) of
/// an options struct with those fields.
macro_rules! resolution_setters {
    () => {
        /// Sets the address family (`libc::AF_INET`, `libc::AF_INET6`, 0 for any).
        pub fn family(mut self, family: i32) -> Self {
            self.family = family;
            self
        }

        /// Sets the protocol number (0 for the socket type's default).
        pub fn proto(mut self, proto: i32) -> Self {
            self.proto = proto;
            self
        }

        /// Sets the `getaddrinfo` flags (`libc::AI_*`).
        pub fn flags(mut self, flags: i32) -> Self {
            self.flags = flags;
            self
        }
    };
}

mod datagram;
mod dns;
mod sock;
mod staggered;

pub use datagram::{DatagramAddr, DatagramOptions};
pub use dns::{AddrInfo, AddrInfoHints};

/// Options of [`create_connection`](EventLoop::create_connection) (asyncio's keyword
/// arguments). Build with [`ConnectOptions::new`] and the setters.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Address family for resolution (`libc::AF_INET`, `libc::AF_INET6`, 0 for any).
    pub family: i32,
    /// Protocol number for resolution (0 for any).
    pub proto: i32,
    /// `libc::AI_*` flags for resolution.
    pub flags: i32,
    /// Local `(host, port)` to bind to before connecting.
    pub local_addr: Option<(String, u16)>,
    /// An already connected stream socket to use instead of connecting.
    pub sock: Option<OwnedFd>,
    /// Happy Eyeballs (RFC 8305): start the next address's attempt this many seconds after the
    /// previous one started, without waiting for it to fail (asyncio's `happy_eyeballs_delay`;
    /// RFC 8305 suggests 0.25). `None`: one address at a time.
    pub happy_eyeballs_delay: Option<f64>,
    /// Reorder the resolved addresses by family: this many of the first family, then one of each
    /// family in turn (asyncio's `interleave`; 1 when `happy_eyeballs_delay` is set).
    pub interleave: Option<usize>,
    /// TLS: the client context to run the connection through (asyncio's `ssl`); see
    /// [`crate::tls`].
    pub ssl: Option<TlsContext>,
    /// The name the server's certificate must carry (and the SNI sent); defaults to the host.
    pub server_hostname: Option<String>,
    /// Seconds the TLS handshake may take (default 60).
    pub ssl_handshake_timeout: Option<f64>,
    /// Seconds a closing TLS connection waits for the peer's close_notify (default 30).
    pub ssl_shutdown_timeout: Option<f64>,
}

impl ConnectOptions {
    /// The defaults: any family, no local address, no socket.
    pub fn new() -> Self {
        Self::default()
    }

    resolution_setters!();

    /// Binds the socket to this local host and port before connecting.
    pub fn local_addr(mut self, host: impl Into<String>, port: u16) -> Self {
        self.local_addr = Some((host.into(), port));
        self
    }

    /// Turns on Happy Eyeballs with this delay in seconds (see
    /// [`happy_eyeballs_delay`](ConnectOptions::happy_eyeballs_delay)).
    pub fn happy_eyeballs_delay(mut self, delay: f64) -> Self {
        self.happy_eyeballs_delay = Some(delay);
        self
    }

    /// Sets the address interleaving (see [`interleave`](ConnectOptions::interleave)).
    pub fn interleave(mut self, first_family_count: usize) -> Self {
        self.interleave = Some(first_family_count);
        self
    }

    /// Uses this connected socket (a `TcpStream` or `UnixStream` converts into `OwnedFd`).
    pub fn sock(mut self, sock: impl Into<OwnedFd>) -> Self {
        self.sock = Some(sock.into());
        self
    }

    /// Runs the connection through TLS with this client context (asyncio's `ssl=`).
    pub fn ssl(mut self, context: TlsContext) -> Self {
        self.ssl = Some(context);
        self
    }

    /// Sets the name the server's certificate is checked against (see
    /// [`server_hostname`](ConnectOptions::server_hostname)).
    pub fn server_hostname(mut self, name: impl Into<String>) -> Self {
        self.server_hostname = Some(name.into());
        self
    }

    /// Sets the TLS handshake timeout in seconds.
    pub fn ssl_handshake_timeout(mut self, seconds: f64) -> Self {
        self.ssl_handshake_timeout = Some(seconds);
        self
    }

    /// Sets the TLS shutdown timeout in seconds.
    pub fn ssl_shutdown_timeout(mut self, seconds: f64) -> Self {
        self.ssl_shutdown_timeout = Some(seconds);
        self
    }

    /// The checked TLS settings for a connection to `host`.
    fn tls(&self, host: Option<&str>) -> Result<Option<(TlsContext, TlsParams)>> {
        crate::tls::client_params(
            self.ssl.as_ref(),
            self.server_hostname.as_deref(),
            host,
            self.ssl_handshake_timeout,
            self.ssl_shutdown_timeout,
        )
    }
}

/// Removes a writer when dropped (a cancelled connect).
struct WriterGuard<'a> {
    lp: &'a EventLoop,
    fd: RawFd,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.lp.unwatch_writer(self.fd);
    }
}

/// Aborts a transport when dropped unless disarmed (a cancelled `create_connection`).
struct AbortGuard(Option<Transport>);

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// Connects a nonblocking socket, waiting for writability through the loop.
pub(crate) async fn sock_connect(lp: &EventLoop, sock: &Socket, addr: &SockAddr) -> Result<()> {
    match sock.connect(addr) {
        Ok(()) => return Ok(()),
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e.into()),
    }
    let fd = sock.as_raw_fd();
    let fut = lp.create_future::<()>();
    let f2 = fut.clone();
    lp.watch_writer(fd, move || {
        if !f2.done() {
            let _ = f2.set_result(());
        }
    })?;
    let guard = WriterGuard { lp, fd };
    fut.await?;
    drop(guard);
    match sock.take_error()? {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// asyncio's rule for reporting several failed attempts: one error as is, identical ones as
/// the first, else "Multiple exceptions: ...".
fn combine(mut errors: Vec<Error>) -> Error {
    if errors.is_empty() {
        return Error::new(ErrorKind::Io, "no address to connect to");
    }
    if errors.len() == 1
        || errors
            .iter()
            .all(|e| e.to_string() == errors[0].to_string())
    {
        return errors.swap_remove(0);
    }
    let text = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let first = errors.swap_remove(0);
    let mut err = Error::new(ErrorKind::Io, format!("Multiple exceptions: {text}"));
    if let Some(src) = std::error::Error::source(&first)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(|e| e.raw_os_error())
    {
        err = err.with_source(std::io::Error::from_raw_os_error(src));
    }
    err
}

/// The error of a failed `bind`, as asyncio words it; the OS error is its source.
pub(crate) fn bind_error(addr: impl fmt::Display, e: std::io::Error) -> Error {
    let text = format!("error while attempting to bind on address {addr}: {e}");
    Error::new(ErrorKind::Io, text).with_source(e)
}

/// Removes a stale Unix socket file at `path` before binding there, as asyncio does. Only a
/// socket is removed: anything else stays for `bind` to refuse (`AddrInUse`). A failure other
/// than "not found" is logged, and `bind` then reports what is wrong. A name in Linux's
/// abstract namespace (a leading NUL byte) is no file.
pub(crate) fn remove_stale_unix_socket(path: &Path) {
    if path.as_os_str().as_bytes().first() == Some(&0) {
        return;
    }
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = removed {
        log_error(&format!(
            "Unable to check or remove stale UNIX socket {}: {e}",
            path.display()
        ));
    }
}

fn stream_socket_from(fd: OwnedFd) -> Result<Socket> {
    let sock = Socket::from(fd);
    if sock.r#type()? != Type::STREAM {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "A Stream Socket was expected",
        ));
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

impl EventLoop {
    /// `getaddrinfo` that finds at least one address (asyncio's `_ensure_resolved` plus its
    /// callers' check).
    async fn resolve(&self, host: &str, port: u16, hints: AddrInfoHints) -> Result<Vec<AddrInfo>> {
        let infos = self.getaddrinfo(Some(host), Some(port), hints).await?;
        if infos.is_empty() {
            return Err(Error::new(
                ErrorKind::Io,
                "getaddrinfo() returned empty list",
            ));
        }
        Ok(infos)
    }

    async fn open_tcp_socket(
        &self,
        host: Option<&str>,
        port: Option<u16>,
        options: ConnectOptions,
    ) -> Result<Socket> {
        if let Some(fd) = options.sock {
            if host.is_some() || port.is_some() || options.local_addr.is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "host/port and sock can not be specified at the same time",
                ));
            }
            return stream_socket_from(fd);
        }
        let (Some(host), Some(port)) = (host, port) else {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "host and port was not specified and no sock specified",
            ));
        };
        let hints = AddrInfoHints {
            family: options.family,
            socktype: libc::SOCK_STREAM,
            protocol: options.proto,
            flags: options.flags,
        };
        let infos = self.resolve(host, port, hints).await?;
        let local = match &options.local_addr {
            Some((h, p)) => Some(self.resolve(h, *p, hints).await?),
            None => None,
        };
        let interleave = options
            .interleave
            .or(options.happy_eyeballs_delay.map(|_| 1));
        let infos = match interleave {
            Some(n) => staggered::interleave(infos, n.max(1)),
            None => infos,
        };
        let local = local.as_deref();
        if let Some(delay) = options.happy_eyeballs_delay {
            let delay = crate::IntoDelay::into_delay(delay)?.max(0.0);
            let attempts: Vec<_> = infos
                .iter()
                .map(|info| {
                    move || -> staggered::Attempt<'_, Socket> {
                        Box::pin(self.try_connect(info, local))
                    }
                })
                .collect();
            return staggered::staggered_race(attempts, delay)
                .await
                .map_err(combine);
        }
        let mut errors = Vec::new();
        for info in infos {
            match self.try_connect(&info, local).await {
                Ok(sock) => return Ok(sock),
                Err(e) => errors.push(e),
            }
        }
        Err(combine(errors))
    }

    async fn try_connect(&self, info: &AddrInfo, local: Option<&[AddrInfo]>) -> Result<Socket> {
        let proto = (info.protocol != 0).then(|| socket2::Protocol::from(info.protocol));
        let sock = Socket::new(Domain::from(info.family), Type::STREAM, proto)?;
        sock.set_nonblocking(true)?;
        if let Some(local) = local {
            let mut bound = false;
            let mut last = None;
            for l in local.iter().filter(|l| l.family == info.family) {
                match sock.bind(&SockAddr::from(l.addr)) {
                    Ok(()) => {
                        bound = true;
                        break;
                    }
                    Err(e) => last = Some(bind_error(l.addr, e)),
                }
            }
            if !bound {
                return Err(last.unwrap_or_else(|| {
                    Error::new(
                        ErrorKind::Io,
                        format!(
                            "no matching local address with family={} found",
                            info.family
                        ),
                    )
                }));
            }
        }
        sock_connect(self, &sock, &SockAddr::from(info.addr)).await?;
        Ok(sock)
    }

    /// Makes the protocol, starts the transport and waits for `connection_made` (after the
    /// TLS handshake when `tls` is given).
    async fn finish_connection<P: 'static>(
        &self,
        sock: Socket,
        protocol: P,
        refs: fn(&Rc<RefCell<P>>) -> ProtocolRefs,
        tls: Option<(TlsContext, TlsParams)>,
    ) -> Result<(Transport, Rc<RefCell<P>>)> {
        let protocol = Rc::new(RefCell::new(protocol));
        if let Some(tls) = tls {
            let transport = self
                .finish_tls_connection(sock, refs(&protocol), tls)
                .await?;
            return Ok((transport, protocol));
        }
        let waiter = self.create_future::<()>();
        let transport = Transport::start(self, sock, refs(&protocol), Some(waiter.clone()), None)?;
        let mut guard = AbortGuard(Some(transport.clone()));
        waiter.await?;
        guard.0 = None;
        Ok((transport, protocol))
    }

    /// Opens a TCP connection to `host`:`port` (asyncio's `loop.create_connection`) and returns
    /// the transport and the protocol made by `protocol_factory`, once `connection_made` ran.
    ///
    /// The host is resolved with [`getaddrinfo`](EventLoop::getaddrinfo) and every address is
    /// tried in order; `options` may give a local address to bind, or an already connected
    /// socket instead of `host` and `port`. The transport sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a bad combination of `host`, `port` and
    /// `options.sock`; [`ErrorKind::Io`] when resolution or every attempt fails (one failure is
    /// returned as is, so a refused connection has `io_error_kind()`
    /// `Some(ConnectionRefused)`; several different failures give "Multiple exceptions: ...");
    /// [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// Dropping the future closes the socket being connected (or aborts the new transport);
    /// `connection_lost` is not called for a protocol whose `connection_made` did not run.
    ///
    /// ```
    /// use asyncio::{BaseProtocol, ConnectOptions, EventLoop, Protocol, ServerOptions};
    ///
    /// struct Quiet;
    /// impl BaseProtocol for Quiet {}
    /// impl Protocol for Quiet {}
    ///
    /// let event_loop = EventLoop::new()?;
    /// let lp = event_loop.clone();
    /// event_loop.run_until_complete(async move {
    ///     let server = lp
    ///         .create_server(|| Quiet, &["127.0.0.1"], Some(0), ServerOptions::new())
    ///         .await?;
    ///     let port = server.sockets()[0].address.as_ref().unwrap().as_inet().unwrap().port();
    ///     let (transport, _protocol) = lp
    ///         .create_connection(|| Quiet, Some("127.0.0.1"), Some(port), ConnectOptions::new())
    ///         .await?;
    ///     transport.close();
    ///     server.close();
    ///     Ok::<_, asyncio::Error>(())
    /// })??;
    /// event_loop.close()?;
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub async fn create_connection<P, F>(
        &self,
        protocol_factory: F,
        host: Option<&str>,
        port: Option<u16>,
        options: ConnectOptions,
    ) -> Result<(Transport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: Protocol + 'static,
    {
        self.check_closed()?;
        let tls = options.tls(host)?;
        let sock = self.open_tcp_socket(host, port, options).await?;
        self.finish_connection(sock, protocol_factory(), ProtocolRefs::plain, tls)
            .await
    }

    /// [`create_connection`](EventLoop::create_connection) for a [`BufferedProtocol`].
    ///
    /// # Errors
    /// As [`create_connection`](EventLoop::create_connection).
    ///
    /// # Cancel safety
    /// As [`create_connection`](EventLoop::create_connection).
    pub async fn create_connection_buffered<P, F>(
        &self,
        protocol_factory: F,
        host: Option<&str>,
        port: Option<u16>,
        options: ConnectOptions,
    ) -> Result<(Transport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: BufferedProtocol + 'static,
    {
        self.check_closed()?;
        let tls = options.tls(host)?;
        let sock = self.open_tcp_socket(host, port, options).await?;
        self.finish_connection(sock, protocol_factory(), ProtocolRefs::buffered, tls)
            .await
    }

    /// Opens a Unix-socket connection to `path`, or wraps the connected `sock` (asyncio's
    /// `loop.create_unix_connection`); give exactly one of the two.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when both or neither of `path` and `sock` are given, or
    /// `sock` is not a stream socket; [`ErrorKind::Io`] when connecting fails (a missing path is
    /// `NotFound`, a path nobody listens on `ConnectionRefused`; a listener whose backlog is full
    /// gives `WouldBlock`); [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// As [`create_connection`](EventLoop::create_connection).
    pub async fn create_unix_connection<P, F>(
        &self,
        protocol_factory: F,
        path: Option<&Path>,
        sock: Option<OwnedFd>,
    ) -> Result<(Transport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: Protocol + 'static,
    {
        let options = ConnectOptions {
            sock,
            ..ConnectOptions::default()
        };
        self.create_unix_connection_with(protocol_factory, path, options)
            .await
    }

    /// [`create_unix_connection`](EventLoop::create_unix_connection) with options: the
    /// connected socket (`options.sock`) and TLS (`ssl`, `server_hostname`, which is required
    /// with `ssl`, and the TLS timeouts). The resolution and local-address options do not
    /// apply.
    ///
    /// # Errors
    /// As [`create_unix_connection`](EventLoop::create_unix_connection);
    /// [`ErrorKind::InvalidArgument`] for `ssl` without `server_hostname`, or TLS options
    /// without `ssl`; [`ErrorKind::Tls`] or [`ErrorKind::Timeout`] when the TLS handshake
    /// fails or takes too long.
    ///
    /// # Cancel safety
    /// As [`create_unix_connection`](EventLoop::create_unix_connection).
    pub async fn create_unix_connection_with<P, F>(
        &self,
        protocol_factory: F,
        path: Option<&Path>,
        options: ConnectOptions,
    ) -> Result<(Transport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: Protocol + 'static,
    {
        self.check_closed()?;
        let tls = options.tls(None)?;
        let sock = match (path, options.sock) {
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "path and sock can not be specified at the same time",
                ))
            }
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "no path and sock were specified",
                ))
            }
            (None, Some(fd)) => stream_socket_from(fd)?,
            (Some(path), None) => {
                let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                sock.set_nonblocking(true)?;
                sock_connect(self, &sock, &SockAddr::unix(path)?).await?;
                sock
            }
        };
        self.finish_connection(sock, protocol_factory(), ProtocolRefs::plain, tls)
            .await
    }

    /// Wraps a socket accepted elsewhere (asyncio's `loop.connect_accepted_socket`): the
    /// protocol is made and connected as a server's would be.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] if `sock` is not a stream socket; [`ErrorKind::Io`] if it
    /// cannot be made nonblocking; [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// Dropping the future aborts the new transport.
    pub async fn connect_accepted_socket<P, F>(
        &self,
        protocol_factory: F,
        sock: impl Into<OwnedFd>,
    ) -> Result<(Transport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: Protocol + 'static,
    {
        self.check_closed()?;
        let sock = stream_socket_from(sock.into())?;
        self.finish_connection(sock, protocol_factory(), ProtocolRefs::plain, None)
            .await
    }
}
